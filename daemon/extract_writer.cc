#include "daemon/extract_writer.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/extract_path.h"

namespace decnet::daemon {
namespace {

constexpr mode_t kDirectoryMode = 0755;
constexpr mode_t kUnknownUmask = 0777;  // forces an explicit chmod of everything we create

// SECURITY: every lookup beneath the destination refuses symlinks and escapes, even though the
// archive can never create a symlink: a race or a bug elsewhere must not redirect a write.
constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;

int OpenBeneath(int dir_fd, const char* path, uint64_t flags, mode_t mode) {
  open_how how{};
  how.flags = flags;
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = kResolve;
  for (;;) {
    const long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof how);
    if (fd >= 0 || errno != EINTR) return static_cast<int>(fd);
  }
}

// The process umask, read without changing it (umask(2) would race with other threads).
mode_t ReadUmask() {
  FILE* f = std::fopen("/proc/self/status", "re");
  if (f == nullptr) return kUnknownUmask;
  char line[256];
  mode_t mask = kUnknownUmask;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned value = 0;
    if (std::sscanf(line, "Umask: %o", &value) == 1) {
      mask = static_cast<mode_t>(value & 0777);
      break;
    }
  }
  std::fclose(f);
  return mask;
}

tl::unexpected<Error> IoError(std::string_view what, const std::string& path, int err) {
  return Fail(ErrorCode::kFailed, "extract-io",
              std::string(what) + " \"" + EscapeEntryPath(path) + "\": " + std::strerror(err));
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace

bool WriteQueue::Push(std::unique_ptr<WriteBatch> batch) {
  std::unique_lock lock(mu_);
  const size_t weight = batch->Weight();
  // A batch heavier than the whole cap is still let through when the queue is empty.
  changed_.wait(lock, [&] { return aborted_ || weight_ == 0 || weight_ + weight <= max_weight_; });
  if (aborted_) return false;
  weight_ += weight;
  queued_.push_back(std::move(batch));
  changed_.notify_all();
  return true;
}

std::unique_ptr<WriteBatch> WriteQueue::Pop() {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return aborted_ || closed_ || !queued_.empty(); });
  if (aborted_ || queued_.empty()) return nullptr;
  auto batch = std::move(queued_.front());
  queued_.pop_front();
  weight_ -= batch->Weight();
  changed_.notify_all();
  return batch;
}

void WriteQueue::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  changed_.notify_all();
}

void WriteQueue::Abort() {
  std::lock_guard lock(mu_);
  aborted_ = true;
  changed_.notify_all();
}

std::unique_ptr<WriteBatch> WriteQueue::TakeFree() {
  {
    std::lock_guard lock(mu_);
    if (!free_.empty()) {
      auto batch = std::move(free_.back());
      free_.pop_back();
      return batch;
    }
  }
  return std::make_unique<WriteBatch>();
}

void WriteQueue::GiveFree(std::unique_ptr<WriteBatch> batch) {
  batch->Clear();
  std::lock_guard lock(mu_);
  if (free_.size() < 4) free_.push_back(std::move(batch));
}

TreeWriter::TreeWriter(int dest_dir_fd, Durability durability)
    : dest_dir_fd_(dest_dir_fd), durability_(durability), umask_(ReadUmask()) {}

TreeWriter::~TreeWriter() {
  if (open_fd_ >= 0) close(open_fd_);
}

Result<void> TreeWriter::Apply(const WriteBatch& batch) {
  for (const WriteOp& op : batch.ops) {
    Result<void> r;
    switch (op.kind) {
      case WriteOpKind::kMakeDirectory:
        r = MakeDirectory(op.path);
        break;
      case WriteOpKind::kCreateFile:
        r = CreateFile(op.path, op.mode);
        break;
      case WriteOpKind::kAppend:
        r = Append(batch.bytes.data() + op.offset, op.length);
        break;
      case WriteOpKind::kCloseFile:
        r = CloseFile();
        break;
    }
    if (!r) return r;
  }
  return {};
}

// Says why `path` could not be created: it exists already, as the same kind (a duplicate
// entry) or as the other kind (a conflict).
Result<void> TreeWriter::ExplainExisting(const std::string& path, bool want_directory) {
  struct stat st {};
  if (fstatat(dest_dir_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return IoError("cannot inspect existing", path, errno);
  }
  const bool is_directory = S_ISDIR(st.st_mode);
  if (is_directory == want_directory) {
    return Fail(ErrorCode::kDenied, "archive-duplicate",
                "entry \"" + EscapeEntryPath(path) + "\": path appears twice in the archive");
  }
  return Fail(ErrorCode::kDenied, "archive-conflict",
              "entry \"" + EscapeEntryPath(path) + "\": " +
                  (want_directory ? "a directory where a file is" : "a file where a directory is"));
}

// Walks `path` one component at a time from the destination, creating what is missing.
Result<void> TreeWriter::MakeDirectory(const std::string& path) {
  FdCloser dir(fcntl(dest_dir_fd_, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return IoError("cannot use destination for", path, errno);
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string component = path.substr(start, end - start);
    const std::string prefix = path.substr(0, end);
    if (mkdirat(dir.get(), component.c_str(), kDirectoryMode) == 0) {
      if ((kDirectoryMode & ~umask_) != kDirectoryMode &&
          fchmodat(dir.get(), component.c_str(), kDirectoryMode, 0) != 0) {
        return IoError("cannot set the mode of directory", prefix, errno);
      }
      if (durability_ == Durability::kFsyncEachFile) created_directories_.push_back(prefix);
    } else if (errno != EEXIST) {
      return IoError("cannot create directory", prefix, errno);
    }
    const int next =
        OpenBeneath(dir.get(), component.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
    if (next < 0) {
      if (errno == ENOTDIR) return ExplainExisting(prefix, /*want_directory=*/true);
      return IoError("cannot open directory", prefix, errno);
    }
    dir.reset(next);
    start = end + 1;
  }
  return {};
}

Result<void> TreeWriter::CreateFile(const std::string& path, mode_t mode) {
  constexpr uint64_t kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = OpenBeneath(dest_dir_fd_, path.c_str(), kFlags, mode);
  if (fd < 0 && errno == ENOENT) {
    // An implicit parent ("a/b/c" with no "a/" entry): create the parents, then retry once.
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      if (auto r = MakeDirectory(path.substr(0, slash)); !r) return r;
    }
    fd = OpenBeneath(dest_dir_fd_, path.c_str(), kFlags, mode);
  }
  if (fd < 0) {
    if (errno == EEXIST) return ExplainExisting(path, /*want_directory=*/false);
    if (errno == ENOTDIR) {
      return Fail(ErrorCode::kDenied, "archive-conflict",
                  "entry \"" + EscapeEntryPath(path) + "\": a parent of this file is a file");
    }
    return IoError("cannot create file", path, errno);
  }
  open_fd_ = fd;
  open_path_ = path;
  if ((mode & ~umask_) != mode && fchmod(fd, mode) != 0) {
    return IoError("cannot set the mode of file", path, errno);
  }
  return {};
}

Result<void> TreeWriter::Append(const char* data, size_t length) {
  while (length > 0) {
    const ssize_t n = write(open_fd_, data, length);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write file", open_path_, errno);
    }
    data += n;
    length -= static_cast<size_t>(n);
  }
  return {};
}

Result<void> TreeWriter::CloseFile() {
  const int fd = open_fd_;
  open_fd_ = -1;
  if (durability_ == Durability::kFsyncEachFile && fsync(fd) != 0) {
    const int err = errno;
    close(fd);
    return IoError("cannot fsync file", open_path_, err);
  }
  // Start writeback of this file now, without waiting for it. With ext4's data=ordered a
  // journal commit must first flush all dirty data, and file creation waits on the commit: a
  // large backlog of dirty pages makes every later openat2 slow, so it is never allowed to build
  // up. The final syncfs then has little left to do.
  if (durability_ == Durability::kSyncFilesystem) {
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  // close() can report a deferred write error (NFS, quotas): it is an error, never retried.
  if (close(fd) != 0) return IoError("cannot close file", open_path_, errno);
  return {};
}

Result<void> TreeWriter::Finish() {
  if (durability_ == Durability::kNotDurable) return {};
  if (durability_ == Durability::kSyncFilesystem) {
    // syncfs reports writeback errors of the filesystem since Linux 5.8, so a failed write of
    // any extracted file surfaces here.
    if (syncfs(dest_dir_fd_) != 0) return IoError("cannot sync filesystem of", ".", errno);
    return {};
  }
  // Deepest first does not matter for fsync; every created directory, then the destination.
  for (const std::string& path : created_directories_) {
    FdCloser fd(OpenBeneath(dest_dir_fd_, path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0));
    if (fd.get() < 0) return IoError("cannot open directory", path, errno);
    if (fsync(fd.get()) != 0) return IoError("cannot fsync directory", path, errno);
  }
  if (fsync(dest_dir_fd_) != 0) return IoError("cannot fsync directory", ".", errno);
  return {};
}

}  // namespace decnet::daemon
