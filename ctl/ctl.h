// helperctl's subcommands. Each returns the process exit code and prints to stdout (results)
// and stderr (errors).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace decnet::helper::ctl {

// `helperctl policy [--json]`: request table, unit and directive policy, link allow-list and
// seccomp table, from the objects the helper itself uses.
int RunPolicy(const Policy& policy, bool json);

// `helperctl check-unit FILE...`: 0 when every file passes, 1 with one line per refusal
// ("FILE:LINE: RULE: message"), 2 on usage or read errors.
int RunCheckUnit(const Policy& policy, const std::vector<std::string>& files);

// `helperctl status [--json]`: the running helper (pid from STATE_DIR/helper.pid): uid, the
// five capability sets, NoNewPrivs, Seccomp mode, Landlock, uptime, requests served/refused.
int RunStatus(const Policy& policy, bool json);

// `helperctl selftest [--helper PATH]`: runs the helper binary in self-test mode and prints
// each confinement check; 0 when all hold.
int RunSelftest(const std::string& config_path, const std::string& helper_binary);

// `helperctl audit`'s options.
struct AuditOptions {
  bool json = false;
  size_t last = 0;        // show only the last N operations; 0: all of them
  std::string audit_log;  // the daemon's audit log; "" when --state-dir or the default applies
  std::string state_dir;  // the daemon's state directory; "" means the daemon config's
};

// Parses `audit`'s arguments: --json, --last N (1..1000000), --audit-log PATH,
// --state-dir DIR (not both of the last two), each at most once. nullopt on anything else.
std::optional<AuditOptions> ParseAuditArgs(const std::vector<std::string>& args);

// `helperctl audit`: the daemon's audit log (STATE_DIR/audit.jsonl, the daemon's state
// directory taken from its configuration unless given) as a timeline, each operation with the
// helper's own record of the requests behind it. Every string read from either file is
// printed escaped. Returns 0; 1 when a line was malformed (reported with its line number and
// skipped) or the helper record could not be read; 2 when the audit log cannot be read or the
// daemon's configuration cannot be loaded.
int RunAudit(const Policy& policy, const AuditOptions& options);

}  // namespace decnet::helper::ctl
