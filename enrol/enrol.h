// decnet-updater-enrol: takes a worker from "package installed" to "ready for its first
// update". Run as root by the operator; it reads and writes only local files (the TLS
// material, the helper's policy and the daemon's configuration, the unit drop-in, the polkit
// rule), creates missing users, groups and directories, and reloads systemd. It never starts
// the service, and it parses no network input: OpenSSL reads only certificates and keys.
//
// The plan (enrol_plan.h) is built in full before the first change; --dry-run prints it and
// stops. A second run with the same arguments finds nothing to do and says so.
#pragma once

#include <cstdio>

#include "enrol/enrol_options.h"
#include "enrol/enrol_plan.h"

namespace decnet::enrol {

// Prints `plan` to `out`, each line prefixed "would " under --dry-run: accounts, directories
// (path, owner, mode), files (path, owner, mode, and for configuration files the content or
// a diff; never key material), the reload.
void PrintPlan(const Plan& plan, DryRun dry_run, FILE* out);

// Carries out `plan` beneath `root`, in the printed order. Stops at the first failure and
// returns it (rules "enrol-io", "enrol-symlink", "enrol-account", "enrol-reload").
[[nodiscard]] Result<void> ApplyPlan(const Plan& plan, const std::string& root);

// The whole command: refuses a caller that is not root ("enrol-root"), builds the plan,
// prints it, applies it (unless --dry-run), then prints what the master needs and the next
// step. Refusals go to `err` as "refused: MESSAGE [RULE]". Returns 0 on success (an empty
// plan included), 1 on a refusal or failure.
int RunEnrol(const EnrolOptions& options, FILE* out, FILE* err);

}  // namespace decnet::enrol
