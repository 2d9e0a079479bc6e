#include "daemon/release_install.h"

#include <chrono>

#include "daemon/python_env.h"

namespace decnet::daemon {

InstallKind PlanReleaseInstall(const DaemonConfig& config, int release_dir_fd) {
  if (!config.install_command.empty()) return InstallKind::kCommand;
  if (IsPythonRelease(release_dir_fd)) return InstallKind::kPython;
  return InstallKind::kNone;
}

std::string WheelhouseDir(const std::string& store_root) { return store_root + "/wheelhouse"; }

Result<InstallOutput> InstallRelease(const DaemonConfig& config, const std::string& store_root,
                                     const InstallVars& vars, int release_dir_fd) {
  const std::chrono::milliseconds timeout(config.install_timeout_ms);
  switch (PlanReleaseInstall(config, release_dir_fd)) {
    case InstallKind::kNone:
      return InstallOutput{};
    case InstallKind::kCommand: {
      InstallCommandConfig command;
      command.argv = config.install_command;
      command.timeout = timeout;
      return RunInstallCommand(command, vars, release_dir_fd);
    }
    case InstallKind::kPython: {
      PythonEnvConfig python;
      python.wheelhouse = WheelhouseDir(store_root);
      python.package_index = config.package_index;
      python.timeout = timeout;
      return InstallPythonRelease(python, vars, release_dir_fd);
    }
  }
  return InstallOutput{};
}

}  // namespace decnet::daemon
