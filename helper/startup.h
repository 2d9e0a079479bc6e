// Start-up of decnet-update-helper: policy, state directory, the self-update
// revert decision (helper/self_update.h), the daemon's identity, the socketpair and fork; the child
// drops to the daemon user and execs the daemon; the parent opens its directories, connects to the
// system bus, confines itself and serves. Also the self-test mode that `helperctl selftest` runs.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "helper/confine.h"
#include "helper/daemon_identity.h"
#include "policy/policy.h"
#include "proto/result.h"

namespace decnet::helper {

// The helper's exit codes (documented in docs/operations.md and `--help`).
enum class HelperExit : int {
  kOk = 0,                 // the daemon closed the pair and exited 0
  kStartupFailed = 1,      // policy, directories, users, bus, fork or confinement failed
  kUsage = 2,              // bad command line
  kDaemonFailed = 3,       // the daemon ended (closed the pair) with a failure status
  kProtocolViolation = 4,  // the daemon broke the protocol; the helper ended the session
  kHelloTimeout = 5,       // the daemon never said hello in time
  kSelftestFailed = 6,     // --selftest: a check failed, or the forbidden call returned
};

// The name of the system call the self-test makes last, expecting to be killed by SIGSYS.
// mount(2) with all-null arguments: never in the allow-list (a confined helper has no reason
// to mount), and harmless if a broken filter let it through (it fails with EFAULT).
inline constexpr std::string_view kSelftestForbiddenCall = "mount";

// Looks up policy.daemon_user / daemon_group. Refuses (kDenied) uid or gid 0
// ("daemon-user-root") and a daemon user that is one of the unit users, by name or by uid
// ("daemon-user-is-unit-user"); kNotFound when a name does not exist.
[[nodiscard]] Result<DaemonIdentity> ResolveDaemonIdentity(const Policy& policy);

// The daemon's environment, built from the helper's: PATH fixed to the system directories;
// passed through only LANG, LC_ALL, TZ, JOURNAL_STREAM, INVOCATION_ID and DECNET_* (and the
// sanitizer option variables in sanitizer builds). Never LD_*, NOTIFY_SOCKET, DBUS_* or
// anything else, so nothing root's environment carries can steer the daemon's loader or
// reach systemd in the helper's name.
std::vector<std::string> DaemonEnvironment(const char* const* envp);

// {"pid":N,"landlock_abi":N,"landlock_enforced":bool,"landlock_state":NAME,
//  "landlock_errno":N,"started_at":"RFC 3339 UTC"}, NAME one of LandlockStateName's.
std::string ConfinementJson(pid_t pid, const ConfinementReport& report,
                            const std::string& started_at);

// The helper proper: start-up, fork, confinement, serving, ending the daemon. Returns the
// process exit code (HelperExit).
int RunHelper(const std::string& config_path);

// --selftest: the same start-up without the daemon and the bus, the same confinement, then
// one "ok: CHECK" / "FAIL: CHECK: DETAIL" / "skip: CHECK: WHY" line per check on stdout, then
// "calling forbidden system call: NAME (NR)" and that call, which should kill the process
// with SIGSYS. Returns only when it did not (kSelftestFailed) or start-up failed.
int RunSelftestMode(const std::string& config_path);

}  // namespace decnet::helper
