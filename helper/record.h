// The helper's own records in its root-owned state directory, which the daemon cannot write:
//  * requests.jsonl: one JSON line per request served or refused, and per violation. It
//    rotates (to requests.jsonl.1), so a flood of cheap refusals costs old refusals only;
//  * changes.jsonl: a second line for every state-changing request the helper acted on
//    (write_unit, remove_unit, daemon_reload, restart_unit, repoint_link that were not
//    refused). Never rotated: once it is full, state-changing requests are refused, so no
//    change ever happens without its record;
//  * units.json: the unit files the helper wrote, by name, with the digest of their content.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "helper/fs_ops.h"
#include "proto/result.h"

namespace decnet::helper {

inline constexpr char kRequestRecordFile[] = "requests.jsonl";
inline constexpr char kChangeRecordFile[] = "changes.jsonl";
inline constexpr char kUnitRecordFile[] = "units.json";

// Whether a request can change the host (so its record must never be lost).
enum class Effect { kReadOnly, kChangesState };

// One line of requests.jsonl (and changes.jsonl).
struct RequestEntry {
  uint64_t id = 0;
  std::string type;     // request type, or "-" for a frame that never decoded
  std::string subject;  // unit or link name, "" when none
  std::string result;   // "ok", an ErrorCodeName, or "violation"
  std::string rule;     // the refusing rule, "" on success
  std::string detail;   // job result, "changed", or the error message (cut at 2 KiB)
};

// The sizes at which the records rotate or fill.
struct RecordLimits {
  uint64_t rotate_bytes = 8 * 1024 * 1024;       // requests.jsonl beyond this -> .1
  uint64_t change_cap_bytes = 64 * 1024 * 1024;  // changes.jsonl is full at this size
};

// The longest line either file holds: what AdmitChange keeps room for.
inline constexpr uint64_t kMaxRecordLine = 4096;

// Append-only request record. Lines are written with one write(2) each, without fsync: the
// record survives the helper's death, not a power cut.
class RequestRecord {
 public:
  // Opens (creating, mode 0600) both files beneath the state directory. kFailed
  // ("record-open") when either cannot be opened.
  static Result<RequestRecord> Open(int state_dir_fd, RecordLimits limits = {});

  // Whether a state-changing request may be served: kDenied ("change-record-full") when
  // changes.jsonl has no room left for its line. Checked before the request is acted on.
  [[nodiscard]] Result<void> AdmitChange() const;

  // Appends an entry (with time and helper pid) to requests.jsonl, and to changes.jsonl as
  // well when `effect` is kChangesState and the request was not refused (denied, malformed,
  // not_found). Failures are returned for the caller to log.
  [[nodiscard]] Result<void> Append(const RequestEntry& entry, Effect effect = Effect::kReadOnly);

 private:
  RequestRecord(int state_dir_fd, RecordLimits limits, UniqueFd requests, uint64_t requests_size,
                UniqueFd changes, uint64_t changes_size);
  int state_dir_fd_;
  RecordLimits limits_;
  UniqueFd requests_;
  uint64_t requests_size_;
  UniqueFd changes_;
  uint64_t changes_size_;
};

// The largest units.json the helper loads or saves.
inline constexpr size_t kMaxUnitRecordBytes = 4 * 1024 * 1024;

// Which unit files are the helper's. A name maps to the digest of the content last written
// and, while a write is under way, the digest being written (so a crash between the file
// and the record leaves both contents recognised).
class UnitRecord {
 public:
  // Loads units.json (a missing file is an empty record). kFailed ("record-corrupt") for a
  // file that does not parse; kDenied ("fs-not-regular") for one larger than `max_bytes`.
  static Result<UnitRecord> Load(int state_dir_fd, size_t max_bytes = kMaxUnitRecordBytes);
  // True when `digest` is the recorded or pending content of `name`.
  bool Owns(const std::string& name, const std::string& digest) const;
  bool Knows(const std::string& name) const { return units_.contains(name); }
  // How many units the record holds.
  size_t Count() const { return units_.size(); }
  // The names the record holds, in order (the units the helper wrote).
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, entry] : units_) names.push_back(name);
    return names;
  }
  // Marks a write of `digest` as under way and saves the record.
  [[nodiscard]] Result<void> BeginWrite(const std::string& name, const std::string& digest);
  // Records `digest` as the content of `name` and saves.
  [[nodiscard]] Result<void> CommitWrite(const std::string& name, const std::string& digest);
  // Forgets `name` (after removal) and saves.
  [[nodiscard]] Result<void> Forget(const std::string& name);

 private:
  struct Entry {
    std::string digest;
    std::string pending;
  };
  using Units = std::map<std::string, Entry>;
  UnitRecord(int state_dir_fd, size_t max_bytes)
      : state_dir_fd_(state_dir_fd), max_bytes_(max_bytes) {}
  // Saves `next` and, only once it is on disk, makes it the record. kDenied
  // ("unit-record-cap") when it would be larger than what Load accepts: the record on disk
  // then stays as it was, so the helper can always start again.
  [[nodiscard]] Result<void> Save(Units next);
  int state_dir_fd_;
  size_t max_bytes_;
  Units units_;
};

}  // namespace decnet::helper
