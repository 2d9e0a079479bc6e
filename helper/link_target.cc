#include "helper/link_target.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "helper/fs_ops.h"

namespace decnet::helper {
namespace {

Error Missing(const AbsPath& target, int err) {
  return Error{ErrorCode::kNotFound, "link-target-missing",
               target.str() + ": " + std::strerror(err)};
}

// SECURITY: a directory others cannot search holds names only root may probe.
Result<void> CheckSearchable(int fd, const AbsPath& target) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return tl::make_unexpected(Missing(target, errno));
  if (!S_ISDIR(st.st_mode) || (st.st_mode & S_IXOTH) == 0) {
    return Fail(ErrorCode::kDenied, "link-target-private",
                target.str() + " lies in a directory others cannot search");
  }
  return {};
}

}  // namespace

Result<void> ResolveLinkTarget(const AbsPath& prefix, const AbsPath& target) {
  UniqueFd dir(::open(prefix.str().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return tl::make_unexpected(Missing(target, errno));
  if (auto ok = CheckSearchable(dir.get(), target); !ok) return ok;
  std::string_view rest = std::string_view(target.str()).substr(prefix.str().size());
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string_view component = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (component.empty()) continue;
    // SECURITY: one component at a time beneath the descriptor in hand, never through a
    // symlink: the daemon's links cannot lead root's lookup anywhere else.
    UniqueFd next = OpenBeneath(dir.get(), component, O_PATH);
    if (!next.valid()) {
      if (RefusedByResolve(errno)) {
        return Fail(
            ErrorCode::kDenied, "link-target-symlink",
            target.str() + " passes through a symlink or another mount below " + prefix.str());
      }
      return tl::make_unexpected(Missing(target, errno));
    }
    struct stat st {};
    if (::fstat(next.get(), &st) != 0) return tl::make_unexpected(Missing(target, errno));
    // O_PATH | O_NOFOLLOW hands back a last-component symlink itself rather than refusing it.
    if (S_ISLNK(st.st_mode)) {
      return Fail(ErrorCode::kDenied, "link-target-symlink",
                  target.str() + " passes through a symlink below " + prefix.str());
    }
    if (!rest.empty()) {
      if (auto ok = CheckSearchable(next.get(), target); !ok) return ok;
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      return Fail(ErrorCode::kDenied, "link-target-kind",
                  target.str() + " is neither a regular file nor a directory");
    }
    dir = std::move(next);
  }
  return {};
}

}  // namespace decnet::helper
