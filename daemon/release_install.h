// What a release needs installed, and the one call that installs it: the configured install
// command when there is one; otherwise, for a Python project (pyproject.toml or setup.py at
// the release's root), the built-in Python installer (python_env.h) with its wheelhouse at
// <install_dir>/wheelhouse; otherwise nothing.
#pragma once

#include <string>

#include "daemon/config.h"
#include "daemon/install_command.h"
#include "proto/result.h"

namespace decnet::daemon {

enum class InstallKind {
  kNone,     // nothing to install
  kCommand,  // the configured install_command
  kPython,   // the built-in Python installer
};

// Decides from the configuration and the release directory's root.
InstallKind PlanReleaseInstall(const DaemonConfig& config, int release_dir_fd);

// The store-level wheelhouse of the store rooted at `store_root`.
std::string WheelhouseDir(const std::string& store_root);

// Installs the release per PlanReleaseInstall, bounded by install_timeout_ms. Returns the
// install's output (empty for kNone). Fails as RunInstallCommand or InstallPythonRelease.
[[nodiscard]] Result<InstallOutput> InstallRelease(const DaemonConfig& config,
                                                   const std::string& store_root,
                                                   const InstallVars& vars, int release_dir_fd);

}  // namespace decnet::daemon
