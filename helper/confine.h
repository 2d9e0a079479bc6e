// Confinement of the two processes the helper makes. The root side keeps uid 0 but drops
// every capability, sets NoNewPrivs, restricts writes with Landlock where the kernel offers
// it and installs a default-kill seccomp allow-list. The daemon side changes to the daemon
// user with every capability set and supplementary group cleared.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace decnet::helper {

// What became of Landlock. The version query (landlock_create_ruleset) tells apart a kernel
// without Landlock from one whose Landlock a seccomp filter (a container manager's, such as
// systemd-nspawn's) refused: the first is a fact of the host, the second a confinement that
// someone else took away.
enum class LandlockState {
  kEnforced,     // the helper's rules are in force
  kAbsent,       // ENOSYS: the kernel has no Landlock
  kDisabled,     // EOPNOTSUPP: built in, but disabled at boot (lsm=)
  kBlocked,      // EPERM: a seccomp filter refused the call; Landlock may well exist
  kUnavailable,  // any other error of the version query
};

// "enforced", "absent", "disabled", "blocked", "unavailable": the names confinement.json and
// helperctl status use.
std::string_view LandlockStateName(LandlockState state);

// One sentence for the log and helperctl: what the state means for the helper's writes.
std::string_view LandlockStateMeaning(LandlockState state);

// "NAME (ERRNO): MEANING", such as "blocked (EPERM): WARNING: ...", for a Landlock that is not
// enforced; `err` is the recorded errno (ENOSYS, EOPNOTSUPP and EPERM by name).
std::string DescribeLandlock(LandlockState state, int err);

struct ConfinementReport {
  int landlock_abi = 0;  // 0 when Landlock cannot be used (landlock_state says why)
  bool landlock_enforced = false;
  LandlockState landlock_state = LandlockState::kAbsent;
  int landlock_errno = 0;  // the version query's errno when it failed, else 0
};

// Root side, in this order: clear all five capability sets (ambient, inheritable, permitted,
// effective, bounding), PR_SET_NO_NEW_PRIVS, Landlock (writes only beneath the directories
// `writable_dir_fds` refer to: the descriptors whose ownership helper/dirs.cc checked, never
// a path opened again), seccomp (SeccompAllowList(), default SCMP_ACT_KILL_PROCESS). Any step
// failing is an error: the helper never serves half-confined. The descriptors stay the
// caller's.
[[nodiscard]] Result<ConfinementReport> ConfineHelper(const std::vector<int>& writable_dir_fds);

// Daemon side (in the forked child, before exec): supplementary groups cleared, gid then uid
// changed, all capability sets and the bounding set cleared, NoNewPrivs set. Refuses uid 0.
[[nodiscard]] Result<void> DropToUser(uid_t uid, gid_t gid);

// The seccomp allow-list: the only system calls the confined helper may make. One table
// (seccomp_table.cc); helperctl policy prints it.
const std::vector<std::string>& SeccompAllowList();

}  // namespace decnet::helper
