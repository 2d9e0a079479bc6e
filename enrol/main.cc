// decnet-updater-enrol: see enrol.h.
#include <cstdio>
#include <string>
#include <vector>

#include "enrol/enrol.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && args[0] == "--help") {
    std::fputs(decnet::enrol::EnrolUsage().c_str(), stdout);
    return 0;
  }
  auto options = decnet::enrol::ParseEnrolArgs(args);
  if (!options) {
    std::fprintf(stderr, "decnet-updater-enrol: %s [%s]\n%s", options.error().message.c_str(),
                 options.error().rule.c_str(), decnet::enrol::EnrolUsage().c_str());
    return 2;
  }
  return decnet::enrol::RunEnrol(*options, stdout, stderr);
}
