// Waiting in tests for the event itself rather than for time to pass: a descriptor that
// becomes ready, a process that exits, a bus that says where it listens. Every wait has an
// upper bound, long enough that only a hang reaches it; none asserts a duration.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace decnet::test {

// The bound of every wait below unless a caller gives one: it only catches hangs.
inline constexpr std::chrono::milliseconds kHangBound{30'000};

// Polls `done` every `every` until it holds or `bound` passes; true when it held. Only for
// state that signals nothing (a server's counters, /proc, the kernel log): each caller says
// in a comment why no event exists. Anything that can be waited on uses the functions below.
template <typename F>
bool Eventually(F&& done, std::chrono::milliseconds bound = kHangBound,
                std::chrono::milliseconds every = std::chrono::milliseconds(10)) {
  const auto end = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(every);
  }
  return true;
}

// Milliseconds left until `end` for poll(2), at least 0.
inline int MillisecondsLeft(std::chrono::steady_clock::time_point end) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `fd` is ready for `events` (POLLHUP and POLLERR count as ready). False after
// `bound`, or when poll(2) fails.
inline bool WaitForFd(int fd, short events, std::chrono::milliseconds bound = kHangBound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, MillisecondsLeft(end));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// Waits until `path` exists, through inotify on its directory (waited for the same way when
// it does not exist yet): true at once if it already does, false after `bound`. A file written
// by rename appears complete.
inline bool WaitForPath(const std::filesystem::path& path,
                        std::chrono::milliseconds bound = kHangBound) {
  const auto end = std::chrono::steady_clock::now() + bound;
  const std::string dir = path.parent_path().empty() ? "." : path.parent_path().string();
  if (::access(dir.c_str(), F_OK) != 0 && dir != path &&
      !WaitForPath(dir, std::chrono::milliseconds(MillisecondsLeft(end))))
    return false;
  const int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  // Watched before the first look, so an arrival between the two is not missed.
  const bool watching =
      ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ATTRIB) >= 0;
  bool found = false;
  while (!(found = ::access(path.c_str(), F_OK) == 0) && watching) {
    if (!WaitForFd(fd, POLLIN, std::chrono::milliseconds(MillisecondsLeft(end)))) break;
    char events[4096];
    while (::read(fd, events, sizeof events) > 0) {
    }
  }
  ::close(fd);
  return found || ::access(path.c_str(), F_OK) == 0;
}

// Waits until the process `pid` has exited (a zombie counts), whoever its parent is: its
// pidfd becomes readable then. True at once when no such process exists; false after `bound`.
inline bool WaitForExit(pid_t pid, std::chrono::milliseconds bound = kHangBound) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  const bool exited = WaitForFd(pidfd, POLLIN, bound);
  ::close(pidfd);
  return exited;
}

// Waits for the child `pid` to exit and reaps it: its wait status, or nullopt after `bound`
// (the child is left running and unreaped) or when it is not a child of this process.
inline std::optional<int> WaitForChild(pid_t pid, std::chrono::milliseconds bound = kHangBound) {
  if (!WaitForExit(pid, bound)) return std::nullopt;
  int status = 0;
  pid_t r = -1;
  do {
    r = ::waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return std::nullopt;
  return status;
}

// A dbus-daemon started by SpawnDbusDaemon.
struct SpawnedBus {
  pid_t pid = -1;       // -1 when it did not start or never said where it listens
  std::string address;  // as dbus-daemon printed it (with its guid)
};

// Runs dbus-daemon with `args` (its configuration: --session or --config-file, --address)
// plus --nofork --nopidfile --print-address=3, and returns once it has printed its address:
// dbus-daemon prints it after it is listening, so a client may connect at once. Its stdout
// goes to /dev/null. On failure (or after `bound`) the process is killed and reaped, and pid
// is -1.
inline SpawnedBus SpawnDbusDaemon(std::vector<std::string> args,
                                  std::chrono::milliseconds bound = kHangBound) {
  SpawnedBus bus;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return bus;
  std::vector<std::string> argv = {"dbus-daemon"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--nofork", "--nopidfile", "--print-address=3"});
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 3);  // dup2 clears FD_CLOEXEC
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int spawned =
      ::posix_spawnp(&pid, "dbus-daemon", &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return bus;
  }
  const auto end = std::chrono::steady_clock::now() + bound;
  std::string printed;
  while (printed.find('\n') == std::string::npos) {
    if (!WaitForFd(pipe_fds[0], POLLIN, std::chrono::milliseconds(MillisecondsLeft(end)))) break;
    char buf[512];
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // it exited without an address
    printed.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  const size_t nl = printed.find('\n');
  if (nl == std::string::npos || nl == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return bus;
  }
  bus.pid = pid;
  bus.address = printed.substr(0, nl);
  return bus;
}

}  // namespace decnet::test
