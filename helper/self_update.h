// The helper's half of update-self.
//
// The daemon runs from its own release store, `policy.daemon_store` (default
// /opt/decnet-updater/updater): `current -> releases/<id>`, where <id> is 16 lower-case hex
// digits, written by the daemon. update-self installs a new build there, flips `current`
// and asks for a restart of the unit. The helper records every start attempt in its own
// state directory (kDaemonStartFile) and, at the next start of the unit, during start-up and
// before privileges are dropped (it takes the daemon's file-system identity to write the
// daemon-owned store, which needs CAP_SETUID/CAP_SETGID), flips `current` back to the last
// proven build when a fresh one failed.
//
// Rules (DecideStart):
//   * An attempt is PROVEN when the daemon said hello and did not end with a failure within
//     `probation_ms` of its hello (an attempt with no recorded end, such as a unit stopped by
//     systemd, counts as proven once it said hello).
//   * At start-up the last attempt, if proven, makes its build the good one.
//   * The current build is started as it is when it is the good one, when there is no good
//     one, or when it has not been tried yet (the first start after update-self).
//   * Otherwise its last attempt failed: `current` is flipped back to the good build when
//     that build is still complete in the store; if it is not, the current build is started
//     again and the log says why nothing could be reverted.
//
// The store is opened with no symlink in any component of its path, and written only through
// that descriptor, as the daemon, never following a symlink: a fresh link is created beside
// `current` and renamed over it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "helper/daemon_identity.h"
#include "policy/policy.h"
#include "proto/result.h"

namespace decnet::helper {

// The start record's name in the helper's state directory.
inline constexpr char kDaemonStartFile[] = "daemon-start.json";

// What the helper remembers of the daemon's starts. Times are Unix milliseconds; 0: never.
//   {"format":1,"good":ID|"","build":ID|"","started_ms":N,"hello_ms":N,
//    "ended":""|"clean"|"failed","ended_ms":N}
struct StartRecord {
  std::string good;   // the last proven build
  std::string build;  // the build of the last attempt
  uint64_t started_ms = 0;
  uint64_t hello_ms = 0;
  std::string ended;  // "" (no end recorded), "clean" or "failed"
  uint64_t ended_ms = 0;
};

// Strict: refuses unknown or missing keys, wrong types, a build id that is neither empty nor
// 16 lower-case hex digits ("start-record").
[[nodiscard]] Result<StartRecord> ParseStartRecord(std::string_view text);
std::string SerializeStartRecord(const StartRecord& record);

// True when `text` is a build id: 16 lower-case hex digits.
bool IsBuildId(std::string_view text);

enum class StartAction {
  kStart,   // start the current build
  kRevert,  // flip current back to `good`, then start it
};

struct StartDecision {
  StartAction action = StartAction::kStart;
  StartRecord record;  // the record with the last attempt's verdict folded into `good`
  std::string why;     // for the log; empty when there is nothing to say
};

// The pure decision (see the rules above). `good_complete` says whether the good build is
// still complete in the store.
StartDecision DecideStart(StartRecord record, const std::string& current, uint64_t probation_ms,
                          bool good_complete);

// What start-up decided, for the log.
struct SelfUpdateStart {
  bool active = false;  // the policy runs the daemon from its store
  std::string build;    // the build that starts
  std::string message;  // non-empty: log it
};

// Start-up (root, CAP_SETUID and CAP_SETGID still held, before the fork): reads `current`,
// decides, flips back when needed, and records this attempt in the state directory. Inactive
// (nothing read or written) when policy.daemon_store is empty or policy.daemon_binary does not
// lie beneath its `current/`. Decides nothing (and records nothing) when the store's path has
// a symlink in any component ("self-update-store-path") or cannot be opened, or when the store
// has no `current` naming a build. The flip is made with `daemon`'s file-system identity
// (setfsuid/setfsgid), never with CAP_DAC_OVERRIDE, and is refused when the store directory is
// not owned by `daemon`'s uid ("self-update-store-owner"). A revert that is refused or fails
// never keeps the unit from starting: the current build starts again and the message names
// the rule. An unreadable start record is replaced by a fresh one (said in the message).
// Errors: the record cannot be saved, or root's file-system identity could not be restored
// after the flip ("self-update-fs-identity"); start-up must stop on either.
[[nodiscard]] Result<SelfUpdateStart> ApplySelfUpdateRevertDecision(const Policy& policy,
                                                                    const DaemonIdentity& daemon,
                                                                    int state_dir);

// After the daemon's hello, and when serving ended (the daemon closed the pair: `clean` when
// it exited 0). No-ops when the record is absent (inactive). Best effort: a failure is
// returned for the log and changes nothing else.
[[nodiscard]] Result<void> RecordDaemonHello(int state_dir);
[[nodiscard]] Result<void> RecordDaemonEnd(int state_dir, bool clean);

}  // namespace decnet::helper
