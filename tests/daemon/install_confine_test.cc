// The install child's confinement, tried for real: a release's install step (a Python script
// run as the install command) attempts each forbidden thing and must fail at each, and
// succeeds at what it may do. A child of the test stands in for the daemon: it runs as an
// unprivileged user (nobody), is non-dumpable, owns the files the daemon keeps (its TLS key,
// configuration, state, audit log, spool; readable by their owner, as the daemon's are) and the
// release store, and runs the install; the test listens on loopback ports.
#include "daemon/install_confine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "daemon/install_command.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;

// Each probe prints "<name> ok" or "<name> denied <errno name>".
constexpr char kProbeScript[] = R"PY(import ctypes, errno, os, socket, sys
pid, port, root, other_port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
libc = ctypes.CDLL(None, use_errno=True)

def probe(name, fn):
    try:
        r = fn()
        if isinstance(r, int) and r < 0:
            raise OSError(ctypes.get_errno(), "")
        print(name, "ok")
    except OSError as e:
        print(name, "denied", errno.errorcode.get(e.errno, str(e.errno)))

def write(path):
    with open(path, "w") as f:
        f.write("planted\n")
    if not path.endswith("built.txt"):
        os.unlink(path)

def opens(path):
    os.close(os.open(path, os.O_RDONLY))

def read(path):
    with open(path, "rb") as f:
        f.read(1)

def connect(p):
    s = socket.create_connection(("127.0.0.1", p), timeout=3)
    s.close()

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

def vm_read():
    buf = ctypes.create_string_buffer(16)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 16)
    remote = iovec(0x400000, 16)
    return libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)

probe("write-release", lambda: write("built.txt"))
probe("write-tmpdir", lambda: write(os.path.join(os.environ["TMPDIR"], "t")))
probe("read-usr", lambda: read("/usr/bin/python3"))
probe("signal-own-group", lambda: os.kill(0, 0))
probe("write-store", lambda: write(root + "/opt/decnet/planted"))
probe("write-other-release", lambda: write(root + "/opt/decnet/releases/fedcba9876543210/x"))
probe("write-wheelhouse", lambda: write(root + "/opt/decnet/wheelhouse/x.whl"))
probe("read-wheelhouse", lambda: read(root + "/opt/decnet/wheelhouse/old-1.0-py3-none-any.whl"))
probe("write-tmp", lambda: write("/tmp/decnet-confine-probe-%d" % os.getpid()))
probe("write-dev-shm", lambda: write("/dev/shm/decnet-confine-probe-%d" % os.getpid()))
probe("read-tls-key", lambda: read(root + "/etc/decnet/updater/updater.key"))
probe("read-config", lambda: read(root + "/etc/decnet-updater/config.json"))
probe("read-state", lambda: read(root + "/opt/decnet/state.json"))
probe("read-audit", lambda: read(root + "/var/lib/decnet-updater/audit.jsonl"))
probe("read-spool", lambda: read(root + "/var/lib/decnet-updater/spool/upload-1"))
probe("read-etc-file", lambda: read("/etc/issue"))
probe("list-etc", lambda: os.listdir("/etc"))
probe("read-proc-environ", lambda: read("/proc/%d/environ" % pid))
probe("open-proc-mem", lambda: opens("/proc/%d/mem" % pid))
probe("ptrace-attach", lambda: libc.ptrace(16, pid, 0, 0))
probe("ptrace-seize", lambda: libc.ptrace(0x4206, pid, 0, 0))
probe("process-vm-readv", vm_read)
probe("signal-daemon", lambda: os.kill(pid, 10))
probe("signal-daemon-check", lambda: os.kill(pid, 0))
probe("tcp-connect", lambda: connect(port))
probe("tcp-connect-other-port", lambda: connect(other_port))
probe("udp-socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
probe("unshare-user", lambda: libc.unshare(0x10000000))
probe("mount-tmpfs", lambda: libc.mount(b"none", b"mnt", b"tmpfs", 0, None))
)PY";

std::atomic<int> g_usr1_received{0};
void OnUsr1(int) { g_usr1_received.fetch_add(1); }

// A loopback TCP listener on an ephemeral port.
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
    }
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

constexpr uid_t kDaemonUid = 65534;  // nobody: the daemon's stand-in user
constexpr gid_t kDaemonGid = 65534;

class AConfinedInstall : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "decnet-confine-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
    release_ = root_ + "/opt/decnet/releases/0123456789abcdef";
    fs::create_directories(release_ + "/mnt");
    fs::create_directories(root_ + "/opt/decnet/releases/fedcba9876543210");
    fs::create_directories(root_ + "/etc/decnet/updater");
    fs::create_directories(root_ + "/etc/decnet-updater");
    fs::create_directories(root_ + "/var/lib/decnet-updater/spool");
    // The daemon's files, owned by its user and readable by it alone.
    for (const char* secret : {"/etc/decnet/updater/updater.key", "/etc/decnet-updater/config.json",
                               "/opt/decnet/state.json", "/var/lib/decnet-updater/audit.jsonl",
                               "/var/lib/decnet-updater/spool/upload-1"}) {
      std::ofstream(root_ + secret) << "secret\n";
      fs::permissions(root_ + secret, fs::perms::owner_read | fs::perms::owner_write);
    }
    std::ofstream(release_ + "/probe.py") << kProbeScript;
    // Everything the daemon owns is its user's: only the confinement stands in the way.
    for (const auto& entry : fs::recursive_directory_iterator(root_)) {
      ASSERT_EQ(lchown(entry.path().c_str(), kDaemonUid, kDaemonGid), 0) << entry.path();
    }
    // The wheelhouse: the daemon's too; the install may read it, not write it.
    fs::create_directories(root_ + "/opt/decnet/wheelhouse");
    ASSERT_EQ(chown((root_ + "/opt/decnet/wheelhouse").c_str(), kDaemonUid, kDaemonGid), 0);
    std::ofstream(root_ + "/opt/decnet/wheelhouse/old-1.0-py3-none-any.whl") << "wheel\n";
    ASSERT_EQ(chown((root_ + "/opt/decnet/wheelhouse/old-1.0-py3-none-any.whl").c_str(), kDaemonUid,
                    kDaemonGid),
              0);
  }
  void TearDown() override { fs::remove_all(root_); }

  // In a child that becomes the daemon's stand-in (nobody, non-dumpable, counting SIGUSR1),
  // runs the probe script as the release's install step. Returns probe -> "ok" | "denied".
  std::map<std::string, std::string> Probe(const InstallSandbox& sandbox, uint16_t port,
                                           uint16_t other_port) {
    int pipe_fds[2];
    EXPECT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    pid_t child = fork();
    if (child == 0) {
      close(pipe_fds[0]);
      _exit(RunAsDaemon(pipe_fds[1], sandbox, port, other_port));
    }
    close(pipe_fds[1]);
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    close(pipe_fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << text;
    output_ = text;
    std::map<std::string, std::string> results;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream words(line);
      std::string name, verdict;
      if (words >> name >> verdict) results[name] = verdict;
    }
    return results;
  }

  // The daemon's stand-in: drops to nobody, makes itself non-dumpable, runs the install.
  int RunAsDaemon(int out_fd, const InstallSandbox& sandbox, uint16_t port, uint16_t other_port) {
    if (setgroups(0, nullptr) != 0 || setresgid(kDaemonGid, kDaemonGid, kDaemonGid) != 0 ||
        setresuid(kDaemonUid, kDaemonUid, kDaemonUid) != 0 ||
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      return 2;
    }
    struct sigaction sa {};
    sa.sa_handler = OnUsr1;
    sigaction(SIGUSR1, &sa, nullptr);
    const int dir_fd = open(release_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return 3;
    InstallCommandConfig config;
    config.argv = {"/usr/bin/python3",
                   "-I",
                   "probe.py",
                   std::to_string(getpid()),
                   std::to_string(port),
                   root_,
                   std::to_string(other_port)};
    config.timeout = std::chrono::seconds(60);
    config.sandbox = sandbox;
    config.sandbox.read_paths.push_back(root_ + "/opt/decnet/wheelhouse");
    auto out =
        RunInstallCommand(config, InstallVars{release_, "0123456789abcdef", "1", ""}, dir_fd);
    std::string report = out ? out->output : "install failed: " + out.error().message + "\n";
    report += "usr1-received " + std::to_string(g_usr1_received.load()) + "\n";
    if (write(out_fd, report.data(), report.size()) != static_cast<ssize_t>(report.size())) {
      return 4;
    }
    return out ? 0 : 1;
  }

  std::string root_;
  std::string release_;
  std::string output_;
};

TEST_F(AConfinedInstall, FailsAtEachForbiddenThingAndMayDoItsOwnWork) {
  ASSERT_GE(KernelLandlockAbi(), 6) << "this test needs a kernel with Landlock ABI 6";
  Listener listener;
  Listener other;
  auto r = Probe(InstallSandbox{}, listener.port(), other.port());
  const std::map<std::string, std::string> kExpected = {
      {"write-release", "ok"},
      {"write-tmpdir", "ok"},
      {"read-usr", "ok"},
      {"signal-own-group", "ok"},
      {"read-wheelhouse", "ok"},
      {"write-store", "denied"},
      {"write-other-release", "denied"},
      {"write-wheelhouse", "denied"},
      {"write-tmp", "denied"},
      {"write-dev-shm", "denied"},
      {"read-tls-key", "denied"},
      {"read-config", "denied"},
      {"read-state", "denied"},
      {"read-audit", "denied"},
      {"read-spool", "denied"},
      {"read-etc-file", "denied"},
      {"list-etc", "denied"},
      {"read-proc-environ", "denied"},
      {"open-proc-mem", "denied"},
      {"ptrace-attach", "denied"},
      {"ptrace-seize", "denied"},
      {"process-vm-readv", "denied"},
      {"signal-daemon", "denied"},
      {"signal-daemon-check", "denied"},
      {"tcp-connect", "denied"},
      {"tcp-connect-other-port", "denied"},
      {"udp-socket", "denied"},
      {"unshare-user", "denied"},
      {"mount-tmpfs", "denied"},
  };
  for (const auto& [probe, verdict] : kExpected) {
    EXPECT_EQ(r[probe], verdict) << probe << "\n" << output_;
  }
  EXPECT_EQ(r["usr1-received"], "0") << output_;
  EXPECT_TRUE(fs::exists(release_ + "/built.txt"));
  EXPECT_FALSE(fs::exists(root_ + "/opt/decnet/planted"));
  EXPECT_FALSE(fs::exists(release_ + "/.decnet-tmp")) << "the private TMPDIR is removed";
}

TEST_F(AConfinedInstall, ReachesOnlyThePackageIndexPortWhenOneIsConfigured) {
  ASSERT_GE(KernelLandlockAbi(), 4) << "this test needs Landlock's TCP rules (ABI 4)";
  Listener index;
  Listener other;
  InstallSandbox sandbox;
  sandbox.index_port = index.port();
  auto r = Probe(sandbox, index.port(), other.port());
  EXPECT_EQ(r["tcp-connect"], "ok") << output_;
  EXPECT_EQ(r["tcp-connect-other-port"], "denied") << output_;
  EXPECT_EQ(r["read-tls-key"], "denied") << output_;
  EXPECT_EQ(r["signal-daemon"], "denied") << output_;
}

// On a kernel without (or with an older) Landlock, seccomp alone still keeps the install from
// tracing or signalling the daemon, from the network and from mounts.
class AConfinedInstallOnAnOlderKernel : public AConfinedInstall,
                                        public ::testing::WithParamInterface<int> {};

TEST_P(AConfinedInstallOnAnOlderKernel, StillCannotTraceSignalOrConnect) {
  Listener listener;
  InstallSandbox sandbox;
  sandbox.max_landlock_abi = GetParam();
  auto r = Probe(sandbox, listener.port(), listener.port());
  for (const char* probe :
       {"ptrace-attach", "ptrace-seize", "process-vm-readv", "signal-daemon", "signal-daemon-check",
        "tcp-connect", "udp-socket", "unshare-user", "mount-tmpfs"}) {
    EXPECT_EQ(r[probe], "denied") << probe << " at ABI " << GetParam() << "\n" << output_;
  }
  EXPECT_EQ(r["write-release"], "ok") << output_;
  EXPECT_EQ(r["signal-own-group"], "ok") << output_;
  EXPECT_EQ(r["usr1-received"], "0") << output_;
}

INSTANTIATE_TEST_SUITE_P(LandlockAbi, AConfinedInstallOnAnOlderKernel, ::testing::Values(0, 3, 5),
                         [](const auto& info) { return "Abi" + std::to_string(info.param); });

TEST(AnInstallConfinement, SaysWhatAnOlderKernelLoses) {
  const int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  InstallSandbox none;
  none.max_landlock_abi = 0;
  auto c0 = InstallConfinement::Prepare(none, dir, "/bin/true");
  ASSERT_TRUE(c0) << c0.error().message;
  EXPECT_EQ(c0->landlock_abi(), 0);
  ASSERT_FALSE(c0->Lost().empty());
  EXPECT_NE(c0->Lost().front().find("no Landlock"), std::string::npos);
  InstallSandbox five;
  five.max_landlock_abi = 5;
  auto c5 = InstallConfinement::Prepare(five, dir, "/bin/true");
  ASSERT_TRUE(c5);
  ASSERT_EQ(c5->Lost().size(), 1u);
  EXPECT_NE(c5->Lost().front().find("signal"), std::string::npos);
  auto full = InstallConfinement::Prepare(InstallSandbox{}, dir, "/bin/true");
  ASSERT_TRUE(full);
  if (KernelLandlockAbi() >= 6) {
    EXPECT_TRUE(full->Lost().empty());
  }
  close(dir);
}

}  // namespace
}  // namespace decnet::daemon
