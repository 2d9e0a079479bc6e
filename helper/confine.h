// Confinement of the two processes the helper makes. The root side keeps uid 0 but drops
// every capability, sets NoNewPrivs, restricts writes with Landlock where the kernel offers
// it and installs a default-kill seccomp allow-list. The daemon side changes to the daemon
// user with every capability set and supplementary group cleared.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::helper {

struct ConfinementReport {
  int landlock_abi = 0;  // 0 when the kernel has no Landlock
  bool landlock_enforced = false;
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
