// The root-only path check: a path systemd opens as root on a unit's behalf
// (StandardOutput=file:, EnvironmentFile=, ...) must not be redirectable by anyone but root.
// It walks the real filesystem beneath the unit root one component at a time, so what it
// judges is what systemd will open, not a string that merely looks safe.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "policy/unit_policy.h"

namespace decnet::helper {
namespace {

// Why the object behind the O_PATH descriptor `fd` may not sit on a root-opened path, or
// "" when it may. Directories: owned by root and writable by root alone.
std::string JudgeComponent(int fd, const std::string& shown, bool last) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return "cannot stat " + shown + ": " + std::strerror(errno);
  if (S_ISLNK(st.st_mode)) return shown + " is a symbolic link";
  if (!last && !S_ISDIR(st.st_mode)) return shown + " is not a directory";
  if (last && !S_ISREG(st.st_mode)) return shown + " is not a regular file";
  if (st.st_uid != 0) return shown + " is not owned by root";
  if (!last && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return shown + " is writable by group or others";
  }
  if (last && st.st_nlink > 1) return shown + " has more than one hard link";
  return "";
}

// Walks `abs_path` beneath `root` one component at a time, never following a link.
std::string WalkRootOnly(const std::string& root, std::string_view abs_path) {
  auto parsed = AbsPath::Parse(abs_path);
  if (!parsed) return parsed.error().message;
  int fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return "cannot open root " + root + ": " + std::strerror(errno);
  std::string why = JudgeComponent(fd, "root " + root, false);
  std::string shown;
  std::string_view rest = std::string_view(parsed->str()).substr(1);
  while (why.empty() && !rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    const bool last = rest.empty();
    shown += "/" + part;
    // SECURITY: O_NOFOLLOW on O_PATH opens a link itself, so a planted link is seen, not
    // followed; fstat on O_PATH needs no capability, so this works as capless uid 0.
    const int next = openat(fd, part.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      if (!(last && errno == ENOENT)) why = "cannot open " + shown + ": " + std::strerror(errno);
      break;  // a missing final file is created by systemd in a checked directory
    }
    close(fd);
    fd = next;
    why = JudgeComponent(fd, shown, last);
  }
  close(fd);
  return why;
}

}  // namespace

PathChainCheck RootOnlyPathCheck(std::string root) {
  return
      [root = std::move(root)](std::string_view abs_path) { return WalkRootOnly(root, abs_path); };
}

}  // namespace decnet::helper
