#include "daemon/version_floor.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "proto/json_strict.h"
#include "proto/release_auth.h"

namespace decnet::daemon {
namespace {

constexpr size_t kMaxFloorFileBytes = 4096;

Error FileError(const std::string& path, std::string what) {
  return Error{ErrorCode::kFailed, "version-floor-file", path + ": " + std::move(what)};
}

Error WriteError(const std::string& path, const char* step) {
  return Error{ErrorCode::kFailed, "version-floor-write",
               path + ": " + step + ": " + std::strerror(errno)};
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

nlohmann::json VersionOrNull(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

Result<void> CheckAgainstFloor(ReleaseKind kind, FloorVersion version,
                               const std::optional<std::string>& floor, Downgrade downgrade) {
  if (!floor) return {};
  const auto order = version.declared ? CompareVersions(version.text, *floor) : std::nullopt;
  if (order && *order > 0) return {};
  if (downgrade == Downgrade::kPermitted) return {};
  const std::string what =
      std::string(ReleaseKindName(kind)) + " release " + std::string(version.text);
  const std::string floor_text = "the highest " + std::string(ReleaseKindName(kind)) +
                                 " release ever activated here, " + *floor;
  if (downgrade == Downgrade::kRefused) {
    return Fail(ErrorCode::kDenied, "version-downgrade-refused",
                what + " is not newer than " + floor_text +
                    ", and this updater's configuration does not allow downgrades "
                    "(allow_downgrade is false)");
  }
  if (!order) {
    return Fail(ErrorCode::kDenied, "version-unordered",
                what + " has no place in the version order (a commit or digest), and " +
                    floor_text +
                    ", is the floor; push it with downgrade=true where "
                    "allow_downgrade permits");
  }
  return Fail(ErrorCode::kDenied, "version-not-newer", what + " is not newer than " + floor_text);
}

Result<VersionFloor> VersionFloor::Open(const std::string& state_dir) {
  VersionFloor out(state_dir);
  const std::string path = state_dir + "/" + kVersionFloorFile;
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return tl::make_unexpected(FileError(path, std::string("open: ") + std::strerror(errno)));
  }
  struct stat st {};
  std::string bytes;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size <= static_cast<off_t>(kMaxFloorFileBytes);
  if (ok) {
    bytes.resize(static_cast<size_t>(st.st_size));
    ok = ::pread(fd, bytes.data(), bytes.size(), 0) == st.st_size;
  }
  ::close(fd);
  if (!ok) return tl::make_unexpected(FileError(path, "not a small regular file"));
  auto parsed = strict_json::ParseObject(bytes, 2);
  if (!parsed) return tl::make_unexpected(FileError(path, parsed.error().message));
  const nlohmann::json& j = *parsed;
  auto format = j.find("format");
  if (j.size() != 3 || format == j.end() || !format->is_number_unsigned() ||
      format->get<uint64_t>() != 1)
    return tl::make_unexpected(FileError(path, "not {\"format\":1,\"service\",\"updater\"}"));
  for (const char* key : {"service", "updater"}) {
    auto v = j.find(key);
    if (v == j.end() ||
        !(v->is_null() || (v->is_string() && IsOrderedVersion(v->get<std::string>()))))
      return tl::make_unexpected(
          FileError(path, std::string("\"") + key + "\" must be null or an ordered version"));
    if (v->is_string())
      (std::string(key) == "service" ? out.service_ : out.updater_) = v->get<std::string>();
  }
  return out;
}

VersionFloor::VersionFloor(VersionFloor&& other) noexcept
    : state_dir_(std::move(other.state_dir_)),
      service_(std::move(other.service_)),
      updater_(std::move(other.updater_)) {}

std::optional<std::string> VersionFloor::Get(ReleaseKind kind) const {
  std::lock_guard lock(mu_);
  return kind == ReleaseKind::kService ? service_ : updater_;
}

Result<void> VersionFloor::Check(ReleaseKind kind, FloorVersion version,
                                 Downgrade downgrade) const {
  return CheckAgainstFloor(kind, version, Get(kind), downgrade);
}

Result<void> VersionFloor::Raise(ReleaseKind kind, FloorVersion declared) {
  if (!declared.declared || !IsOrderedVersion(declared.text)) return {};
  std::string_view version = declared.text;
  std::lock_guard lock(mu_);
  std::optional<std::string>& floor = kind == ReleaseKind::kService ? service_ : updater_;
  if (floor) {
    auto order = CompareVersions(version, *floor);
    if (!order || *order <= 0) return {};
  }
  floor = std::string(version);
  return Write();
}

Result<void> VersionFloor::Write() const {
  const std::string path = state_dir_ + "/" + kVersionFloorFile;
  const std::string tmp = path + ".tmp";
  const nlohmann::json j = {
      {"format", 1}, {"service", VersionOrNull(service_)}, {"updater", VersionOrNull(updater_)}};
  const std::string text = j.dump() + "\n";
  // SECURITY: the floor is written whole and renamed into place: a crash never leaves a torn
  // file that would refuse start-up or, worse, read as a lower floor.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
  if (fd < 0) return tl::make_unexpected(WriteError(tmp, "open"));
  const bool written = WriteAll(fd, text) && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!written) {
    Error e = WriteError(tmp, "write");
    ::unlink(tmp.c_str());
    return tl::make_unexpected(e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = WriteError(path, "rename");
    ::unlink(tmp.c_str());
    return tl::make_unexpected(e);
  }
  int dir = ::open(state_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return tl::make_unexpected(WriteError(state_dir_, "open"));
  const bool synced = ::fsync(dir) == 0;
  ::close(dir);
  if (!synced) return tl::make_unexpected(WriteError(state_dir_, "fsync"));
  return {};
}

}  // namespace decnet::daemon
