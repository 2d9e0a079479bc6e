#include "helper/fs_ops.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace decnet::helper {
namespace {

// The resolve flags of every open the helper makes beneath a descriptor.
constexpr uint64_t kResolve =
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

Error Errno(std::string rule, std::string what, int err = errno) {
  return Error{ErrorCode::kFailed, std::move(rule), what + ": " + std::strerror(err)};
}

// A hidden temporary name beside `name`, unique within this process and unlikely to be
// guessed by another: pid, a counter and the clock's nanoseconds. Callers create it with
// O_EXCL (or symlinkat, which is exclusive) and move on to the next name if it exists.
std::string TempName(std::string_view name) {
  static unsigned counter = 0;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ".#" + std::string(name) + "." + std::to_string(::getpid()) + "." +
         std::to_string(++counter) + "." + std::to_string(ts.tv_nsec);
}

constexpr int kTempAttempts = 8;

Result<void> FsyncDir(int dir_fd) {
  if (::fsync(dir_fd) != 0) return tl::make_unexpected(Errno("fs-fsync", "fsync of directory"));
  return {};
}

// The one openat2 call; the resolve flags are chosen by its two callers below.
UniqueFd OpenAt2(int dir_fd, std::string_view path, int flags, mode_t mode, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags) | O_CLOEXEC | O_NOFOLLOW;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = resolve;
  const std::string p(path);
  for (;;) {
    const long fd = ::syscall(SYS_openat2, dir_fd, p.c_str(), &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno != EINTR) return UniqueFd();
  }
}

}  // namespace

UniqueFd OpenBeneath(int dir_fd, std::string_view path, int flags, mode_t mode) {
  // SECURITY: beneath a descriptor, no name climbs out of its directory, passes through a
  // symlink or a /proc magic link, or crosses onto another mount.
  return OpenAt2(dir_fd, path, flags, mode, kResolve);
}

UniqueFd OpenNoSymlinks(std::string_view path, int flags) {
  if (path.empty() || path.front() != '/') {
    errno = EINVAL;
    return UniqueFd();
  }
  // SECURITY: no component of a configured absolute path may be a symlink (or a magic link):
  // whoever could plant one could point the path at a directory of their choosing.
  return OpenAt2(AT_FDCWD, path, flags, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

bool RefusedByResolve(int err) { return err == ELOOP || err == EXDEV; }

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
  UniqueFd fd = OpenBeneath(dir_fd, name, O_RDONLY | O_NONBLOCK);
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<std::string>();
    if (RefusedByResolve(errno)) {
      return Fail(ErrorCode::kDenied, "fs-not-regular", std::string(name) + " is a symlink");
    }
    return tl::make_unexpected(Errno("fs-open", "open of " + std::string(name)));
  }
  struct stat st {};
  std::string out;
  bool ok = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) &&
            static_cast<size_t>(st.st_size) <= max_bytes;
  if (ok) {
    out.resize(static_cast<size_t>(st.st_size));
    ok = ::pread(fd.get(), out.data(), out.size(), 0) == st.st_size;
  }
  if (!ok) {
    return Fail(ErrorCode::kDenied, "fs-not-regular",
                std::string(name) + " is not a regular file of at most " +
                    std::to_string(max_bytes) + " bytes");
  }
  return std::optional<std::string>(std::move(out));
}

Result<void> WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        // SECURITY: a descriptor someone else set non-blocking costs a bounded wait, not a
        // silently dropped line.
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 1000) > 0) continue;
        errno = EAGAIN;
      }
      return tl::make_unexpected(Errno("fs-write", "write"));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<void> AtomicWriteFile(int dir_fd, std::string_view name, std::string_view content,
                             mode_t mode) {
  std::string tmp;
  UniqueFd fd;
  for (int attempt = 0; attempt < kTempAttempts && !fd.valid(); ++attempt) {
    tmp = TempName(name);
    fd = OpenBeneath(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (!fd.valid() && errno != EEXIST) break;
  }
  if (!fd.valid()) return tl::make_unexpected(Errno("fs-create", "create of " + tmp));
  auto written = WriteAll(fd.get(), content);
  const bool ok = written && ::fchmod(fd.get(), mode) == 0 && ::fsync(fd.get()) == 0;
  int saved = errno;
  fd.reset();
  if (ok && ::renameat(dir_fd, tmp.c_str(), dir_fd, std::string(name).c_str()) == 0) {
    return FsyncDir(dir_fd);
  }
  if (ok) saved = errno;
  ::unlinkat(dir_fd, tmp.c_str(), 0);
  if (!written) return tl::make_unexpected(written.error());
  return tl::make_unexpected(Errno("fs-write", "atomic write of " + std::string(name), saved));
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
  const std::string t(target);
  std::string tmp;
  bool made = false;
  // SECURITY: symlinkat never replaces: a name someone planted (a file, a directory, a
  // link) is skipped for the next one, so a plant can neither block nor redirect the flip.
  for (int attempt = 0; attempt < kTempAttempts && !made; ++attempt) {
    tmp = TempName(name);
    made = ::symlinkat(t.c_str(), dir_fd, tmp.c_str()) == 0;
    if (!made && errno != EEXIST) break;
  }
  if (!made) return tl::make_unexpected(Errno("fs-symlink", "symlink " + tmp));
  if (::renameat(dir_fd, tmp.c_str(), dir_fd, std::string(name).c_str()) != 0) {
    const int saved = errno;
    ::unlinkat(dir_fd, tmp.c_str(), 0);
    return tl::make_unexpected(Errno("fs-rename", "rename over " + std::string(name), saved));
  }
  return FsyncDir(dir_fd);
}

Result<std::optional<std::string>> ReadSymlink(int dir_fd, std::string_view name) {
  char buf[4096];
  const ssize_t n = ::readlinkat(dir_fd, std::string(name).c_str(), buf, sizeof buf);
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

Result<UniqueFd> OpenAppendBeneath(int dir_fd, std::string_view name, mode_t mode) {
  UniqueFd fd = OpenBeneath(dir_fd, name, O_WRONLY | O_APPEND | O_CREAT, mode);
  if (!fd.valid()) return tl::make_unexpected(Errno("fs-open", "open of " + std::string(name)));
  return fd;
}

}  // namespace decnet::helper
