#include "daemon/release_store_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace decnet::daemon {
namespace {

constexpr int kMaxRemoveDepth = 1024;

std::string Name(std::string_view name) { return std::string(name); }

Result<void> RemoveTreeDepth(int dir_fd, const std::string& name, int depth);

// Lists a directory's entries (without "." and ".."). Reads everything before the caller
// deletes anything, so the iteration never races its own unlinks.
Result<std::vector<std::string>> ListDir(int dir_fd) {
  int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return IoError("dup a directory");
  DIR* dir = fdopendir(dup_fd);
  if (dir == nullptr) {
    close(dup_fd);
    return IoError("read a directory");
  }
  rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    std::string_view n = entry->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    errno = 0;
  }
  int err = errno;
  closedir(dir);
  if (err != 0) {
    errno = err;
    return IoError("read a directory");
  }
  return names;
}

Result<void> RemoveTreeDepth(int dir_fd, const std::string& name, int depth) {
  struct stat st {};
  if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return IoError("stat " + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    // SECURITY: a symlink is unlinked itself, never followed to its target.
    if (unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("remove " + name);
    }
    return {};
  }
  if (depth >= kMaxRemoveDepth) {
    return Fail(ErrorCode::kFailed, "store-too-deep", "a tree to delete is deeper than 1024");
  }
  int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return IoError("open " + name);
  UniqueFd child(fd);
  // Check it is the directory we stat'ed: something swapped in between is not descended.
  struct stat opened {};
  if (fstat(child.get(), &opened) != 0) return IoError("stat " + name);
  if (opened.st_dev != st.st_dev || opened.st_ino != st.st_ino) {
    return Fail(ErrorCode::kFailed, "store-io", "directory " + name + " changed while deleting");
  }
  auto names = ListDir(child.get());
  if (!names) return tl::make_unexpected(names.error());
  for (const auto& entry : *names) {
    if (auto removed = RemoveTreeDepth(child.get(), entry, depth + 1); !removed) return removed;
  }
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return IoError("remove directory " + name);
  }
  return {};
}

}  // namespace

tl::unexpected<Error> IoError(std::string_view what) {
  int err = errno;
  return Fail(ErrorCode::kFailed, "store-io", std::string(what) + ": " + std::strerror(err));
}

Result<void> SyncFd(int fd, std::string_view what) {
  if (fsync(fd) != 0) return IoError("fsync " + std::string(what));
  return {};
}

Result<UniqueFd> OpenDirAt(int dir_fd, std::string_view name) {
  std::string n = Name(name);
  int fd = openat(dir_fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return UniqueFd(fd);
  if (errno == ENOENT) return Fail(ErrorCode::kNotFound, "store-missing", n + " does not exist");
  if (errno == ELOOP || errno == ENOTDIR) {
    // SECURITY: a symlink where the store expects one of its directories is refused, so a
    // planted link cannot move the store's writes elsewhere.
    return Fail(ErrorCode::kDenied, "store-not-directory", n + " is not a directory");
  }
  return IoError("open " + n);
}

Result<UniqueFd> EnsureDirAt(int dir_fd, std::string_view name) {
  std::string n = Name(name);
  if (mkdirat(dir_fd, n.c_str(), 0755) == 0) {
    auto fd = OpenDirAt(dir_fd, name);
    if (!fd) return fd;
    // The umask must not narrow the store's directories: units read releases beneath them.
    if (fchmod(fd->get(), 0755) != 0) return IoError("chmod " + n);
    if (auto synced = SyncFd(dir_fd, "parent of " + n); !synced) {
      return tl::make_unexpected(synced.error());
    }
    return fd;
  }
  if (errno != EEXIST) return IoError("create directory " + n);
  return OpenDirAt(dir_fd, name);
}

Result<void> WriteFileAtomically(int dir_fd, std::string_view name, std::string_view contents,
                                 std::string_view tag,
                                 const std::function<void(std::string_view)>& crash) {
  std::string final_name = Name(name);
  std::string temp_name = final_name + ".tmp";
  // A temp file left by a crash is replaced; O_NOFOLLOW refuses a link planted at its name.
  if (unlinkat(dir_fd, temp_name.c_str(), 0) != 0 && errno != ENOENT) {
    return IoError("remove " + temp_name);
  }
  int fd =
      openat(dir_fd, temp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create " + temp_name);
  UniqueFd file(fd);
  // A failed write (a full disk, a quota) leaves nothing behind: the temp file goes, `name`
  // keeps its old contents.
  auto discard = [&](tl::unexpected<Error> error) {
    file = UniqueFd();
    (void)unlinkat(dir_fd, temp_name.c_str(), 0);
    return error;
  };
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(file.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = ENOSPC;
    if (n <= 0) return discard(IoError("write " + temp_name));
    done += static_cast<size_t>(n);
  }
  if (auto synced = SyncFd(file.get(), temp_name); !synced) {
    return discard(tl::make_unexpected(synced.error()));
  }
  file = UniqueFd();
  if (crash) crash(std::string(tag) + "-temp-written");
  if (renameat(dir_fd, temp_name.c_str(), dir_fd, final_name.c_str()) != 0) {
    return discard(IoError("rename " + temp_name));
  }
  if (crash) crash(std::string(tag) + "-renamed");
  return SyncFd(dir_fd, "directory of " + final_name);
}

Result<std::string> ReadFileAt(int dir_fd, std::string_view name, size_t max_bytes) {
  std::string n = Name(name);
  int fd = openat(dir_fd, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Fail(ErrorCode::kNotFound, "store-missing", n + " does not exist");
    if (errno == ELOOP) return Fail(ErrorCode::kDenied, "store-not-regular", n + " is a symlink");
    return IoError("open " + n);
  }
  UniqueFd file(fd);
  struct stat st {};
  if (fstat(file.get(), &st) != 0) return IoError("stat " + n);
  if (!S_ISREG(st.st_mode)) {
    return Fail(ErrorCode::kDenied, "store-not-regular", n + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Fail(ErrorCode::kDenied, "store-too-large", n + " is larger than its cap");
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t got = read(file.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return IoError("read " + n);
    if (got == 0) break;
    out.append(buf, static_cast<size_t>(got));
    if (out.size() > max_bytes) {
      return Fail(ErrorCode::kDenied, "store-too-large", n + " is larger than its cap");
    }
  }
  return out;
}

Result<void> RemoveTreeAt(int dir_fd, std::string_view name) {
  return RemoveTreeDepth(dir_fd, Name(name), 0);
}

}  // namespace decnet::daemon
