// The documents' commands for a live host, run as written inside a real systemd: the helper is
// the main process of decnet-updater.service in a throw-away container (the built helper at
// its installed path, its policy at /etc/decnet-updater/helper.json, helperctl in /usr/bin, the
// shipped unit file in /usr/lib/systemd/system), with a stand-in daemon that says hello and
// stays. docs/security-review.md's "Verifying confinement on a live host" and
// docs/operations.md's checks after installation are each run through bash in the container,
// and what they print is judged: uid 0 and nothing more for the helper, the daemon's user and
// nothing more for its child, an exposure level from systemd-analyze, a passing self-test.
// tests/docs/doc_commands_test.cc requires each documented command to occur in a test: these
// raw strings are where they occur.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/container_setup.h"
#include "tests/integration/testbed.h"
#include "tests/support/shell.h"

namespace decnet::test {
namespace {

namespace fs = std::filesystem;

constexpr char kUnit[] = "decnet-updater.service";
constexpr char kProbe[] = "/usr/local/libexec/decnet-probe-daemon";

// The value of "KEY:\tVALUE" for the status file that `grep` printed with the file's name.
std::string StatusField(const std::string& output, const std::string& file,
                        const std::string& key) {
  std::istringstream in(output);
  const std::string prefix = file + ":" + key + ":";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(prefix)) continue;
    const std::string value = line.substr(prefix.size());
    return value.substr(value.find_first_not_of(" \t"));
  }
  return "(missing)";
}

class TheDocumentsLiveHostCommands : public FilesThenContainerTest {
 protected:
  void SetUp() override {
    const passwd* d = ::getpwnam("decnet-updater");
    daemon_uid_ = d != nullptr ? d->pw_uid : 989;
    ASSERT_NO_FATAL_FAILURE(MakeWorkDir("decnet-live-docs"));
    Testbed::Options options;
    options.name_prefix = "livedoc";
    options.extra_nspawn_args = Binds();
    ASSERT_NO_FATAL_FAILURE(Boot(options));
    // The unit as an operator's host has it, minus the sandbox the shipped file adds (the
    // shipped file stays in /usr/lib for the offline check): this one overrides it.
    ASSERT_TRUE(testbed_->WriteUnit(kUnit, R"([Unit]
Description=decnet-updater (the documents' live-host checks)

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/libexec/decnet-updater/decnet-update-helper --config /etc/decnet-updater/helper.json
)"));
    const CommandRun reload = InContainer("systemctl daemon-reload");
    ASSERT_EQ(reload.status, 0) << reload.output;
    const CommandRun start = InContainer(std::string("systemctl start ") + kUnit);
    ASSERT_EQ(start.status, 0) << "systemctl start: " << start.output << "\n" << Journal();
  }

  // The journal alone on failure; the container's stop is not judged here.
  void TearDown() override {
    if (testbed_) {
      if (HasFailure()) std::cerr << "--- the unit's journal ---\n" << Journal() << "\n";
      (void)testbed_->Stop();
      testbed_.reset();
    }
    if (!root_.empty()) fs::remove_all(root_);
  }
  std::string UnitJournal() override { return Journal(); }

  std::vector<std::string> Binds() {
    const fs::path rootfs = CachedRootfs();
    // The stand-in daemon says hello and stays while its stdin stays open: a pipe from sleep.
    fs::create_directories(root_ / "etc-updater");
    WriteFile(root_ / "etc-updater/helper.json",
              R"({"daemon_binary": "/bin/sh", "daemon_store": "",
 "daemon_args": ["-c", "sleep infinity | )" +
                  std::string(kProbe) + R"("]})",
              0644);
    WriteFile(root_ / "etc-updater/daemon.json", R"({"state_dir": "/var/lib/decnet-updater"})",
              0644);
    MakeDir(root_ / "helper-state", 0700);
    fs::create_directories(root_ / "daemon-state");
    // The daemon's own store, as the package leaves it, and a build of the daemon packed by
    // the updater-build script, to be seeded by hand.
    MakeDir(root_ / "opt-updater", 0755, daemon_uid_, daemon_uid_);
    MakeDir(root_ / "opt-updater/updater", 0755, daemon_uid_, daemon_uid_);
    MakeDir(root_ / "seed", 0755);
    if (!std::string(DECNET_DAEMON_BINARY).empty()) {
      const CommandRun packed = PackUpdaterBuild(DECNET_DAEMON_BINARY, "9.9.9", root_ / "seed");
      EXPECT_EQ(packed.status, 0) << packed.output;
    }
    WriteFile(root_ / "daemon-state/audit.jsonl", "", 0640);
    std::vector<std::string> binds = ShippedUnitBinds(DECNET_HELPER_BINARY);
    binds.insert(
        binds.end(),
        {
            "--bind-ro=" DECNET_HELPERCTL_BINARY ":/usr/bin/helperctl",
            "--bind-ro=" DECNET_PROBE_BINARY ":" + std::string(kProbe),
            "--bind-ro=" + (root_ / "etc-updater").string() + ":/etc/decnet-updater",
            "--bind=" + (root_ / "helper-state").string() + ":/var/lib/decnet-update-helper",
            "--bind=" + (root_ / "daemon-state").string() + ":/var/lib/decnet-updater",
            "--bind=" + (root_ / "seed").string() + ":/srv/seed",
            "--bind=" + (root_ / "opt-updater").string() + ":/opt/decnet-updater",
        });
    // helperctl selftest runs the helper at the path built in from the install prefix.
    const std::string builtin =
        std::string(DECNET_INSTALL_PREFIX) + "/libexec/decnet-updater/decnet-update-helper";
    if (builtin != kInstalledHelper)
      binds.push_back("--bind-ro=" DECNET_HELPER_BINARY ":" + builtin);
    // The daemon's user, and the host's copies of libraries the root filesystem lacks.
    for (const std::vector<std::string>& more :
         {DaemonUserBinds(rootfs, root_, daemon_uid_, daemon_uid_),
          MissingLibraryBinds({DECNET_HELPER_BINARY, DECNET_HELPERCTL_BINARY, DECNET_PROBE_BINARY,
                               DECNET_DAEMON_BINARY},
                              rootfs)}) {
      binds.insert(binds.end(), more.begin(), more.end());
    }
    return binds;
  }

  // A bash script run inside the container, next to its systemd, as root.
  CommandRun InContainer(const std::string& script) {
    const fs::path file = root_ / ("script-" + std::to_string(++scripts_) + ".sh");
    WriteFile(file, script + "\n", 0644);
    return RunCommand("timeout 60 nsenter -t " + std::to_string(container_init_) +
                      " -m -u -i -p -- /bin/bash -s < " + file.string());
  }

  std::string Journal() {
    return InContainer(std::string("journalctl --no-pager -o cat -u ") + kUnit).output;
  }

  uid_t daemon_uid_ = 0;
  int scripts_ = 0;
};

TEST_F(TheDocumentsLiveHostCommands, ShowTheHelperAsUidZeroOnlyAndTheDaemonAsItsOwnUser) {
  // docs/security-review.md, "Verifying confinement on a live host", as written.
  const CommandRun ran = InContainer(R"(
HELPER=$(systemctl show -p MainPID --value decnet-updater.service)
read -r DAEMON < "/proc/$HELPER/task/$HELPER/children"
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' \
  "/proc/$HELPER/status" "/proc/$DAEMON/status"
echo "helper=$HELPER daemon=$DAEMON"
)");
  ASSERT_EQ(ran.status, 0) << ran.output;
  const size_t at = ran.output.rfind("helper=");
  ASSERT_NE(at, std::string::npos) << ran.output;
  int helper = 0, daemon = 0;
  ASSERT_EQ(std::sscanf(ran.output.c_str() + at, "helper=%d daemon=%d", &helper, &daemon), 2)
      << ran.output;
  ASSERT_GT(helper, 1) << ran.output;
  ASSERT_GT(daemon, 1) << ran.output;
  const std::string h = "/proc/" + std::to_string(helper) + "/status";
  const std::string d = "/proc/" + std::to_string(daemon) + "/status";
  const std::string uid = std::to_string(daemon_uid_);
  EXPECT_EQ(StatusField(ran.output, h, "Uid"), "0\t0\t0\t0") << ran.output;
  EXPECT_EQ(StatusField(ran.output, d, "Uid"), uid + "\t" + uid + "\t" + uid + "\t" + uid)
      << ran.output;
  for (const char* cap : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(StatusField(ran.output, h, cap), "0000000000000000") << cap << "\n" << ran.output;
    EXPECT_EQ(StatusField(ran.output, d, cap), "0000000000000000") << cap << "\n" << ran.output;
  }
  EXPECT_EQ(StatusField(ran.output, h, "NoNewPrivs"), "1") << ran.output;
  EXPECT_EQ(StatusField(ran.output, d, "NoNewPrivs"), "1") << ran.output;
  EXPECT_EQ(StatusField(ran.output, h, "Seccomp"), "2") << ran.output;
}

TEST_F(TheDocumentsLiveHostCommands, ShowTheConfinementThroughHelperctl) {
  // docs/security-review.md and docs/operations.md: helperctl on the installed host.
  const CommandRun status = InContainer("helperctl status");
  ASSERT_EQ(status.status, 0) << status.output;
  EXPECT_NE(status.output.find("uid: 0\n"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("CapEff: 0000000000000000\n"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("NoNewPrivs: 1\n"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("Seccomp: 2 (filter)\n"), std::string::npos) << status.output;
  EXPECT_EQ(status.output.find("FOREIGN"), std::string::npos) << status.output;
  const CommandRun json = InContainer("helperctl status --json");
  ASSERT_EQ(json.status, 0) << json.output;
  EXPECT_NE(json.output.find("\"no_new_privs\":1"), std::string::npos) << json.output;
  const CommandRun with_config =
      InContainer("helperctl --config /etc/decnet-updater/helper.json status");
  EXPECT_EQ(with_config.status, 0) << with_config.output;
  const CommandRun policy =
      InContainer("helperctl --config /etc/decnet-updater/helper.json policy");
  ASSERT_EQ(policy.status, 0) << policy.output;
  EXPECT_NE(policy.output.find("SECCOMP (default: kill the process)"), std::string::npos)
      << policy.output;
  const CommandRun audit = InContainer("helperctl audit --last 20");
  EXPECT_EQ(audit.status, 0) << audit.output;
  EXPECT_NE(audit.output.find("audit log: /var/lib/decnet-updater/audit.jsonl"), std::string::npos)
      << audit.output;
}

TEST_F(TheDocumentsLiveHostCommands, PassTheSelfTestsAsWritten) {
  for (const char* command :
       {"helperctl selftest",
        "helperctl selftest --helper /usr/libexec/decnet-updater/decnet-update-helper"}) {
    const CommandRun ran = InContainer(command);
    EXPECT_EQ(ran.status, 0) << command << "\n" << ran.output;
    EXPECT_NE(ran.output.find("selftest passed"), std::string::npos) << command << "\n"
                                                                     << ran.output;
  }
  // The helper's own self-test prints one line per check, then dies by its seccomp filter.
  const CommandRun own = InContainer(R"(
/usr/libexec/decnet-updater/decnet-update-helper --config /etc/decnet-updater/helper.json --selftest
echo "exit=$?")");
  EXPECT_NE(own.output.find("ok: "), std::string::npos) << own.output;
  EXPECT_EQ(own.output.find("FAIL: "), std::string::npos) << own.output;
  EXPECT_NE(own.output.find("exit=159"), std::string::npos) << "SIGSYS (128 + 31)\n" << own.output;
}

TEST_F(TheDocumentsLiveHostCommands, RateTheUnitWithSystemdAnalyze) {
  // docs/security-review.md: the unit as loaded, then the shipped file alone.
  for (
      const char* command :
      {R"(systemd-analyze security decnet-updater.service)",
       R"(systemd-analyze security --offline=true /usr/lib/systemd/system/decnet-updater.service)"}) {
    const CommandRun ran = InContainer(command);
    EXPECT_EQ(ran.status, 0) << command << "\n" << ran.output;
    EXPECT_NE(ran.output.find("Overall exposure level for decnet-updater.service:"),
              std::string::npos)
        << command << "\n"
        << ran.output;
  }
}

TEST_F(TheDocumentsLiveHostCommands, SeedTheDaemonsOwnStoreAsWritten) {
  if (std::string(DECNET_DAEMON_BINARY).empty()) GTEST_SKIP() << "this build has no daemon";
  // docs/operations.md, "The first update of a new worker", step 2, in the directory holding
  // the packed build, with ./bin/decnet-updaterd taken out of it.
  const CommandRun ran = InContainer(R"(
set -e
cd /srv/seed
ARCH=$(uname -m)
tar -xzf decnet-updater-9.9.9-$ARCH.tar.gz bin/decnet-updaterd
setpriv --reuid=decnet-updater --regid=decnet-updater --clear-groups \
  ./bin/decnet-updaterd --config /etc/decnet-updater/daemon.json --install-build decnet-updater-9.9.9-$ARCH.tar.gz
readlink /opt/decnet-updater/updater/current
)");
  ASSERT_EQ(ran.status, 0) << ran.output;
  EXPECT_NE(ran.output.find("installed build "), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("(version 9.9.9)"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("\nreleases/"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace decnet::test
