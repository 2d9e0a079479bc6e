#include "daemon/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace decnet::daemon {
namespace {

constexpr mode_t kSpoolMode = 0600;
constexpr int kNamedAttempts = 16;
constexpr std::string_view kNamedPrefix = ".decnet-spool-";

std::string Errno(int err) { return std::strerror(err); }

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

std::string Hex(const unsigned char* bytes, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

// A fresh name for the fallback file; random so that another process cannot predict it
// and plant something there first (O_EXCL refuses it anyway, this just avoids the retry).
Result<std::string> RandomName() {
  unsigned char bytes[12];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    return Fail(ErrorCode::kFailed, "spool-create", "getrandom: " + Errno(errno));
  }
  return std::string(kNamedPrefix) + Hex(bytes, sizeof bytes);
}

// Creates a named file with O_EXCL and removes its name at once: the descriptor is then
// the only way to the data, as with O_TMPFILE.
Result<UniqueFd> CreateUnlinked(int dir_fd) {
  for (int attempt = 0; attempt < kNamedAttempts; ++attempt) {
    auto name = RandomName();
    if (!name) return tl::make_unexpected(name.error());
    // SECURITY: O_EXCL|O_NOFOLLOW: never open something another process put in the way.
    int fd = openat(dir_fd, name->c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    kSpoolMode);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return Fail(ErrorCode::kFailed, "spool-create", "create spool file: " + Errno(errno));
    }
    UniqueFd owned(fd);
    if (unlinkat(dir_fd, name->c_str(), 0) != 0) {
      return Fail(ErrorCode::kFailed, "spool-create", "unlink spool file: " + Errno(errno));
    }
    return owned;
  }
  return Fail(ErrorCode::kFailed, "spool-create", "no free spool file name");
}

Result<UniqueFd> CreateFile(int dir_fd, SpoolFileKind kind) {
  if (kind == SpoolFileKind::kAnonymous) {
    int fd = openat(dir_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, kSpoolMode);
    if (fd >= 0) return UniqueFd(fd);
    // Only "this filesystem or kernel has no O_TMPFILE" falls back; EACCES and friends
    // would fail the same way for a named file.
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      return Fail(ErrorCode::kFailed, "spool-create", "O_TMPFILE: " + Errno(errno));
    }
  }
  return CreateUnlinked(dir_fd);
}

bool ValidLinkName(std::string_view name) {
  return !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

Result<void> LinkFd(int fd, int dir_fd, std::string_view name) {
  if (!ValidLinkName(name)) {
    return Fail(ErrorCode::kMalformed, "spool-link-name",
                "a spool link name must be one path component of 1 to 255 bytes");
  }
  if (fd < 0) return Fail(ErrorCode::kFailed, "spool-link", "the spool is closed");
  // AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH; the /proc magic link needs nothing.
  const std::string target(name);
  if (linkat(AT_FDCWD, ProcFdPath(fd).c_str(), dir_fd, target.c_str(), AT_SYMLINK_FOLLOW) != 0) {
    return Fail(ErrorCode::kFailed, "spool-link", "link spool file: " + Errno(errno));
  }
  return {};
}

}  // namespace

Result<void> SpoolResult::Link(int dir_fd, std::string_view name) const {
  return LinkFd(fd.get(), dir_fd, name);
}

Result<Spool> Spool::Create(int spool_dir_fd, uint64_t max_bytes, SpoolFileKind kind) {
  auto fd = CreateFile(spool_dir_fd, kind);
  if (!fd) return tl::make_unexpected(fd.error());
  std::unique_ptr<EVP_MD_CTX, DigestFree> digest(EVP_MD_CTX_new());
  if (!digest || EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr) != 1) {
    return Fail(ErrorCode::kFailed, "spool-create", "cannot set up SHA-256");
  }
  return Spool(std::move(*fd), std::move(digest), max_bytes);
}

Result<void> Spool::Write(std::string_view data) {
  if (broken_ || !digest_) {
    return Fail(ErrorCode::kFailed, "spool-write", "the spool refused an earlier write");
  }
  // SECURITY: the cap is checked before writing, so an oversize upload never costs more
  // disk than the cap.
  if (data.size() > max_bytes_ - size_) {
    broken_ = true;
    return Fail(ErrorCode::kDenied, "upload-too-large",
                "the upload exceeds " + std::to_string(max_bytes_) + " bytes");
  }
  if (EVP_DigestUpdate(digest_.get(), data.data(), data.size()) != 1) {
    broken_ = true;
    return Fail(ErrorCode::kFailed, "spool-write", "SHA-256 update failed");
  }
  size_ += data.size();
  while (!data.empty()) {
    if (pending_.capacity() < kSpoolWriteBatch) pending_.reserve(kSpoolWriteBatch);
    const size_t take = std::min(data.size(), kSpoolWriteBatch - pending_.size());
    pending_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (pending_.size() == kSpoolWriteBatch) {
      if (auto flushed = Flush(); !flushed) return flushed;
    }
  }
  return {};
}

Result<void> Spool::Flush() {
  std::string_view rest = pending_;
  while (!rest.empty()) {
    ssize_t n = write(fd_.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return Fail(ErrorCode::kFailed, "spool-write",
                  "write spool file: " + (n < 0 ? Errno(errno) : std::string("no progress")));
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  pending_.clear();
  return {};
}

Result<SpoolResult> Spool::Finish() {
  if (broken_ || !digest_) {
    return Fail(ErrorCode::kFailed, "spool-finish", "the spool failed or was finished already");
  }
  if (auto flushed = Flush(); !flushed) {
    return Fail(ErrorCode::kFailed, "spool-finish", flushed.error().message);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_DigestFinal_ex(digest_.get(), md, &md_len) != 1) {
    broken_ = true;
    return Fail(ErrorCode::kFailed, "spool-finish", "SHA-256 final failed");
  }
  digest_.reset();
  // A fresh open file description is read-only and starts at offset 0 whatever the writer
  // did; the dup fallback shares the writer's offset, hence the lseek.
  int ro = open(ProcFdPath(fd_.get()).c_str(), O_RDONLY | O_CLOEXEC);
  if (ro < 0) {
    ro = fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
    if (ro < 0 || lseek(ro, 0, SEEK_SET) != 0) {
      int err = errno;
      if (ro >= 0) close(ro);
      broken_ = true;
      return Fail(ErrorCode::kFailed, "spool-finish", "reopen spool file: " + Errno(err));
    }
  }
  fd_ = UniqueFd();
  return SpoolResult{UniqueFd(ro), size_, Hex(md, md_len)};
}

Result<void> Spool::Link(int dir_fd, std::string_view name) {
  // Everything accepted so far is in the file before it gets a name.
  if (fd_.valid() && !broken_) {
    if (auto flushed = Flush(); !flushed) return flushed;
  }
  return LinkFd(fd_.get(), dir_fd, name);
}

Result<size_t> RemoveStaleSpoolFiles(int spool_dir_fd) {
  // A private descriptor for the listing: fdopendir takes ownership of what it is given.
  int list_fd = openat(spool_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (list_fd < 0)
    return Fail(ErrorCode::kFailed, "spool-clean", "open spool dir: " + Errno(errno));
  DIR* dir = fdopendir(list_fd);
  if (dir == nullptr) {
    int err = errno;
    close(list_fd);
    return Fail(ErrorCode::kFailed, "spool-clean", "read spool dir: " + Errno(err));
  }
  size_t removed = 0;
  std::string failure;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name.starts_with(kNamedPrefix)) {
      // unlinkat never follows a symlink: only the name goes. A directory (EISDIR) is not
      // one of ours and stays.
      if (unlinkat(spool_dir_fd, entry->d_name, 0) == 0) {
        ++removed;
      } else if (errno != ENOENT && errno != EISDIR) {
        failure = "remove " + std::string(name) + ": " + Errno(errno);
        break;
      }
    }
    errno = 0;
  }
  if (failure.empty() && errno != 0) failure = "read spool dir: " + Errno(errno);
  closedir(dir);
  if (!failure.empty()) return Fail(ErrorCode::kFailed, "spool-clean", failure);
  return removed;
}

}  // namespace decnet::daemon
