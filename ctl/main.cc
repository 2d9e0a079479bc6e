// helperctl: shows operators and reviewers the helper's surface and live state.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ctl/ctl.h"
#include "policy/policy.h"

namespace {

constexpr char kUsage[] =
    "usage: helperctl [--config PATH] COMMAND\n"
    "  policy [--json]        the request table, unit and link policy, seccomp table\n"
    "  check-unit FILE...     check unit files against the unit policy (exit 1 on refusal)\n"
    "  status [--json]        the running helper's confinement and counters\n"
    "  selftest [--helper P]  run the helper in self-test mode and prove its confinement\n"
    "  audit [--json] [--last N] [--audit-log PATH | --state-dir DIR]\n"
    "                         the daemon's audit log (DIR/audit.jsonl; DIR defaults to the\n"
    "                         state_dir of the daemon's configuration) as a timeline, or the\n"
    "                         last N operations. Under each operation, the helper's own records\n"
    "                         (requests.jsonl in its state directory) written after the previous\n"
    "                         operation's audit line and at or before its own (millisecond UTC\n"
    "                         timestamps). Every string from either file is printed escaped; a\n"
    "                         malformed line is reported by file and number and skipped (exit 1);\n"
    "                         an unreadable log exits 2\n";

int Usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string config = DECNET_HELPER_CONFIG;
  if (args.size() >= 2 && args[0] == "--config") {
    config = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h") return Usage();
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "selftest") {
    std::string helper = DECNET_HELPER_BINARY;
    if (args.size() == 2 && args[0] == "--helper")
      helper = args[1];
    else if (!args.empty())
      return Usage();
    return decnet::helper::ctl::RunSelftest(config, helper);
  }
  auto policy = decnet::helper::LoadPolicyFile(config);
  if (!policy) {
    std::fprintf(stderr, "helperctl: %s: %s [%s]\n", config.c_str(), policy.error().message.c_str(),
                 policy.error().rule.c_str());
    return 2;
  }
  bool json = args.size() == 1 && args[0] == "--json";
  if (command == "policy" && (args.empty() || json)) {
    return decnet::helper::ctl::RunPolicy(*policy, json);
  }
  if (command == "status" && (args.empty() || json)) {
    return decnet::helper::ctl::RunStatus(*policy, json);
  }
  if (command == "audit") {
    const auto options = decnet::helper::ctl::ParseAuditArgs(args);
    return options ? decnet::helper::ctl::RunAudit(*policy, *options) : Usage();
  }
  if (command == "check-unit" && !args.empty()) {
    return decnet::helper::ctl::RunCheckUnit(*policy, args);
  }
  return Usage();
}
