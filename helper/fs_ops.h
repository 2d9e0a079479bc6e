// The root binary's one set of file primitives: one owned-descriptor type, one openat2
// wrapper, one atomic write, one atomic symlink. Everything works beneath a directory
// descriptor the caller holds; names are resolved by the kernel with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, so no name can climb out of
// its directory, pass through a planted symlink or reach another mount. The only paths
// opened otherwise are the operator's configured directories (helper/dirs.cc).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "proto/result.h"
#include "proto/unique_fd.h"

namespace decnet::helper {

// The one openat2 wrapper. Opens `path` (relative, one or more components) beneath `dir_fd`
// with `flags` | O_CLOEXEC | O_NOFOLLOW, retrying on EINTR. The resolve flags are fixed:
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV. Refuses
// (errno ELOOP or EXDEV) a symlink anywhere on the path, ".." or an absolute path that
// leaves `dir_fd`, and a mount crossing. Returns the descriptor, or -1 with errno set (callers
// turn errno into their own rule).
[[nodiscard]] UniqueFd OpenBeneath(int dir_fd, std::string_view path, int flags, mode_t mode = 0);

// Opens the absolute `path` with `flags` | O_CLOEXEC | O_NOFOLLOW through the same openat2
// wrapper, resolved from the root with RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: a symlink
// in ANY component, not only the last, is refused (errno ELOOP). Mount crossings are allowed
// (a configured directory may sit on another file system). For the few directories the
// policy names by absolute path and whose every component must be what it says. Returns -1
// with errno EINVAL for a relative path.
[[nodiscard]] UniqueFd OpenNoSymlinks(std::string_view path, int flags);

// True when `errno` after OpenBeneath means "a symlink, magic link, escape or mount crossing
// was refused" rather than a missing or unreadable entry.
bool RefusedByResolve(int err);

enum class EntryKind { kMissing, kRegular, kSymlink, kOther };

// What `name` in `dir_fd` is, without following a symlink.
[[nodiscard]] Result<EntryKind> InspectEntry(int dir_fd, std::string_view name);

// Reads the regular file `name` (at most `max_bytes`). nullopt when it does not exist;
// kDenied ("fs-not-regular") for a symlink, anything not regular, or a larger file.
[[nodiscard]] Result<std::optional<std::string>> ReadFileBeneath(int dir_fd, std::string_view name,
                                                                 size_t max_bytes);

// The one atomic write. Replaces `name` in `dir_fd`: a fresh temporary file (unique name,
// O_EXCL, mode `mode`), write, fchmod, fsync, renameat over `name`, fsync of the directory.
// On failure the old file is untouched, the temporary removed, and kFailed returned with
// rule "fs-write" or "fs-create".
[[nodiscard]] Result<void> AtomicWriteFile(int dir_fd, std::string_view name,
                                           std::string_view content, mode_t mode);

// Removes the file or symlink `name` (never a directory) and fsyncs the directory. Returns
// false when there was nothing to remove.
[[nodiscard]] Result<bool> RemoveEntry(int dir_fd, std::string_view name);

// Points symlink `name` at `target` atomically: a symlink under a fresh unique temporary
// name (a name planted by someone else is skipped, never removed or followed) renamed over
// `name`, then an fsync of the directory. kFailed ("fs-symlink", "fs-rename") on failure,
// with the temporary removed.
[[nodiscard]] Result<void> AtomicSymlink(int dir_fd, std::string_view name,
                                         std::string_view target);

// The target of symlink `name`, or nullopt when `name` does not exist. kDenied
// ("link-not-symlink") when it exists and is not a symlink.
[[nodiscard]] Result<std::optional<std::string>> ReadSymlink(int dir_fd, std::string_view name);

// Opens `name` beneath `dir_fd` for appending (created with `mode` if missing), through
// OpenBeneath like every other write: the confined helper's seccomp filter lets openat(2)
// read only. kFailed ("fs-open") on failure.
[[nodiscard]] Result<UniqueFd> OpenAppendBeneath(int dir_fd, std::string_view name, mode_t mode);

// Writes all of `data` to `fd`, retrying on EINTR (and, for a descriptor someone made
// non-blocking, waiting up to a second for room). kFailed ("fs-write") on failure.
[[nodiscard]] Result<void> WriteAll(int fd, std::string_view data);

}  // namespace decnet::helper
