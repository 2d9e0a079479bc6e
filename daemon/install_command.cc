#include "daemon/install_command.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/release_store_fs.h"

namespace decnet::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

tl::unexpected<Error> ConfigError(std::string message) {
  return Fail(ErrorCode::kMalformed, "install-config", std::move(message));
}

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// The bounded output buffer: keeps the newest bytes, counts the dropped ones.
class OutputTail {
 public:
  explicit OutputTail(size_t cap) : cap_(cap) {}
  void Append(const char* data, size_t n) {
    buf_.append(data, n);
    // Trim in bulk so a flood costs amortised O(1) per byte.
    if (buf_.size() > 2 * cap_) Trim();
  }
  std::string Finish(bool* truncated) {
    Trim();
    *truncated = dropped_ > 0;
    if (dropped_ == 0) return buf_;
    return "\xE2\x80\xA6truncated " + std::to_string(dropped_) + " earlier bytes\xE2\x80\xA6\n" +
           buf_;
  }

 private:
  void Trim() {
    if (buf_.size() <= cap_) return;
    size_t cut = buf_.size() - cap_;
    dropped_ += cut;
    buf_.erase(0, cut);
  }
  size_t cap_;
  std::string buf_;
  uint64_t dropped_ = 0;
};

struct Prepared {
  std::vector<std::string> argv;
  std::vector<std::string> env;
};

Result<Prepared> Prepare(const InstallCommandConfig& config, const InstallVars& vars) {
  if (auto valid = ValidateInstallCommand(config); !valid)
    return tl::make_unexpected(valid.error());
  Prepared p;
  for (const auto& arg : config.argv) {
    auto expanded = ExpandInstallTemplate(arg, vars);
    if (!expanded) return tl::make_unexpected(expanded.error());
    p.argv.push_back(std::move(*expanded));
  }
  std::vector<std::pair<std::string, std::string>> env = {
      {"PATH", "/usr/bin:/bin"},
      {"HOME", vars.release_dir},
      {"LANG", "C.UTF-8"},
      {"TMPDIR", vars.release_dir + "/" + kInstallTmpDir}};
  for (const auto& [name, value] : config.env) {
    auto expanded = ExpandInstallTemplate(value, vars);
    if (!expanded) return tl::make_unexpected(expanded.error());
    const std::string& key = name;  // a structured binding is no lambda capture before clang 16
    std::erase_if(env, [&](const auto& kv) { return kv.first == key; });
    env.emplace_back(name, std::move(*expanded));
  }
  for (const auto& [name, value] : env) p.env.push_back(name + "=" + value);
  return p;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// In the child, between fork and exec: async-signal-safe calls only. Reports a failure's
// errno through `report_fd` (close-on-exec, so a successful exec closes it silently).
// Confinement failures are told apart from exec failures by this offset on the errno.
constexpr int kConfineErrnoBase = 1 << 16;

[[noreturn]] void ExecChild(int release_dir_fd, int null_fd, int out_fd, int report_fd,
                            const InstallConfinement& confinement, char* const* argv,
                            char* const* envp) {
  auto die = [&](int base = 0) {
    int err = errno + base;
    ssize_t ignored = write(report_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
  };
  // Own process group, so a timeout can kill everything the command started.
  if (setpgid(0, 0) != 0) die();
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  if (fchdir(release_dir_fd) != 0) die();
  if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) die();
  // SECURITY: the command runs code the release brought: it is confined before it execs.
  if (int err = confinement.ApplyInChild(); err != 0) {
    errno = err;
    die(kConfineErrnoBase);
  }
  // SECURITY: the daemon's sockets, spool files and its helper channel must not leak into a
  // command that runs release-supplied code. The report pipe is close-on-exec and above 2;
  // keep it open until exec by closing around it.
  if (report_fd > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(report_fd - 1), 0u);
  syscall(SYS_close_range, static_cast<unsigned>(report_fd + 1), ~0u, 0u);
  execve(argv[0], argv, envp);
  die();
  _exit(127);
}

// Reads what is available on `fd` into `tail`; false at end of stream.
bool Drain(int fd, OutputTail& tail) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      tail.Append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

struct Waited {
  bool exited = false;
  int status = 0;
  bool timed_out = false;
};

// How long the group may take to die once SIGKILLed; past it, a member stuck in the kernel is
// left to be reaped later (by this process, its subreaper).
constexpr milliseconds kReapLimit{2000};

// Waits for `pid` itself, retrying when a signal interrupts the wait.
void WaitFor(pid_t pid, int* status) {
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
}

// SIGKILLs the group `pgid` until none of its members is a child of this process any more,
// reaping each one. The command's descendants were re-parented to this process (a child
// subreaper) when their parents died, so this leaves neither a process nor a zombie of the
// group behind. The kill is repeated: a member forking while the group is killed may create a
// process the first kill missed.
void KillAndReapGroup(pid_t pgid) {
  const auto give_up = Clock::now() + kReapLimit;
  for (;;) {
    kill(-pgid, SIGKILL);
    pid_t got = waitpid(-pgid, nullptr, WNOHANG);
    if (got > 0) continue;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return;  // ECHILD: no member of the group is ours
    if (Clock::now() >= give_up) return;
    usleep(2000);
  }
}

// Pumps output until the child exits or the deadline passes; on timeout kills the group.
Waited Supervise(pid_t pid, int out_fd, OutputTail& tail, const InstallCommandConfig& config) {
  Waited w;
  const auto start = Clock::now();
  auto deadline = start + config.timeout;
  bool term_sent = false;
  bool open = true;
  for (;;) {
    pid_t got = waitpid(pid, &w.status, WNOHANG);
    if (got == pid) {
      w.exited = true;
      break;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      if (!term_sent) {
        w.timed_out = true;
        kill(-pid, SIGTERM);
        term_sent = true;
        deadline = now + config.kill_grace;
      } else {
        kill(-pid, SIGKILL);
        WaitFor(pid, &w.status);
        w.exited = true;
        break;
      }
    }
    // A short tick: the child's exit is noticed by waitpid, output by poll.
    int wait_ms = static_cast<int>(
        std::min<int64_t>(50, duration_cast<milliseconds>(deadline - now).count() + 1));
    if (open) {
      pollfd pfd{out_fd, POLLIN, 0};
      int r = poll(&pfd, 1, wait_ms);
      if (r > 0) open = Drain(out_fd, tail);
    } else {
      usleep(static_cast<useconds_t>(wait_ms) * 1000);
    }
  }
  // SECURITY: whatever the command left running in its group would keep running our
  // user's code from a release that may be rolled back: killed with the command, and reaped.
  KillAndReapGroup(pid);
  if (open) Drain(out_fd, tail);
  return w;
}

}  // namespace

Result<std::string> ExpandInstallTemplate(std::string_view text, const InstallVars& vars) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '{') {
      if (text[i] == '}') return ConfigError("unmatched '}' in install template");
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i);
    if (close == std::string_view::npos) return ConfigError("unterminated placeholder");
    std::string_view name = text.substr(i + 1, close - i - 1);
    if (name == "release_dir") {
      out += vars.release_dir;
    } else if (name == "release_id") {
      out += vars.release_id;
    } else if (name == "version") {
      out += vars.version;
    } else if (name == "sha256") {
      out += vars.sha256;
    } else {
      return ConfigError("unknown placeholder {" + std::string(name.substr(0, 40)) + "}");
    }
    i = close + 1;
  }
  return out;
}

Result<void> ValidateInstallCommand(const InstallCommandConfig& config) {
  if (config.argv.empty() || config.argv[0].empty() || config.argv[0][0] != '/') {
    return ConfigError("the install command's argv[0] must be an absolute path");
  }
  for (const auto& arg : config.argv) {
    if (arg.find('\0') != std::string::npos) return ConfigError("NUL in an argument");
    if (auto expanded = ExpandInstallTemplate(arg, InstallVars{}); !expanded) {
      return tl::make_unexpected(expanded.error());
    }
  }
  for (const auto& [name, value] : config.env) {
    if (!IsEnvName(name)) return ConfigError("bad environment name " + name.substr(0, 40));
    if (value.find('\0') != std::string::npos) return ConfigError("NUL in " + name);
    if (auto expanded = ExpandInstallTemplate(value, InstallVars{}); !expanded) {
      return tl::make_unexpected(expanded.error());
    }
  }
  if (config.timeout.count() <= 0 || config.kill_grace.count() < 0 || config.output_cap == 0) {
    return ConfigError("timeout and output cap must be positive");
  }
  return {};
}

Result<InstallOutput> RunInstallCommand(const InstallCommandConfig& config, const InstallVars& vars,
                                        int release_dir_fd, std::string* failure_output) {
  auto prepared = Prepare(config, vars);
  if (!prepared) return tl::make_unexpected(prepared.error());
  std::vector<char*> argv = CStrings(prepared->argv);
  std::vector<char*> envp = CStrings(prepared->env);

  auto spawn_error = [](std::string what) {
    return Fail(ErrorCode::kFailed, "install-spawn", what + ": " + std::strerror(errno));
  };
  auto confinement = InstallConfinement::Prepare(config.sandbox, release_dir_fd, prepared->argv[0]);
  if (!confinement) return tl::make_unexpected(confinement.error());
  // The private TMPDIR: made fresh (whatever the release shipped under that name goes first),
  // removed after the run.
  (void)RemoveTreeAt(release_dir_fd, kInstallTmpDir);
  if (mkdirat(release_dir_fd, kInstallTmpDir, 0700) != 0) return spawn_error("make TMPDIR");
  struct TmpCleanup {
    int dir;
    ~TmpCleanup() { (void)RemoveTreeAt(dir, kInstallTmpDir); }
  } tmp_cleanup{release_dir_fd};
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd < 0) return spawn_error("open /dev/null");
  int out_pipe[2];
  int report_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) {
    close(null_fd);
    return spawn_error("pipe");
  }
  if (pipe2(report_pipe, O_CLOEXEC) != 0) {
    close(null_fd);
    close(out_pipe[0]);
    close(out_pipe[1]);
    return spawn_error("pipe");
  }
  // What the command leaves behind when it exits is re-parented to this process rather than to
  // init, so that KillAndReapGroup can reap it (a no-op once set; not inherited by the child).
  (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  const auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    ExecChild(release_dir_fd, null_fd, out_pipe[1], report_pipe[1], *confinement, argv.data(),
              envp.data());
  }
  int fork_errno = errno;
  close(null_fd);
  close(out_pipe[1]);
  close(report_pipe[1]);
  if (pid < 0) {
    close(out_pipe[0]);
    close(report_pipe[0]);
    errno = fork_errno;
    return spawn_error("fork");
  }
  setpgid(pid, pid);  // also from the parent: no window where a kill(-pid) misses
  int child_errno = 0;
  ssize_t reported;
  do {
    reported = read(report_pipe[0], &child_errno, sizeof child_errno);
  } while (reported < 0 && errno == EINTR);
  close(report_pipe[0]);
  fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  OutputTail tail(config.output_cap);
  Waited waited;
  if (reported == static_cast<ssize_t>(sizeof child_errno)) {
    WaitFor(pid, &waited.status);
    close(out_pipe[0]);
    if (child_errno >= kConfineErrnoBase) {
      return Fail(ErrorCode::kFailed, "install-confine",
                  "cannot confine the install command: " +
                      std::string(std::strerror(child_errno - kConfineErrnoBase)));
    }
    errno = child_errno;
    return spawn_error("start " + prepared->argv[0]);
  }
  waited = Supervise(pid, out_pipe[0], tail, config);
  close(out_pipe[0]);

  InstallOutput result;
  result.output = tail.Finish(&result.truncated);
  result.duration = duration_cast<milliseconds>(Clock::now() - start);
  if (failure_output != nullptr) *failure_output = result.output;
  if (waited.timed_out) {
    return Fail(ErrorCode::kTimeout, "install-timeout",
                "install command ran longer than " + std::to_string(config.timeout.count()) +
                    " ms and was killed; output:\n" + result.output);
  }
  if (WIFEXITED(waited.status) && WEXITSTATUS(waited.status) == 0) return result;
  std::string status = WIFEXITED(waited.status)
                           ? "exited with status " + std::to_string(WEXITSTATUS(waited.status))
                           : "was killed by signal " + std::to_string(WTERMSIG(waited.status));
  return Fail(ErrorCode::kFailed, "install-failed",
              "install command " + status + "; output:\n" + result.output);
}

}  // namespace decnet::daemon
