// decnet-updaterd's start-up and lifetime: started only by
// decnet-update-helper with its end of the socketpair as fd 3, never as root. In order:
// arguments, identity and fd 3 checks, configuration, helper policy, audit log, release
// store and its crash recovery, TLS context, API and server listening, `hello` to the
// helper (which is when the helper reports the unit ready), reconciliation of units after a
// reverted update, then serving until SIGTERM/SIGINT or until the helper's end of the pair
// closes (the confined helper cannot signal us; its exit must end ours).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "proto/result.h"

namespace decnet::daemon {

class HealthGate;
class UpdatePipeline;
class UpdaterApi;

inline constexpr char kDefaultDaemonConfig[] = "/etc/decnet-updater/daemon.json";
inline constexpr int kHelperPairFd = 3;

struct DaemonArgs {
  std::string config_path = kDefaultDaemonConfig;
  bool version_only = false;  // `--version`, alone: print the version and exit 0
  // `--install-build TARBALL`: install an updater build into config.updater_dir (the first
  // build of a host, as the decnet-updater user) with update-self's checks, then exit.
  std::string install_build;
};

// Parses `[--config PATH] [--install-build TARBALL]` (each also as --opt=VALUE, once), or
// `--version` alone. Refuses (kMalformed, "daemon-args") anything else, a missing or empty
// value, and a repeated option.
[[nodiscard]] Result<DaemonArgs> ParseDaemonArgs(int argc, const char* const* argv);

// Refuses (kDenied, "daemon-root") a process whose real, effective or saved uid or gid is 0.
[[nodiscard]] Result<void> CheckNotRoot();

// Refuses (kDenied, "daemon-no-helper") an `fd` that is not an open SOCK_SEQPACKET socket:
// then we were not started by decnet-update-helper. Marks it close-on-exec so the install
// command never inherits the channel to root.
[[nodiscard]] Result<void> CheckHelperPair(int fd);

// Where a test build of the daemon reaches the objects RunDaemon builds, to attach the step
// and upload hooks those objects already offer (tests/integration/faults_daemon_main.cc: the
// crash matrix's injection points). decnet-updaterd passes none; an unset member does nothing.
struct DaemonTestSeams {
  // Given the health gate the configuration made; returns the one the pipeline will use.
  std::function<std::unique_ptr<HealthGate>(std::unique_ptr<HealthGate>)> wrap_gate;
  // Called once the pipeline and the API exist, before the server listens.
  std::function<void(UpdatePipeline&, UpdaterApi&)> serving;
};

// The whole daemon: returns the process exit code (0 after SIGTERM/SIGINT, 1 on a start-up
// failure or when the helper went away). Logs to stderr (journald) through spdlog.
int RunDaemon(int argc, const char* const* argv, const DaemonTestSeams& seams = {});

}  // namespace decnet::daemon
