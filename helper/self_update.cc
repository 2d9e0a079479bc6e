#include "helper/self_update.h"

#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "helper/fs_ops.h"
#include "proto/json_strict.h"

namespace decnet::helper {
namespace {

constexpr size_t kMaxRecordBytes = 4096;
constexpr char kCurrentLink[] = "current";
constexpr char kReleasesPrefix[] = "releases/";
constexpr char kCompletionRecord[] = ".decnet-complete";

// The rules a revert's refusal names in the log.
constexpr char kRevertRule[] = "self-update-revert";
constexpr char kStorePathRule[] = "self-update-store-path";
constexpr char kStoreOwnerRule[] = "self-update-store-owner";
constexpr char kFsIdentityRule[] = "self-update-fs-identity";

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Error RecordError(std::string message) {
  return Error{ErrorCode::kFailed, "start-record", std::move(message)};
}

// The record, or nullopt when the file does not exist.
Result<std::optional<StartRecord>> LoadRecord(int state_dir) {
  auto text = ReadFileBeneath(state_dir, kDaemonStartFile, kMaxRecordBytes);
  if (!text) return tl::make_unexpected(RecordError(text.error().message));
  if (!*text) return std::optional<StartRecord>();
  auto record = ParseStartRecord(**text);
  if (!record) return tl::make_unexpected(record.error());
  return std::optional<StartRecord>(std::move(*record));
}

Result<void> SaveRecord(int state_dir, const StartRecord& record) {
  return AtomicWriteFile(state_dir, kDaemonStartFile, SerializeStartRecord(record), 0644);
}

// "releases/<id>" -> id; empty for anything else.
std::string BuildOfTarget(std::string_view target) {
  if (!target.starts_with(kReleasesPrefix)) return {};
  target.remove_prefix(sizeof kReleasesPrefix - 1);
  return IsBuildId(target) ? std::string(target) : std::string();
}

// True when releases/<id> is a real directory holding its completion record, reached
// without following any symlink.
bool IsCompleteBuild(int store, const std::string& id) {
  const UniqueFd fd =
      OpenBeneath(store, std::string(kReleasesPrefix) + id + "/" + kCompletionRecord, O_PATH);
  struct stat st {};
  return fd.valid() && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode);
}

// The current file-system uid and gid. setfsuid/setfsgid with an invalid id (-1) change
// nothing and return the current value: the only way to read them back.
uid_t CurrentFsUid() { return static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))); }
gid_t CurrentFsGid() { return static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))); }

// Takes the daemon's file-system identity (CAP_SETUID/CAP_SETGID allow it). With an fsuid
// other than 0 the kernel also clears CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER and
// the other file capabilities from the effective set until root's fsuid is back.
Result<void> TakeFsIdentity(const DaemonIdentity& daemon) {
  ::setfsgid(daemon.gid);
  ::setfsuid(daemon.uid);
  if (CurrentFsUid() != daemon.uid || CurrentFsGid() != daemon.gid)
    return Fail(ErrorCode::kFailed, kFsIdentityRule,
                "the daemon's file-system identity did not stick");
  return {};
}

// Root's file-system identity back, checked.
Result<void> RestoreRootFsIdentity() {
  ::setfsuid(0);
  ::setfsgid(0);
  if (CurrentFsUid() != 0 || CurrentFsGid() != 0)
    return Fail(ErrorCode::kFailed, kFsIdentityRule,
                "root's file-system identity could not be restored after the revert");
  return {};
}

// Flips `current` back to releases/<id> as the daemon, in a store the daemon owns. Refuses
// ("self-update-store-owner") a store directory not owned by the daemon's uid. May return
// with the daemon's file-system identity still taken: the caller restores root's, always.
Result<void> FlipCurrentAsDaemon(int store, const DaemonIdentity& daemon, const std::string& id,
                                 std::string_view store_path) {
  struct stat st {};
  if (::fstat(store, &st) != 0)
    return Fail(ErrorCode::kFailed, kRevertRule,
                std::string("fstat of the store: ") + std::strerror(errno));
  // SECURITY: the identity taken is the policy's daemon, never whoever owns the directory: a
  // store owned by root or by another user is not the daemon's, and the helper writes there
  // in nobody's name.
  if (daemon.uid == 0 || daemon.gid == 0 || st.st_uid != daemon.uid)
    return Fail(ErrorCode::kDenied, kStoreOwnerRule,
                std::string(store_path) + " is owned by uid " + std::to_string(st.st_uid) +
                    ", not by the daemon's uid " + std::to_string(daemon.uid));
  // SECURITY: the helper writes into the store only as the daemon, so it needs no
  // CAP_DAC_OVERRIDE and can do there nothing the daemon could not do itself.
  if (auto taken = TakeFsIdentity(daemon); !taken) return taken;
  // SECURITY: one symlink under a fresh unique name (AtomicSymlink skips any name planted
  // there, so a plant can neither block the revert nor be followed), renamed over `current`;
  // a `current` that is not a symlink stops the revert rather than replacing a directory.
  auto kind = InspectEntry(store, kCurrentLink);
  if (!kind || *kind != EntryKind::kSymlink)
    return Fail(ErrorCode::kFailed, kRevertRule, "current is not a symlink");
  if (auto flipped = AtomicSymlink(store, kCurrentLink, std::string(kReleasesPrefix) + id);
      !flipped)
    return Fail(ErrorCode::kFailed, kRevertRule, flipped.error().message);
  return {};
}

bool Proven(const StartRecord& r, uint64_t probation_ms) {
  if (r.build.empty() || r.hello_ms == 0) return false;
  if (r.ended != "failed") return true;
  return r.ended_ms >= r.hello_ms && r.ended_ms - r.hello_ms >= probation_ms;
}

std::string DescribeAttempt(const StartRecord& r) {
  if (r.hello_ms == 0) {
    if (r.ended == "failed") return "it exited before saying hello";
    return "it never said hello";
  }
  return "it failed " + std::to_string((r.ended_ms - r.hello_ms) / 1000) +
         " s after its hello, within the probation period";
}

// Applies `mutate` to the stored record, when there is one.
Result<void> UpdateRecord(int state_dir, void (*mutate)(StartRecord&, bool), bool arg) {
  auto record = LoadRecord(state_dir);
  if (!record) return tl::make_unexpected(record.error());
  if (!*record) return {};
  mutate(**record, arg);
  return SaveRecord(state_dir, **record);
}

}  // namespace

bool IsBuildId(std::string_view text) {
  if (text.size() != 16) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<StartRecord> ParseStartRecord(std::string_view text) {
  auto json = strict_json::ParseObject(text, 2);
  if (!json) return tl::make_unexpected(RecordError(json.error().message));
  strict_json::StrictObject o(*json, kDaemonStartFile);
  StartRecord r;
  const auto format = o.Uint("format");
  auto good = o.String("good");
  auto build = o.String("build");
  auto started = o.Uint("started_ms");
  auto hello = o.Uint("hello_ms");
  auto ended = o.String("ended");
  auto ended_ms = o.Uint("ended_ms");
  if (auto done = o.Finish(); !done) return tl::make_unexpected(RecordError(done.error().message));
  if (format != 1u) return tl::make_unexpected(RecordError("format must be 1"));
  for (const std::string* id : {&*good, &*build}) {
    if (!id->empty() && !IsBuildId(*id))
      return tl::make_unexpected(RecordError("a build id is not 16 lower-case hex digits"));
  }
  if (*ended != "" && *ended != "clean" && *ended != "failed")
    return tl::make_unexpected(RecordError("ended must be \"\", \"clean\" or \"failed\""));
  r.good = std::move(*good);
  r.build = std::move(*build);
  r.started_ms = *started;
  r.hello_ms = *hello;
  r.ended = std::move(*ended);
  r.ended_ms = *ended_ms;
  return r;
}

std::string SerializeStartRecord(const StartRecord& r) {
  // Build ids and `ended` are validated tokens: no escaping is needed.
  return "{\"format\":1,\"good\":\"" + r.good + "\",\"build\":\"" + r.build +
         "\",\"started_ms\":" + std::to_string(r.started_ms) +
         ",\"hello_ms\":" + std::to_string(r.hello_ms) + ",\"ended\":\"" + r.ended +
         "\",\"ended_ms\":" + std::to_string(r.ended_ms) + "}\n";
}

StartDecision DecideStart(StartRecord record, const std::string& current, uint64_t probation_ms,
                          bool good_complete) {
  StartDecision d;
  const bool last_proven = Proven(record, probation_ms);
  if (last_proven) record.good = record.build;
  const bool fresh_failed = !current.empty() && current != record.good && !record.good.empty() &&
                            record.build == current && !last_proven;
  if (fresh_failed) {
    if (good_complete) {
      d.action = StartAction::kRevert;
      d.why = "update-self: build " + current + " failed its last start (" +
              DescribeAttempt(record) + "); returning to build " + record.good;
    } else {
      d.why = "update-self: build " + current + " failed its last start (" +
              DescribeAttempt(record) + ") but the previous build " + record.good +
              " is no longer complete in the store; starting " + current + " again";
    }
  }
  d.record = std::move(record);
  return d;
}

Result<SelfUpdateStart> ApplySelfUpdateRevertDecision(const Policy& policy,
                                                      const DaemonIdentity& daemon, int state_dir) {
  SelfUpdateStart out;
  const std::string prefix = policy.daemon_store + "/" + kCurrentLink + "/";
  if (policy.daemon_store.empty() || !policy.daemon_binary.starts_with(prefix)) return out;
  out.active = true;
  // SECURITY: no component of the store's path may be a symlink: one planted on the way
  // would let its owner choose the directory the helper reads `current` from and writes to.
  const UniqueFd store = OpenNoSymlinks(policy.daemon_store, O_RDONLY | O_DIRECTORY);
  if (!store.valid()) {
    int err = errno;
    // With O_DIRECTORY a symlink as the last component reads as ENOTDIR; O_PATH opens the
    // link itself (no component before it is one), which tells.
    if (err == ENOTDIR) {
      const UniqueFd last = OpenNoSymlinks(policy.daemon_store, O_PATH);
      struct stat st {};
      if (last.valid() && ::fstat(last.get(), &st) == 0 && S_ISLNK(st.st_mode)) err = ELOOP;
    }
    if (err == ELOOP)
      out.message = "update-self: refused [" + std::string(kStorePathRule) + "]: daemon store " +
                    policy.daemon_store + " is reached through a symbolic link; nothing to decide";
    else
      out.message = "update-self: daemon store " + policy.daemon_store + " cannot be opened (" +
                    std::strerror(err) + "); nothing to decide";
    return out;
  }
  char target[256];
  const ssize_t n = ::readlinkat(store.get(), kCurrentLink, target, sizeof target - 1);
  const std::string current = n > 0 ? BuildOfTarget(std::string_view(target, size_t(n))) : "";
  if (current.empty()) {
    out.message = "update-self: " + policy.daemon_store + "/current is missing or not " +
                  "releases/<id>; nothing to decide";
    return out;
  }
  // An unreadable record must not keep the unit from starting: it is replaced by a fresh one,
  // which can only mean "no revert this time".
  auto loaded = LoadRecord(state_dir);
  std::string record_note;
  if (!loaded)
    record_note = "update-self: start record unreadable (" + loaded.error().message +
                  "); starting a fresh one";
  StartRecord record = loaded ? loaded->value_or(StartRecord{}) : StartRecord{};
  const bool good_complete = !record.good.empty() && IsCompleteBuild(store.get(), record.good);
  StartDecision decision =
      DecideStart(std::move(record), current, policy.self_update_probation_ms, good_complete);
  out.build = current;
  if (decision.action == StartAction::kRevert) {
    // A revert that cannot be made must not keep the unit from starting (it would loop):
    // the current build starts again and the log says why.
    const Result<void> flipped =
        FlipCurrentAsDaemon(store.get(), daemon, decision.record.good, policy.daemon_store);
    // SECURITY: root's file-system identity is restored on every path, and checked: start-up
    // never goes on (fork, open its directories, serve) with the daemon's.
    if (auto root = RestoreRootFsIdentity(); !root) return tl::make_unexpected(root.error());
    if (!flipped) {
      decision.why += "; the revert failed [" + flipped.error().rule + ": " +
                      flipped.error().message + "], starting " + current + " again";
    } else {
      out.build = decision.record.good;
    }
  }
  out.message = record_note.empty()    ? decision.why
                : decision.why.empty() ? record_note
                                       : record_note + "; " + decision.why;
  StartRecord next = decision.record;
  next.build = out.build;
  next.started_ms = NowMs();
  next.hello_ms = 0;
  next.ended.clear();
  next.ended_ms = 0;
  if (auto saved = SaveRecord(state_dir, next); !saved) return tl::make_unexpected(saved.error());
  return out;
}

Result<void> RecordDaemonHello(int state_dir) {
  return UpdateRecord(
      state_dir, [](StartRecord& r, bool) { r.hello_ms = NowMs(); }, false);
}

Result<void> RecordDaemonEnd(int state_dir, bool clean) {
  return UpdateRecord(
      state_dir,
      [](StartRecord& r, bool ok) {
        r.ended = ok ? "clean" : "failed";
        r.ended_ms = NowMs();
      },
      clean);
}

}  // namespace decnet::helper
