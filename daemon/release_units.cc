#include "daemon/release_units.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "policy/unit_policy.h"
#include "proto/helper_protocol.h"

namespace decnet::daemon {
namespace {

// Opens `name` beneath `dir` as a directory, never through a symlink. -1 with errno.
int OpenSubdir(int dir, const char* name) {
  return ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

Result<std::string> ReadUnitFile(int dir, const std::string& name) {
  int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return Fail(ErrorCode::kDenied, "release-unit-file",
                std::string(kReleaseUnitDir) + "/" + name + " is not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > proto::kMaxUnitContent) {
    ::close(fd);
    return Fail(ErrorCode::kDenied, "unit-size-cap",
                std::string(kReleaseUnitDir) + "/" + name + " is over 32 KiB");
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = ::pread(fd, content.data(), content.size(), 0);
  ::close(fd);
  if (n != st.st_size) {
    return Fail(ErrorCode::kFailed, "release-unit-file", "reading " + name + " failed");
  }
  return content;
}

}  // namespace

Result<std::optional<std::vector<ReleaseUnit>>> ReadReleaseUnits(int release_dir_fd) {
  int dir = release_dir_fd;
  int opened[3] = {-1, -1, -1};
  const char* parts[] = {"etc", "systemd", "system"};
  for (int i = 0; i < 3; ++i) {
    opened[i] = OpenSubdir(dir, parts[i]);
    if (opened[i] < 0) {
      int err = errno;
      for (int j = 0; j < i; ++j) ::close(opened[j]);
      if (err == ENOENT) return std::optional<std::vector<ReleaseUnit>>();
      return Fail(
          ErrorCode::kDenied, "release-unit-file",
          std::string(kReleaseUnitDir) + " is not a plain directory: " + std::strerror(err));
    }
    dir = opened[i];
  }
  ::close(opened[0]);
  ::close(opened[1]);
  DIR* listing = ::fdopendir(opened[2]);
  if (listing == nullptr) {
    ::close(opened[2]);
    return Fail(ErrorCode::kFailed, "release-unit-file",
                "cannot list " + std::string(kReleaseUnitDir));
  }
  std::vector<ReleaseUnit> units;
  Result<void> problem;
  while (dirent* e = ::readdir(listing)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    auto unit = UnitName::Parse(name);
    if (!unit) {
      problem = Fail(ErrorCode::kDenied, "release-unit-file",
                     std::string(kReleaseUnitDir) + "/" + name + ": " + unit.error().message);
      break;
    }
    auto content = ReadUnitFile(::dirfd(listing), name);
    if (!content) {
      problem = tl::make_unexpected(content.error());
      break;
    }
    units.push_back({std::move(*unit), std::move(*content)});
  }
  ::closedir(listing);
  if (!problem) return tl::make_unexpected(problem.error());
  std::sort(units.begin(), units.end(),
            [](const ReleaseUnit& a, const ReleaseUnit& b) { return a.name < b.name; });
  return std::optional<std::vector<ReleaseUnit>>(std::move(units));
}

Result<void> CheckReleaseUnits(const helper::Policy& policy,
                               const std::vector<ReleaseUnit>& units) {
  auto path_check = helper::RootOnlyPathCheck(policy.unit_root);
  for (const auto& u : units) {
    const std::string where = std::string(kReleaseUnitDir) + "/" + u.name.str();
    if (auto ok = helper::CheckUnitName(policy, u.name, helper::UnitUse::kWrite); !ok) {
      return Fail(ErrorCode::kDenied, ok.error().rule, where + ": " + ok.error().message);
    }
    auto refusals = helper::CheckUnitContent(policy, u.name, u.content, path_check);
    if (!refusals.empty()) {
      const auto& r = refusals.front();
      return Fail(ErrorCode::kDenied, r.rule,
                  where + ":" + std::to_string(r.line) + ": " + r.message);
    }
  }
  return {};
}

}  // namespace decnet::daemon
