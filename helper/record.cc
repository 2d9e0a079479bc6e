#include "helper/record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "proto/json_strict.h"

namespace decnet::helper {
namespace {

constexpr size_t kMaxDetail = 2048;

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

Result<std::pair<UniqueFd, uint64_t>> OpenForAppend(int state_dir_fd, const char* name) {
  auto fd = OpenAppendBeneath(state_dir_fd, name, 0600);
  struct stat st {};
  if (!fd || ::fstat(fd->get(), &st) != 0) {
    return Fail(ErrorCode::kFailed, "record-open",
                std::string(name) + ": " + (fd ? std::strerror(errno) : fd.error().message));
  }
  return std::make_pair(std::move(*fd), static_cast<uint64_t>(st.st_size));
}

bool Refused(const std::string& result) {
  return result == "denied" || result == "malformed" || result == "not_found" ||
         result == "violation";
}

}  // namespace

Result<RequestRecord> RequestRecord::Open(int state_dir_fd, RecordLimits limits) {
  auto requests = OpenForAppend(state_dir_fd, kRequestRecordFile);
  if (!requests) return tl::make_unexpected(requests.error());
  auto changes = OpenForAppend(state_dir_fd, kChangeRecordFile);
  if (!changes) return tl::make_unexpected(changes.error());
  return RequestRecord(state_dir_fd, limits, std::move(requests->first), requests->second,
                       std::move(changes->first), changes->second);
}

RequestRecord::RequestRecord(int state_dir_fd, RecordLimits limits, UniqueFd requests,
                             uint64_t requests_size, UniqueFd changes, uint64_t changes_size)
    : state_dir_fd_(state_dir_fd),
      limits_(limits),
      requests_(std::move(requests)),
      requests_size_(requests_size),
      changes_(std::move(changes)),
      changes_size_(changes_size) {}

Result<void> RequestRecord::AdmitChange() const {
  // SECURITY: fail closed: a change the record could not hold is not made at all.
  if (changes_size_ + kMaxRecordLine > limits_.change_cap_bytes) {
    return Fail(ErrorCode::kDenied, "change-record-full",
                std::string(kChangeRecordFile) + " holds " + std::to_string(changes_size_) +
                    " bytes of its " + std::to_string(limits_.change_cap_bytes) +
                    "; the operator must archive it before the helper changes anything more");
  }
  return {};
}

Result<void> RequestRecord::Append(const RequestEntry& e, Effect effect) {
  const std::string detail =
      e.detail.size() > kMaxDetail ? e.detail.substr(0, kMaxDetail) + "..." : e.detail;
  nlohmann::json j = {{"ts", NowIso()}, {"pid", ::getpid()},    {"id", e.id},
                      {"type", e.type}, {"subject", e.subject}, {"result", e.result},
                      {"rule", e.rule}, {"detail", detail}};
  std::string line = j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  if (line.size() + 1 > kMaxRecordLine) line = line.substr(0, kMaxRecordLine - 1);
  line += '\n';
  Result<void> changed = {};
  if (effect == Effect::kChangesState && !Refused(e.result)) {
    changes_size_ += line.size();
    changed = WriteAll(changes_.get(), line);
  }
  if (requests_size_ + line.size() > limits_.rotate_bytes) {
    const std::string rotated = std::string(kRequestRecordFile) + ".1";
    if (::renameat(state_dir_fd_, kRequestRecordFile, state_dir_fd_, rotated.c_str()) == 0) {
      if (auto reopened = OpenAppendBeneath(state_dir_fd_, kRequestRecordFile, 0600)) {
        requests_ = std::move(*reopened);
        requests_size_ = 0;
      }
    }
  }
  requests_size_ += line.size();
  auto appended = WriteAll(requests_.get(), line);
  if (!changed) return changed;
  return appended;
}

Result<UnitRecord> UnitRecord::Load(int state_dir_fd, size_t max_bytes) {
  UnitRecord record(state_dir_fd, max_bytes);
  auto text = ReadFileBeneath(state_dir_fd, kUnitRecordFile, max_bytes);
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
  Units next = units_;
  next[name].pending = digest;
  return Save(std::move(next));
}

Result<void> UnitRecord::CommitWrite(const std::string& name, const std::string& digest) {
  Units next = units_;
  next[name] = Entry{digest, ""};
  return Save(std::move(next));
}

Result<void> UnitRecord::Forget(const std::string& name) {
  Units next = units_;
  next.erase(name);
  return Save(std::move(next));
}

Result<void> UnitRecord::Save(Units next) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, e] : next) {
    j[name] = {{"sha256", e.digest}};
    if (!e.pending.empty()) j[name]["pending"] = e.pending;
  }
  const std::string text = j.dump(2) + "\n";
  // SECURITY: capped when saved as when loaded: no sequence of writes can leave a record
  // the next start-up refuses to load.
  if (text.size() > max_bytes_) {
    return Fail(ErrorCode::kDenied, "unit-record-cap",
                std::string(kUnitRecordFile) + " would grow to " + std::to_string(text.size()) +
                    " bytes, over its cap of " + std::to_string(max_bytes_));
  }
  if (auto saved = AtomicWriteFile(state_dir_fd_, kUnitRecordFile, text, 0600); !saved) {
    return saved;
  }
  units_ = std::move(next);
  return {};
}

}  // namespace decnet::helper
