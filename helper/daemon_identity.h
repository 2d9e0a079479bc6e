// The daemon's identity, as start-up resolves it from the policy's daemon_user and
// daemon_group (ResolveDaemonIdentity in helper/startup.h): never root.
#pragma once

#include <sys/types.h>

namespace decnet::helper {

// The daemon's uid and gid, resolved from the policy's names.
struct DaemonIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
};

}  // namespace decnet::helper
