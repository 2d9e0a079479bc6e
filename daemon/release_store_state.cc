// The release store's state file (reading and writing state.json) and its recovery and
// housekeeping: what runs at start-up rather than during an update.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>

#include "daemon/release_store.h"
#include "proto/json_strict.h"

namespace decnet::daemon {

using nlohmann::json;
using nlohmann::ordered_json;

std::string NowIso8601() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

constexpr size_t kMaxStateBytes = 1 << 20;
constexpr std::string_view kStateName = "state.json";

tl::unexpected<Error> StateError(std::string message) {
  return Fail(ErrorCode::kMalformed, "store-state", "state.json: " + std::move(message));
}

Result<std::optional<ReleaseId>> OptionalId(const json& value, std::string_view key) {
  if (value.is_null()) return std::optional<ReleaseId>();
  if (!value.is_string()) return StateError(std::string(key) + " must be a string or null");
  auto id = ReleaseId::Parse(value.get<std::string>());
  if (!id) return StateError(id.error().message);
  return std::optional<ReleaseId>(*id);
}

json IdOrNull(const std::optional<ReleaseId>& id) { return id ? json(id->str()) : json(nullptr); }

Result<ReleaseRecord> ParseRecord(const ReleaseId& id, const json& value) {
  const std::string what = "release " + id.str();
  static const std::set<std::string> kKeys = {"sha256", "sha",          "version", "kind",
                                              "size",   "installed_at", "state",   "seq"};
  if (!value.is_object()) return StateError(what + " must be an object");
  for (const auto& [key, unused] : value.items()) {
    if (!kKeys.contains(key)) return StateError(what + " has the unknown key " + key);
  }
  for (const auto& key : kKeys) {
    if (!value.contains(key)) return StateError(what + " lacks " + key);
  }
  for (const char* key : {"sha256", "version", "kind", "installed_at", "state"}) {
    if (!value[key].is_string()) return StateError(what + " " + key + " must be a string");
  }
  for (const char* key : {"size", "seq"}) {
    if (!value[key].is_number_unsigned()) return StateError(what + " " + key + " must be a count");
  }
  if (!value["sha"].is_null() && !value["sha"].is_string()) {
    return StateError(what + " sha must be a string or null");
  }
  const std::string sha256 = value["sha256"];
  auto digest_id = ReleaseId::FromSha256Hex(sha256);
  if (!digest_id || *digest_id != id) return StateError(what + " does not match its digest");
  auto version = ReleaseVersion::Parse(value["version"].get<std::string>());
  if (!version) return StateError(version.error().message);
  auto kind = ParseReleaseKind(value["kind"].get<std::string>());
  if (!kind) return StateError(kind.error().message);
  const std::string state = value["state"];
  if (state != "ready" && state != "failed") return StateError(what + " state " + state);
  std::optional<std::string> sha;
  if (value["sha"].is_string()) sha = value["sha"].get<std::string>();
  return ReleaseRecord{sha256,
                       sha,
                       *version,
                       *kind,
                       value["size"].get<uint64_t>(),
                       value["installed_at"].get<std::string>(),
                       state == "ready" ? ReleaseState::kReady : ReleaseState::kFailed,
                       value["seq"].get<uint64_t>()};
}

ordered_json RecordJson(const ReleaseRecord& r) {
  ordered_json out;
  out["sha256"] = r.sha256;
  out["sha"] = r.sha ? json(*r.sha) : json(nullptr);
  out["version"] = r.version.str();
  out["kind"] = std::string(ReleaseKindName(r.kind));
  out["size"] = r.size;
  out["installed_at"] = r.installed_at;
  out["state"] = r.state == ReleaseState::kReady ? "ready" : "failed";
  out["seq"] = r.seq;
  return out;
}

}  // namespace

std::string ReleaseStore::StateJson() const {
  ordered_json out;
  out["format"] = 1;
  out["active"] = IdOrNull(active_);
  out["previous"] = IdOrNull(previous_);
  out["next_seq"] = next_seq_;
  if (pending_) {
    ordered_json p;
    p["op"] = pending_->op == PendingOp::kActivate ? "activate" : "rollback";
    p["id"] = pending_->id.str();
    p["from_active"] = IdOrNull(pending_->from_active);
    p["from_previous"] = IdOrNull(pending_->from_previous);
    out["pending"] = p;
  } else {
    out["pending"] = nullptr;
  }
  out["failed"] = ordered_json::array();
  for (const auto& f : failed_) {
    out["failed"].push_back({{"id", f.id.str()}, {"cause", f.cause}, {"at", f.at}});
  }
  ordered_json releases = ordered_json::object();
  for (const auto& r : records_) releases[r.id.str()] = RecordJson(r.record);
  out["releases"] = releases;
  return out.dump(1) + "\n";
}

Result<void> ReleaseStore::LoadState() {
  auto text = ReadFileAt(root_.get(), kStateName, kMaxStateBytes);
  if (!text) {
    if (text.error().rule == "store-missing") return {};  // a fresh store
    return tl::make_unexpected(text.error());
  }
  auto parsed = strict_json::ParseObject(*text, 4);
  if (!parsed) return StateError(parsed.error().message);
  const json& s = *parsed;
  static const std::set<std::string> kKeys = {"format",  "active", "previous", "next_seq",
                                              "pending", "failed", "releases"};
  for (const auto& [key, unused] : s.items()) {
    if (!kKeys.contains(key)) return StateError("unknown key " + key);
  }
  for (const auto& key : kKeys) {
    if (!s.contains(key)) return StateError("lacks " + key);
  }
  if (s["format"] != 1) return StateError("format must be 1");
  if (!s["next_seq"].is_number_unsigned()) return StateError("next_seq");
  next_seq_ = s["next_seq"].get<uint64_t>();
  auto active = OptionalId(s["active"], "active");
  auto previous = OptionalId(s["previous"], "previous");
  if (!active) return tl::make_unexpected(active.error());
  if (!previous) return tl::make_unexpected(previous.error());
  active_ = *active;
  previous_ = *previous;
  if (!s["pending"].is_null()) {
    const json& p = s["pending"];
    if (!p.is_object() || p.size() != 4 || !p.contains("op") || !p.contains("id") ||
        !p.contains("from_active") || !p.contains("from_previous")) {
      return StateError("pending must be {op, id, from_active, from_previous}");
    }
    if (p["op"] != "activate" && p["op"] != "rollback") return StateError("pending op");
    auto id = OptionalId(p["id"], "pending id");
    auto from_active = OptionalId(p["from_active"], "from_active");
    auto from_previous = OptionalId(p["from_previous"], "from_previous");
    if (!id || !*id || !from_active || !from_previous) return StateError("pending ids");
    pending_ = PendingChange{p["op"] == "activate" ? PendingOp::kActivate : PendingOp::kRollback,
                             **id, *from_active, *from_previous};
  }
  if (!s["failed"].is_array()) return StateError("failed must be an array");
  for (const json& f : s["failed"]) {
    if (!f.is_object() || f.size() != 3 || !f.contains("id") || !f.contains("cause") ||
        !f.contains("at") || !f["cause"].is_string() || !f["at"].is_string()) {
      return StateError("failed entries must be {id, cause, at}");
    }
    auto id = OptionalId(f["id"], "failed id");
    if (!id || !*id) return StateError("failed id");
    failed_.push_back(FailedRelease{**id, f["cause"], f["at"]});
  }
  if (!s["releases"].is_object()) return StateError("releases must be an object");
  for (const auto& [key, value] : s["releases"].items()) {
    auto id = ReleaseId::Parse(key);
    if (!id) return StateError(id.error().message);
    auto record = ParseRecord(*id, value);
    if (!record) return tl::make_unexpected(record.error());
    records_.push_back(Record{*id, *record});
  }
  return {};
}

Result<std::vector<std::string>> ReleaseStore::RemoveIncomplete() {
  std::vector<std::string> removed;
  // Records first: a record whose directory is gone or incomplete is dropped (never the
  // active, previous or pending one; Recover() handles those).
  auto before = records_.size();
  std::erase_if(records_,
                [&](const Record& r) { return !IsProtected(r.id.str()) && !IsComplete(r.id); });
  // On a full disk the directories still go (they free space), and the state is saved again
  // after them.
  bool unsaved = records_.size() != before && !SaveState();
  int dup_fd = fcntl(releases_.get(), F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return IoError("dup releases/");
  DIR* dir = fdopendir(dup_fd);
  if (!dir) {
    close(dup_fd);
    return IoError("list releases/");
  }
  // The duplicate shares the directory's offset with every earlier listing: start over.
  rewinddir(dir);
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    std::string_view n = entry->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(dir);
  for (const auto& name : names) {
    auto id = ReleaseId::Parse(name);
    if (id && (IsProtected(name) || IsComplete(*id))) continue;
    // Anything else beneath releases/ is an interrupted install, a release pruned from the
    // state before its directory went, or not ours: deleted without following links.
    Crash("remove-incomplete");
    if (auto gone = RemoveTreeAt(releases_.get(), name); !gone) {
      return tl::make_unexpected(gone.error());
    }
    removed.push_back(name);
  }
  if (unsaved) {
    if (auto saved = SaveState(); !saved) return tl::make_unexpected(saved.error());
  }
  return removed;
}

Result<RecoveryReport> ReleaseStore::Recover() {
  RecoveryReport report;
  if (pending_) {
    report.reverted = pending_;
    RevertMark mark =
        pending_->op == PendingOp::kActivate ? RevertMark::kRecordFailed : RevertMark::kKeepState;
    auto reverted = Revert(mark, "interrupted before its health verdict");
    if (!reverted) return tl::make_unexpected(reverted.error());
  }
  for (std::string_view temp :
       {std::string_view("current.tmp"), std::string_view("state.json.tmp")}) {
    if (unlinkat(root_.get(), std::string(temp).c_str(), 0) != 0 && errno != ENOENT) {
      return IoError("remove " + std::string(temp));
    }
  }
  // An active or previous release that is not complete cannot be run: fall back to what is.
  bool changed = false;
  if (previous_ && !IsComplete(*previous_)) {
    previous_.reset();
    changed = true;
  }
  if (active_ && !IsComplete(*active_)) {
    active_ = previous_;
    previous_.reset();
    changed = true;
  }
  if (changed) {
    if (auto saved = SaveState(); !saved) return tl::make_unexpected(saved.error());
  }
  auto before = records_;
  auto removed = RemoveIncomplete();
  if (!removed) return tl::make_unexpected(removed.error());
  report.removed = *removed;
  for (const auto& r : before) {
    if (!FindRecord(r.id)) report.dropped.push_back(r.id);
  }
  // state.json is the truth: it is always written before `current` moves.
  auto current = ReadCurrent();
  if (!current) return tl::make_unexpected(current.error());
  std::optional<std::string> expected;
  if (active_) expected = "releases/" + active_->str();
  if (*current != expected) {
    if (auto pointed = PointCurrent(active_); !pointed) return tl::make_unexpected(pointed.error());
    report.current_repointed = true;
  }
  return report;
}

Result<void> ReleaseStore::MoveToPruned(const ReleaseId& id) {
  auto pruned = EnsureDirAt(root_.get(), kPrunedDirName);
  if (!pruned) return tl::make_unexpected(pruned.error());
  // A fresh name: a directory of the same release pruned earlier (re-pushed since) may still be
  // there, half deleted, and a rename never merges into it. The time makes names differ across
  // restarts, the counter within one.
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::string name =
        id.str() + "." + std::to_string(stamp) + "." + std::to_string(++pruned_names_);
    if (renameat(releases_.get(), id.str().c_str(), pruned->get(), name.c_str()) == 0) {
      Crash("prune-moved");
      return {};
    }
    if (errno != EEXIST && errno != ENOTEMPTY) break;
  }
  return IoError("move release " + id.str() + " into pruned/");
}

Result<std::vector<ReleaseId>> ReleaseStore::Prune(PruneDeletion deletion) {
  std::vector<const Record*> candidates;
  size_t protected_count = 0;
  for (const auto& r : records_) {
    if (IsProtected(r.id.str())) {
      ++protected_count;
    } else {
      candidates.push_back(&r);
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Record* a, const Record* b) { return a->record.seq > b->record.seq; });
  size_t room = keep_ > protected_count ? keep_ - protected_count : 0;
  std::vector<ReleaseId> doomed;
  for (size_t i = room; i < candidates.size(); ++i) doomed.push_back(candidates[i]->id);
  if (doomed.empty()) {
    // Nothing to prune, but an earlier failure may have left a directory no record names.
    if (auto swept = RemoveIncomplete(); !swept) return tl::make_unexpected(swept.error());
    return doomed;
  }
  // State first: a crash before the directories go leaves unrecorded directories, which
  // RemoveIncomplete() deletes.
  std::erase_if(records_, [&](const Record& r) {
    return std::find(doomed.begin(), doomed.end(), r.id) != doomed.end();
  });
  if (SaveState()) {
    Crash("prune-state-written");
    for (const auto& id : doomed) {
      // No record names the directory any more: moved aside, it is the pruner's alone.
      if (deletion == PruneDeletion::kDeferred && MoveToPruned(id)) continue;
      if (auto gone = RemoveTreeAt(releases_.get(), id.str()); !gone) {
        return tl::make_unexpected(gone.error());
      }
    }
  } else {
    // state.json cannot be rewritten (a full disk): the directories go first, to free the
    // space, each losing its completion record before its tree, so that a crash or an error
    // part-way leaves only incomplete directories and records of them, which Recover() and
    // RemoveIncomplete() drop. Then the state is saved.
    for (const auto& id : doomed) {
      if (auto dir = OpenDirAt(releases_.get(), id.str())) {
        (void)unlinkat(dir->get(), std::string(kCompletionRecordName).c_str(), 0);
      }
      if (auto gone = RemoveTreeAt(releases_.get(), id.str()); !gone) {
        return tl::make_unexpected(gone.error());
      }
    }
    if (auto saved = SaveState(); !saved) return tl::make_unexpected(saved.error());
  }
  // What an earlier failure may have left (a directory no record names) goes with them.
  if (auto swept = RemoveIncomplete(); !swept) return tl::make_unexpected(swept.error());
  return doomed;
}

}  // namespace decnet::daemon
