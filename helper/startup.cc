// Start-up of the helper, in a fixed order (docs/security-review.md §1). Everything that needs
// privilege (reading the root-owned policy, the state directory, the revert decision, changing the
// child's ids) happens before the parent drops it; everything after ConfineHelper runs under
// the seccomp allow-list, so this file does its own output with write(2) (no stdio, whose
// first use probes the terminal with ioctl).
#include "helper/startup.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "helper/daemon_log.h"
#include "helper/dirs.h"
#include "helper/fs_ops.h"
#include "helper/loaded_view_check.h"
#include "helper/log.h"
#include "helper/self_update.h"
#include "helper/serve.h"
#include "helper/systemd_manager.h"

extern char** environ;

namespace decnet::helper {
namespace {

constexpr int kDaemonFd = 3;              // the daemon's end of the pair, by contract
constexpr int kChildExitGraceMs = 3'000;  // wait this long for the daemon to exit
constexpr int kStopGraceMs = 1'000;       // at a stop, for it to end on its own SIGTERM
constexpr const char* kPidFile = "helper.pid";
constexpr const char* kConfinementFile = "confinement.json";

void Log(std::string_view message) { LogLine(message); }

// Self-test output on stdout; a failed write has nowhere to be reported.
void Say(std::string_view text) { (void)WriteAll(STDOUT_FILENO, text); }

void LogError(std::string_view context, const Error& e) {
  Log(std::string(context) + ": " + e.rule + ": " + e.message);
}

// The start-up check of the updater's own unit (policy/loaded_view.h): what systemd loaded
// for it is logged loudly when refused and recorded in STATE_DIR/self-unit-view.json, which
// `helperctl status` shows. The helper goes on serving either way: the unit has already
// started with what systemd loaded, refusing to serve would only stop the updates that an
// operator may need, and every restart_unit of the updater's own unit (update-self) is
// checked again live and refused until the unit is clean.
void CheckSelfUnitAtStart(const Policy& policy, const HelperDirs& dirs, SystemdManager& systemd,
                          const std::string& started_at) {
  nlohmann::json record = {{"unit", policy.self_unit}, {"checked_at", started_at}};
  auto name = UnitName::Parse(policy.self_unit);
  auto verdict = name ? CheckLoadedView(policy, dirs.unit_dir, nullptr, systemd, *name)
                      : Result<LoadedViewVerdict>(tl::make_unexpected(name.error()));
  if (!verdict) {
    Log("the updater's own unit " + policy.self_unit +
        ": loaded view unavailable: " + verdict.error().rule + ": " + verdict.error().message);
    record["readable"] = false;
    record["error"] = verdict.error().message;
  } else {
    record["readable"] = true;
    record["load_state"] = verdict->view.load_state;
    record["fragment"] = verdict->view.fragment_path;
    nlohmann::json drop_ins = nlohmann::json::array();
    for (const auto& [path, why] :
         JudgeDropIns(verdict->view, RootOwnedFileCheck(policy.unit_root))) {
      drop_ins.push_back({{"path", path}, {"foreign", !why.empty()}, {"why", why}});
    }
    record["drop_ins"] = drop_ins;
    nlohmann::json refusals = nlohmann::json::array();
    // Nothing loaded (no such unit, as in tests) is no foreign view.
    if (!NothingLoaded(verdict->view)) {
      for (const auto& r : verdict->refusals) {
        refusals.push_back({{"rule", r.rule}, {"message", r.message}});
        Log("SECURITY: the updater's own unit " + policy.self_unit +
            " is not as the operator installed it: [" + r.rule + "] " + r.message +
            "; its restart (update-self) is refused until it is clean");
      }
    }
    record["refusals"] = refusals;
  }
  const std::string text =
      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (auto r = AtomicWriteFile(dirs.state_dir, kSelfUnitViewFile, text, 0644); !r) {
    LogError("self-unit record", r.error());
  }
}

int Exit(HelperExit code) { return static_cast<int>(code); }

// SECURITY: with 0, 1 or 2 closed, the socketpair or a directory could land on a stdio
// number and be written to by accident (or inherited by the daemon as "stdout").
void EnsureStdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0 && null_fd != fd) {
      ::dup2(null_fd, fd);
      ::close(null_fd);
    }
  }
}

std::string NowRfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// What the child needs, prepared before the fork so the child only makes system calls.
struct ChildPlan {
  int pair_fd = -1;
  int stdout_fd = -1;  // the daemon's own output streams (helper/daemon_log.h)
  int stderr_fd = -1;
  DaemonIdentity identity;
  pid_t parent = 0;
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
};

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

[[noreturn]] void ChildFail(const std::string& what) {
  Log("daemon child: " + what);
  ::_exit(127);
}

// The forked child: keep only stdio and fd 3, become the daemon user, exec the daemon.
[[noreturn]] void RunDaemonChild(ChildPlan& plan) {
  std::vector<char*> argv = CStrings(plan.argv_storage);
  std::vector<char*> envp = CStrings(plan.env_storage);
  // SECURITY: the daemon writes to streams of its own, never the helper's stdout or stderr.
  if (::dup2(plan.stdout_fd, STDOUT_FILENO) < 0 || ::dup2(plan.stderr_fd, STDERR_FILENO) < 0)
    ChildFail(std::string("dup2 of the daemon's output: ") + std::strerror(errno));
  if (plan.pair_fd != kDaemonFd) {
    if (::dup2(plan.pair_fd, kDaemonFd) < 0)
      ChildFail(std::string("dup2: ") + std::strerror(errno));
  }
  // dup2 leaves the copy without CLOEXEC, but if the pair already was fd 3 it still has it.
  if (::fcntl(kDaemonFd, F_SETFD, 0) != 0) ChildFail(std::string("fcntl: ") + std::strerror(errno));
  // SECURITY: the daemon inherits no descriptor of the helper's (state dir, policy, the
  // helper's own end) beyond stdio and its end of the pair.
  if (::close_range(kDaemonFd + 1, ~0U, 0) != 0)
    ChildFail(std::string("close_range: ") + std::strerror(errno));
  if (auto r = DropToUser(plan.identity.uid, plan.identity.gid); !r)
    ChildFail("drop to the daemon user: " + r.error().rule + ": " + r.error().message);
  // SECURITY: set after the id change (which clears it). It covers the helper dying during
  // start-up; once confined, the helper lacks CAP_KILL and the kernel refuses this signal
  // across uids, so from then on the closed pair and systemd's stop of the unit's control
  // group end the daemon.
  if (::prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0)
    ChildFail(std::string("PR_SET_PDEATHSIG: ") + std::strerror(errno));
  if (::getppid() != plan.parent) ChildFail("the helper died before the daemon started");
  // The helper's stop signals are blocked (TakeStopSignals); the daemon starts with none.
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0)
    ChildFail(std::string("sigprocmask: ") + std::strerror(errno));
  ::execve(argv[0], argv.data(), envp.data());
  ChildFail("exec " + plan.argv_storage[0] + ": " + std::strerror(errno));
}

// Polls the child's pidfd: true once it has exited.
bool WaitExited(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  for (;;) {
    const int rc = ::poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

// Waits (bounded) for the daemon to exit after its pair was closed, and reaps it. The
// helper cannot signal it: uid 0 without CAP_KILL may not signal another uid, which is the
// point. The daemon's contract is to exit when its pair closes; one that does not is ended
// by systemd, which stops the unit's whole control group when the helper (main) exits. Returns the
// child's status, or nullopt when it was still running.
std::optional<siginfo_t> ReapChild(pid_t child, int pidfd) {
  // SECURITY: no kill(2) in the filter and no CAP_KILL: the confined helper signals nobody.
  if (!WaitExited(pidfd, kChildExitGraceMs)) return std::nullopt;
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED) != 0 && errno == EINTR) {
  }
  return info;
}

std::string DescribeChildEnd(const std::optional<siginfo_t>& end) {
  if (!end) return "still running after the pair closed; systemd's stop of the unit ends it";
  const siginfo_t& info = *end;
  if (info.si_code == CLD_EXITED) return "exited with status " + std::to_string(info.si_status);
  return "killed by signal " + std::to_string(info.si_status);
}

// Blocks SIGTERM and SIGINT and returns a signalfd that becomes readable when one is pending
// (-1 when it cannot be made: the signals are then left to their default action). The helper
// is the unit's main process: killed outright by systemd's SIGTERM it would leave the daemon
// behind it in the unit's control group, for systemd to clean up as a straggler after the
// main process has gone. With the signal pending instead, the helper ends its session, waits
// for the daemon (which systemd signalled too) and exits after it.
int TakeStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  const int fd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return -1;
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return fd >= 0 && ::poll(&p, 1, 0) > 0;
}

struct StartedParent {
  Policy policy;
  int state_fd = -1;
};

// The steps both modes share: stdio, policy, state directory.
Result<StartedParent> CommonStartup(const std::string& config_path) {
  EnsureStdio();
  // SECURITY: the policy is the root boundary; LoadPolicyFile refuses a file not owned by
  // root or writable by anyone else.
  auto policy = LoadPolicyFile(config_path);
  if (!policy) return tl::make_unexpected(policy.error());
  auto state_fd = OpenStateDir(*policy);
  if (!state_fd) return tl::make_unexpected(state_fd.error());
  return StartedParent{std::move(*policy), *state_fd};
}

std::vector<std::string> WritableDirs(const Policy& policy) {
  return {policy.unit_dir, policy.link_dir, policy.state_dir};
}

// The descriptors dirs.cc opened and checked: Landlock's rules are built from these.
std::vector<int> WritableDirFds(const HelperDirs& dirs) {
  return {dirs.unit_dir, dirs.link_dir, dirs.state_dir};
}

}  // namespace

Result<DaemonIdentity> ResolveDaemonIdentity(const Policy& policy) {
  const passwd* pw = ::getpwnam(policy.daemon_user.c_str());
  if (pw == nullptr)
    return Fail(ErrorCode::kNotFound, "daemon-user", "no such user: " + policy.daemon_user);
  DaemonIdentity id{pw->pw_uid, 0};
  const group* gr = ::getgrnam(policy.daemon_group.c_str());
  if (gr == nullptr)
    return Fail(ErrorCode::kNotFound, "daemon-group", "no such group: " + policy.daemon_group);
  id.gid = gr->gr_gid;
  // SECURITY: the daemon parses network input; it is never root, by uid or by gid.
  if (id.uid == 0 || id.gid == 0)
    return Fail(ErrorCode::kDenied, "daemon-user-root",
                "daemon user/group " + policy.daemon_user + ":" + policy.daemon_group + " is root");
  // SECURITY: separate users: a compromised unit must not be the daemon.
  for (const std::string& unit_user : policy.unit_users) {
    const passwd* u = unit_user == policy.daemon_user ? pw : ::getpwnam(unit_user.c_str());
    if (unit_user == policy.daemon_user || (u != nullptr && u->pw_uid == id.uid))
      return Fail(ErrorCode::kDenied, "daemon-user-is-unit-user",
                  "daemon user " + policy.daemon_user + " is also a unit user (" + unit_user + ")");
  }
  return id;
}

std::vector<std::string> DaemonEnvironment(const char* const* envp) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  static const char* const kPassThrough[] = {
      "LANG=",         "LC_ALL=",        "TZ=", "JOURNAL_STREAM=", "INVOCATION_ID=",
#ifdef DECNET_SANITIZER_BUILD
      "ASAN_OPTIONS=", "UBSAN_OPTIONS=",
#endif
      "DECNET_"};
  for (const char* const* e = envp; e != nullptr && *e != nullptr; ++e) {
    const std::string_view var(*e);
    if (var.find('=') == std::string_view::npos) continue;
    for (const char* prefix : kPassThrough) {
      if (StartsWith(var, prefix)) {
        env.emplace_back(var);
        break;
      }
    }
  }
  return env;
}

std::string ConfinementJson(pid_t pid, const ConfinementReport& report,
                            const std::string& started_at) {
  return "{\"pid\":" + std::to_string(pid) +
         ",\"landlock_abi\":" + std::to_string(report.landlock_abi) +
         ",\"landlock_enforced\":" + (report.landlock_enforced ? "true" : "false") +
         ",\"landlock_state\":\"" + std::string(LandlockStateName(report.landlock_state)) +
         "\",\"landlock_errno\":" + std::to_string(report.landlock_errno) + ",\"started_at\":\"" +
         started_at + "\"}\n";
}

int RunHelper(const std::string& config_path) {
  const std::string started_at = NowRfc3339();
  auto started = CommonStartup(config_path);
  if (!started) {
    LogError("start-up", started.error());
    return Exit(HelperExit::kStartupFailed);
  }
  const Policy& policy = started->policy;
  auto identity = ResolveDaemonIdentity(policy);
  if (!identity) {
    LogError("daemon identity", identity.error());
    return Exit(HelperExit::kStartupFailed);
  }
  // After CommonStartup made sure 0, 1 and 2 are open, so the descriptor is none of them.
  const int stop_fd = TakeStopSignals();
  if (stop_fd < 0) Log(std::string("cannot take the stop signals: ") + std::strerror(errno));
  // Before the fork and while root still holds CAP_SETUID/CAP_SETGID: the daemon-owned store
  // is written with the daemon's file-system identity, which only they allow.
  auto self_update = ApplySelfUpdateRevertDecision(policy, *identity, started->state_fd);
  if (!self_update) {
    LogError("update-self start-up", self_update.error());
    return Exit(HelperExit::kStartupFailed);
  }
  if (!self_update->message.empty()) Log(self_update->message);
  int pair[2];
  // SECURITY: SEQPACKET keeps message boundaries; the pair authenticates by construction.
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    Log(std::string("socketpair: ") + std::strerror(errno));
    return Exit(HelperExit::kStartupFailed);
  }
  auto output = OpenDaemonOutput(StderrIsJournal(std::getenv("JOURNAL_STREAM")));
  if (!output) {
    LogError("daemon output", output.error());
    return Exit(HelperExit::kStartupFailed);
  }
  ChildPlan plan;
  plan.pair_fd = pair[1];
  plan.stdout_fd = output->daemon_stdout.get();
  plan.stderr_fd = output->daemon_stderr.get();
  plan.identity = *identity;
  plan.parent = ::getpid();
  plan.argv_storage.push_back(policy.daemon_binary);
  plan.argv_storage.insert(plan.argv_storage.end(), policy.daemon_args.begin(),
                           policy.daemon_args.end());
  plan.env_storage = DaemonEnvironment(environ);
  SetDaemonJournalStream(plan.env_storage, *output);

  const pid_t child = ::fork();
  if (child < 0) {
    Log(std::string("fork: ") + std::strerror(errno));
    return Exit(HelperExit::kStartupFailed);
  }
  if (child == 0) RunDaemonChild(plan);

  ::close(pair[1]);
  output->daemon_stdout.reset();
  output->daemon_stderr.reset();
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  auto abort_start = [&](const std::string& context, const Error& e) {
    LogError(context, e);
    // The daemon sees the pair close; if it has not yet armed its parent-death signal, its
    // getppid() check after arming it ends it instead.
    ::close(pair[0]);
    return Exit(HelperExit::kStartupFailed);
  };
  if (pidfd < 0)
    return abort_start("pidfd_open", Error{ErrorCode::kFailed, "pidfd", std::strerror(errno)});
  ::fcntl(pidfd, F_SETFD, FD_CLOEXEC);

  auto dirs = OpenHelperDirs(policy);
  if (!dirs) return abort_start("directories", dirs.error());
  ::close(started->state_fd);
  auto systemd = ConnectSystemd(stop_fd);
  if (!systemd) return abort_start("system bus", systemd.error());
  const std::string pid_text = std::to_string(::getpid()) + "\n";
  if (auto r = AtomicWriteFile(dirs->state_dir, kPidFile, pid_text, 0644); !r)
    return abort_start("pid file", r.error());
  // Only reads (D-Bus and O_PATH walks): it could run confined, but runs before so that the
  // record is written with the same descriptors as the pid file.
  CheckSelfUnitAtStart(policy, *dirs, **systemd, started_at);

  auto report = ConfineHelper(WritableDirFds(*dirs));
  if (!report) return abort_start("confinement", report.error());
  Log("confined: capabilities none, NoNewPrivs, seccomp " +
      std::to_string(SeccompAllowList().size()) + " calls, landlock abi " +
      std::to_string(report->landlock_abi) + " " +
      std::string(LandlockStateName(report->landlock_state)));
  // Serving goes on without Landlock (a container may refuse it), but never silently.
  if (!report->landlock_enforced)
    Log("landlock " + DescribeLandlock(report->landlock_state, report->landlock_errno));
  if (auto r = AtomicWriteFile(dirs->state_dir, kConfinementFile,
                               ConfinementJson(::getpid(), *report, started_at), 0644);
      !r)
    return abort_start("confinement record", r.error());

  ServeOptions serve_options;
  serve_options.relays = &output->relays;
  serve_options.stop_fd = stop_fd;
  if (self_update->active) {
    serve_options.on_hello = [state = dirs->state_dir] {
      if (auto r = RecordDaemonHello(state); !r) LogError("start record", r.error());
    };
  }
  const ServeEnd end = Serve(pair[0], policy, *dirs, **systemd, serve_options);
  // systemd's stop (or update-self's restart): the daemon got the same signal; with its pair
  // closed as well it ends, and the helper exits after it, leaving nothing in the unit.
  const bool stopped = end == ServeEnd::kStopped || Readable(stop_fd);
  // systemd signalled the daemon as well (KillMode=control-group): it gets a moment to end on
  // that before its pair closes, which it would otherwise take for the helper's failure.
  if (stopped) (void)WaitExited(pidfd, kStopGraceMs);
  ::close(pair[0]);
  const std::optional<siginfo_t> child_end = ReapChild(child, pidfd);
  for (LineRelay& relay : output->relays) relay.Flush();
  Log("daemon " + DescribeChildEnd(child_end) + (stopped ? " (the unit is being stopped)" : ""));
  if (stopped) {
    // No end is recorded: a stop is not the build's failure, and an attempt stopped after its
    // hello counts as proven (helper/self_update.h), as it always has.
    return Exit(HelperExit::kOk);
  }
  if (self_update->active) {
    const bool daemon_clean = end == ServeEnd::kPeerClosed && child_end &&
                              child_end->si_code == CLD_EXITED && child_end->si_status == 0;
    if (auto r = RecordDaemonEnd(dirs->state_dir, daemon_clean); !r)
      LogError("start record", r.error());
  }
  switch (end) {
    case ServeEnd::kProtocolViolation:
      return Exit(HelperExit::kProtocolViolation);
    case ServeEnd::kHelloTimeout:
      return Exit(HelperExit::kHelloTimeout);
    case ServeEnd::kPeerClosed:
    case ServeEnd::kStopped:
      break;
  }
  const bool clean = child_end && child_end->si_code == CLD_EXITED && child_end->si_status == 0;
  return Exit(clean ? HelperExit::kOk : HelperExit::kDaemonFailed);
}

// --- self-test mode ---------------------------------------------------------------------

namespace {

// One check's outcome line, printed as it is made (helperctl streams them).
void Report(bool ok, std::string_view check, std::string_view detail = {}) {
  std::string line = ok ? "ok: " : "FAIL: ";
  line += check;
  if (!detail.empty()) line += (ok ? " (" : ": ") + std::string(detail) + (ok ? ")" : "");
  Say(line + "\n");
}

void Skip(std::string_view check, std::string_view why) {
  Say("skip: " + std::string(check) + ": " + std::string(why) + "\n");
}

// The value of "Key:" in /proc/self/status, trimmed; empty when absent.
std::string StatusField(const std::string& status, std::string_view key) {
  const std::string needle = "\n" + std::string(key) + ":";
  const size_t at = ("\n" + status).find(needle);
  if (at == std::string::npos) return {};
  size_t start = at + needle.size() - 1;
  size_t end = status.find('\n', start);
  std::string value = status.substr(start, end == std::string::npos ? end : end - start);
  const size_t first = value.find_first_not_of(" \t");
  return first == std::string::npos ? std::string() : value.substr(first);
}

std::string ReadProcSelfStatus() {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void CheckProcStatus() {
  const std::string status = ReadProcSelfStatus();
  if (status.empty()) {
    Report(false, "proc-status", "cannot read /proc/self/status");
    return;
  }
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    const std::string v = StatusField(status, key);
    Report(v == "0000000000000000", std::string(key) + " empty", std::string(key) + "=" + v);
  }
  const std::string nnp = StatusField(status, "NoNewPrivs");
  Report(nnp == "1", "NoNewPrivs set", "NoNewPrivs=" + nnp);
  const std::string seccomp = StatusField(status, "Seccomp");
  Report(seccomp == "2", "seccomp filter mode", "Seccomp=" + seccomp);
  const std::string uid = StatusField(status, "Uid");
  Report(uid == "0\t0\t0\t0", "uid 0 kept (for D-Bus authorisation)", "Uid=" + uid);
}

// Creates and removes `name` in the directory `dir_fd` (through the one openat2 wrapper:
// Landlock is what we test, not the path walk). Returns 0 or the errno of the create.
int TryCreate(int dir_fd, const std::string& name) {
  UniqueFd fd = OpenBeneath(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (!fd.valid()) return errno;
  fd.reset();
  ::unlinkat(dir_fd, name.c_str(), 0);
  return 0;
}

bool IsBeneath(const std::string& path, const std::string& dir) {
  return path == dir || StartsWith(path, dir.back() == '/' ? dir : dir + "/");
}

// A world-writable directory outside every writable directory: where only Landlock can
// refuse a root-owned process's create (DAC allows it, as the control proves).
std::string OutsideDir(const std::vector<std::string>& writable) {
  for (const char* candidate : {"/tmp", "/var/tmp", "/dev/shm"}) {
    bool inside = false;
    for (const std::string& w : writable) inside = inside || IsBeneath(candidate, w);
    struct stat st {};
    if (!inside && ::stat(candidate, &st) == 0 && S_ISDIR(st.st_mode)) return candidate;
  }
  return {};
}

}  // namespace

int RunSelftestMode(const std::string& config_path) {
  auto started = CommonStartup(config_path);
  if (!started) {
    Report(false, "start-up", started.error().rule + ": " + started.error().message);
    return Exit(HelperExit::kStartupFailed);
  }
  const Policy& policy = started->policy;
  Report(true, "policy loaded", config_path);
  auto dirs = OpenHelperDirs(policy);
  if (!dirs) {
    Report(false, "directories", dirs.error().rule + ": " + dirs.error().message);
    return Exit(HelperExit::kStartupFailed);
  }
  Report(true, "directories opened");

  const std::vector<std::string> writable = WritableDirs(policy);
  const std::string outside = OutsideDir(writable);
  const std::string probe = ".decnet-selftest-" + std::to_string(::getpid());
  const int outside_fd =
      outside.empty() ? -1 : ::open(outside.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  // The control: before confinement the same create succeeds, so a refusal later is
  // Landlock's doing and not the directory's permissions.
  const int control = outside_fd < 0 ? ENOENT : TryCreate(outside_fd, probe);

  auto report = ConfineHelper(WritableDirFds(*dirs));
  if (!report) {
    Report(false, "confinement", report.error().rule + ": " + report.error().message);
    return Exit(HelperExit::kSelftestFailed);
  }
  Report(true, "confinement applied",
         "seccomp " + std::to_string(SeccompAllowList().size()) + " calls, landlock abi " +
             std::to_string(report->landlock_abi));
  CheckProcStatus();

  if (report->landlock_abi == 0) {
    Skip("landlock", DescribeLandlock(report->landlock_state, report->landlock_errno));
  } else if (outside_fd < 0 || control != 0) {
    Report(false, "landlock refuses writes outside",
           "no usable control directory (" + (outside.empty() ? std::string("none") : outside) +
               ": " + std::strerror(control) + ")");
  } else {
    const int outside_rc = TryCreate(outside_fd, probe);
    Report(
        report->landlock_enforced && outside_rc == EACCES, "landlock refuses writes outside",
        outside + "/" + probe + ": " + (outside_rc == 0 ? "created" : std::strerror(outside_rc)));
  }
  const int inside_rc = TryCreate(dirs->state_dir, probe);
  Report(inside_rc == 0, "writes inside the state directory",
         policy.state_dir + ": " +
             (inside_rc == 0 ? "created and removed" : std::strerror(inside_rc)));

  const long nr = SYS_mount;
  Say("calling forbidden system call: " + std::string(kSelftestForbiddenCall) + " (" +
      std::to_string(nr) + ")\n");
  const long rc = ::syscall(nr, nullptr, nullptr, nullptr, 0, nullptr);
  Say("FAIL: forbidden system call returned " + std::to_string(rc) + " (" + std::strerror(errno) +
      ")\n");
  return Exit(HelperExit::kSelftestFailed);
}

}  // namespace decnet::helper
