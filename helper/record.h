// The helper's own records in its root-owned state directory, which the daemon cannot write:
//  * requests.jsonl: one JSON line per request served or refused, and per violation;
//  * units.json: the unit files the helper wrote, by name, with the digest of their content.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "proto/result.h"

namespace decnet::helper {

inline constexpr char kRequestRecordFile[] = "requests.jsonl";
inline constexpr char kUnitRecordFile[] = "units.json";

// One line of requests.jsonl.
struct RequestEntry {
  uint64_t id = 0;
  std::string type;     // request type, or "-" for a frame that never decoded
  std::string subject;  // unit or link name, "" when none
  std::string result;   // "ok", an ErrorCodeName, or "violation"
  std::string rule;     // the refusing rule, "" on success
  std::string detail;   // job result, "changed", or the error message
};

// Append-only request record. Lines are written with one write(2) each, without fsync: the
// record survives the helper's death, not a power cut. Rotated to requests.jsonl.1 at 8 MiB.
class RequestRecord {
 public:
  static Result<RequestRecord> Open(int state_dir_fd);
  RequestRecord(RequestRecord&& other) noexcept;
  RequestRecord& operator=(RequestRecord&&) = delete;
  ~RequestRecord();
  // Appends an entry (with time and helper pid). Failures are returned for the caller to log.
  [[nodiscard]] Result<void> Append(const RequestEntry& entry);

 private:
  RequestRecord(int state_dir_fd, int fd, uint64_t size);
  int state_dir_fd_;
  int fd_;
  uint64_t size_;
};

// Which unit files are the helper's. A name maps to the digest of the content last written
// and, while a write is under way, the digest being written (so a crash between the file
// and the record leaves both contents recognised).
class UnitRecord {
 public:
  static Result<UnitRecord> Load(int state_dir_fd);
  // True when `digest` is the recorded or pending content of `name`.
  bool Owns(const std::string& name, const std::string& digest) const;
  bool Knows(const std::string& name) const { return units_.contains(name); }
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
  explicit UnitRecord(int state_dir_fd) : state_dir_fd_(state_dir_fd) {}
  [[nodiscard]] Result<void> Save() const;
  int state_dir_fd_;
  std::map<std::string, Entry> units_;
};

}  // namespace decnet::helper
