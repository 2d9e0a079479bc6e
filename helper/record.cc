#include "helper/record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "helper/fs_ops.h"
#include "proto/json_strict.h"

namespace decnet::helper {
namespace {

constexpr uint64_t kRotateBytes = 8 * 1024 * 1024;
constexpr size_t kMaxUnitRecord = 4 * 1024 * 1024;

int OpenAppend(int state_dir_fd) {
  auto fd = OpenAppendBeneath(state_dir_fd, kRequestRecordFile, 0600);
  return fd ? *fd : -1;
}

std::string NowIso() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(secs.count() % 1000));
  return std::string(buf) + ms;
}

}  // namespace

Result<RequestRecord> RequestRecord::Open(int state_dir_fd) {
  int fd = OpenAppend(state_dir_fd);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    return Fail(ErrorCode::kFailed, "record-open",
                std::string("request record: ") + std::strerror(errno));
  }
  return RequestRecord(state_dir_fd, fd, static_cast<uint64_t>(st.st_size));
}

RequestRecord::RequestRecord(int state_dir_fd, int fd, uint64_t size)
    : state_dir_fd_(state_dir_fd), fd_(fd), size_(size) {}

RequestRecord::RequestRecord(RequestRecord&& other) noexcept
    : state_dir_fd_(other.state_dir_fd_), fd_(other.fd_), size_(other.size_) {
  other.fd_ = -1;
}

RequestRecord::~RequestRecord() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> RequestRecord::Append(const RequestEntry& e) {
  nlohmann::json j = {{"ts", NowIso()}, {"pid", ::getpid()},    {"id", e.id},
                      {"type", e.type}, {"subject", e.subject}, {"result", e.result},
                      {"rule", e.rule}, {"detail", e.detail}};
  std::string line = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (size_ + line.size() > kRotateBytes) {
    if (::renameat(state_dir_fd_, kRequestRecordFile, state_dir_fd_,
                   (std::string(kRequestRecordFile) + ".1").c_str()) == 0) {
      int fd = OpenAppend(state_dir_fd_);
      if (fd >= 0) {
        ::close(fd_);
        fd_ = fd;
        size_ = 0;
      }
    }
  }
  size_ += line.size() + 1;
  return AppendLine(fd_, line);
}

Result<UnitRecord> UnitRecord::Load(int state_dir_fd) {
  UnitRecord record(state_dir_fd);
  auto text = ReadFileBeneath(state_dir_fd, kUnitRecordFile, kMaxUnitRecord);
  if (!text) return tl::make_unexpected(text.error());
  if (!*text) return record;
  auto parsed = strict_json::ParseObject(**text, 3);
  if (!parsed) {
    return Fail(ErrorCode::kFailed, "record-corrupt",
                std::string(kUnitRecordFile) + ": " + parsed.error().message);
  }
  for (const auto& [name, value] : parsed->items()) {
    if (!value.is_object() || !value.contains("sha256") || !value["sha256"].is_string()) {
      return Fail(ErrorCode::kFailed, "record-corrupt", "bad entry for " + name);
    }
    Entry entry{value["sha256"].get<std::string>(), ""};
    if (value.contains("pending") && value["pending"].is_string()) {
      entry.pending = value["pending"].get<std::string>();
    }
    record.units_[name] = entry;
  }
  return record;
}

bool UnitRecord::Owns(const std::string& name, const std::string& digest) const {
  auto it = units_.find(name);
  if (it == units_.end()) return false;
  return it->second.digest == digest ||
         (!it->second.pending.empty() && it->second.pending == digest);
}

Result<void> UnitRecord::BeginWrite(const std::string& name, const std::string& digest) {
  units_[name].pending = digest;
  return Save();
}

Result<void> UnitRecord::CommitWrite(const std::string& name, const std::string& digest) {
  units_[name] = Entry{digest, ""};
  return Save();
}

Result<void> UnitRecord::Forget(const std::string& name) {
  units_.erase(name);
  return Save();
}

Result<void> UnitRecord::Save() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, e] : units_) {
    j[name] = {{"sha256", e.digest}};
    if (!e.pending.empty()) j[name]["pending"] = e.pending;
  }
  return AtomicWriteFile(state_dir_fd_, kUnitRecordFile, j.dump(2) + "\n", 0600);
}

}  // namespace decnet::helper
