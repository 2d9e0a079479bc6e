// The release store beneath an install directory (default /opt/decnet; the updater's own
// builds use a second store, e.g. .../updater):
//
//   root/releases/<id>/                 one release, extracted and installed AT THIS PATH and
//                                       never renamed (a Python venv is not relocatable)
//   root/releases/<id>/.decnet-complete completion record, written last and fsynced; a
//                                       release directory without it is incomplete
//   root/current -> releases/<id>       relative symlink, flipped by renaming a fresh link
//   root/state.json                     written atomically (temp, fsync, rename, fsync dir)
//   root/pruned/<id>.<n>/               pruned releases awaiting deletion in the background
//                                       (Prune(kDeferred), daemon/release_pruner.h); nothing
//                                       names them, nothing reads them
//
// state.json (format 1):
//   {"format":1, "active":id|null, "previous":id|null, "next_seq":N,
//    "pending":null|{"op":"activate"|"rollback","id":id,"from_active":id|null,
//                    "from_previous":id|null},
//    "failed":[{"id":id,"cause":str,"at":ISO-8601}...],        (last 16, newest last)
//    "releases":{id:{"sha256":hex64,"sha":str|null,"version":str,"kind":"service"|"updater",
//                    "size":N,"installed_at":ISO-8601,"state":"ready"|"failed",
//                    "seq":N}}}
//
// State machine. The journal is `pending`; state.json is always written BEFORE `current`
// moves, so `current` never points where state.json does not expect it:
//
//   BeginRelease(id)        releases/<id> created fresh (incomplete; not yet in state.json)
//   MarkComplete(id, rec)   syncfs, completion record, then state.releases[id] = rec
//   Activate(id)            state {active:id, previous:old active, pending:activate}
//                           -> flip current to releases/<id>            (AWAITING VERDICT)
//   Rollback()              as Activate(previous) with pending op "rollback"
//   Commit()                pending cleared: the new state is kept       (COMMITTED)
//   Revert(mark, cause)     current flipped back to from_active (removed when there was
//                           none), then state {active:from_active, previous:from_previous,
//                           pending:null}, the pending id recorded failed if asked
//   Recover()               at start-up: a pending op is Reverted (an activation that had
//                           not been committed, i.e. had not passed its health gate, is
//                           never kept: it is recorded failed "interrupted"; an interrupted
//                           rollback is undone without marking); then state.json is the
//                           truth: `current` is re-pointed at the active release; temp files,
//                           incomplete directories and directories not in state.json are
//                           deleted; records whose directory is gone are dropped.
//
// After an automatic rollback (Activate, failed gate, Revert(kRecordFailed)): the old release
// is active, previous is unchanged, the new one is recorded failed. A crash at any point of
// any operation leaves a store that Recover() turns into: no pending op, `current` pointing
// at the complete active release (or absent when there is none), every release directory
// complete and recorded.
//
// Every operation works through directory file descriptors (openat, mkdirat, renameat,
// symlinkat, unlinkat) and never follows a symlink inside the store. The store is not thread
// safe: the daemon runs one update at a time. Directories the store creates are 0755; release
// content is the extractor's and install command's business. Library code: no logging.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/release_store_fs.h"
#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet::daemon {

// Name of the completion record inside a release directory.
inline constexpr std::string_view kCompletionRecordName = ".decnet-complete";
// Name of the directory beneath the store root that pruned releases are moved into.
inline constexpr std::string_view kPrunedDirName = "pruned";
// Releases kept by default (including the active and previous ones).
inline constexpr size_t kDefaultKeepReleases = 3;

enum class ReleaseState {
  kReady,   // complete and installed; may be activated
  kFailed,  // complete but it failed its health gate (or was interrupted before a verdict)
};

// What the store knows about one complete release.
struct ReleaseRecord {
  std::string sha256;              // full tarball digest, 64 lower-case hex
  std::optional<std::string> sha;  // the `sha` form field (git commit), when given
  ReleaseVersion version;
  ReleaseKind kind = ReleaseKind::kService;
  uint64_t size = 0;         // tarball bytes
  std::string installed_at;  // ISO-8601 UTC, set by MarkComplete
  ReleaseState state = ReleaseState::kReady;
  uint64_t seq = 0;  // install order, set by MarkComplete
};

// The slot a release occupies, in DECNET's terms ("active", "prev") plus ours.
enum class ReleaseSlot {
  kActive,
  kPrevious,
  kOther,
};

struct ReleaseEntry {
  ReleaseId id;
  ReleaseSlot slot;
  ReleaseRecord record;
};

struct FailedRelease {
  ReleaseId id;
  std::string cause;
  std::string at;
};

// Whether Revert() records the reverted release as failed.
enum class RevertMark {
  kRecordFailed,
  kKeepState,
};

// When Prune() deletes the directories of the releases it prunes.
enum class PruneDeletion {
  kNow,       // before it returns
  kDeferred,  // moved into pruned/ (one rename each) for a ReleasePruner to delete
};

// The operation a pending journal entry describes.
enum class PendingOp {
  kActivate,
  kRollback,
};

struct PendingChange {
  PendingOp op;
  ReleaseId id;
  std::optional<ReleaseId> from_active;
  std::optional<ReleaseId> from_previous;
};

// What Recover() did, for the caller to log.
struct RecoveryReport {
  std::optional<PendingChange> reverted;  // the pending op that was undone
  std::vector<std::string> removed;       // release directories deleted
  std::vector<ReleaseId> dropped;         // records whose directory was missing or incomplete
  bool current_repointed = false;
};

class ReleaseStore {
 public:
  // Called between the steps of every state-changing operation with the step's name (see
  // kCrashPoints in release_store.cc); tests _exit() there to simulate a crash.
  using CrashHook = std::function<void(std::string_view)>;

  // Opens (creating root/releases 0755 when absent) the store at the absolute directory
  // `root`, which must exist. Does not recover: call Recover() before anything else. Refuses
  // a root or releases/ that is a symlink or not a directory ("store-not-directory"), a
  // state.json that is not strictly valid ("store-state"), keep < 2 ("store-keep").
  [[nodiscard]] static Result<ReleaseStore> Open(std::string_view root,
                                                 size_t keep = kDefaultKeepReleases);

  // The state machine's start-up step (see above). Refuses a `current` that exists but is
  // not a symlink ("store-current-not-symlink"); other failures are "store-io".
  [[nodiscard]] Result<RecoveryReport> Recover();

  // Creates releases/<id>/ fresh (0755) and returns its directory fd. An incomplete leftover
  // (or anything that is not a directory, such as a planted symlink: the link is removed, its
  // target untouched) is deleted first. Refuses a release that is already complete
  // ("store-release-complete", kDenied: the caller redeploys it instead) and any id while an
  // activation is pending ("store-pending").
  [[nodiscard]] Result<UniqueFd> BeginRelease(const ReleaseId& id);

  // Makes releases/<id> complete: syncfs of its file system (the install command's writes
  // included), the completion record written and fsynced, then `record` (installed_at and
  // seq filled in, state kReady) added to state.json. Refuses a directory that is missing
  // ("store-missing") or already complete ("store-release-complete"). When state.json cannot
  // be rewritten (a full disk), the completion record is removed again and the store does not
  // list the release: the directory is incomplete, for RemoveIncomplete() to delete.
  [[nodiscard]] Result<void> MarkComplete(const ReleaseId& id, ReleaseRecord record);

  // True when releases/<id> is a real directory holding its completion record.
  bool IsComplete(const ReleaseId& id) const;

  // Makes `id` active and the old active previous, with a pending activation awaiting
  // Commit() or Revert(). Activating the active release is a no-op (no pending op: a
  // redeploy). Refuses an id that is not complete and recorded ("store-release-unknown"),
  // while another op is pending ("store-pending"), and a `current` that is not a symlink
  // ("store-current-not-symlink").
  [[nodiscard]] Result<void> Activate(const ReleaseId& id);

  // Swaps active and previous, pending until Commit() or Revert(). Refuses with kNotFound
  // "rollback-no-previous" when there is no previous release (DECNET answers 404), otherwise
  // as Activate().
  [[nodiscard]] Result<void> Rollback();

  // Keeps the pending change. Refuses when nothing is pending ("store-no-pending").
  [[nodiscard]] Result<void> Commit();

  // Undoes the pending change: `current` back to the release active before it (removed if
  // there was none), active and previous restored, the pending id recorded failed with
  // `cause` when `mark` says so. Refuses when nothing is pending ("store-no-pending"). Once
  // `current` is back, the change stays undone even if state.json cannot be rewritten (the
  // error is returned and Pending() is empty; the journal on disk is reverted again by
  // Recover()); if `current` could not be flipped back, nothing changed and Pending() remains.
  [[nodiscard]] Result<void> Revert(RevertMark mark, std::string_view cause);

  // Deletes the complete, recorded release `id` that never became active (its activation could
  // not be journalled, e.g. on a full disk): its completion record first, so a tree deleted
  // part-way is never taken for a release, then its directory, then its record, then
  // state.json is saved. The record is dropped even when the save fails (the error is
  // returned; Recover() drops a record whose directory is gone), so the store's listing matches
  // the directories. Refuses the active, previous or pending release
  // ("store-release-protected").
  [[nodiscard]] Result<void> Discard(const ReleaseId& id);

  // Records that `id` failed (an install that failed, a gate that failed) with `cause`; its
  // record, if any, becomes kFailed. Keeps the last 16 failures.
  [[nodiscard]] Result<void> RecordFailed(const ReleaseId& id, std::string_view cause);

  // The daemon's own store only (update-self): when `current` points at the previous
  // release while nothing is pending, the helper returned to it at start-up because the
  // active build failed to start (helper/self_update.h). Makes that a committed rollback and
  // records the other release failed with `cause`; returns the id of the failed release.
  // Returns nullopt, changing nothing, when `current` agrees with the state. Call before
  // Recover(), which would otherwise point `current` back at the state's active release.
  [[nodiscard]] Result<std::optional<ReleaseId>> AdoptRevertedCurrent(std::string_view cause);

  // The daemon's own store only (update-self): an activation still pending whose `current`
  // was already flipped (the daemon died between the flip and the commit) is committed, not
  // reverted: the helper has started the build `current` names, so reverting would leave the
  // unit running a build its store no longer calls current; the helper's probation judges it
  // instead. Returns the id committed, or nullopt, changing nothing, when no such change is
  // pending (an activation whose `current` did not move yet is left to Recover()). Call
  // before Recover().
  [[nodiscard]] Result<std::optional<ReleaseId>> CommitFlippedActivation();

  // Deletes release directories without a completion record or not in state.json (never the
  // active, previous or pending one), and drops records whose directory is gone. Part of
  // Recover(); callable alone.
  [[nodiscard]] Result<std::vector<std::string>> RemoveIncomplete();

  // Deletes the oldest releases beyond the newest `keep` (by install order, counting the
  // active and previous ones, which are never deleted; nor is a pending one), then whatever
  // RemoveIncomplete() deletes (what an earlier failure left). Returns the ids pruned. Normally
  // state.json is rewritten before the directories go; when it cannot be (a full disk), the
  // directories go first, each losing its completion record before its tree, and the state is
  // saved after them.
  // With kDeferred, each pruned directory is renamed into pruned/ under a fresh name once
  // state.json no longer names it, and left there for a ReleasePruner; where the rename fails
  // (no room for pruned/ on a full disk) or the state could not be saved, it is deleted at
  // once as above. Crash-safe either way: an unrecorded directory left beneath releases/ is
  // deleted by Recover(), a partly deleted one beneath pruned/ by the next pruner.
  [[nodiscard]] Result<std::vector<ReleaseId>> Prune(PruneDeletion deletion = PruneDeletion::kNow);

  // Releases in DECNET's order: active, previous, then the others newest first.
  std::vector<ReleaseEntry> Releases() const;
  std::optional<ReleaseId> Active() const { return active_; }
  std::optional<ReleaseId> Previous() const { return previous_; }
  const std::optional<PendingChange>& Pending() const { return pending_; }
  const std::vector<FailedRelease>& Failed() const { return failed_; }
  std::optional<ReleaseRecord> Find(const ReleaseId& id) const;
  // The directory fd of the store root (for the pipeline's openat beneath releases/<id>).
  int root_fd() const { return root_.get(); }
  const std::string& root() const { return root_path_; }

  // Test hook: see CrashHook.
  void SetCrashHook(CrashHook hook) { crash_ = std::move(hook); }

 private:
  struct Record {
    ReleaseId id;
    ReleaseRecord record;
  };

  ReleaseStore(std::string root_path, size_t keep, UniqueFd root, UniqueFd releases);
  Result<void> LoadState();
  Result<void> SaveState();
  std::string StateJson() const;
  Result<void> PointCurrent(const std::optional<ReleaseId>& id);
  Result<std::optional<std::string>> ReadCurrent() const;
  Result<void> StartChange(PendingOp op, const ReleaseId& id);
  void Crash(std::string_view point) const;
  Record* FindRecord(const ReleaseId& id);
  const Record* FindRecord(const ReleaseId& id) const;
  bool IsProtected(const std::string& id) const;
  Result<void> MoveToPruned(const ReleaseId& id);

  std::string root_path_;
  size_t keep_;
  UniqueFd root_;
  UniqueFd releases_;
  std::optional<ReleaseId> active_;
  std::optional<ReleaseId> previous_;
  std::optional<PendingChange> pending_;
  std::vector<FailedRelease> failed_;
  std::vector<Record> records_;
  uint64_t next_seq_ = 1;
  uint64_t pruned_names_ = 0;  // makes each name beneath pruned/ fresh
  CrashHook crash_;
};

}  // namespace decnet::daemon
