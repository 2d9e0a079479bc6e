#include "helper/dirs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace decnet::helper {
namespace {

enum class Access { kRootWritableOnly, kRootOnly };

// Opens a directory and checks who may change it.
Result<int> OpenCheckedDir(const std::string& path, Access access) {
  // SECURITY: O_NOFOLLOW on the last component; the configured path itself is root's.
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return Fail(ErrorCode::kFailed, "dir-open", path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Fail(ErrorCode::kFailed, "dir-open", path + ": " + std::strerror(errno));
  }
  mode_t forbidden = access == Access::kRootOnly ? 077 : 022;
  // SECURITY: a directory another user can write lets that user swap what we write.
  if (st.st_uid != 0 || (st.st_mode & forbidden) != 0) {
    ::close(fd);
    return Fail(ErrorCode::kDenied, access == Access::kRootOnly ? "state-dir-owner" : "dir-owner",
                path + " must be owned by root and " +
                    (access == Access::kRootOnly ? "closed to group and others"
                                                 : "not writable by group or others"));
  }
  return fd;
}

}  // namespace

Result<int> OpenStateDir(const Policy& policy) {
  if (::mkdir(policy.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(ErrorCode::kFailed, "dir-open", policy.state_dir + ": " + std::strerror(errno));
  }
  return OpenCheckedDir(policy.state_dir, Access::kRootOnly);
}

Result<HelperDirs> OpenHelperDirs(const Policy& policy) {
  HelperDirs dirs;
  auto state = OpenStateDir(policy);
  if (!state) return tl::make_unexpected(state.error());
  dirs.state_dir = *state;
  auto units = OpenCheckedDir(policy.unit_dir, Access::kRootWritableOnly);
  if (!units) {
    ::close(dirs.state_dir);
    return tl::make_unexpected(units.error());
  }
  dirs.unit_dir = *units;
  auto links = OpenCheckedDir(policy.link_dir, Access::kRootWritableOnly);
  if (!links) {
    ::close(dirs.state_dir);
    ::close(dirs.unit_dir);
    return tl::make_unexpected(links.error());
  }
  dirs.link_dir = *links;
  return dirs;
}

}  // namespace decnet::helper
