// The built-in Python installer: a release that is a Python project (pyproject.toml or
// setup.py at its root) gets its own environment at <release_dir>/.venv, so that rolling back
// to a release runs exactly that release's code and dependencies.
//
// Every step runs through RunInstallCommand, confined (install_confine.h), in one time budget:
//   1. venv        /usr/bin/python3 -m venv <release>/.venv     (Debian: python3-venv)
//   2. build deps  the [build-system] requires of pyproject.toml (setuptools and wheel when
//                  absent), collected as wheels into <release>/.decnet-build/wheels
//   3. project     its wheel, built in an isolated environment from the collected build deps;
//                  when they are not to be had (Debian 12 ships no `wheel` wheel and no index
//                  is configured), built by the system's own tooling (python3-setuptools,
//                  python3-wheel) without isolation
//   4. deps        the project's runtime dependencies, as wheels, into the same directory
//   5. install     `pip install --no-index` of the project's wheel from that directory alone
// Wheels are found in the wheelhouse (a store-level directory of what earlier releases
// brought, read-only to the install) and Debian's /usr/share/python-wheels, with --no-index.
// Only when a requirement is found in neither and a package index is configured is the step
// run again against the index (the only confined run with network, and only to the index's
// port). After a successful install the daemon (not the confined child) copies the new wheels
// into the wheelhouse, and removes <release>/.decnet-build: an update whose dependencies did
// not change needs no network.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/install_command.h"
#include "proto/result.h"

namespace decnet::daemon {

struct PythonEnvConfig {
  std::string python = "/usr/bin/python3";  // the system Python (absolute)
  std::string wheelhouse;                   // absolute; created when missing
  std::vector<std::string> system_wheel_dirs = {"/usr/share/python-wheels"};
  std::string package_index;  // "" (air-gapped) or an http(s) URL of a simple index
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};  // the whole install
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
  size_t output_cap = 64 * 1024;
  int max_landlock_abi = INT_MAX;  // test seam, see InstallSandbox
};

// Name of the environment inside a release directory.
inline constexpr char kReleaseVenvDir[] = ".venv";

// True when the release directory holds a regular pyproject.toml or setup.py at its root.
bool IsPythonRelease(int release_dir_fd);

// The TCP port of an http(s) index URL (explicit, or 80/443). Refuses anything else
// (kMalformed "config-value").
[[nodiscard]] Result<uint16_t> PackageIndexPort(const std::string& url);

// Installs the release as above. Returns the combined output of the steps. Fails:
//   "install-requirement-missing" (kFailed): a requirement is in neither the wheelhouse nor
//       (when configured) the index; the message names it and carries the output;
//   "install-failed", "install-timeout", "install-spawn", "install-confine", "install-config":
//       as RunInstallCommand, for the step that failed, with the output so far;
//   "install-wheelhouse" (kFailed): the wheelhouse cannot be made or written.
// Nothing outside the release directory is changed on failure.
[[nodiscard]] Result<InstallOutput> InstallPythonRelease(const PythonEnvConfig& config,
                                                         const InstallVars& vars,
                                                         int release_dir_fd);

// The requirement pip reported missing ("No matching distribution found for X"), or "".
std::string MissingRequirement(std::string_view pip_output);

}  // namespace decnet::daemon
