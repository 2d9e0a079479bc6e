#include "daemon/release_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <nlohmann/json.hpp>

namespace decnet::daemon {
namespace {

constexpr std::string_view kCurrent = "current";
constexpr std::string_view kCurrentTemp = "current.tmp";
constexpr size_t kMaxCompletionRecordBytes = 4096;

std::string LinkTarget(const ReleaseId& id) { return "releases/" + id.str(); }

}  // namespace

ReleaseStore::ReleaseStore(std::string root_path, size_t keep, UniqueFd root, UniqueFd releases)
    : root_path_(std::move(root_path)),
      keep_(keep),
      root_(std::move(root)),
      releases_(std::move(releases)) {}

Result<ReleaseStore> ReleaseStore::Open(std::string_view root, size_t keep) {
  if (keep < 2) {
    return Fail(ErrorCode::kMalformed, "store-keep", "a store keeps at least 2 releases");
  }
  if (root.empty() || root.front() != '/') {
    return Fail(ErrorCode::kMalformed, "store-root", "the store root must be an absolute path");
  }
  std::string path(root);
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Fail(ErrorCode::kDenied, "store-not-directory", path + " is not a directory");
    }
    return IoError("open the store root " + path);
  }
  UniqueFd root_fd(fd);
  auto releases = EnsureDirAt(root_fd.get(), "releases");
  if (!releases) return tl::make_unexpected(releases.error());
  ReleaseStore store(std::move(path), keep, std::move(root_fd), std::move(*releases));
  if (auto loaded = store.LoadState(); !loaded) return tl::make_unexpected(loaded.error());
  return store;
}

void ReleaseStore::Crash(std::string_view point) const {
  if (crash_) crash_(point);
}

ReleaseStore::Record* ReleaseStore::FindRecord(const ReleaseId& id) {
  for (auto& r : records_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

const ReleaseStore::Record* ReleaseStore::FindRecord(const ReleaseId& id) const {
  for (const auto& r : records_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

std::optional<ReleaseRecord> ReleaseStore::Find(const ReleaseId& id) const {
  const Record* r = FindRecord(id);
  if (!r) return std::nullopt;
  return r->record;
}

bool ReleaseStore::IsProtected(const std::string& id) const {
  auto is = [&](const std::optional<ReleaseId>& x) { return x && x->str() == id; };
  if (is(active_) || is(previous_)) return true;
  return pending_ &&
         (pending_->id.str() == id || is(pending_->from_active) || is(pending_->from_previous));
}

Result<void> ReleaseStore::SaveState() {
  return WriteFileAtomically(root_.get(), "state.json", StateJson(), "state", crash_);
}

bool ReleaseStore::IsComplete(const ReleaseId& id) const {
  const Record* r = FindRecord(id);
  if (!r) return false;
  auto dir = OpenDirAt(releases_.get(), id.str());
  if (!dir) return false;
  auto text = ReadFileAt(dir->get(), kCompletionRecordName, kMaxCompletionRecordBytes);
  if (!text) return false;
  // SECURITY: the record names the full tarball digest, which no tarball can contain about
  // itself, so a `.decnet-complete` shipped inside a release cannot pass for ours.
  auto parsed = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return false;
  auto sha = parsed.find("sha256");
  return sha != parsed.end() && sha->is_string() && *sha == r->record.sha256;
}

Result<std::optional<std::string>> ReleaseStore::ReadCurrent() const {
  char buf[PATH_MAX];
  ssize_t n = readlinkat(root_.get(), std::string(kCurrent).c_str(), buf, sizeof buf - 1);
  if (n >= 0) return std::optional<std::string>(std::string(buf, static_cast<size_t>(n)));
  if (errno == ENOENT) return std::optional<std::string>();
  if (errno == EINVAL) {
    // SECURITY: a directory or file at `current` is not ours; replacing it could destroy
    // whatever was put there and a directory would never flip atomically. Refused.
    return Fail(ErrorCode::kDenied, "store-current-not-symlink",
                root_path_ + "/current exists and is not a symlink");
  }
  return IoError("read the current link");
}

Result<void> ReleaseStore::PointCurrent(const std::optional<ReleaseId>& id) {
  auto current = ReadCurrent();
  if (!current) return tl::make_unexpected(current.error());
  const std::string temp(kCurrentTemp);
  const std::string name(kCurrent);
  if (!id) {
    if (*current && unlinkat(root_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("remove the current link");
    }
    return SyncFd(root_.get(), "the store root");
  }
  if (unlinkat(root_.get(), temp.c_str(), 0) != 0 && errno != ENOENT) {
    return IoError("remove " + temp);
  }
  // Relative, so the store can be inspected or moved as a whole; resolved beneath root.
  if (symlinkat(LinkTarget(*id).c_str(), root_.get(), temp.c_str()) != 0) {
    if (errno != ENOSPC && errno != EDQUOT) return IoError("create " + temp);
    // No inode for a second link (a full disk): the link is replaced in place, which frees
    // what the new one needs. Not atomic: a crash in between leaves no `current`, which
    // Recover() puts back from state.json.
    if (unlinkat(root_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("remove the current link");
    }
    if (symlinkat(LinkTarget(*id).c_str(), root_.get(), name.c_str()) != 0) {
      return IoError("create the current link");
    }
    Crash("current-flipped");
    return SyncFd(root_.get(), "the store root");
  }
  Crash("current-link-created");
  if (renameat(root_.get(), temp.c_str(), root_.get(), name.c_str()) != 0) {
    auto error = IoError("flip the current link");
    (void)unlinkat(root_.get(), temp.c_str(), 0);
    return error;
  }
  Crash("current-flipped");
  return SyncFd(root_.get(), "the store root");
}

Result<UniqueFd> ReleaseStore::BeginRelease(const ReleaseId& id) {
  if (pending_) {
    return Fail(ErrorCode::kDenied, "store-pending",
                "release " + pending_->id.str() + " awaits its verdict");
  }
  if (IsComplete(id)) {
    return Fail(ErrorCode::kDenied, "store-release-complete",
                "release " + id.str() + " is already installed");
  }
  if (IsProtected(id.str())) {
    return Fail(ErrorCode::kDenied, "store-release-protected",
                "release " + id.str() + " is active or previous but incomplete");
  }
  if (std::erase_if(records_, [&](const Record& r) { return r.id == id; }) > 0) {
    if (auto saved = SaveState(); !saved) return tl::make_unexpected(saved.error());
  }
  // A leftover of an interrupted attempt (or a link planted at the name) goes first: the
  // release is always built in a fresh directory at its final path.
  if (auto removed = RemoveTreeAt(releases_.get(), id.str()); !removed) {
    return tl::make_unexpected(removed.error());
  }
  auto dir = EnsureDirAt(releases_.get(), id.str());
  if (!dir) return dir;
  Crash("begin-created");
  return dir;
}

Result<void> ReleaseStore::MarkComplete(const ReleaseId& id, ReleaseRecord record) {
  auto dir = OpenDirAt(releases_.get(), id.str());
  if (!dir) return tl::make_unexpected(dir.error());
  if (IsComplete(id)) {
    return Fail(ErrorCode::kDenied, "store-release-complete",
                "release " + id.str() + " is already complete");
  }
  auto id_from_digest = ReleaseId::FromSha256Hex(record.sha256);
  if (!id_from_digest || *id_from_digest != id) {
    return Fail(ErrorCode::kMalformed, "store-record-digest",
                "the record's digest does not name release " + id.str());
  }
  struct stat st {};
  if (fstatat(dir->get(), std::string(kCompletionRecordName).c_str(), &st, AT_SYMLINK_NOFOLLOW) ==
      0) {
    // Only a file shipped in the tarball can be there before we write ours.
    return Fail(ErrorCode::kDenied, "store-completion-planted",
                "release " + id.str() + " ships its own " + std::string(kCompletionRecordName));
  }
  // The record promises durable content: the extractor synced its files, but the install
  // command's writes (a venv) are synced here, once, for the whole file system.
  if (syncfs(dir->get()) != 0) return IoError("syncfs release " + id.str());
  record.installed_at = NowIso8601();
  record.seq = next_seq_++;
  record.state = ReleaseState::kReady;
  nlohmann::ordered_json completion;
  completion["format"] = 1;
  completion["id"] = id.str();
  completion["sha256"] = record.sha256;
  completion["version"] = record.version.str();
  completion["completed_at"] = record.installed_at;
  auto written =
      WriteFileAtomically(dir->get(), kCompletionRecordName, completion.dump(), "complete", crash_);
  if (!written) return written;
  Crash("complete-recorded");
  records_.push_back(Record{id, std::move(record)});
  if (auto saved = SaveState(); !saved) {
    // state.json does not name the release (a full disk): neither does the store, and the
    // directory is incomplete again, for the caller's RemoveIncomplete() to delete.
    records_.pop_back();
    --next_seq_;
    (void)unlinkat(dir->get(), std::string(kCompletionRecordName).c_str(), 0);
    return saved;
  }
  return {};
}

Result<void> ReleaseStore::Discard(const ReleaseId& id) {
  if (IsProtected(id.str())) {
    return Fail(ErrorCode::kDenied, "store-release-protected",
                "release " + id.str() + " is active, previous or pending");
  }
  // The completion record first: a tree deleted part-way is never taken for a release.
  if (auto dir = OpenDirAt(releases_.get(), id.str())) {
    (void)unlinkat(dir->get(), std::string(kCompletionRecordName).c_str(), 0);
  }
  auto removed = RemoveTreeAt(releases_.get(), id.str());
  std::erase_if(records_, [&](const Record& r) { return r.id == id; });
  if (!removed) return removed;
  // Space was freed first, so this usually succeeds even on a full disk. If it does not,
  // state.json still names a release whose directory is gone, which Recover() drops.
  return SaveState();
}

Result<void> ReleaseStore::StartChange(PendingOp op, const ReleaseId& id) {
  if (pending_) {
    return Fail(ErrorCode::kDenied, "store-pending",
                "release " + pending_->id.str() + " awaits its verdict");
  }
  if (!IsComplete(id)) {
    return Fail(ErrorCode::kNotFound, "store-release-unknown",
                "release " + id.str() + " is not a complete installed release");
  }
  auto current = ReadCurrent();
  if (!current) return tl::make_unexpected(current.error());
  if (active_ == id) return {};  // a redeploy of the active release: nothing moves
  PendingChange change{op, id, active_, previous_};
  pending_ = change;
  previous_ = active_;
  active_ = id;
  // The journal is durable before `current` moves: a crash after this point is reverted.
  if (auto saved = SaveState(); !saved) {
    pending_.reset();
    active_ = change.from_active;
    previous_ = change.from_previous;
    return saved;
  }
  Crash("change-journaled");
  if (auto flipped = PointCurrent(id); !flipped) {
    (void)Revert(RevertMark::kKeepState, "");
    return flipped;
  }
  return {};
}

Result<void> ReleaseStore::Activate(const ReleaseId& id) {
  return StartChange(PendingOp::kActivate, id);
}

Result<void> ReleaseStore::Rollback() {
  if (!previous_) {
    return Fail(ErrorCode::kNotFound, "rollback-no-previous", "there is no previous release");
  }
  ReleaseId target = *previous_;
  return StartChange(PendingOp::kRollback, target);
}

Result<std::optional<ReleaseId>> ReleaseStore::AdoptRevertedCurrent(std::string_view cause) {
  if (pending_ || !active_ || !previous_) return std::optional<ReleaseId>();
  auto current = ReadCurrent();
  if (!current) return tl::make_unexpected(current.error());
  if (!*current || **current != LinkTarget(*previous_) || !IsComplete(*previous_))
    return std::optional<ReleaseId>();
  const ReleaseId failed = *active_;
  if (auto r = Rollback(); !r) return tl::make_unexpected(r.error());
  if (auto r = Commit(); !r) return tl::make_unexpected(r.error());
  if (auto r = RecordFailed(failed, cause); !r) return tl::make_unexpected(r.error());
  return std::optional<ReleaseId>(failed);
}

Result<std::optional<ReleaseId>> ReleaseStore::CommitFlippedActivation() {
  if (!pending_ || pending_->op != PendingOp::kActivate) return std::optional<ReleaseId>();
  auto current = ReadCurrent();
  if (!current) return tl::make_unexpected(current.error());
  const ReleaseId id = pending_->id;
  if (!*current || **current != LinkTarget(id) || !IsComplete(id))
    return std::optional<ReleaseId>();
  if (auto r = Commit(); !r) return tl::make_unexpected(r.error());
  return std::optional<ReleaseId>(id);
}

Result<void> ReleaseStore::Commit() {
  if (!pending_) return Fail(ErrorCode::kDenied, "store-no-pending", "nothing awaits a verdict");
  auto saved_pending = pending_;
  pending_.reset();
  if (auto saved = SaveState(); !saved) {
    pending_ = saved_pending;
    return saved;
  }
  return {};
}

Result<void> ReleaseStore::Revert(RevertMark mark, std::string_view cause) {
  if (!pending_) return Fail(ErrorCode::kDenied, "store-no-pending", "nothing awaits a verdict");
  const PendingChange change = *pending_;
  // `current` first, journal last: a crash in between is reverted again at start-up.
  if (auto flipped = PointCurrent(change.from_active); !flipped) return flipped;
  Crash("revert-flipped");
  active_ = change.from_active;
  previous_ = change.from_previous;
  pending_.reset();
  if (mark == RevertMark::kRecordFailed) {
    if (Record* r = FindRecord(change.id)) r->record.state = ReleaseState::kFailed;
    failed_.push_back(FailedRelease{change.id, std::string(cause), NowIso8601()});
    constexpr size_t kMaxFailed = 16;
    if (failed_.size() > kMaxFailed) failed_.erase(failed_.begin());
  }
  // `current` is back where it was: the store says so even when state.json cannot be
  // rewritten (a full disk). The journal on disk still holds the pending change, which
  // Recover() reverts again at the next start; the next successful save replaces it.
  return SaveState();
}

Result<void> ReleaseStore::RecordFailed(const ReleaseId& id, std::string_view cause) {
  if (Record* r = FindRecord(id)) r->record.state = ReleaseState::kFailed;
  failed_.push_back(FailedRelease{id, std::string(cause), NowIso8601()});
  constexpr size_t kMaxFailed = 16;
  if (failed_.size() > kMaxFailed) failed_.erase(failed_.begin());
  return SaveState();
}

std::vector<ReleaseEntry> ReleaseStore::Releases() const {
  std::vector<ReleaseEntry> out;
  if (active_) {
    if (const Record* r = FindRecord(*active_)) {
      out.push_back({r->id, ReleaseSlot::kActive, r->record});
    }
  }
  if (previous_) {
    if (const Record* r = FindRecord(*previous_)) {
      out.push_back({r->id, ReleaseSlot::kPrevious, r->record});
    }
  }
  std::vector<const Record*> others;
  for (const auto& r : records_) {
    if (r.id != active_ && r.id != previous_) others.push_back(&r);
  }
  std::sort(others.begin(), others.end(),
            [](const Record* a, const Record* b) { return a->record.seq > b->record.seq; });
  for (const Record* r : others) out.push_back({r->id, ReleaseSlot::kOther, r->record});
  return out;
}

}  // namespace decnet::daemon
