// decnet-updater-enrol on a host with a real systemd (the throw-away container): it creates
// the users and groups the package would, writes the drop-in and reloads systemd, which then
// shows the drop-in's ReadWritePaths= and IPAddressAllow= on the shipped unit; the daemon's
// user reads the keys and the units' user does not; a second run changes nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/integration/container_setup.h"
#include "tests/integration/testbed.h"
#include "tests/support/shell.h"

#ifndef DECNET_ENROL_BINARY
#error "DECNET_ENROL_BINARY must name the built decnet-updater-enrol"
#endif

namespace decnet::enrol {
namespace {

namespace fs = std::filesystem;
using decnet::test::CommandRun;
using decnet::test::ReadFile;

class AnEnrolmentUnderSystemd : public decnet::test::TestbedShellTest {
 protected:
  decnet::test::Testbed::Options TestbedOptions() const override {
    decnet::test::Testbed::Options options;
    options.name_prefix = "enrol";
    options.extra_nspawn_args.push_back(std::string("--bind-ro=") + DECNET_ENROL_BINARY +
                                        ":/usr/sbin/decnet-updater-enrol");
    return options;
  }

  void SetUp() override {
    TestbedShellTest::SetUp();
    if (HasFatalFailure()) return;
    // The shipped unit, as the package installs it (its helper is not needed to load it).
    ASSERT_TRUE(testbed().WriteUnit(
        "decnet-updater.service",
        ReadFile(fs::path(DECNET_SOURCE_DIR) / "systemd/decnet-updater.service")));
    ASSERT_EQ(InContainer("systemctl daemon-reload").status, 0);
  }
};

constexpr char kEnrol[] =
    "decnet-updater-enrol --create --name worker1.example --master-cn decnet-master "
    "--install-dir /srv/decnet --master-address 192.0.2.10";

TEST_F(AnEnrolmentUnderSystemd, CreatesTheUsersWritesTheDropInAndSystemdLoadsIt) {
  ASSERT_NE(InContainer("getent passwd decnet-updater").status, 0)
      << "the container must start without the package's users";
  const CommandRun run = InContainer(kEnrol);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("create system user decnet-updater"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("run systemctl daemon-reload"), std::string::npos) << run.output;
  EXPECT_EQ(InContainer("getent passwd decnet-updater").status, 0);
  EXPECT_EQ(InContainer("getent passwd decnet").status, 0);

  const CommandRun show = InContainer(
      "systemctl show -p ReadWritePaths -p IPAddressAllow -p NeedDaemonReload "
      "decnet-updater.service");
  EXPECT_NE(show.output.find("/srv/decnet"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("192.0.2.10"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find("NeedDaemonReload=no"), std::string::npos) << show.output;
  EXPECT_NE(InContainer("systemctl show -p DropInPaths decnet-updater.service")
                .output.find("50-enrol.conf"),
            std::string::npos);

  EXPECT_EQ(InContainer("runuser -u decnet-updater -- cat /etc/decnet/updater/updater.key "
                        ">/dev/null")
                .status,
            0)
      << "the daemon's user reads its key";
  EXPECT_NE(
      InContainer("runuser -u decnet -- cat /etc/decnet/updater/updater.key >/dev/null").status, 0)
      << "the units' user must not";
  EXPECT_EQ(InContainer("stat -c '%U:%G %a' /srv/decnet").output,
            "decnet-updater:decnet-updater 755\n");

  const CommandRun again = InContainer(kEnrol);
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("nothing to change"), std::string::npos) << again.output;
  EXPECT_EQ(InContainer("systemctl is-active decnet-updater.service").output, "inactive\n")
      << "enrolment never starts the service";
}

}  // namespace
}  // namespace decnet::enrol
