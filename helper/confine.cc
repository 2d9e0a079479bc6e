// Confinement of the helper (root side) and of the daemon child (user side).
//
// The root side keeps uid 0 because systemd authorises uid-0 D-Bus callers without any
// capability; everything else that makes root powerful is taken away here,
// in an order where each step still has the privilege it needs: the Landlock rules are built from
// the caller's checked directory descriptors, capabilities and securebits next (dropping the
// bounding set needs CAP_SETPCAP), then NoNewPrivs (which Landlock and unprivileged seccomp
// require), Landlock, and last the seccomp filter, after which only the allow-listed system calls
// exist.
#include "helper/confine.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "helper/fs_ops.h"

// The build host's <linux/landlock.h> may predate the rights newer kernels offer; their
// values are fixed by the kernel ABI.
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

namespace decnet::helper {
namespace {

Error SysError(std::string rule, const std::string& what) {
  return Error{ErrorCode::kFailed, std::move(rule), what + ": " + std::strerror(errno)};
}

// Number of threads in this process, from /proc/self/status ("Threads:").
int ThreadCount() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

int LastCap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = -1;
  if (in >> last) return last;
  return CAP_LAST_CAP;
}

// Drops the bounding set (needs CAP_SETPCAP, so before capset), locks the securebits that
// stop uid 0 regaining capabilities, then clears ambient, inheritable, permitted, effective.
Result<void> DropAllCapabilities() {
  const int last = LastCap();
  for (int cap = 0; cap <= last; ++cap) {
    // SECURITY: an empty bounding set means no exec can ever give this process a capability.
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return tl::make_unexpected(
          SysError("cap-bounding", "PR_CAPBSET_DROP " + std::to_string(cap)));
  }
  // SECURITY: NOROOT/NO_SETUID_FIXUP locked: uid 0 gets no capabilities back from exec or setuid.
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                             SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                             SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0)
    return tl::make_unexpected(SysError("cap-securebits", "PR_SET_SECUREBITS"));
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return tl::make_unexpected(SysError("cap-ambient", "PR_CAP_AMBIENT_CLEAR_ALL"));
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capset, &header, data) != 0)
    return tl::make_unexpected(SysError("cap-sets", "capset"));
  return {};
}

// Reads back what DropAllCapabilities / DropToUser promised; a kernel that silently ignored
// a step must not leave us believing we are confined.
Result<void> VerifyNoCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0)
    return tl::make_unexpected(SysError("cap-verify", "capget"));
  for (const auto& d : data) {
    if (d.effective != 0 || d.permitted != 0 || d.inheritable != 0)
      return Fail(ErrorCode::kFailed, "cap-verify", "a capability set is not empty");
  }
  const int last = LastCap();
  for (int cap = 0; cap <= last; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      return Fail(ErrorCode::kFailed, "cap-verify",
                  "capability " + std::to_string(cap) + " still in the bounding set");
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap, 0, 0) == 1)
      return Fail(ErrorCode::kFailed, "cap-verify",
                  "capability " + std::to_string(cap) + " still ambient");
  }
  return {};
}

Result<void> SetNoNewPrivs() {
  // SECURITY: NoNewPrivs: no set-id binary or file capability can raise privilege after this.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return tl::make_unexpected(SysError("no-new-privs", "PR_SET_NO_NEW_PRIVS"));
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
    return Fail(ErrorCode::kFailed, "no-new-privs", "NoNewPrivs did not stick");
  return {};
}

// The kernel's Landlock ABI version into `report`, or why there is none.
void QueryLandlock(ConfinementReport& report) {
  const long abi =
      ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi > 0) {
    report.landlock_abi = static_cast<int>(abi);
    return;
  }
  report.landlock_abi = 0;
  report.landlock_errno = abi < 0 ? errno : 0;
  // SECURITY: EPERM is not "no Landlock": a filter took it away, and the log, the record and
  // helperctl say so rather than passing it off as a fact of the kernel.
  switch (report.landlock_errno) {
    case ENOSYS:
      report.landlock_state = LandlockState::kAbsent;
      break;
    case EOPNOTSUPP:
      report.landlock_state = LandlockState::kDisabled;
      break;
    case EPERM:
      report.landlock_state = LandlockState::kBlocked;
      break;
    default:
      report.landlock_state = LandlockState::kUnavailable;
      break;
  }
}

// Every write-ish right this ABI knows: what the ruleset handles (so denies by default).
uint64_t HandledWriteRights(int abi) {
  uint64_t rights = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                    LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR |
                    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                    LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
                    LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) rights |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) rights |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) rights |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return rights;
}

// What the helper may do beneath its directories: regular files, symlinks, directories,
// renames among them. SECURITY: never devices, FIFOs, sockets or device ioctls, even inside.
uint64_t AllowedBeneathWritableDirs(int abi) {
  const uint64_t never = LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                         LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                         LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return HandledWriteRights(abi) & ~never;
}

// Builds the ruleset from the descriptors whose ownership was checked when they were opened.
Result<UniqueFd> BuildLandlockRuleset(int abi, const std::vector<int>& dir_fds) {
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = HandledWriteRights(abi);
  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0)));
  if (ruleset.get() < 0)
    return tl::make_unexpected(SysError("landlock", "landlock_create_ruleset"));
  for (int dir_fd : dir_fds) {
    landlock_path_beneath_attr beneath{};
    beneath.allowed_access = AllowedBeneathWritableDirs(abi);
    beneath.parent_fd = dir_fd;
    if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) !=
        0)
      return tl::make_unexpected(SysError("landlock", "landlock_add_rule"));
  }
  return ruleset;
}

// Argument refinements of allow-listed calls (the names themselves live in the one table,
// seccomp_table.cc). A call listed here is allowed only with these arguments.
struct ArgRule {
  const char* name;
  std::vector<scmp_arg_cmp> match;  // all must hold
};

std::vector<ArgRule> ArgumentRules(pid_t self) {
  const auto no_exec = SCMP_CMP_MASKED_EQ;
  return {
      // SECURITY: only AF_UNIX sockets (sd_notify's datagram); no network from root.
      {"socket", {SCMP_A0(SCMP_CMP_EQ, AF_UNIX)}},
      // SECURITY: no executable mappings: injected code cannot be mapped and run.
      {"mmap", {SCMP_A2(no_exec, PROT_EXEC, 0)}},
      {"mprotect", {SCMP_A2(no_exec, PROT_EXEC, 0)}},
      // SECURITY: openat(2) only reads (the policy, /proc, a unit read back); every write goes
      // through openat2 beneath a held directory descriptor.
      {"openat", {SCMP_A2(SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0)}},
      // SECURITY: tgkill only towards this process (abort, raise); never other root processes.
      {"tgkill", {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(self))}},
  };
}

Result<void> InstallSeccomp() {
  // SECURITY: default kill-process: anything not listed ends the helper with SIGSYS, and a
  // foreign architecture (i386 int 0x80, x32) is refused by libseccomp's bad-arch default.
  scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (ctx == nullptr) return Fail(ErrorCode::kFailed, "seccomp", "seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { ::seccomp_release(c); }
  } release{ctx};
  const auto arg_rules = ArgumentRules(::getpid());
  for (const std::string& name : SeccompAllowList()) {
    const int nr = ::seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR)
      return Fail(ErrorCode::kFailed, "seccomp", "unknown system call in the table: " + name);
    const ArgRule* refined = nullptr;
    for (const ArgRule& r : arg_rules)
      if (name == r.name) refined = &r;
    const int rc = refined == nullptr
                       ? ::seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)
                       : ::seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr,
                                                  static_cast<unsigned>(refined->match.size()),
                                                  refined->match.data());
    if (rc != 0)
      return Fail(ErrorCode::kFailed, "seccomp",
                  "seccomp_rule_add " + name + ": " + std::strerror(-rc));
  }
  const int rc = ::seccomp_load(ctx);
  if (rc != 0)
    return Fail(ErrorCode::kFailed, "seccomp", std::string("seccomp_load: ") + std::strerror(-rc));
  return {};
}

}  // namespace

Result<ConfinementReport> ConfineHelper(const std::vector<int>& writable_dir_fds) {
  // SECURITY: capabilities, NoNewPrivs and Landlock are per thread; a second thread would
  // stay unconfined, so confinement refuses to run in a multi-threaded process.
  if (const int threads = ThreadCount(); threads != 1)
    return Fail(ErrorCode::kFailed, "confine-threads",
                "confinement needs a single-threaded process, found " + std::to_string(threads));

  ConfinementReport report;
  QueryLandlock(report);

  if (auto r = DropAllCapabilities(); !r) return tl::make_unexpected(r.error());
  if (auto r = VerifyNoCapabilities(); !r) return tl::make_unexpected(r.error());
  if (auto r = SetNoNewPrivs(); !r) return tl::make_unexpected(r.error());

  if (report.landlock_abi > 0) {
    // SECURITY: the rules name the very directories whose owner and mode were checked;
    // reopening their paths would let a rename in between grant another directory.
    auto ruleset = BuildLandlockRuleset(report.landlock_abi, writable_dir_fds);
    if (!ruleset) return tl::make_unexpected(ruleset.error());
    // SECURITY: from here on the helper can write only beneath its own directories.
    if (::syscall(SYS_landlock_restrict_self, ruleset->get(), 0) != 0)
      return tl::make_unexpected(SysError("landlock", "landlock_restrict_self"));
    report.landlock_enforced = true;
    report.landlock_state = LandlockState::kEnforced;
  }

  if (auto r = InstallSeccomp(); !r) return tl::make_unexpected(r.error());
  return report;
}

std::string_view LandlockStateName(LandlockState state) {
  switch (state) {
    case LandlockState::kEnforced:
      return "enforced";
    case LandlockState::kAbsent:
      return "absent";
    case LandlockState::kDisabled:
      return "disabled";
    case LandlockState::kBlocked:
      return "blocked";
    case LandlockState::kUnavailable:
      break;
  }
  return "unavailable";
}

std::string_view LandlockStateMeaning(LandlockState state) {
  switch (state) {
    case LandlockState::kEnforced:
      return "writes only beneath the helper's own directories";
    case LandlockState::kAbsent:
      return "the kernel has no Landlock; writes are limited by the unit's sandbox only";
    case LandlockState::kDisabled:
      return "the kernel's Landlock is disabled at boot (lsm=); writes are limited by the "
             "unit's sandbox only";
    case LandlockState::kBlocked:
      return "WARNING: a seccomp filter outside the helper (a container manager's?) refused "
             "Landlock; the helper serves WITHOUT it, writes are limited by the unit's sandbox "
             "only; allow the landlock_* system calls to the container";
    case LandlockState::kUnavailable:
      break;
  }
  return "WARNING: the Landlock version query failed; the helper serves WITHOUT Landlock";
}

std::string DescribeLandlock(LandlockState state, int err) {
  const std::string name = err == ENOSYS       ? "ENOSYS"
                           : err == EOPNOTSUPP ? "EOPNOTSUPP"
                           : err == EPERM      ? "EPERM"
                                               : "errno " + std::to_string(err);
  return std::string(LandlockStateName(state)) + " (" + name +
         "): " + std::string(LandlockStateMeaning(state));
}

Result<void> DropToUser(uid_t uid, gid_t gid) {
  // SECURITY: the daemon is never root, whatever the policy says.
  if (uid == 0 || gid == 0)
    return Fail(ErrorCode::kDenied, "daemon-user-root",
                "refusing to run the daemon as uid or gid 0");
  if (::setgroups(0, nullptr) != 0)
    return tl::make_unexpected(SysError("drop-groups", "setgroups"));
  // SECURITY: capng_change_id changes gid then uid with all capabilities, the bounding set
  // and the supplementary groups cleared.
  ::capng_clear(CAPNG_SELECT_BOTH);
  const int rc =
      ::capng_change_id(static_cast<int>(uid), static_cast<int>(gid),
                        static_cast<capng_flags_t>(CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING));
  if (rc != 0)
    return Fail(ErrorCode::kFailed, "drop-user",
                "capng_change_id failed (" + std::to_string(rc) + ")");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return tl::make_unexpected(SysError("cap-ambient", "PR_CAP_AMBIENT_CLEAR_ALL"));
  if (auto r = SetNoNewPrivs(); !r) return r;

  uid_t ruid = 0, euid = 0, suid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0)
    return tl::make_unexpected(SysError("drop-verify", "getresuid/getresgid"));
  if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid)
    return Fail(ErrorCode::kFailed, "drop-verify", "real/effective/saved ids did not all change");
  if (::getgroups(0, nullptr) != 0)
    return Fail(ErrorCode::kFailed, "drop-verify", "supplementary groups remain");
  if (auto r = VerifyNoCapabilities(); !r) return r;
  // SECURITY: the way back must be closed: uid 0 must be unreachable now.
  if (::setuid(0) == 0 || ::setgid(0) == 0)
    return Fail(ErrorCode::kFailed, "drop-verify", "could regain uid or gid 0");
  return {};
}

}  // namespace decnet::helper
