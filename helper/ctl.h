// helperctl's subcommands. Each returns the process exit code and prints to stdout (results)
// and stderr (errors).
#pragma once

#include <string>
#include <vector>

#include "helper/policy.h"

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

}  // namespace decnet::helper::ctl
