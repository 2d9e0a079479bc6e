// File-system primitives of the release store. Every call works relative to a directory file
// descriptor and never follows a symlink in the name it is given, so a planted link cannot
// redirect a write or a delete outside the store.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "proto/result.h"
#include "proto/unique_fd.h"

namespace decnet::daemon {

// Opens the directory `name` beneath `dir_fd` without following a symlink at `name`.
// Fails kFailed "store-io" (or kNotFound "store-missing" when absent, kDenied
// "store-not-directory" when `name` is a symlink or not a directory).
[[nodiscard]] Result<UniqueFd> OpenDirAt(int dir_fd, std::string_view name);

// Creates directory `name` (mode 0755 whatever the umask) unless it exists as a directory,
// then opens it. Refuses a symlink or non-directory there ("store-not-directory").
[[nodiscard]] Result<UniqueFd> EnsureDirAt(int dir_fd, std::string_view name);

// Writes `contents` durably to `name` beneath `dir_fd`: `name.tmp` created 0644 with
// O_NOFOLLOW, written, fsynced, renamed over `name`, directory fsynced. `crash` is called
// between the steps ("<tag>-temp-written", "<tag>-renamed"). Fails kFailed "store-io"; a
// failure before the rename (a full disk) removes `name.tmp` and leaves `name` as it was.
[[nodiscard]] Result<void> WriteFileAtomically(int dir_fd, std::string_view name,
                                               std::string_view contents, std::string_view tag,
                                               const std::function<void(std::string_view)>& crash);

// Reads the regular file `name` (not a symlink) of at most `max_bytes`. Fails kNotFound
// "store-missing" when absent, kDenied "store-not-regular" for anything but a regular file,
// kDenied "store-too-large" over the cap, kFailed "store-io".
[[nodiscard]] Result<std::string> ReadFileAt(int dir_fd, std::string_view name, size_t max_bytes);

// Deletes `name` beneath `dir_fd` and, if it is a directory, everything beneath it. Never
// follows a symlink: a link is removed itself, its target is left alone. Descends at most
// 1024 levels ("store-too-deep"). Succeeds when `name` does not exist. Fails kFailed "store-io".
[[nodiscard]] Result<void> RemoveTreeAt(int dir_fd, std::string_view name);

// fsync(fd); fails kFailed "store-io".
[[nodiscard]] Result<void> SyncFd(int fd, std::string_view what);

// The current UTC time as ISO-8601 ("2025-01-31T12:00:00Z").
std::string NowIso8601();

// An error of kind kFailed, rule "store-io", with strerror(errno) appended.
tl::unexpected<Error> IoError(std::string_view what);

}  // namespace decnet::daemon
