// The daemon's audit log: one JSON line per operation (update, update-self, rollback), in
// STATE_DIR/audit.jsonl, appended and fsynced. Who (the client's certificate fingerprint and
// CN), what (digest, release), the result, the rollback cause and the durations of each step.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "proto/result.h"

namespace decnet::daemon {

struct AuditEntry {
  std::string op;                  // "update", "update-self", "rollback", "recovery"
  std::string client_fingerprint;  // SHA-256 of the client's DER certificate
  std::string client_cn;
  std::string sha256;              // tarball digest, when there was one
  std::string release;             // release id acted on
  std::string version;
  std::string result;              // "updated", "rolled_back", "failed", "refused", ...
  std::string rule;                // the refusing or failing rule
  std::string error;               // human sentence
  std::string rollback_cause;      // why an automatic rollback happened
  std::vector<std::string> signed_by;  // trusted key ids that signed the release (when signed)
  std::string note;                // anything else the line must say (a rollback below the floor)
  std::vector<std::pair<std::string, int64_t>> durations_ms;  // step -> milliseconds
};

class AuditLog {
 public:
  // Opens (creating 0640) `path` for appending.
  [[nodiscard]] static Result<AuditLog> Open(const std::string& path);
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&&) = delete;
  ~AuditLog();
  // Appends one line (with "ts") and fsyncs. Thread-safe.
  [[nodiscard]] Result<void> Append(const AuditEntry& entry);
  // The last `max_lines` lines, oldest first (for GET /audit).
  [[nodiscard]] Result<std::vector<std::string>> Tail(size_t max_lines) const;

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  mutable std::mutex mu_;
};

}  // namespace decnet::daemon
