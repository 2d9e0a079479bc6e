// The seccomp allow-list of the confined helper: the one table of system calls it may make.
// Everything else kills the process (SIGSYS). Built from what the serving helper was seen
// doing under `strace -f` in the confinement and integration flows (docs: the security
// review), not from what a C++ program might do in general. Argument refinements of some
// entries (socket: AF_UNIX only; mmap/mprotect: never PROT_EXEC; tgkill: own pid only)
// are applied in confine.cc.
#include "helper/confine.h"

namespace decnet::helper {

const std::vector<std::string>& SeccompAllowList() {
  static const std::vector<std::string> kTable = {
      // The daemon's pair (recvmsg, send) and the system bus (sd-bus: sendmsg/recvmsg, ppoll
      // while a call or a job is awaited); poll for the pair and the child's pidfd.
      "recvmsg",
      "sendmsg",
      "sendto",
      "ppoll",
      "poll",
      // sd_notify (READY=1, STATUS=): a fresh AF_UNIX datagram socket per notification (the
      // family is pinned to AF_UNIX in confine.cc); libsystemd enlarges its send buffer first.
      "socket",
      "setsockopt",
      "getsockopt",
      // sdbus-c++ 1.2 makes wake-up eventfds for each proxy (one per unit queried).
      "eventfd2",
      // Its files, and writes beneath the directory descriptors it holds: temp file, fchmod,
      // fsync, renameat, fsync of the directory; reading a unit back (pread64) to compare;
      // links (symlinkat, readlinkat); the record appended (openat O_APPEND); removals.
      "openat",
      "openat2",
      "close",
      "read",
      "write",
      "pread64",
      "newfstatat",
      "readlinkat",
      "fsync",
      "renameat",
      "unlinkat",
      "symlinkat",
      "fchmod",
      // The unit policy reads the POSIX ACL of a file systemd would open for a unit, from an
      // O_RDONLY descriptor of the object it checked (read-only; no path, no magic link).
      "fgetxattr",
      // Memory (malloc; mmap never with PROT_EXEC, see confine.cc).
      "brk",
      "mmap",
      "munmap",
      "mremap",
      "madvise",
      // Time where the vDSO falls back to the kernel; the C++ runtime's locks.
      "clock_gettime",
      "futex",
      // abort() on itself (an assertion shows as SIGABRT, not as a misleading SIGSYS);
      // tgkill is pinned to the helper's own pid in confine.cc.
      "rt_sigprocmask",
      "tgkill",
      // Identity queries: sd-bus checks it was not forked and reads its credentials.
      "getpid",
      "getuid",
      "geteuid",
      "getgid",
      "getegid",
      // Reaping the daemon child once its pidfd (poll) says it exited. No kill(2): it ends
      // by the closed pair or by its parent-death signal.
      "waitid",
      // Ending itself.
      "exit_group",
#ifdef DECNET_SANITIZER_BUILD
      // Sanitizer builds only: what the ASan/UBSan runtimes do on their own (alternate
      // signal stacks, their allocator's protections, reading their mappings, yielding in
      // their spin locks, thread exits; pipe2 is how they probe whether memory is readable).
      "sigaltstack",
      "sched_yield",
      "rt_sigaction",
      "rt_sigreturn",
      "prctl",
      "readlink",
      "getrlimit",
      "prlimit64",
      "mprotect",
      "gettid",
      "exit",
      "lseek",
      "fstat",
      "pipe2",
#endif
  };
  return kTable;
}

}  // namespace decnet::helper
