// ResolveTrustedSymlinks (trusted_symlinks.h). It walks one component at a time from a
// descriptor of the root with O_PATH | O_NOFOLLOW, so a link is seen (and judged) before it
// is followed, and ".." is applied to the components already resolved, none of which is a
// link. What it returns is judged again afterwards by the ordinary walk (RootOnlyPathCheck),
// which refuses any symlink: this only decides which links may be replaced by their targets.
#include "policy/trusted_symlinks.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include "proto/unique_fd.h"

namespace decnet::helper {
namespace {

constexpr char kRule[] = "unit-root-opened-path";

Error Refused(std::string message) { return Error{ErrorCode::kDenied, kRule, std::move(message)}; }

// Appends the components of `text` ("a/b/../c") to the front of `todo`, in order.
void PushFront(std::deque<std::string>& todo, std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t slash = std::min(text.find('/', start), text.size());
    parts.emplace_back(text.substr(start, slash - start));
    start = slash + 1;
  }
  todo.insert(todo.begin(), parts.begin(), parts.end());
}

std::string Shown(const std::vector<std::pair<std::string, UniqueFd>>& resolved,
                  std::string_view next = {}) {
  std::string out;
  for (const auto& [name, fd] : resolved) out += "/" + name;
  if (!next.empty()) out += "/" + std::string(next);
  return out.empty() ? "/" : out;
}

// A directory passed through: root's, and writable by root alone.
std::string JudgeDirectory(int fd, const std::string& shown) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "cannot stat " + shown + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return shown + " is not a directory";
  // SECURITY: whoever may write a directory on the way may put a link of their own there (or
  // swap the one root made), and so choose what the path resolves to.
  if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return shown + " is not a directory owned by root and writable by root alone";
  return "";
}

}  // namespace

Result<std::string> ResolveTrustedSymlinks(const std::string& root, std::string_view path) {
  if (path.empty() || path.front() != '/') return tl::make_unexpected(Refused("not absolute"));
  UniqueFd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0)
    return tl::make_unexpected(Refused("cannot open root " + root + ": " + std::strerror(errno)));
  if (std::string why = JudgeDirectory(root_fd.get(), "root " + root); !why.empty())
    return tl::make_unexpected(Refused(why));
  std::deque<std::string> todo;
  PushFront(todo, path.substr(1));
  // The components resolved so far, none a link, each with its descriptor.
  std::vector<std::pair<std::string, UniqueFd>> resolved;
  int links = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    const std::string shown = Shown(resolved, part);
    // SECURITY: the final component is never followed; the ordinary walk judges it as named.
    if (todo.empty()) return shown;
    const int dir = resolved.empty() ? root_fd.get() : resolved.back().second.get();
    UniqueFd next(::openat(dir, part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (next.get() < 0)
      return tl::make_unexpected(Refused("cannot open " + shown + ": " + std::strerror(errno)));
    struct stat st {};
    if (::fstat(next.get(), &st) != 0)
      return tl::make_unexpected(Refused("cannot stat " + shown + ": " + std::strerror(errno)));
    if (S_ISLNK(st.st_mode)) {
      // SECURITY: a link is followed only when root made it (and the directories that hold
      // it, judged as they were passed, are root's alone): then it is the system's layout,
      // such as /lib -> usr/lib, not a redirection someone else planted.
      if (st.st_uid != 0)
        return tl::make_unexpected(Refused(shown + " is a symbolic link not owned by root"));
      if (++links > kMaxTrustedSymlinks)
        return tl::make_unexpected(Refused(shown + ": too many symbolic links (a loop?)"));
      char target[4096];
      const ssize_t n = ::readlinkat(next.get(), "", target, sizeof target);
      if (n <= 0 || static_cast<size_t>(n) >= sizeof target)
        return tl::make_unexpected(Refused("cannot read the symbolic link " + shown));
      const std::string_view text(target, static_cast<size_t>(n));
      if (text.front() == '/') resolved.clear();
      PushFront(todo, text.front() == '/' ? text.substr(1) : text);
      continue;
    }
    if (std::string why = JudgeDirectory(next.get(), shown); !why.empty())
      return tl::make_unexpected(Refused(why));
    resolved.emplace_back(std::move(part), std::move(next));
  }
  return tl::make_unexpected(Refused("the path names no file"));
}

}  // namespace decnet::helper
