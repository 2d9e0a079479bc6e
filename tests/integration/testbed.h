// A throw-away container whose PID 1 is a real systemd, for integration and end-to-end
// tests (scripts/testbed/container.sh does the work, this class drives it).
//
// Typical use, one container per test:
//
//   class ASystemdManager : public decnet::test::TestbedTest {};
//   TEST_F(ASystemdManager, RestartsAUnit) {
//     ASSERT_TRUE(testbed().WriteUnit("t.service", "[Service]\nExecStart=/bin/sleep 60\n"));
//     ... code under test talks to testbed().bus_address() ...
//     EXPECT_TRUE(testbed().WaitForActiveState("t.service", "active", 5s));
//   }
//
// The ctest fixture `testbed_rootfs` (tests/integration/tests.cmake) builds the cached root
// filesystem once per run and reaps containers left by killed runs; tests that boot
// containers declare FIXTURES_REQUIRED testbed_rootfs and RESOURCE_LOCK testbed.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace decnet::test {

class Testbed {
 public:
  struct Options {
    // Appended to systemd-nspawn's command line, e.g. "--bind=/tmp/x:/opt/decnet".
    std::vector<std::string> extra_nspawn_args;
    // Prefix of the container's name; a unique suffix is added.
    std::string name_prefix = "dtb";
    // Leave the container on the host's network instead of a private one (container.sh
    // --share-host-network): a process on the host can then reach a unit's port on
    // 127.0.0.1. Give each test ports of its own.
    bool share_host_network = false;
    // Join the network namespace /run/netns/<netns> (container.sh --netns) instead of a
    // private network: a host of its own on that namespace's addresses. Empty: not used.
    std::string netns;
  };

  // Creates a work directory /tmp/decnet-testbed-XXXXXX and boots a container in it (the
  // call returns once its systemd reports SystemState running or degraded; the script
  // bounds the wait to 30 s). Fails with a message that includes the script's output
  // and the container's console log.
  static tl::expected<std::unique_ptr<Testbed>, std::string> Start(const Options& options);
  static tl::expected<std::unique_ptr<Testbed>, std::string> Start() { return Start(Options{}); }

  // Stops the container if still running and removes the work directory.
  ~Testbed();
  Testbed(const Testbed&) = delete;
  Testbed& operator=(const Testbed&) = delete;

  // Stops the container (SIGTERM to nspawn: a clean halt; SIGKILL after 15 s) and removes
  // its cgroups. Idempotent. Returns the script's output on failure.
  tl::expected<void, std::string> Stop();

  const std::string& name() const { return name_; }
  const std::filesystem::path& workdir() const { return workdir_; }
  // D-Bus address of the container's system bus, "unix:path=WORKDIR/dbus/system_bus_socket";
  // give it to code under test as DBUS_SYSTEM_BUS_ADDRESS.
  std::string bus_address() const;
  // Host directory bound over the container's /etc/systemd/system (starts empty).
  std::filesystem::path unit_dir() const { return workdir_ / "units"; }
  // The cached root filesystem the container runs on (read-only: the container writes to an
  // overlay). Host paths of the container's binaries, e.g. rootfs() / "bin/sleep".
  const std::filesystem::path& rootfs() const { return rootfs_; }
  // The container's console (systemd's boot and shutdown messages) and nspawn's output.
  std::string ConsoleLog() const;

  // Writes UNIT_DIR/name with `content` (not atomically: for fixtures only). False on error.
  bool WriteUnit(std::string_view name, std::string_view content) const;

  // A property of a unit read over the bus with sd-bus, independently of the code under
  // test (Manager.LoadUnit, then Properties.Get). Strings as they are; numbers in decimal;
  // byte arrays (InvocationID) in lower-case hex.
  // Returns the error message on failure.
  tl::expected<std::string, std::string> UnitProperty(std::string_view unit,
                                                      std::string_view interface,
                                                      std::string_view property) const;
  // Polls the unit's ActiveState every 50 ms until it equals `state` or `timeout` passes.
  // On timeout, returns a message naming what was awaited and the last state seen.
  tl::expected<void, std::string> WaitForActiveState(std::string_view unit, std::string_view state,
                                                     std::chrono::milliseconds timeout) const;

 private:
  Testbed(std::string name, std::filesystem::path workdir)
      : name_(std::move(name)), workdir_(std::move(workdir)) {}

  std::string name_;
  std::filesystem::path workdir_;
  std::filesystem::path rootfs_;
  bool running_ = false;
};

// Runs argv (a bare name is looked up in PATH) with stdin from /dev/null and stdout and
// stderr appended to `log`; returns its exit status, or -1 if it could not run or did not
// exit. The scripts bound their own waits.
int RunToLog(const std::vector<std::string>& args, const std::filesystem::path& log);

// A GoogleTest fixture owning one Testbed per test. SetUp boots it and sets
// DBUS_SYSTEM_BUS_ADDRESS in this process to its bus (a test fails, not skips, when the
// container does not come up); TearDown prints the console log if the test failed, then
// stops the container, whatever happened.
class TestbedTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Override to pass options (extra nspawn arguments) to the container.
  virtual Testbed::Options TestbedOptions() const { return {}; }
  Testbed& testbed() { return *testbed_; }

 private:
  std::unique_ptr<Testbed> testbed_;
};

}  // namespace decnet::test
