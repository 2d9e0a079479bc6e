// decnet-update-helper: the root helper's entry point. Parses the command line and hands
// over to start-up (startup.h); exit codes are HelperExit's.
#include <cstdio>
#include <string>
#include <string_view>

#include "helper/startup.h"

namespace {

constexpr const char* kUsage =
    "usage: decnet-update-helper [--config PATH] [--selftest] [--version]\n"
    "  --config PATH  policy file (default " DECNET_HELPER_CONFIG
    ")\n"
    "  --selftest     confine as in service, print one line per check, then make a\n"
    "                 forbidden system call (expected to die by SIGSYS)\n"
    "exit codes: 0 daemon ended cleanly, 1 start-up failed, 2 usage, 3 daemon failed,\n"
    "            4 protocol violation by the daemon, 5 no hello in time, 6 self-test failed\n";

}  // namespace

int main(int argc, char** argv) {
  using decnet::helper::HelperExit;
  std::string config = DECNET_HELPER_CONFIG;
  bool selftest = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config = argv[++i];
    } else if (arg == "--selftest") {
      selftest = true;
    } else if (arg == "--version") {
      std::printf("decnet-update-helper %s\n", DECNET_VERSION);
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fputs(kUsage, stderr);
      return static_cast<int>(HelperExit::kUsage);
    }
  }
  return selftest ? decnet::helper::RunSelftestMode(config) : decnet::helper::RunHelper(config);
}
