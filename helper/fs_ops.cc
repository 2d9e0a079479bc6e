#include "helper/fs_ops.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace decnet::helper {
namespace {

Error Errno(std::string rule, std::string what) {
  return Error{ErrorCode::kFailed, std::move(rule), what + ": " + std::strerror(errno)};
}

// SECURITY: every open goes through openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so a
// name can neither climb out of its directory nor pass through a planted symlink.
int OpenBeneath(int dir_fd, std::string_view name, uint64_t flags, mode_t mode) {
  open_how how{};
  how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  std::string n(name);
  for (;;) {
    long fd = ::syscall(SYS_openat2, dir_fd, n.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != EINTR) return static_cast<int>(fd);
  }
}

// A temporary name beside `name`; hidden and unique within this process.
std::string TempName(std::string_view name) {
  static unsigned counter = 0;
  return ".#" + std::string(name) + "." + std::to_string(::getpid()) + "." +
         std::to_string(++counter);
}

Result<void> FsyncDir(int dir_fd) {
  if (::fsync(dir_fd) != 0) return tl::make_unexpected(Errno("fs-fsync", "fsync of directory"));
  return {};
}

Result<void> WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::make_unexpected(Errno("fs-write", "write"));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<EntryKind> InspectEntry(int dir_fd, std::string_view name) {
  struct stat st {};
  if (::fstatat(dir_fd, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return EntryKind::kMissing;
    return tl::make_unexpected(Errno("fs-stat", "stat of " + std::string(name)));
  }
  if (S_ISREG(st.st_mode)) return EntryKind::kRegular;
  if (S_ISLNK(st.st_mode)) return EntryKind::kSymlink;
  return EntryKind::kOther;
}

Result<std::optional<std::string>> ReadFileBeneath(int dir_fd, std::string_view name,
                                                   size_t max_bytes) {
  int fd = OpenBeneath(dir_fd, name, O_RDONLY | O_NONBLOCK, 0);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    if (errno == ELOOP || errno == EXDEV) {
      return Fail(ErrorCode::kDenied, "fs-not-regular", std::string(name) + " is a symlink");
    }
    return tl::make_unexpected(Errno("fs-open", "open of " + std::string(name)));
  }
  struct stat st {};
  std::string out;
  bool ok =
      ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= max_bytes;
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    ok = ::pread(fd, out.data(), out.size(), 0) == st.st_size;
  }
  ::close(fd);
  if (!ok) {
    return Fail(ErrorCode::kDenied, "fs-not-regular",
                std::string(name) + " is not a regular file of at most " +
                    std::to_string(max_bytes) + " bytes");
  }
  return std::optional<std::string>(std::move(out));
}

Result<void> AtomicWriteFile(int dir_fd, std::string_view name, std::string_view content,
                             mode_t mode) {
  std::string tmp = TempName(name);
  int fd = OpenBeneath(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) return tl::make_unexpected(Errno("fs-create", "create of " + tmp));
  auto written = WriteAll(fd, content);
  bool ok = written && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  int saved = errno;
  ::close(fd);
  if (ok && ::renameat(dir_fd, tmp.c_str(), dir_fd, std::string(name).c_str()) == 0) {
    return FsyncDir(dir_fd);
  }
  if (ok) saved = errno;
  ::unlinkat(dir_fd, tmp.c_str(), 0);
  errno = saved;
  if (!written) return tl::make_unexpected(written.error());
  return tl::make_unexpected(Errno("fs-write", "atomic write of " + std::string(name)));
}

Result<bool> RemoveEntry(int dir_fd, std::string_view name) {
  if (::unlinkat(dir_fd, std::string(name).c_str(), 0) != 0) {
    if (errno == ENOENT) return false;
    return tl::make_unexpected(Errno("fs-remove", "remove of " + std::string(name)));
  }
  if (auto synced = FsyncDir(dir_fd); !synced) return tl::make_unexpected(synced.error());
  return true;
}

Result<void> AtomicSymlink(int dir_fd, std::string_view name, std::string_view target) {
  std::string tmp = TempName(name);
  if (::symlinkat(std::string(target).c_str(), dir_fd, tmp.c_str()) != 0) {
    return tl::make_unexpected(Errno("fs-symlink", "symlink " + tmp));
  }
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, std::string(name).c_str()) != 0) {
    int saved = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    errno = saved;
    return tl::make_unexpected(Errno("fs-rename", "rename over " + std::string(name)));
  }
  return FsyncDir(dir_fd);
}

Result<std::optional<std::string>> ReadSymlink(int dir_fd, std::string_view name) {
  char buf[4096];
  ssize_t n = ::readlinkat(dir_fd, std::string(name).c_str(), buf, sizeof buf);
  if (n < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    if (errno == EINVAL) {
      return Fail(ErrorCode::kDenied, "link-not-symlink",
                  std::string(name) + " exists and is not a symlink");
    }
    return tl::make_unexpected(Errno("fs-readlink", "readlink " + std::string(name)));
  }
  if (static_cast<size_t>(n) >= sizeof buf) {
    return Fail(ErrorCode::kFailed, "fs-readlink", "link target too long");
  }
  return std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
}

Result<int> OpenAppendBeneath(int dir_fd, std::string_view name, mode_t mode) {
  int fd = OpenBeneath(dir_fd, name, O_WRONLY | O_APPEND | O_CREAT, mode);
  if (fd < 0) return tl::make_unexpected(Errno("fs-open", "open of " + std::string(name)));
  return fd;
}

Result<void> AppendLine(int fd, std::string_view line) {
  std::string buf(line);
  buf += '\n';
  return WriteAll(fd, buf);
}

}  // namespace decnet::helper
