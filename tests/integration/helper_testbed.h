// What the integration tests that drive the real helper against a testbed container share:
// reading files and commands' output, describing a helper run, the container's root as seen
// from the host, and a mount namespace private to the test process.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/helper/helper_harness.h"
#include "tests/integration/testbed.h"

namespace decnet::test {

// The whole content of `path`; "" when it cannot be read.
std::string Slurp(const std::filesystem::path& path);

// Runs argv (a bare name is looked up in PATH) with stdin from /dev/null; returns its exit
// status (-1 when it could not run or did not exit) and its stdout and stderr together.
std::pair<int, std::string> Command(const std::vector<std::string>& args);

// A helper run for a failure message: exit status, replies, the helper's log.
std::string Describe(const HelperRun& run);

// j[key] when j is an object and that member is a string; "" otherwise.
std::string Str(const nlohmann::json& j, const char* key);

// Moves this process into a mount namespace of its own (once; call before starting threads),
// so the bind mounts and overlays of the tests vanish with it. Returns 0, or the errno of the
// step that failed (the same value on every call).
int EnterPrivateMountNamespace();

// "/proc/PID/root" of the container's PID 1 (the child of systemd-nspawn named systemd),
// waiting up to 5 s for it to appear; "" when it does not.
std::string ContainerRoot(const Testbed& testbed);

}  // namespace decnet::test
