#include "daemon/install_confine.h"

#include <fcntl.h>
#include <glob.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace decnet::daemon {
namespace {

// Newer Landlock pieces than the build host's kernel headers may know; values are ABI.
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;   // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;
constexpr int kRuleNetPort = 2;
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;

// The kernel's landlock_ruleset_attr as of ABI 6; an older kernel accepts the larger struct
// as long as the fields it does not know are zero.
struct RulesetAttr {
  uint64_t handled_access_fs = 0;
  uint64_t handled_access_net = 0;
  uint64_t scoped = 0;
};
struct NetPortAttr {
  uint64_t allowed_access;
  uint64_t port;
};

constexpr uint64_t kRead = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
constexpr uint64_t kReadExec = kRead | LANDLOCK_ACCESS_FS_EXECUTE;

uint64_t FsRights(int abi) {
  uint64_t rights = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) rights |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) rights |= kFsTruncate;
  if (abi >= 5) rights |= kFsIoctlDev;
  return rights;
}

// Trees a Python toolchain reads and runs from. Merged-/usr symlinks resolve to /usr.
constexpr std::array kSystemExecTrees = {"/usr",   "/bin",   "/sbin",  "/lib",
                                         "/lib32", "/lib64", "/libx32"};
// SECURITY: single /etc entries, never /etc itself: the daemon's keys and configuration live
// under /etc/decnet*, which no rule reaches.
constexpr std::array kEtcEntries = {
    "/etc/ssl/certs",    "/etc/ssl/openssl.cnf", "/etc/ca-certificates", "/etc/resolv.conf",
    "/etc/hosts",        "/etc/host.conf",       "/etc/gai.conf",        "/etc/nsswitch.conf",
    "/etc/services",     "/etc/protocols",       "/etc/ld.so.cache",     "/etc/ld.so.conf",
    "/etc/ld.so.conf.d", "/etc/localtime",       "/etc/mime.types",      "/etc/passwd",
    "/etc/group",        "/etc/os-release",      "/etc/debian_version",  "/etc/lsb-release"};
constexpr std::array kDevReadable = {"/dev/zero", "/dev/urandom", "/dev/random"};

int LandlockCreate(const RulesetAttr* attr, size_t size, uint32_t flags) {
  return static_cast<int>(syscall(SYS_landlock_create_ruleset, attr, size, flags));
}

tl::unexpected<Error> ConfineError(const std::string& what) {
  return Fail(ErrorCode::kFailed, "install-confine", what + ": " + std::strerror(errno));
}

// Adds a path-beneath rule for `path` (skipped when it does not exist), restricted to what
// Landlock allows on its kind (a file takes no directory rights).
Result<void> AddPath(int ruleset, int path_fd, uint64_t access, uint64_t handled) {
  struct stat st {};
  if (fstat(path_fd, &st) != 0) return ConfineError("fstat a rule's path");
  if (!S_ISDIR(st.st_mode)) {
    access &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
              LANDLOCK_ACCESS_FS_READ_FILE | kFsTruncate | kFsIoctlDev;
  }
  landlock_path_beneath_attr rule{};
  rule.allowed_access = access & handled;
  rule.parent_fd = path_fd;
  if (rule.allowed_access == 0) return {};
  if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
    return ConfineError("landlock_add_rule");
  }
  return {};
}

Result<void> AddNamedPath(int ruleset, const char* path, uint64_t access, uint64_t handled) {
  UniqueFd fd(open(path, O_PATH | O_CLOEXEC));
  if (!fd.valid()) return {};  // absent here: nothing to grant
  return AddPath(ruleset, fd.get(), access, handled);
}

Result<UniqueFd> BuildRuleset(int abi, const InstallSandbox& sandbox, int release_dir_fd,
                              const std::string& program) {
  RulesetAttr attr;
  attr.handled_access_fs = FsRights(abi);
  if (abi >= 4) attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
  if (abi >= 6) attr.scoped = kScopeAbstractUnix | kScopeSignal;
  const uint64_t handled = attr.handled_access_fs;
  UniqueFd ruleset(LandlockCreate(&attr, sizeof attr, 0));
  if (!ruleset.valid()) return ConfineError("landlock_create_ruleset");
  const int rs = ruleset.get();
  // SECURITY: the one writable tree is the release's own directory (by its descriptor, not a
  // path that could have been swapped); no device nodes may be made there.
  const uint64_t release_rights =
      handled & ~(LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK | kFsIoctlDev);
  if (auto ok = AddPath(rs, release_dir_fd, release_rights, handled); !ok)
    return tl::make_unexpected(ok.error());
  for (const char* tree : kSystemExecTrees) {
    if (auto ok = AddNamedPath(rs, tree, kReadExec, handled); !ok)
      return tl::make_unexpected(ok.error());
  }
  for (const char* entry : kEtcEntries) {
    if (auto ok = AddNamedPath(rs, entry, kRead, handled); !ok)
      return tl::make_unexpected(ok.error());
  }
  glob_t python_etc{};
  if (glob("/etc/python3*", GLOB_ONLYDIR, nullptr, &python_etc) == 0) {
    for (size_t i = 0; i < python_etc.gl_pathc; ++i) {
      if (auto ok = AddNamedPath(rs, python_etc.gl_pathv[i], kRead, handled); !ok) {
        globfree(&python_etc);
        return tl::make_unexpected(ok.error());
      }
    }
  }
  globfree(&python_etc);
  // /proc as any user sees it: another process's private files need ptrace access, which
  // Landlock (and the daemon's non-dumpable state) refuse across the domain boundary.
  if (auto ok = AddNamedPath(rs, "/proc", kRead, handled); !ok)
    return tl::make_unexpected(ok.error());
  for (const char* dev : kDevReadable) {
    if (auto ok = AddNamedPath(rs, dev, LANDLOCK_ACCESS_FS_READ_FILE, handled); !ok) {
      return tl::make_unexpected(ok.error());
    }
  }
  const uint64_t dev_null =
      LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | kFsTruncate | kFsIoctlDev;
  if (auto ok = AddNamedPath(rs, "/dev/null", dev_null, handled); !ok)
    return tl::make_unexpected(ok.error());
  for (const std::string& path : sandbox.read_paths) {
    if (auto ok = AddNamedPath(rs, path.c_str(), kRead, handled); !ok)
      return tl::make_unexpected(ok.error());
  }
  if (auto ok = AddNamedPath(rs, program.c_str(), kReadExec, handled); !ok)
    return tl::make_unexpected(ok.error());
  if (abi >= 4 && sandbox.index_port != 0) {
    // SECURITY: with a package index, TCP connections go to its port only.
    NetPortAttr port{kNetConnectTcp, sandbox.index_port};
    if (syscall(SYS_landlock_add_rule, rs, kRuleNetPort, &port, 0) != 0) {
      return ConfineError("landlock_add_rule (port)");
    }
  }
  return ruleset;
}

// Adds one refusal; a syscall this architecture lacks is skipped.
bool Deny(scmp_filter_ctx ctx, const char* name, int err, std::vector<scmp_arg_cmp> cmp = {}) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return true;
  return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(static_cast<uint32_t>(err)), nr,
                                static_cast<unsigned>(cmp.size()), cmp.data()) == 0;
}

bool AddDenials(scmp_filter_ctx ctx, const InstallSandbox& sandbox, bool scoped_signals) {
  bool ok = true;
  // SECURITY: no tracing, reading or writing another process's memory (the daemon's keys).
  for (const char* name :
       {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"}) {
    ok = ok && Deny(ctx, name, EPERM);
  }
  // SECURITY: no kernel keyrings, BPF, perf or userfaultfd: kernel attack surface with no use
  // in a build.
  for (const char* name :
       {"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd"}) {
    ok = ok && Deny(ctx, name, EPERM);
  }
  // SECURITY: no mounts and no new namespaces (a user namespace would hand the command
  // capabilities over its own mounts and network).
  for (const char* name :
       {"mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
        "move_mount", "open_tree", "mount_setattr", "unshare", "setns"}) {
    ok = ok && Deny(ctx, name, EPERM);
  }
  for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                        CLONE_NEWPID, CLONE_NEWNET}) {
    ok = ok && Deny(ctx, "clone", EPERM, {SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)});
  }
  // clone3 passes its flags in memory, out of seccomp's sight: ENOSYS makes libc use clone.
  ok = ok && Deny(ctx, "clone3", ENOSYS);
  // SECURITY: io_uring performs socket and file operations that no seccomp rule sees.
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    ok = ok && Deny(ctx, name, EPERM);
  }
  // SECURITY: no network unless a package index is configured; AF_UNIX stays (socketpair).
  std::vector<int> allowed = {AF_UNIX};
  if (sandbox.index_port != 0) allowed.insert(allowed.end(), {AF_INET, AF_INET6, AF_NETLINK});
  constexpr int kFamilies = 64;
  for (int family = 0; family < kFamilies; ++family) {
    if (std::find(allowed.begin(), allowed.end(), family) != allowed.end()) continue;
    ok = ok &&
         Deny(ctx, "socket", EACCES, {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))});
  }
  ok = ok && Deny(ctx, "socket", EACCES, {SCMP_A0(SCMP_CMP_GE, kFamilies)});
  if (!scoped_signals) {
    // SECURITY: without Landlock's signal scoping, only the command's own process group may be
    // signalled (kill(0, sig)); the daemon and everything else may not.
    ok = ok && Deny(ctx, "kill", EPERM, {SCMP_A0(SCMP_CMP_NE, 0)});
    for (const char* name :
         {"tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"}) {
      ok = ok && Deny(ctx, name, EPERM);
    }
  }
  return ok;
}

Result<std::vector<sock_filter>> BuildFilter(const InstallSandbox& sandbox, bool scoped_signals) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return Fail(ErrorCode::kFailed, "install-confine", "seccomp_init failed");
  // SECURITY: a foreign architecture's system calls (int 0x80) would dodge every rule; the
  // filter keeps libseccomp's default for them: the process is killed.
  bool ok = AddDenials(ctx, sandbox, scoped_signals);
  UniqueFd mem(ok ? memfd_create("install-seccomp", MFD_CLOEXEC) : -1);
  ok = ok && mem.valid() && seccomp_export_bpf(ctx, mem.get()) == 0;
  seccomp_release(ctx);
  if (!ok) return Fail(ErrorCode::kFailed, "install-confine", "cannot build the seccomp filter");
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0 || size > (1 << 20)) {
    return Fail(ErrorCode::kFailed, "install-confine", "unexpected seccomp program size");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), program.data(), static_cast<size_t>(size), 0) != size) {
    return ConfineError("read the seccomp program");
  }
  return program;
}

std::vector<std::string> LostAt(int abi) {
  std::vector<std::string> lost;
  if (abi == 0) {
    lost.emplace_back(
        "no Landlock: the install's reads and writes are limited by file "
        "permissions only");
  }
  if (abi == 1) lost.emplace_back("Landlock ABI 1: renames across directories are refused");
  if (abi < 3) lost.emplace_back("truncation of files outside the release is not controlled");
  if (abi < 4) {
    lost.emplace_back(
        "TCP is not limited to the package index's port (seccomp still refuses "
        "sockets when no index is configured)");
  }
  if (abi < 5) lost.emplace_back("device ioctls are not controlled");
  if (abi < 6) {
    lost.emplace_back(
        "no Landlock scoping: seccomp refuses every signal but to the install's "
        "own process group, and abstract unix sockets are reachable");
  }
  return lost;
}

}  // namespace

int KernelLandlockAbi() {
  int abi = LandlockCreate(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : abi;
}

Result<InstallConfinement> InstallConfinement::Prepare(const InstallSandbox& sandbox,
                                                       int release_dir_fd,
                                                       const std::string& program) {
  InstallConfinement c;
  c.abi_ = std::min(KernelLandlockAbi(), sandbox.max_landlock_abi);
  c.lost_ = LostAt(c.abi_);
  if (c.abi_ > 0) {
    auto ruleset = BuildRuleset(c.abi_, sandbox, release_dir_fd, program);
    if (!ruleset) return tl::make_unexpected(ruleset.error());
    c.ruleset_ = std::move(*ruleset);
  }
  auto filter = BuildFilter(sandbox, c.abi_ >= 6);
  if (!filter) return tl::make_unexpected(filter.error());
  c.filter_ = std::move(*filter);
  return c;
}

int InstallConfinement::ApplyInChild() const noexcept {
  // SECURITY: no set-id program may regain what the daemon's user lacks; Landlock and seccomp
  // both need it from an unprivileged caller.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (ruleset_.valid() && syscall(SYS_landlock_restrict_self, ruleset_.get(), 0) != 0) {
    return errno;
  }
  sock_fprog prog{static_cast<unsigned short>(filter_.size()),
                  const_cast<sock_filter*>(filter_.data())};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
  return 0;
}

std::string DescribeInstallConfinement() {
  const int abi = KernelLandlockAbi();
  std::string out = "install confinement: NoNewPrivs, seccomp, Landlock ABI " + std::to_string(abi);
  auto lost = LostAt(abi);
  if (lost.empty()) return out + " (complete)";
  out += "; on this kernel:";
  for (const std::string& l : lost) out += " " + l + ";";
  out.pop_back();
  return out;
}

}  // namespace decnet::daemon
