// The confinement of an install child: the command runs code the release brought (build
// backends, setup.py), so it gets no more than the release's own units could do.
//
// Prepared in the parent (where allocation and path lookups are safe), applied in the child
// between fork and exec with nothing but system calls:
//   * NoNewPrivs;
//   * Landlock, at the best ABI the kernel offers: writes only beneath the release directory
//     (plus /dev/null); reads of the system trees a Python toolchain needs (/usr, /lib*, /bin,
//     /sbin, /proc, a few /dev nodes, and a list of single /etc entries: certificates, name
//     service, loader cache, time zone, Python's configuration), of the configured extra trees
//     (the wheelhouse) and of the program itself; nothing else: not /etc wholesale, not the
//     daemon's keys, configuration, state, audit log or spool. TCP: connect only to the package
//     index's port, never bind (ABI 4). Signals and abstract unix sockets scoped to the
//     command's own domain (ABI 6): it cannot signal the daemon;
//   * a seccomp filter refusing (EPERM) ptrace, process_vm_*, kcmp, pidfd_getfd, keyctl and
//     the key syscalls, bpf, perf_event_open, userfaultfd, the mount family, unshare, setns,
//     namespace flags of clone (clone3 answers ENOSYS so libc falls back to clone), io_uring
//     (its operations bypass seccomp), and socket() of every family but AF_UNIX unless a
//     package index is configured (then AF_INET, AF_INET6 and AF_NETLINK too). Where Landlock
//     cannot scope signals, every signal but one to the command's own process group
//     (kill(0, sig)) is refused as well.
// What an older kernel cannot give is listed by Lost(): the install still runs, with less.
#pragma once

#include <linux/filter.h>

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/release_store_fs.h"
#include "proto/result.h"

namespace decnet::daemon {

// What an install child may reach besides its release directory and the system's read-only
// trees.
struct InstallSandbox {
  // Absolute paths of trees (or files) the child may read, e.g. the wheelhouse. A path that
  // does not exist is skipped.
  std::vector<std::string> read_paths;
  // The TCP port of the configured package index; 0: no network at all.
  uint16_t index_port = 0;
  // Test seam: behave as if the kernel offered at most this Landlock ABI (0: no Landlock).
  int max_landlock_abi = INT_MAX;
};

// The Landlock ABI version the running kernel offers (0 when it has none or it is disabled).
int KernelLandlockAbi();

// A confinement prepared for one child.
class InstallConfinement {
 public:
  // Builds the Landlock ruleset (rules added from `release_dir_fd`, the sandbox's read paths
  // and `program`, the absolute path the child will exec) and the seccomp program. Fails
  // kFailed "install-confine" when the kernel refuses a ruleset it claims to support or the
  // filter cannot be built: the command is then not run unconfined.
  [[nodiscard]] static Result<InstallConfinement> Prepare(const InstallSandbox& sandbox,
                                                          int release_dir_fd,
                                                          const std::string& program);

  // In the child after fork, before exec: NoNewPrivs, Landlock, seccomp, in that order. Only
  // system calls (async-signal-safe). Returns 0, or the errno of the step that failed.
  int ApplyInChild() const noexcept;

  // The Landlock ABI in force (0: none).
  int landlock_abi() const { return abi_; }
  // What this kernel's Landlock could not enforce, one sentence each; empty on a full kernel.
  const std::vector<std::string>& Lost() const { return lost_; }

 private:
  InstallConfinement() = default;
  int abi_ = 0;
  UniqueFd ruleset_;
  std::vector<sock_filter> filter_;
  std::vector<std::string> lost_;
};

// One line for the daemon's start-up log: the Landlock ABI and what an install loses here.
std::string DescribeInstallConfinement();

}  // namespace decnet::daemon
