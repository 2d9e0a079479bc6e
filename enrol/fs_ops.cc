// The ACL is written as the kernel's attribute with adopt/key_acl.h's encoder (no libacl).
// Order on a new file: chown, chmod, then the ACL (setting the ACL also sets the group bits to
// the mask; a chmod afterwards would overwrite the mask).
#include "enrol/fs_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "proto/unique_fd.h"

namespace decnet::enrol {
namespace {

constexpr char kAclName[] = "system.posix_acl_access";
constexpr size_t kMaxRead = 1 << 20;

tl::unexpected<Error> Io(const std::string& what, const std::string& path) {
  return Fail(ErrorCode::kFailed, "enrol-io",
              "cannot " + what + " " + path + ": " + std::strerror(errno));
}

std::vector<adopt::AclEntry> Sorted(std::vector<adopt::AclEntry> entries) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.tag != b.tag ? a.tag < b.tag : a.id < b.id;
  });
  return entries;
}

// Owner, mode and ACL on an open descriptor.
Result<void> Apply(int fd, const std::string& path, const Ownership& want) {
  if (::fchown(fd, want.uid, want.gid) != 0) return Io("chown", path);
  if (::fchmod(fd, want.mode) != 0) return Io("chmod", path);
  if (want.acl.empty()) {
    if (::fremovexattr(fd, kAclName) != 0 && errno != ENODATA) return Io("remove the ACL of", path);
    return {};
  }
  const std::string bytes = adopt::EncodeAcl(want.acl);
  if (::fsetxattr(fd, kAclName, bytes.data(), bytes.size(), 0) != 0)
    return Io("set the ACL of", path);
  return {};
}

void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

Result<PathState> Inspect(const std::string& path, bool read_content) {
  PathState s;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return s;
    return Io("stat", path);
  }
  // SECURITY: a link where a key, a configuration or a directory belongs is never followed.
  if (S_ISLNK(st.st_mode))
    return Fail(ErrorCode::kDenied, "enrol-symlink", path + " is a symbolic link");
  s.exists = true;
  s.is_dir = S_ISDIR(st.st_mode);
  s.is_regular = S_ISREG(st.st_mode);
  s.uid = st.st_uid;
  s.gid = st.st_gid;
  s.mode = st.st_mode & 07777;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Io("open", path);
  UniqueFd owned(fd);
  char buf[4096];
  const ssize_t n = ::fgetxattr(fd, kAclName, buf, sizeof buf);
  if (n >= 0)
    s.acl = std::string(buf, static_cast<size_t>(n));
  else if (errno != ENODATA && errno != ENOTSUP)
    return Io("read the ACL of", path);
  if (read_content && s.is_regular) {
    ssize_t got = 0;
    while ((got = ::read(fd, buf, sizeof buf)) > 0 && s.content.size() < kMaxRead)
      s.content.append(buf, static_cast<size_t>(got));
    if (got < 0) return Io("read", path);
  }
  return s;
}

std::vector<adopt::AclEntry> KeyAcl(uid_t reader) {
  return Sorted({{adopt::kAclUserObj, 6, adopt::kAclUndefinedId},
                 {adopt::kAclUser, 4, static_cast<uint32_t>(reader)},
                 {adopt::kAclGroupObj, 0, adopt::kAclUndefinedId},
                 {adopt::kAclMask, 4, adopt::kAclUndefinedId},
                 {adopt::kAclOther, 0, adopt::kAclUndefinedId}});
}

bool HasOwnership(const PathState& state, const Ownership& want) {
  if (!state.exists || state.uid != want.uid || state.gid != want.gid) return false;
  if (want.acl.empty()) return !state.acl && state.mode == want.mode;
  if (!state.acl) return false;
  auto entries = adopt::ParseAcl(*state.acl);
  // The mode's group bits show the mask once an ACL is set; the owner's and others' must match.
  return entries && Sorted(*entries) == Sorted(want.acl) &&
         (state.mode & 07707) == (want.mode & 07707);
}

Result<void> WriteFileAtomic(const std::string& path, const std::string& content,
                             const Ownership& want) {
  const std::string tmp = path + ".enrol-tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Io("create", tmp);
  UniqueFd owned(fd);
  auto fail = [&](Result<void> r) {
    ::unlink(tmp.c_str());
    return r;
  };
  if (auto ok = Apply(fd, tmp, want); !ok) return fail(ok);
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()) ||
      ::fsync(fd) != 0)
    return fail(Io("write", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(Io("rename onto", path));
  SyncDirectory(std::filesystem::path(path).parent_path().string());
  return {};
}

Result<void> MakeDirectory(const std::string& path, const Ownership& want) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Io("create", path);
  auto made = SetOwnership(path, want);
  if (made) SyncDirectory(std::filesystem::path(path).parent_path().string());
  return made;
}

Result<void> SetOwnership(const std::string& path, const Ownership& want) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP)
      return Fail(ErrorCode::kDenied, "enrol-symlink", path + " is a symbolic link");
    return Io("open", path);
  }
  UniqueFd owned(fd);
  return Apply(fd, path, want);
}

Result<void> RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Io("remove", path);
  SyncDirectory(std::filesystem::path(path).parent_path().string());
  return {};
}

}  // namespace decnet::enrol
