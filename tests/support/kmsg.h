// Reading the kernel's seccomp audit record (type=1326) from /dev/kmsg in tests that show the
// filter killing a process: the record names the system call the kernel refused.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

namespace decnet::test {

// The syscall number of the seccomp record for `pid`, if /dev/kmsg is readable and holds one
// now (kauditd prints asynchronously and the kernel rate-limits: callers retry or accept none).
inline std::optional<long> AuditedSyscall(pid_t pid) {
  const int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<long> found;
  char buf[8192];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EPIPE) continue;  // a record was overwritten while we read
    if (n < 0) break;                       // EAGAIN: the end of the buffer
    const std::string rec(buf, static_cast<size_t>(n));
    if (rec.find("type=1326") == std::string::npos ||
        rec.find(" pid=" + std::to_string(pid) + " ") == std::string::npos)
      continue;
    const size_t at = rec.find(" syscall=");
    if (at != std::string::npos) found = std::atol(rec.c_str() + at + 9);
  }
  ::close(fd);
  return found;
}

}  // namespace decnet::test
