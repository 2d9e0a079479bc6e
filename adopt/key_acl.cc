// Files are opened with O_NOFOLLOW: a link planted where a key was expected is refused, not
// followed to some other file that would then be opened up to the daemon.
#include "adopt/key_acl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proto/unique_fd.h"

namespace decnet::adopt {
namespace {

constexpr char kAclName[] = "system.posix_acl_access";
constexpr uint32_t kAclVersion = 2;

tl::unexpected<Error> AclIo(const std::string& what, const std::string& path) {
  return Fail(ErrorCode::kFailed, "acl-io", what + " " + path + ": " + std::strerror(errno));
}

void Put16(std::string& out, uint16_t v) {
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>(v >> 8);
}
void Put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t Get(std::string_view b, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
  return v;
}

Result<int> OpenNoFollow(const std::string& path) {
  // SECURITY: a symlink in place of a key must not widen access to whatever it names.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP)
      return Fail(ErrorCode::kDenied, "acl-symlink", path + " is a symbolic link");
    return AclIo("open", path);
  }
  return fd;
}

Result<std::optional<std::string>> ReadXattr(int fd, const std::string& path) {
  char buf[4096];
  const ssize_t n = ::fgetxattr(fd, kAclName, buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA) return std::optional<std::string>();
    return AclIo("read the ACL of", path);
  }
  return std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
}

std::vector<AclEntry> FromMode(mode_t mode) {
  return {{kAclUserObj, static_cast<uint16_t>((mode >> 6) & 7), kAclUndefinedId},
          {kAclGroupObj, static_cast<uint16_t>((mode >> 3) & 7), kAclUndefinedId},
          {kAclOther, static_cast<uint16_t>(mode & 7), kAclUndefinedId}};
}

}  // namespace

std::string EncodeAcl(const std::vector<AclEntry>& entries) {
  std::vector<AclEntry> sorted = entries;
  std::sort(sorted.begin(), sorted.end(), [](const AclEntry& a, const AclEntry& b) {
    return a.tag != b.tag ? a.tag < b.tag : a.id < b.id;
  });
  std::string out;
  Put32(out, kAclVersion);
  for (const AclEntry& e : sorted) {
    Put16(out, e.tag);
    Put16(out, e.perm);
    Put32(out, e.id);
  }
  return out;
}

Result<std::vector<AclEntry>> ParseAcl(std::string_view bytes) {
  if (bytes.size() < 4 || (bytes.size() - 4) % 8 != 0 || Get(bytes, 0, 4) != kAclVersion)
    return Fail(ErrorCode::kMalformed, "acl-format", "not a version 2 POSIX ACL attribute");
  std::vector<AclEntry> out;
  for (size_t at = 4; at < bytes.size(); at += 8)
    out.push_back({static_cast<uint16_t>(Get(bytes, at, 2)),
                   static_cast<uint16_t>(Get(bytes, at + 2, 2)), Get(bytes, at + 4, 4)});
  return out;
}

Result<std::vector<AclEntry>> ReadAcl(const std::string& path) {
  auto fd = OpenNoFollow(path);
  if (!fd) return tl::make_unexpected(fd.error());
  UniqueFd owned(*fd);
  auto x = ReadXattr(owned.get(), path);
  if (!x) return tl::make_unexpected(x.error());
  if (*x) return ParseAcl(**x);
  struct stat st {};
  if (::fstat(owned.get(), &st) != 0) return AclIo("stat", path);
  return FromMode(st.st_mode);
}

Result<AclSnapshot> Snapshot(const std::string& path) {
  auto fd = OpenNoFollow(path);
  if (!fd) return tl::make_unexpected(fd.error());
  UniqueFd owned(*fd);
  struct stat st {};
  if (::fstat(owned.get(), &st) != 0) return AclIo("stat", path);
  auto x = ReadXattr(owned.get(), path);
  if (!x) return tl::make_unexpected(x.error());
  return AclSnapshot{st.st_mode & 07777, st.st_uid, st.st_gid, *x};
}

Result<void> GrantUser(const std::string& path, uid_t uid, uint16_t perm) {
  auto fd = OpenNoFollow(path);
  if (!fd) return tl::make_unexpected(fd.error());
  UniqueFd owned(*fd);
  auto x = ReadXattr(owned.get(), path);
  if (!x) return tl::make_unexpected(x.error());
  std::vector<AclEntry> entries;
  if (*x) {
    auto parsed = ParseAcl(**x);
    if (!parsed) return tl::make_unexpected(parsed.error());
    entries = std::move(*parsed);
  } else {
    struct stat st {};
    if (::fstat(owned.get(), &st) != 0) return AclIo("stat", path);
    entries = FromMode(st.st_mode);
  }
  std::erase_if(entries, [&](const AclEntry& e) {
    return e.tag == kAclMask || (e.tag == kAclUser && e.id == uid);
  });
  entries.push_back({kAclUser, perm, static_cast<uint32_t>(uid)});
  uint16_t mask = 0;
  for (const AclEntry& e : entries)
    if (e.tag == kAclUser || e.tag == kAclGroupObj || e.tag == kAclGroup) mask |= e.perm;
  entries.push_back({kAclMask, mask, kAclUndefinedId});
  const std::string bytes = EncodeAcl(entries);
  if (::fsetxattr(owned.get(), kAclName, bytes.data(), bytes.size(), 0) != 0)
    return AclIo("set the ACL of", path);
  return {};
}

Result<void> Restore(const std::string& path, const AclSnapshot& snapshot) {
  auto fd = OpenNoFollow(path);
  if (!fd) return tl::make_unexpected(fd.error());
  UniqueFd owned(*fd);
  if (snapshot.xattr) {
    if (::fsetxattr(owned.get(), kAclName, snapshot.xattr->data(), snapshot.xattr->size(), 0) != 0)
      return AclIo("restore the ACL of", path);
  } else if (::fremovexattr(owned.get(), kAclName) != 0 && errno != ENODATA) {
    return AclIo("remove the ACL of", path);
  }
  if (::fchmod(owned.get(), snapshot.mode) != 0) return AclIo("chmod", path);
  return {};
}

}  // namespace decnet::adopt
