// The configured install command: whatever a release needs built inside its own directory
// (for DECNET, a Python environment), run as the daemon's own user, without a shell.
//
// The argv template's elements may hold placeholders, replaced textually:
//   {release_dir}  absolute path of releases/<id>     {release_id}  the ReleaseId
//   {version}      the release version                {sha256}      the tarball digest
// Anything else between braces is refused. The child runs with:
//   * cwd = the release directory (fchdir on the directory fd, no path lookup);
//   * the environment PATH=/usr/bin:/bin, HOME=<release_dir>, LANG=C.UTF-8,
//     TMPDIR=<release_dir>/.decnet-tmp (a private directory made before and removed after the
//     run), then the configured variables (placeholders expanded; they may override those);
//     nothing is inherited from the daemon (no credentials, no proxies);
//   * confined (install_confine.h): NoNewPrivs, Landlock (writes only beneath the release
//     directory, reads of the system trees, the sandbox's read paths and the program), seccomp
//     (no tracing, no signals to the daemon, no network unless the sandbox names an index);
//   * stdin /dev/null, stdout and stderr into one pipe, every other fd closed (close_range);
//   * its own process group: on timeout the GROUP gets SIGTERM, then SIGKILL after the
//     grace period. When the command exits, anything it left running in its group is killed
//     and reaped: the calling process makes itself a child subreaper (PR_SET_CHILD_SUBREAPER,
//     for good), so the command's orphans are re-parented to it, and none of the group is left
//     behind, not even a zombie. (A process that calls setsid() or setpgid() itself escapes
//     the group: install commands must not daemonise.)
// Output is captured bounded: the last `output_cap` bytes are kept, prefixed with a marker
// saying how many earlier bytes were dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "daemon/install_confine.h"
#include "proto/result.h"

namespace decnet::daemon {

struct InstallCommandConfig {
  // argv[0] must be an absolute path (no PATH search). Empty argv: no install command.
  std::vector<std::string> argv;
  // Extra environment, NAME=VALUE; NAME is [A-Za-z_][A-Za-z0-9_]*.
  std::vector<std::pair<std::string, std::string>> env;
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
  size_t output_cap = 64 * 1024;
  // What the confined command may reach besides its release directory.
  InstallSandbox sandbox;
};

// Name of the private temporary directory inside the release directory.
inline constexpr char kInstallTmpDir[] = ".decnet-tmp";

struct InstallVars {
  std::string release_dir;
  std::string release_id;
  std::string version;
  std::string sha256;
};

struct InstallOutput {
  std::string output;  // captured stdout+stderr tail (with the truncation marker if cut)
  bool truncated = false;
  std::chrono::milliseconds duration{0};
};

// Checks a configuration: argv[0] absolute, placeholders known, env names valid, timeout and
// cap positive. Refuses with kMalformed "install-config".
[[nodiscard]] Result<void> ValidateInstallCommand(const InstallCommandConfig& config);

// Expands `text`'s placeholders. Refuses an unknown or unterminated one ("install-config").
[[nodiscard]] Result<std::string> ExpandInstallTemplate(std::string_view text,
                                                        const InstallVars& vars);

// Runs the command, confined, in `release_dir_fd` (vars.release_dir must name the same
// directory). Returns its captured output when it exits 0. Fails: "install-config" as above;
// "install-confine" (kFailed) when the confinement cannot be prepared or applied (the command
// never runs unconfined);
// "install-spawn" (kFailed) when the process cannot be started (fork, exec: e.g. no such
// program); "install-failed" (kFailed) on a non-zero exit or death by a signal, the message
// carrying the status and the output tail; "install-timeout" (kTimeout) when it ran out of
// time, after its group was killed, with the output tail.
// When `failure_output` is given, a command that started and then failed or timed out also
// leaves its captured output there (the same tail the message carries).
[[nodiscard]] Result<InstallOutput> RunInstallCommand(const InstallCommandConfig& config,
                                                      const InstallVars& vars, int release_dir_fd,
                                                      std::string* failure_output = nullptr);

}  // namespace decnet::daemon
