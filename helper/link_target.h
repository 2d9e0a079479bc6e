// Where a repointed link may lead, checked on the filesystem rather than on strings.
#pragma once

#include "proto/result.h"
#include "proto/values.h"

namespace decnet::helper {

// Resolves `target` (already known to lie beneath `prefix` component-wise) beneath a
// descriptor of `prefix`, one component at a time through the one openat2 wrapper: no
// symlink is followed below the prefix, no mount is crossed, and every directory from the
// prefix down must be searchable by others, so the answer tells the daemon nothing an
// unprivileged user could not learn (no existence oracle for root-only paths). The prefix
// itself is the operator's configured path and is opened as configured (its `current`
// link included). Returns kNotFound ("link-target-missing") when something on the way does
// not exist; kDenied with "link-target-symlink" for a symlink or mount crossing below the
// prefix, "link-target-private" for a directory others cannot search, "link-target-kind"
// for a target that is neither a regular file nor a directory.
[[nodiscard]] Result<void> ResolveLinkTarget(const AbsPath& prefix, const AbsPath& target);

}  // namespace decnet::helper
