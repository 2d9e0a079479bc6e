// The directories the helper may write, held open as descriptors. Every write goes through
// one of these with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), never through a path.
#pragma once

#include "policy/policy.h"
#include "proto/result.h"

namespace decnet::helper {

struct HelperDirs {
  int unit_dir = -1;   // policy.unit_dir
  int link_dir = -1;   // policy.link_dir
  int state_dir = -1;  // policy.state_dir
};

// Opens (O_PATH is not enough: we fsync them) each directory O_RDONLY|O_DIRECTORY|O_NOFOLLOW
// |O_CLOEXEC. The state directory is created 0700 if missing and must be owned by root and
// not accessible to group or others (rule "state-dir-owner"); the unit and link directories
// must be owned by root and not group- or world-writable ("dir-owner").
[[nodiscard]] Result<HelperDirs> OpenHelperDirs(const Policy& policy);

// Opens only the state directory (start-up needs it before the fork).
[[nodiscard]] Result<int> OpenStateDir(const Policy& policy);

}  // namespace decnet::helper
