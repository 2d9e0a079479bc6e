// Tests of helper/confine.cc and helper/seccomp_table.cc, in forked children of the test
// process (confinement cannot be undone, so every confined thing happens in a child that
// reports back through a pipe or by how it died).
#include "helper/confine.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/kmsg.h"

namespace decnet::helper {
namespace {

struct ChildResult {
  pid_t pid = -1;
  int status = 0;      // waitpid status
  std::string output;  // what the child wrote to its pipe
  bool Exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  bool KilledBy(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
};

// Runs `body(out_fd)` in a forked child; its return value is the exit code.
ChildResult InChild(const std::function<int(int)>& body) {
  int p[2];
  EXPECT_EQ(::pipe(p), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);  // SIGSYS deaths are expected here
    ::_exit(body(p[1]));
  }
  ::close(p[1]);
  ChildResult r;
  r.pid = pid;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

void Put(int fd, const std::string& s) {
  const ssize_t n = ::write(fd, s.data(), s.size());
  (void)n;
}

std::string ProcStatus() {
  std::string out;
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool Has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/decnet-confine-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Confines the calling (child) process with `dir` as its one writable directory, passing
// the directory's descriptor as start-up does.
Result<ConfinementReport> ConfineWith(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return ConfineHelper({fd});
}

int CreateIn(const std::string& path) {
  open_how how{};
  how.flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
  how.mode = 0600;
  const long fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
  if (fd < 0) return errno;
  ::close(static_cast<int>(fd));
  ::unlinkat(AT_FDCWD, path.c_str(), 0);
  return 0;
}

// --- the table ---------------------------------------------------------------------------

TEST(SeccompAllowList, NamesOnlySystemCallsTheKernelKnows) {
  for (const std::string& name : SeccompAllowList())
    EXPECT_NE(::seccomp_syscall_resolve_name(name.c_str()), __NR_SCMP_ERROR) << name;
}

TEST(SeccompAllowList, ListsEachCallOnce) {
  auto names = SeccompAllowList();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

TEST(SeccompAllowList, LeavesOutEveryCallThatWouldWidenPrivilege) {
  const auto& table = SeccompAllowList();
  for (const char* forbidden : {"execve",
                                "execveat",
                                "fork",
                                "vfork",
                                "clone",
                                "clone3",
                                "ptrace",
                                "mount",
                                "umount2",
                                "pivot_root",
                                "chroot",
                                "unshare",
                                "setns",
                                "kill",
                                "tkill",
                                "setuid",
                                "setgid",
                                "setresuid",
                                "setresgid",
                                "setgroups",
                                "capset",
                                "bpf",
                                "init_module",
                                "finit_module",
                                "delete_module",
                                "kexec_load",
                                "reboot",
                                "process_vm_writev",
                                "process_vm_readv",
                                "connect",
                                "bind",
                                "listen",
                                "accept",
                                "accept4",
                                "ioctl",
                                "chmod",
                                "fchmodat",
                                "chown",
                                "fchown",
                                "fchownat",
                                "mknod",
                                "mknodat",
                                "link",
                                "linkat",
                                "open",
                                "creat",
                                "memfd_create",
                                "userfaultfd",
                                "perf_event_open",
                                "keyctl",
                                "add_key",
                                "request_key",
                                "seccomp",
                                "prctl",
                                "landlock_restrict_self",
                                "io_uring_setup",
                                "mount_setattr",
                                "open_tree",
                                "move_mount",
                                "fsopen"}) {
#ifdef DECNET_SANITIZER_BUILD
    if (std::string(forbidden) == "prctl") continue;  // the sanitizer runtimes need it
#endif
    EXPECT_EQ(std::count(table.begin(), table.end(), forbidden), 0) << forbidden;
  }
}

// --- the root side -----------------------------------------------------------------------

TEST(ConfineHelper, LeavesUid0WithEmptySetsNoNewPrivsAndAFilter) {
  TempDir dir;
  auto r = InChild([&](int out) {
    auto report = ConfineWith(dir.path());
    if (!report) {
      Put(out, "error " + report.error().rule + ": " + report.error().message);
      return 1;
    }
    Put(out, ProcStatus());
    return 0;
  });
  ASSERT_TRUE(r.Exited(0)) << r.output;
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_TRUE(Has(r.output, std::string(key) + ":\t0000000000000000\n")) << key << "\n"
                                                                           << r.output;
  EXPECT_TRUE(Has(r.output, "NoNewPrivs:\t1\n"));
  EXPECT_TRUE(Has(r.output, "Seccomp:\t2\n"));
  EXPECT_TRUE(Has(r.output, "Uid:\t0\t0\t0\t0\n"));
}

TEST(ConfineHelper, KillsAForbiddenCallWithSigsys) {
  TempDir dir;
  auto r = InChild([&](int out) {
    if (!ConfineWith(dir.path())) return 1;
    Put(out, "confined\n");
    ::syscall(SYS_mount, nullptr, nullptr, nullptr, 0, nullptr);
    return 2;
  });
  EXPECT_EQ(r.output, "confined\n");
  EXPECT_TRUE(r.KilledBy(SIGSYS)) << r.status;
}

TEST(ConfineHelper, RefusesWritesOutsideItsDirectoriesButAllowsThemInside) {
  TempDir inside;
  TempDir outside;
  ::chmod(outside.path().c_str(), 01777);
  auto r = InChild([&](int out) {
    const int before = CreateIn(outside.path() + "/control");
    auto report = ConfineWith(inside.path());
    if (!report) return 1;
    if (report->landlock_abi == 0) {
      Put(out, "no-landlock");
      return 0;
    }
    Put(out, std::to_string(before) + " " + std::to_string(CreateIn(outside.path() + "/x")) + " " +
                 std::to_string(CreateIn(inside.path() + "/x")) + " " +
                 std::to_string(CreateIn("/etc/decnet-confine-test")));
    return 0;
  });
  ASSERT_TRUE(r.Exited(0)) << r.output;
  if (r.output == "no-landlock") GTEST_SKIP() << "kernel without Landlock";
  // control ok before; outside refused; inside ok; /etc refused.
  EXPECT_EQ(r.output, "0 " + std::to_string(EACCES) + " 0 " + std::to_string(EACCES));
}

// A filter outside the helper (a container manager's) answers landlock_create_ruleset with
// `err`; the helper must still confine itself, and say which of the causes it met.
struct LandlockRefusal {
  const char* name;
  int err;
  const char* state;
};

void PrintTo(const LandlockRefusal& c, std::ostream* os) { *os << c.name; }

class ALandlockTheHelperCannotHave : public ::testing::TestWithParam<LandlockRefusal> {};

TEST_P(ALandlockTheHelperCannotHave, IsReportedForWhatItIsAndConfinementGoesOn) {
  TempDir dir;
  auto r = InChild([&](int out) {
    scmp_filter_ctx outer = ::seccomp_init(SCMP_ACT_ALLOW);
    if (outer == nullptr ||
        ::seccomp_rule_add(outer, SCMP_ACT_ERRNO(static_cast<uint32_t>(GetParam().err)),
                           SCMP_SYS(landlock_create_ruleset), 0) != 0 ||
        ::seccomp_load(outer) != 0)
      return 2;
    ::seccomp_release(outer);
    auto report = ConfineWith(dir.path());
    if (!report) {
      Put(out, report.error().rule);
      return 1;
    }
    Put(out, std::string(LandlockStateName(report->landlock_state)) + " " +
                 std::to_string(report->landlock_errno) + " " +
                 std::to_string(report->landlock_abi) + " " +
                 (report->landlock_enforced ? "enforced" : "not-enforced"));
    return 0;
  });
  ASSERT_TRUE(r.Exited(0)) << r.output;
  EXPECT_EQ(r.output, std::string(GetParam().state) + " " + std::to_string(GetParam().err) +
                          " 0 not-enforced");
}

INSTANTIATE_TEST_SUITE_P(Table, ALandlockTheHelperCannotHave,
                         ::testing::Values(LandlockRefusal{"BlockedByAFilter", EPERM, "blocked"},
                                           LandlockRefusal{"AbsentFromTheKernel", ENOSYS, "absent"},
                                           LandlockRefusal{"DisabledAtBoot", EOPNOTSUPP,
                                                           "disabled"},
                                           LandlockRefusal{"AnythingElse", EACCES, "unavailable"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(LandlockState, SaysABlockedLandlockLoudlyAndNeverAsAbsent) {
  EXPECT_NE(LandlockStateName(LandlockState::kBlocked), LandlockStateName(LandlockState::kAbsent));
  EXPECT_TRUE(Has(std::string(LandlockStateMeaning(LandlockState::kBlocked)), "WARNING"));
  EXPECT_TRUE(Has(std::string(LandlockStateMeaning(LandlockState::kBlocked)), "WITHOUT"));
  EXPECT_FALSE(Has(std::string(LandlockStateMeaning(LandlockState::kBlocked)), "kernel has no"));
  EXPECT_TRUE(Has(std::string(LandlockStateMeaning(LandlockState::kAbsent)), "kernel has no"));
}

TEST(ConfineHelper, RefusesAMultiThreadedProcess) {
  TempDir dir;
  auto r = InChild([&](int out) {
    std::thread t([] { std::this_thread::sleep_for(std::chrono::milliseconds(300)); });
    auto report = ConfineWith(dir.path());
    t.join();
    Put(out, report ? "confined" : report.error().rule);
    return 0;
  });
  ASSERT_TRUE(r.Exited(0));
  EXPECT_EQ(r.output, "confine-threads");
}

TEST(ConfineHelper, AllowsUnixSocketsForNotifyButKillsInetSockets) {
  TempDir dir;
  auto r = InChild([&](int out) {
    if (!ConfineWith(dir.path())) return 1;
    const int unix_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    Put(out, unix_fd >= 0 ? "unix-ok\n" : "unix-failed\n");
    ::socket(AF_INET, SOCK_STREAM, 0);
    return 2;
  });
  EXPECT_EQ(r.output, "unix-ok\n");
  EXPECT_TRUE(r.KilledBy(SIGSYS));
}

TEST(ConfineHelper, KillsAnExecutableMapping) {
  TempDir dir;
  auto r = InChild([&](int out) {
    if (!ConfineWith(dir.path())) return 1;
    void* rw = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    Put(out, rw != MAP_FAILED ? "rw-ok\n" : "rw-failed\n");
    ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return 2;
  });
  EXPECT_EQ(r.output, "rw-ok\n");
  EXPECT_TRUE(r.KilledBy(SIGSYS));
}

TEST(ConfineHelper, KillsExec) {
  TempDir dir;
  auto r = InChild([&](int) {
    if (!ConfineWith(dir.path())) return 1;
    const char* argv[] = {"/bin/true", nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    return 2;
  });
  EXPECT_TRUE(r.KilledBy(SIGSYS));
}

TEST(ConfineHelper, KillsSignalsToOtherProcesses) {
  TempDir dir;
  auto r = InChild([&](int) {
    if (!ConfineWith(dir.path())) return 1;
    ::kill(1, 0);
    return 2;
  });
  EXPECT_TRUE(r.KilledBy(SIGSYS));
}

// --- argument filters: each allowed call is killed with the arguments it must never take.
// The child announces each call on its pipe just before making it; the last announcement
// before the SIGSYS names the call the filter killed (and the allowed variant before it
// proves the call itself is in the table). With the argument check removed the forbidden
// variant returns, the child reports it and exits 2: the test fails.

using test::AuditedSyscall;

// Checks that the child was killed by SIGSYS right after announcing `call`, and (when the
// kernel's audit record is readable and not rate-limited) that seccomp names `nr`.
void ExpectKilledAt(const ChildResult& r, const std::string& allowed, const std::string& call,
                    long nr) {
  EXPECT_TRUE(r.KilledBy(SIGSYS)) << "status " << r.status << "\n" << r.output;
  EXPECT_EQ(r.output, allowed + "calling " + call + "\n");
  std::optional<long> audited;
  for (int i = 0; i < 20 && !(audited = AuditedSyscall(r.pid)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (audited) {
    EXPECT_EQ(*audited, nr) << call;
  }
}

TEST(ConfineHelper, KillsOpenatWithWriteFlagsButLetsItRead) {
  TempDir dir;
  const std::string target = dir.path() + "/written";
  for (const int flags : {O_WRONLY, O_RDWR, O_RDONLY | O_CREAT, O_RDONLY | O_TRUNC}) {
    auto r = InChild([&](int out) {
      if (!ConfineWith(dir.path())) return 1;
      const long rd = ::syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
      Put(out, rd >= 0 ? "read-ok\n" : "read-failed\n");
      Put(out, "calling openat\n");
      ::syscall(SYS_openat, AT_FDCWD, target.c_str(), flags | O_CLOEXEC, 0600);
      Put(out, "returned\n");
      return 2;
    });
    ExpectKilledAt(r, "read-ok\n", "openat", SYS_openat);
    EXPECT_FALSE(std::filesystem::exists(target)) << flags;
  }
}

TEST(ConfineHelper, KillsTgkillTowardsAnotherProcessButLetsItSignalItself) {
  TempDir dir;
  const pid_t other = ::getpid();  // the test process: another thread group for the child
  auto r = InChild([&](int out) {
    if (!ConfineWith(dir.path())) return 1;
    const long self = ::syscall(SYS_tgkill, ::getpid(), ::getpid(), 0);
    Put(out, self == 0 ? "self-ok\n" : "self-failed\n");
    Put(out, "calling tgkill\n");
    ::syscall(SYS_tgkill, other, other, 0);
    Put(out, "returned\n");
    return 2;
  });
  ExpectKilledAt(r, "self-ok\n", "tgkill", SYS_tgkill);
}

TEST(ConfineHelper, KillsMprotectThatAddsExec) {
  TempDir dir;
  auto r = InChild([&](int out) {
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED || !ConfineWith(dir.path())) return 1;
#ifdef DECNET_SANITIZER_BUILD
    // Only sanitizer builds allow mprotect at all; without PROT_EXEC it must pass.
    Put(out, ::mprotect(page, 4096, PROT_READ) == 0 ? "rw-ok\n" : "rw-failed\n");
#else
    Put(out, "rw-ok\n");
#endif
    Put(out, "calling mprotect\n");
    ::mprotect(page, 4096, PROT_READ | PROT_EXEC);
    Put(out, "returned\n");
    return 2;
  });
  ExpectKilledAt(r, "rw-ok\n", "mprotect", SYS_mprotect);
}

// --- the daemon side ---------------------------------------------------------------------

TEST(DropToUser, RefusesRoot) {
  auto r = InChild([&](int out) {
    auto dropped = DropToUser(0, 65534);
    Put(out, dropped ? "dropped" : dropped.error().rule);
    return 0;
  });
  EXPECT_EQ(r.output, "daemon-user-root");
}

TEST(DropToUser, LeavesNoCapabilityNoGroupAndNoWayBack) {
  auto r = InChild([&](int out) {
    const gid_t extra[] = {4, 27};  // supplementary groups the drop must clear
    ::setgroups(2, extra);
    auto dropped = DropToUser(65534, 65534);
    if (!dropped) {
      Put(out, "error " + dropped.error().rule + ": " + dropped.error().message);
      return 1;
    }
    Put(out, ProcStatus());
    Put(out, ::setuid(0) == 0 ? "regained-root\n" : "no-way-back\n");
    return 0;
  });
  ASSERT_TRUE(r.Exited(0)) << r.output;
  EXPECT_TRUE(Has(r.output, "Uid:\t65534\t65534\t65534\t65534\n")) << r.output;
  EXPECT_TRUE(Has(r.output, "Gid:\t65534\t65534\t65534\t65534\n"));
  EXPECT_TRUE(Has(r.output, "Groups:\t \n") || Has(r.output, "Groups:\t\n")) << r.output;
  for (const char* key : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_TRUE(Has(r.output, std::string(key) + ":\t0000000000000000\n")) << key;
  EXPECT_TRUE(Has(r.output, "NoNewPrivs:\t1\n"));
  EXPECT_TRUE(Has(r.output, "no-way-back\n"));
}

}  // namespace
}  // namespace decnet::helper
