// Deletes pruned releases in the background. ReleaseStore::Prune(PruneDeletion::kDeferred)
// drops the records of the releases beyond the store's keep, saves state.json, and renames
// each of their directories from releases/<id> into <root>/pruned/ (see release_store.h);
// this thread then deletes everything beneath pruned/.
//
// Why it never gets in an operation's way: no operation reads or writes pruned/ (the store
// works beneath releases/ only, and a name moves into pruned/ only once no record and no
// journal entry names it), so the releases an operation needs (the active one, the previous
// one, the one being installed, a re-push of a pruned digest, which is extracted afresh into
// releases/<id>) are never what this thread deletes. It shares nothing with the store object
// but the root's directory (its own descriptor), so the store stays single-threaded and no
// lock is held across a deletion. It runs at the lowest best-effort I/O and CPU priority, so
// the disk goes to the operation first.
//
// A crash part-way leaves a partly deleted tree beneath pruned/, which no record names; the
// next pruner (Wake() at start-up) deletes it.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "daemon/release_store_fs.h"
#include "proto/result.h"

namespace decnet::daemon {

class ReleasePruner {
 public:
  // Test seam: called on the pruner's thread with "deleting" before and "deleted" after each
  // directory beneath pruned/ that it removes.
  using Hook = std::function<void(std::string_view)>;

  // For the store whose root directory is `store_root_fd` (duplicated; the caller keeps its
  // own). The thread starts at the first Wake(). A descriptor that cannot be duplicated
  // makes every later WaitIdle() return the error.
  explicit ReleasePruner(int store_root_fd);
  // Finishes the directory in hand, then stops (what is left is deleted by the next pruner).
  ~ReleasePruner();
  ReleasePruner(const ReleasePruner&) = delete;
  ReleasePruner& operator=(const ReleasePruner&) = delete;

  // Something was moved into pruned/: deletes it (and anything else there) soon, on the
  // pruner's thread. Never blocks on a deletion.
  void Wake();
  // Blocks until every Wake() so far has been followed by a full pass over pruned/. Returns
  // the error of the last pass (kFailed "store-io"), if any; the next Wake() retries.
  Result<void> WaitIdle();
  // Set before the first Wake().
  void SetHook(Hook hook) { hook_ = std::move(hook); }

 private:
  void Loop();
  Result<void> DeleteAll();

  UniqueFd root_;
  std::optional<Error> dup_error_;
  Hook hook_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t requested_ = 0;  // passes asked for (Wake)
  uint64_t done_ = 0;       // passes completed (the last one saw every request before it)
  std::optional<Error> last_error_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace decnet::daemon
