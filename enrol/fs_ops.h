// The file-system side of enrolment: what a path holds now, and the three changes the tool
// makes (write a file atomically, make or fix a directory, fix an existing file's owner, mode
// and ACL). Every open uses O_NOFOLLOW: a symbolic link planted where a key or a directory is
// expected is refused, never followed.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "adopt/key_acl.h"
#include "proto/result.h"

namespace decnet::enrol {

// What lies at a path (lstat), with its ACL and, for a regular file, its content.
struct PathState {
  bool exists = false;
  bool is_dir = false;
  bool is_regular = false;
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;                 // permission bits (07777)
  std::optional<std::string> acl;  // the system.posix_acl_access attribute, if any
  std::string content;             // regular files, when asked for
};

// Reads the state of `path` (content too when `read_content`, up to 1 MiB). A missing path is
// {exists=false}; fails (kFailed, "enrol-io") on any other error, and refuses (kDenied,
// "enrol-symlink") a symbolic link.
[[nodiscard]] Result<PathState> Inspect(const std::string& path, bool read_content);

// The owner, mode and ACL a path must have. `acl` empty: none (the mode alone).
struct Ownership {
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0644;
  std::vector<adopt::AclEntry> acl;
};

// A key's ACL: the owner reads and writes, `reader` reads, nobody else has anything
// (ls shows 0640: the group bits are the mask).
std::vector<adopt::AclEntry> KeyAcl(uid_t reader);

// True when `state` already has `want`'s owner, mode and ACL.
bool HasOwnership(const PathState& state, const Ownership& want);

// Writes `content` to `path` durably and atomically: a fresh temporary beside it (O_EXCL,
// created 0600 so a key is never readable in between), owner, mode and ACL set on the open
// file, fsync, rename over `path`, fsync of the directory. Fails "enrol-io".
[[nodiscard]] Result<void> WriteFileAtomic(const std::string& path, const std::string& content,
                                           const Ownership& want);

// Creates the directory `path` (its parent must exist) or, when it exists, gives it `want`.
// Refuses "enrol-symlink" for a link; fails "enrol-io".
[[nodiscard]] Result<void> MakeDirectory(const std::string& path, const Ownership& want);

// Gives the existing file or directory `path` the owner, mode and ACL of `want`. Fails as
// MakeDirectory.
[[nodiscard]] Result<void> SetOwnership(const std::string& path, const Ownership& want);

// Removes the file `path`; a missing file is not an error. Fails "enrol-io".
[[nodiscard]] Result<void> RemoveFile(const std::string& path);

}  // namespace decnet::enrol
