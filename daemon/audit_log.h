// The daemon's audit log: one JSON line per operation (update, update-self, rollback), in
// STATE_DIR/audit.jsonl, appended and fsynced. Who (the client's certificate fingerprint and
// CN), what (digest, release), the result, the rollback cause and the durations of each step.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/result.h"

namespace decnet::daemon {

struct AuditEntry {
  std::string op;                  // "update", "update-self", "rollback", "recovery"
  std::string client_fingerprint;  // SHA-256 of the client's DER certificate
  std::string client_cn;
  std::string sha256;   // tarball digest, when there was one
  std::string release;  // release id acted on
  std::string version;
  std::string result;                  // "updated", "rolled_back", "failed", "refused", ...
  std::string rule;                    // the refusing or failing rule
  std::string error;                   // human sentence
  std::string rollback_cause;          // why an automatic rollback happened
  std::vector<std::string> signed_by;  // trusted key ids that signed the release (when signed)
  std::string note;  // anything else the line must say (a rollback below the floor)
  std::vector<std::pair<std::string, int64_t>> durations_ms;  // step -> milliseconds
};

// The last operation a line recorded, as GET /health shows it to the master. Operations are
// the lines of "update", "update-self" and "rollback" (answered, refused, failed or found at
// start-up); "recovery" (start-up reconciliation) and "hello" (the helper's greeting) are not.
struct AuditOperation {
  std::string op;
  std::string result;
  std::string rule;     // empty when none
  std::string version;  // empty when none
  std::string at;       // the line's "ts"
};

// True for the ops AuditOperation covers.
bool IsAuditedOperation(std::string_view op);

class AuditLog {
 public:
  // Opens (creating 0640) `path` for appending and reads back the last operation it recorded
  // (LastOperation), so that it survives a restart; a file that cannot be read, or whose
  // lines are not JSON, only leaves LastOperation empty.
  [[nodiscard]] static Result<AuditLog> Open(const std::string& path);
  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&&) = delete;
  ~AuditLog();
  // Appends one line (with "ts") and fsyncs. Thread-safe.
  [[nodiscard]] Result<void> Append(const AuditEntry& entry);
  // The last `max_lines` lines, oldest first (for GET /audit).
  [[nodiscard]] Result<std::vector<std::string>> Tail(size_t max_lines) const;
  // The last operation appended (or, before any, read back at Open); nullopt when none.
  // Updated only once its line was written. Thread-safe.
  std::optional<AuditOperation> LastOperation() const;

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_;
  mutable std::mutex mu_;
  std::optional<AuditOperation> last_operation_;  // under mu_
};

}  // namespace decnet::daemon
