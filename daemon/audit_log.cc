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

}  // namespace

Result<AuditLog> AuditLog::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Fail(ErrorCode::kFailed, "audit-open", path + ": " + std::strerror(errno));
  return AuditLog(path, fd);
}

AuditLog::AuditLog(AuditLog&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> AuditLog::Append(const AuditEntry& e) {
  nlohmann::json durations = nlohmann::json::object();
  for (const auto& [step, ms] : e.durations_ms) durations[step] = ms;
  nlohmann::json j = {{"ts", NowIso()},
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
  return {};
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
