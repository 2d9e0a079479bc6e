// decnet-rollout: packs, signs and pushes releases to a fleet of workers.
#include <cstdio>
#include <string_view>
#include <vector>

#include "fleet/commands.h"

namespace {

struct Command {
  std::string_view name;
  int (*run)(decnet::fleet::Args);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"pack", decnet::fleet::RunPack, "make a reproducible release tarball and its descriptor"},
    {"pack-self", decnet::fleet::RunPackSelf, "the same for the updater's own build"},
    {"keygen", decnet::fleet::RunKeygen, "make an Ed25519 signing key pair"},
    {"sign", decnet::fleet::RunSign, "add a signature to a release descriptor"},
    {"push", decnet::fleet::RunPush, "roll a release out: canary, batches, halt on failure"},
    {"status", decnet::fleet::RunStatus, "what every worker runs, and whether it answers"},
    {"rollback", decnet::fleet::RunRollback, "return workers to their previous release"},
};

int Usage(std::FILE* out) {
  std::fprintf(out, "usage: decnet-rollout COMMAND [ARGS]   (COMMAND --help for its own)\n\n");
  for (const Command& c : kCommands)
    std::fprintf(out, "  %-10.*s %.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  return out == stdout ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(stderr);
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") return Usage(stdout);
  if (name == "--version") {
    std::printf("decnet-rollout %s\n", DECNET_VERSION);
    return 0;
  }
  std::vector<std::string_view> args(argv + 2, argv + argc);
  for (const Command& c : kCommands)
    if (c.name == name) return c.run(args);
  std::fprintf(stderr, "decnet-rollout: unknown command '%s'\n", argv[1]);
  return Usage(stderr);
}
