// Filesystem operations of the helper. Every one works beneath a directory descriptor with
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) or *at() calls that do not follow links,
// and takes a single path component as the name: nothing here accepts a path.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "proto/result.h"

namespace decnet::helper {

enum class EntryKind { kMissing, kRegular, kSymlink, kOther };

// What `name` in `dir_fd` is, without following a symlink.
[[nodiscard]] Result<EntryKind> InspectEntry(int dir_fd, std::string_view name);

// Reads the regular file `name` (at most `max_bytes`). nullopt when it does not exist;
// kDenied ("fs-not-regular") for a symlink or anything else.
[[nodiscard]] Result<std::optional<std::string>> ReadFileBeneath(int dir_fd, std::string_view name,
                                                                 size_t max_bytes);

// Replaces `name` atomically: a fresh temporary file (O_EXCL, mode `mode`), write, fsync,
// renameat over `name`, fsync of the directory. On failure the old file is untouched and the
// temporary removed.
[[nodiscard]] Result<void> AtomicWriteFile(int dir_fd, std::string_view name,
                                           std::string_view content, mode_t mode);

// Removes the file or symlink `name` (never a directory) and fsyncs the directory. Returns
// false when there was nothing to remove.
[[nodiscard]] Result<bool> RemoveEntry(int dir_fd, std::string_view name);

// Points symlink `name` at `target` atomically: a temporary symlink renamed over `name`, then
// an fsync of the directory.
[[nodiscard]] Result<void> AtomicSymlink(int dir_fd, std::string_view name,
                                         std::string_view target);

// The target of symlink `name`, or nullopt when `name` does not exist.
[[nodiscard]] Result<std::optional<std::string>> ReadSymlink(int dir_fd, std::string_view name);

// Opens `name` beneath `dir_fd` for appending (created with `mode` if missing), through
// openat2 like every other write: the confined helper's seccomp filter lets openat(2) read
// only.
[[nodiscard]] Result<int> OpenAppendBeneath(int dir_fd, std::string_view name, mode_t mode);

// Appends one line to the already open append-only file `fd` in a single write.
[[nodiscard]] Result<void> AppendLine(int fd, std::string_view line);

}  // namespace decnet::helper
