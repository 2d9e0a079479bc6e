#include "daemon/audit_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>

namespace decnet::daemon {
namespace {

std::string NowIso() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

std::string StringField(const nlohmann::json& line, const char* key) {
  auto it = line.find(key);
  return it != line.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The last operation line of the file at `path`; nullopt when there is none or the file cannot
// be read. Lines that are not JSON objects (a torn last line after a crash) are skipped.
std::optional<AuditOperation> ReadLastOperation(const std::string& path) {
  std::ifstream in(path);
  std::optional<AuditOperation> last;
  for (std::string text; std::getline(in, text);) {
    nlohmann::json line = nlohmann::json::parse(text, nullptr, false);
    if (!line.is_object() || !IsAuditedOperation(StringField(line, "op"))) continue;
    last = AuditOperation{StringField(line, "op"), StringField(line, "result"),
                          StringField(line, "rule"), StringField(line, "version"),
                          StringField(line, "ts")};
  }
  return last;
}

}  // namespace

bool IsAuditedOperation(std::string_view op) {
  return op == "update" || op == "update-self" || op == "rollback";
}

Result<AuditLog> AuditLog::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Fail(ErrorCode::kFailed, "audit-open", path + ": " + std::strerror(errno));
  AuditLog log(path, fd);
  log.last_operation_ = ReadLastOperation(path);
  return log;
}

AuditLog::AuditLog(AuditLog&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  std::lock_guard lock(other.mu_);
  last_operation_ = std::move(other.last_operation_);
  other.fd_ = -1;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> AuditLog::Append(const AuditEntry& e) {
  nlohmann::json durations = nlohmann::json::object();
  for (const auto& [step, ms] : e.durations_ms) durations[step] = ms;
  const std::string ts = NowIso();
  nlohmann::json j = {{"ts", ts},
                      {"op", e.op},
                      {"client", {{"fingerprint", e.client_fingerprint}, {"cn", e.client_cn}}},
                      {"sha256", e.sha256},
                      {"release", e.release},
                      {"version", e.version},
                      {"result", e.result},
                      {"rule", e.rule},
                      {"error", e.error},
                      {"rollback_cause", e.rollback_cause},
                      {"durations_ms", durations}};
  // Ours, only when there is something to say: lines stay as they were for unsigned pushes.
  if (!e.signed_by.empty()) j["signed_by"] = e.signed_by;
  if (!e.note.empty()) j["note"] = e.note;
  // ensure_ascii: names and CNs from certificates come out escaped, never as raw bytes.
  std::string line = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mu_);
  std::string_view rest = line;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(ErrorCode::kFailed, "audit-write", path_ + ": " + std::strerror(errno));
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fdatasync(fd_) != 0) {
    return Fail(ErrorCode::kFailed, "audit-write", path_ + ": " + std::strerror(errno));
  }
  if (IsAuditedOperation(e.op))
    last_operation_ = AuditOperation{e.op, e.result, e.rule, e.version, ts};
  return {};
}

std::optional<AuditOperation> AuditLog::LastOperation() const {
  std::lock_guard lock(mu_);
  return last_operation_;
}

Result<std::vector<std::string>> AuditLog::Tail(size_t max_lines) const {
  std::lock_guard lock(mu_);
  std::ifstream in(path_);
  if (!in) return Fail(ErrorCode::kFailed, "audit-read", path_ + ": cannot read");
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(std::move(line));
    if (last.size() > max_lines) last.pop_front();
  }
  return std::vector<std::string>(last.begin(), last.end());
}

}  // namespace decnet::daemon
