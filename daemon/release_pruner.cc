#include "daemon/release_pruner.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "daemon/release_store.h"

namespace decnet::daemon {
namespace {

// The lowest best-effort I/O priority (class 2, level 7) for the calling thread: the disk goes
// to the operation first, yet the deletion is never starved as the idle class could be.
// Best effort: a kernel or scheduler without I/O priorities leaves it as it was.
void LowerThisThreadsPriority() {
  constexpr int kIoprioWhoProcess = 1;  // with a thread id: that thread
  constexpr int kIoprioClassBestEffort = 2;
  constexpr int kIoprioClassShift = 13;
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, tid,
                  (kIoprioClassBestEffort << kIoprioClassShift) | 7);
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19);
}

}  // namespace

ReleasePruner::ReleasePruner(int store_root_fd) {
  const int fd = ::fcntl(store_root_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    dup_error_ = IoError("duplicate the store root for the pruner").value();
    return;
  }
  root_ = UniqueFd(fd);
}

ReleasePruner::~ReleasePruner() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReleasePruner::Wake() {
  if (!root_.valid()) return;
  {
    std::lock_guard lock(mu_);
    ++requested_;
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  }
  cv_.notify_all();
}

Result<void> ReleasePruner::WaitIdle() {
  if (dup_error_) return tl::make_unexpected(*dup_error_);
  std::unique_lock lock(mu_);
  const uint64_t wanted = requested_;
  cv_.wait(lock, [&] { return done_ >= wanted || stopping_; });
  if (last_error_) return tl::make_unexpected(*last_error_);
  return {};
}

void ReleasePruner::Loop() {
  LowerThisThreadsPriority();
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || done_ < requested_; });
    if (stopping_) return;
    // Every request made before this pass started is served by it.
    const uint64_t serving = requested_;
    lock.unlock();
    Result<void> pass = DeleteAll();
    lock.lock();
    done_ = serving;
    last_error_ = pass ? std::nullopt : std::optional<Error>(pass.error());
    cv_.notify_all();
  }
}

Result<void> ReleasePruner::DeleteAll() {
  auto pruned = OpenDirAt(root_.get(), kPrunedDirName);
  if (!pruned) {
    if (pruned.error().rule == "store-missing") return {};  // nothing was ever pruned
    return tl::make_unexpected(pruned.error());
  }
  const int dup_fd = ::fcntl(pruned->get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return IoError("duplicate pruned/");
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    ::close(dup_fd);
    return IoError("list pruned/");
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string_view n = entry->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(dir);
  for (const std::string& name : names) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return {};
    }
    if (hook_) hook_("deleting");
    // Never follows a link: whatever is beneath pruned/ is deleted, nothing it points at.
    if (auto gone = RemoveTreeAt(pruned->get(), name); !gone) return gone;
    if (hook_) hook_("deleted");
  }
  return {};
}

}  // namespace decnet::daemon
