// The check of a file systemd opens as root on a unit's behalf (StandardOutput=file:,
// EnvironmentFile=, ...). It walks the real filesystem beneath the unit root one component
// at a time, so what it judges is what systemd will open, not a string that merely looks
// safe, and it asks two questions:
//  * can anyone but root redirect the path? (every directory root-owned and writable by root
//    alone, no symlinks, the file regular with one link): "unit-root-opened-path";
//  * could the unit's own user have opened the file itself? (it exists, belongs to root or
//    the user, and mode bits and POSIX ACLs grant the unit's uid or groups the access, with
//    every directory searchable): "unit-opened-file-access". Otherwise systemd, opening as
//    root, would hand the unit a file it may not read or write, or create one in a directory
//    the unit could not write.
// The unit's uid and groups come from the unit root's /etc/passwd and /etc/group, read
// beneath the root descriptor with O_NOFOLLOW: no NSS (the confined helper cannot load it)
// and no /proc magic links. ACLs are read with fgetxattr on an O_RDONLY descriptor of the
// very object that was checked.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "policy/unit_identity.h"
#include "policy/unit_policy.h"
#include "proto/unique_fd.h"

namespace decnet::helper {
namespace {

std::optional<PathRefusal> Chain(std::string message) {
  return PathRefusal{"unit-root-opened-path", std::move(message)};
}
std::optional<PathRefusal> Access(std::string message) {
  return PathRefusal{"unit-opened-file-access", std::move(message)};
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Reads ROOT/etc/NAME: a root-owned regular file nobody else may write, at most
// kMaxAccountFile bytes. "" in `why` on success.
std::string ReadAccountFile(int root_fd, const char* name, std::string& why) {
  const std::string shown = std::string("/etc/") + name;
  // SECURITY: O_NOFOLLOW at each step; an account file others could write would let them
  // choose the credentials this check judges against.
  UniqueFd etc(::openat(root_fd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!etc.valid()) {
    why = Errno("cannot open /etc");
    return "";
  }
  UniqueFd fd(::openat(etc.get(), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    why = Errno("cannot read " + shown);
    return "";
  }
  if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
      static_cast<size_t>(st.st_size) > kMaxAccountFile) {
    why = shown + " is not a root-owned regular file only root may write, within size";
    return "";
  }
  std::string text;
  char buf[8192];
  ssize_t n = 0;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxAccountFile) {
      why = shown + " is too large";
      return "";
    }
  }
  if (n < 0) why = Errno("cannot read " + shown);
  return text;
}

// One POSIX ACL entry as the kernel stores it in system.posix_acl_access (little-endian).
struct AclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};
constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                   kOther = 0x20;

// The ACL of the open (non-O_PATH) descriptor `fd`: empty when it has none. Sets `why` when
// it cannot be read or parsed.
std::vector<AclEntry> ReadAcl(int fd, std::string& why) {
  unsigned char buf[4096];
  const ssize_t n = ::fgetxattr(fd, "system.posix_acl_access", buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA || errno == EOPNOTSUPP) return {};
    why = Errno("cannot read the POSIX ACL");
    return {};
  }
  const auto size = static_cast<size_t>(n);
  auto u32 = [&buf](size_t at) {
    return static_cast<uint32_t>(buf[at]) | static_cast<uint32_t>(buf[at + 1]) << 8 |
           static_cast<uint32_t>(buf[at + 2]) << 16 | static_cast<uint32_t>(buf[at + 3]) << 24;
  };
  if (size < 4 || (size - 4) % 8 != 0 || u32(0) != 2) {
    why = "POSIX ACL in an unknown format";
    return {};
  }
  std::vector<AclEntry> acl;
  for (size_t at = 4; at < size; at += 8) {
    const AclEntry e{static_cast<uint16_t>(buf[at] | buf[at + 1] << 8),
                     static_cast<uint16_t>(buf[at + 2] | buf[at + 3] << 8), u32(at + 4)};
    const bool known = e.tag == kUserObj || e.tag == kUser || e.tag == kGroupObj ||
                       e.tag == kGroup || e.tag == kMask || e.tag == kOther;
    if (!known || (e.perm & ~7u) != 0 || (!acl.empty() && e.tag < acl.back().tag)) {
      why = "POSIX ACL in an unknown format";
      return {};
    }
    acl.push_back(e);
  }
  return acl;
}

// The kernel's permission check (fs/posix_acl.c posix_acl_permission, or the mode bits when
// there is no ACL) for `creds` wanting `want` (4 read, 2 write, 1 search).
bool MayAccess(const struct stat& st, const std::vector<AclEntry>& acl,
               const UnitCredentials& creds, unsigned want) {
  if (creds.uid == st.st_uid) return ((st.st_mode >> 6) & want) == want;
  if (acl.empty()) {
    const unsigned bits = creds.InGroup(st.st_gid) ? (st.st_mode >> 3) : st.st_mode;
    return (bits & want) == want;
  }
  unsigned mask = 7;
  for (const AclEntry& e : acl)
    if (e.tag == kMask) mask = e.perm;
  bool found = false;
  for (const AclEntry& e : acl) {
    switch (e.tag) {
      case kUser:
        if (e.id == creds.uid) return (e.perm & mask & want) == want;
        break;
      case kGroupObj:
      case kGroup: {
        const gid_t gid = e.tag == kGroupObj ? st.st_gid : static_cast<gid_t>(e.id);
        if (creds.InGroup(gid)) {
          found = true;
          if ((e.perm & mask & want) == want) return true;
        }
        break;
      }
      case kOther:
        return !found && (e.perm & want) == want;
      default:
        break;
    }
  }
  return false;
}

// Whether `creds` may `want` the object behind the O_PATH descriptor `path_fd` (stat `st`),
// reading its ACL through a fresh O_RDONLY descriptor of the same object. Sets `why` when
// the ACL cannot be evaluated.
bool MayAccessObject(int parent_fd, const char* name, int path_fd, const struct stat& st,
                     const UnitCredentials& creds, unsigned want, std::string& why) {
  // The owner class ignores the ACL: no need to open what the unit's user owns.
  if (creds.uid == st.st_uid) return MayAccess(st, {}, creds, want);
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC |
                    (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0);
  // SECURITY: the ACL is read from the very object judged (same device and inode), never
  // through a path re-resolved later or a /proc magic link.
  UniqueFd fd(parent_fd >= 0 ? ::openat(parent_fd, name, flags) : ::openat(path_fd, ".", flags));
  struct stat again {};
  if (!fd.valid() || ::fstat(fd.get(), &again) != 0) {
    why = Errno("cannot open it to read its POSIX ACL");
    return false;
  }
  if (again.st_dev != st.st_dev || again.st_ino != st.st_ino) {
    why = "it changed while being checked";
    return false;
  }
  const std::vector<AclEntry> acl = ReadAcl(fd.get(), why);
  if (!why.empty()) return false;
  return MayAccess(again, acl, creds, want);
}

// A directory on the path: root-owned, writable by root alone, searchable by the unit.
std::optional<PathRefusal> JudgeDirectory(int parent_fd, const char* name, int fd,
                                          const std::string& shown, const UnitCredentials& creds) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Chain(Errno("cannot stat " + shown));
  if (S_ISLNK(st.st_mode)) return Chain(shown + " is a symbolic link");
  if (!S_ISDIR(st.st_mode)) return Chain(shown + " is not a directory");
  if (st.st_uid != 0) return Chain(shown + " is not owned by root");
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Chain(shown + " is writable by group or others");
  }
  std::string why;
  if (!MayAccessObject(parent_fd, name, fd, st, creds, 1, why)) {
    return Access(shown +
                  (why.empty() ? " is not searchable by the unit's user and groups" : ": " + why));
  }
  return std::nullopt;
}

// The final file: a regular file with one link, owned by root or the unit's user, that the
// unit's credentials may read (kRead) or write (kWrite).
std::optional<PathRefusal> JudgeFile(int parent_fd, const char* name, int fd,
                                     const std::string& shown, const UnitCredentials& creds,
                                     OpenFor access) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Chain(Errno("cannot stat " + shown));
  if (S_ISLNK(st.st_mode)) return Chain(shown + " is a symbolic link");
  if (!S_ISREG(st.st_mode)) return Chain(shown + " is not a regular file");
  if (st.st_nlink > 1) return Chain(shown + " has more than one hard link");
  if (st.st_uid != 0 && st.st_uid != creds.uid) {
    return Access(shown + " is owned by neither root nor the unit's user");
  }
  const unsigned want = access == OpenFor::kRead ? 4 : 2;
  std::string why;
  if (!MayAccessObject(parent_fd, name, fd, st, creds, want, why)) {
    if (!why.empty()) return Access(shown + ": " + why);
    return Access(shown + " is not " + (want == 4 ? "readable" : "writable") +
                  " by the unit's user and groups");
  }
  return std::nullopt;
}

std::optional<PathRefusal> Walk(const std::string& root, const OpenedFile& file) {
  auto parsed = AbsPath::Parse(file.path);
  if (!parsed) return Chain(parsed.error().message);
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return Chain(Errno("cannot open root " + root));
  std::string why;
  const std::string passwd = ReadAccountFile(dir.get(), "passwd", why);
  const std::string group = why.empty() ? ReadAccountFile(dir.get(), "group", why) : "";
  std::optional<UnitCredentials> creds;
  if (why.empty()) {
    creds = ResolveUnitCredentials(passwd, group, file.user, file.group, file.supplementary_groups,
                                   why);
  }
  // SECURITY: credentials the check cannot establish are credentials it cannot judge.
  if (!creds) return Access("cannot establish the unit's credentials: " + why);
  if (auto bad = JudgeDirectory(-1, nullptr, dir.get(), "root " + root, *creds)) return bad;
  std::string shown;
  std::string_view rest = std::string_view(parsed->str()).substr(1);
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    const bool last = rest.empty();
    shown += "/" + part;
    // SECURITY: O_NOFOLLOW on O_PATH opens a link itself, so a planted link is seen, not
    // followed; fstat on O_PATH needs no capability, so this works as capless uid 0.
    UniqueFd next(::openat(dir.get(), part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) {
      // SECURITY: a missing file would be created by root for the unit in a directory the
      // unit's user cannot write: refused, the operator creates it with the right owner.
      if (last && errno == ENOENT) return Access(shown + " does not exist");
      return Chain(Errno("cannot open " + shown));
    }
    if (last) return JudgeFile(dir.get(), part.c_str(), next.get(), shown, *creds, file.access);
    if (auto bad = JudgeDirectory(dir.get(), part.c_str(), next.get(), shown, *creds)) return bad;
    dir = std::move(next);
  }
  return Chain("the path names no file");
}

}  // namespace

PathChainCheck RootOnlyPathCheck(std::string root) {
  return [root = std::move(root)](const OpenedFile& file) { return Walk(root, file); };
}

}  // namespace decnet::helper
