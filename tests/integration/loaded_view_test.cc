// The loaded-view check on a real systemd 252 (PID 1 of a throw-away container): the adapter
// reads what systemd loaded, and the real helper binary refuses restart_unit when something
// other than its own file was loaded: drop-ins planted by another route (NAME.d/, the prefix
// drop-in decnet-.service.d/, the type drop-in service.d/, /run/systemd/system inside the
// container), a drop-in that is root's but takes the unit out of policy, a shadowing fragment
// in /run, a file changed after the helper wrote it. The payload of the planted drop-ins
// (ExecStartPre=+/bin/touch /root/pwned) must never run, and a control shows it would have.
//
// Layout: systemd names files by their paths in the container; the helper on the host checks
// them beneath its unit root. This test gives the helper a unit root ROOT whose
// ROOT/etc/systemd/system is a bind mount of the container's unit directory, in a mount
// namespace private to this test process, so /etc/systemd/system means the same directory
// on both sides (the container's /run is not visible there: a drop-in in it cannot be proven
// an operator's and is refused for that reason).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "helper/systemd_manager.h"
#include "tests/helper/helper_harness.h"
#include "tests/integration/helper_testbed.h"
#include "tests/integration/testbed.h"
#include "tests/support/param_name.h"
#include "tests/support/wait.h"

namespace decnet::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr uid_t kUnitUid = 990;  // the rootfs's `decnet` user
constexpr char kUnit[] = "decnet-lv.service";
constexpr char kPayload[] = "ExecStartPre=+/bin/touch /root/pwned\n";

std::string HardenedUnit() {
  return "[Unit]\nDescription=loaded view test\n\n[Service]\nType=exec\nUser=decnet\n"
         "Group=decnet\nNoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";
}

void WriteFile(const fs::path& path, const std::string& content, mode_t mode, uid_t uid = 0,
               gid_t gid = 0) {
  fs::create_directories(path.parent_path());
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; }
  ::chmod(path.c_str(), mode);
  if (::chown(path.c_str(), uid, gid) != 0) ADD_FAILURE() << "chown " << path;
}

json Reply(const HelperRun& run, size_t i) {
  if (i >= run.replies.size()) return json::object();
  json j = json::parse(run.replies[i], nullptr, false);
  return j.is_object() ? j : json::object();
}

class ALoadedViewOnARealSystemd : public TestbedTest {
 protected:
  void SetUp() override {
    const int unshared = EnterPrivateMountNamespace();
    ASSERT_EQ(unshared, 0) << "unshare(CLONE_NEWNS): " << std::strerror(unshared);
    TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/decnet-lv-root.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ::chmod(root_.c_str(), 0755);
    for (const char* d : {"/etc", "/etc/systemd", "/etc/systemd/system"}) {
      fs::create_directories(root_ + d);
      ::chmod((root_ + d).c_str(), 0755);
    }
    // The walk reads the checked user's entry beneath the unit root.
    for (const char* f : {"/etc/passwd", "/etc/group"}) {
      WriteFile(root_ + f, Slurp(testbed().rootfs() / std::string(f).substr(1)), 0644);
    }
    ASSERT_EQ(::mount(testbed().unit_dir().c_str(), (root_ + "/etc/systemd/system").c_str(),
                      nullptr, MS_BIND, nullptr),
              0)
        << std::strerror(errno);
    mounted_ = true;
    harness_ =
        std::make_unique<HelperHarness>(testbed().bus_address(), root_ + "/etc/systemd/system");
    harness_->policy().unit_root = root_;
    container_root_ = ContainerRoot(testbed());
    ASSERT_FALSE(container_root_.empty()) << "cannot find the container's PID 1";
  }
  void TearDown() override {
    harness_.reset();
    // Detached first, so removing the tree never reaches the container's unit directory.
    if (mounted_ && ::umount2((root_ + "/etc/systemd/system").c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount: " << std::strerror(errno);
    } else if (!root_.empty()) {
      std::error_code ec;
      fs::remove_all(root_, ec);
    }
    TestbedTest::TearDown();
  }

  bool Pwned() { return fs::exists(container_root_ + "/root/pwned"); }

  // Reloads systemd directly (an operator's or an attacker's reload, not the helper's).
  void ReloadDirectly() {
    auto systemd = helper::ConnectSystemd();
    ASSERT_TRUE(systemd) << systemd.error().message;
    ASSERT_TRUE((*systemd)->Reload());
  }

  HelperRun Run(const std::string& script) {
    HelperRun run = harness_->Run(script, 60s);
    EXPECT_TRUE(run.ExitedCleanly()) << Describe(run);
    return run;
  }

  // write_unit + daemon_reload through the helper: the legitimate route.
  void InstallThroughTheHelper() {
    const std::string payload = harness_->Payload("lv.service", HardenedUnit());
    HelperRun run =
        Run("hello\nwrite_unit " + std::string(kUnit) + " " + payload + "\ndaemon_reload\n");
    ASSERT_EQ(run.replies.size(), 3u) << Describe(run);
    ASSERT_EQ(Str(Reply(run, 1), "result"), "ok") << Describe(run);
    ASSERT_EQ(Str(Reply(run, 2), "result"), "ok") << Describe(run);
  }

  fs::path Units() { return testbed().unit_dir(); }

  std::string root_;
  bool mounted_ = false;
  std::string container_root_;
  std::unique_ptr<HelperHarness> harness_;
};

TEST_F(ALoadedViewOnARealSystemd, TheAdapterReadsWhatSystemdLoaded) {
  ASSERT_TRUE(testbed().WriteUnit(
      kUnit,
      "[Service]\nType=exec\nUser=decnet\nGroup=decnet\nSupplementaryGroups=decnet\n"
      "ExecStartPre=+/bin/true\nExecStartPre=-!/bin/true\nExecStart=/bin/sleep 60\n"
      "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW\nStateDirectory=decnet-lv\n"
      "RuntimeDirectory=a/b\nKillMode=mixed\nTimeoutStopSec=7\nLimitNOFILE=1000\n"
      "TasksMax=77\nEnvironmentFile=-/etc/decnet/lv.env\nLoadCredential=key:/etc/k\n"
      "StandardOutput=append:/var/log/lv.log\n[Unit]\nStartLimitIntervalSec=30\n"));
  WriteFile(Units() / (std::string(kUnit) + ".d") / "10-op.conf",
            "[Service]\nNoNewPrivileges=yes\nUser=decnet\n", 0644);
  ReloadDirectly();
  auto systemd = helper::ConnectSystemd();
  ASSERT_TRUE(systemd);
  auto view = (*systemd)->GetLoadedView(*UnitName::Parse(kUnit));
  ASSERT_TRUE(view) << view.error().message;
  EXPECT_EQ(view->load_state, "loaded");
  EXPECT_EQ(view->fragment_path, "/etc/systemd/system/decnet-lv.service");
  EXPECT_EQ(view->drop_in_paths,
            std::vector<std::string>{"/etc/systemd/system/decnet-lv.service.d/10-op.conf"});
  EXPECT_EQ(view->source_path, "");
  EXPECT_FALSE(view->transient);
  EXPECT_EQ(view->user, "decnet");
  EXPECT_EQ(view->group, "decnet");
  EXPECT_EQ(view->supplementary_groups, std::vector<std::string>{"decnet"});
  ASSERT_EQ(view->exec.size(), 3u);
  EXPECT_EQ(view->exec[0].directive, "ExecStartPre");
  EXPECT_EQ(view->exec[0].flags, std::vector<std::string>{"privileged"});
  EXPECT_EQ(view->exec[1].flags, (std::vector<std::string>{"ignore-failure", "no-setuid"}));
  EXPECT_EQ(view->exec[2].directive, "ExecStart");
  EXPECT_EQ(view->exec[2].path, "/bin/sleep");
  EXPECT_EQ(view->ambient_capabilities, uint64_t{12288});
  EXPECT_TRUE(view->no_new_privileges);
  EXPECT_EQ(view->kill_mode, "mixed");
  EXPECT_EQ(view->timeout_stop_usec, 7'000'000u);
  EXPECT_EQ(view->limit_nofile, 1000u);
  EXPECT_EQ(view->tasks_max, 77u);
  EXPECT_EQ(view->start_limit_interval_usec, 30'000'000u);
  EXPECT_EQ(view->environment_files, std::vector<std::string>{"/etc/decnet/lv.env"});
  EXPECT_EQ(view->credentials, std::vector<std::string>{"key"});
  EXPECT_EQ(view->standard_output, "append");
  bool state = false, runtime = false;
  for (const auto& [directive, names] : view->directories) {
    if (directive == "StateDirectory") state = names == std::vector<std::string>{"decnet-lv"};
    if (directive == "RuntimeDirectory") runtime = names == std::vector<std::string>{"a/b"};
  }
  EXPECT_TRUE(state && runtime);
  // systemd's own account, read without the adapter.
  EXPECT_EQ(
      testbed().UnitProperty(kUnit, "org.freedesktop.systemd1.Service", "TasksMax").value_or("?"),
      "77");

  auto absent = (*systemd)->GetLoadedView(*UnitName::Parse("decnet-none.service"));
  ASSERT_TRUE(absent) << absent.error().message;
  EXPECT_EQ(absent->load_state, "not-found");
  EXPECT_TRUE(helper::NothingLoaded(*absent));
}

TEST_F(ALoadedViewOnARealSystemd, RestartsACleanUnitAndOneWithAHarmlessOperatorDropIn) {
  InstallThroughTheHelper();
  if (HasFatalFailure()) return;
  HelperRun clean = Run("hello\nrestart_unit " + std::string(kUnit) + "\n");
  EXPECT_EQ(Str(Reply(clean, 1), "job_result"), "done") << Describe(clean);

  WriteFile(Units() / (std::string(kUnit) + ".d") / "10-operator.conf",
            "[Service]\nEnvironment=LEVEL=debug\n", 0644);
  HelperRun run = Run("hello\ndaemon_reload\nrestart_unit " + std::string(kUnit) + "\n");
  ASSERT_EQ(run.replies.size(), 3u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 1), "result"), "ok") << Describe(run);
  EXPECT_EQ(Str(Reply(run, 2), "job_result"), "done") << Describe(run);
}

// One way of getting something other than the helper's file loaded; `plant` runs after the
// legitimate install, then systemd is reloaded through the helper.
struct Plant {
  const char* what;
  std::function<void(const fs::path& units, const std::string& container_root)> plant;
  const char* rule;
};

class ALoadedViewPlantedByAnotherRoute : public ALoadedViewOnARealSystemd,
                                         public ::testing::WithParamInterface<Plant> {};

TEST_P(ALoadedViewPlantedByAnotherRoute, RefusesTheRestartAndThePayloadNeverRuns) {
  InstallThroughTheHelper();
  if (HasFatalFailure()) return;
  GetParam().plant(Units(), container_root_);
  HelperRun run = Run("hello\ndaemon_reload\nrestart_unit " + std::string(kUnit) +
                      "\nunit_status " + kUnit + "\n");
  ASSERT_EQ(run.replies.size(), 4u) << Describe(run);
  // The reload happened, and reports the refused view.
  const json reloaded = Reply(run, 1);
  EXPECT_EQ(Str(reloaded, "result"), "denied") << Describe(run);
  EXPECT_EQ(Str(reloaded, "rule"), GetParam().rule) << Describe(run);
  EXPECT_NE(Str(reloaded, "message").find(kUnit), std::string::npos) << Describe(run);
  const json restarted = Reply(run, 2);
  EXPECT_EQ(Str(restarted, "result"), "denied") << Describe(run);
  EXPECT_EQ(Str(restarted, "rule"), GetParam().rule) << Describe(run);
  // Nothing was restarted: the unit is as the install left it (never started).
  EXPECT_EQ(Str(Reply(run, 3)["unit"], "active_state"), "inactive") << Describe(run);
  EXPECT_FALSE(Pwned()) << "the planted payload ran as root";
}

void PlantDropIn(const fs::path& dir, const std::string& content, mode_t mode, uid_t owner,
                 uid_t dir_owner = 0) {
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0755);
  if (::chown(dir.c_str(), dir_owner, dir_owner) != 0) ADD_FAILURE() << "chown " << dir;
  WriteFile(dir / "50-planted.conf", content, mode, owner, owner);
}

const std::string kPayloadDropIn = std::string("[Service]\n") + kPayload;

INSTANTIATE_TEST_SUITE_P(
    Routes, ALoadedViewPlantedByAnotherRoute,
    ::testing::Values(
        Plant{"a unit-user-owned drop-in in NAME.d",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "decnet-lv.service.d", kPayloadDropIn, 0644, kUnitUid);
              },
              "unit-loaded-dropin"},
        Plant{"a root-owned drop-in in a NAME.d the unit user owns",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "decnet-lv.service.d", kPayloadDropIn, 0644, 0, kUnitUid);
              },
              "unit-loaded-dropin"},
        Plant{"a prefix drop-in decnet-.service.d owned by the unit user",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "decnet-.service.d", kPayloadDropIn, 0644, kUnitUid);
              },
              "unit-loaded-dropin"},
        // Harmless content: a type drop-in reaches every service of the container.
        Plant{"a world-writable type drop-in service.d",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "service.d", "[Service]\nEnvironment=PLANTED=1\n", 0666, 0);
              },
              "unit-loaded-dropin"},
        Plant{"a drop-in in /run/systemd/system inside the container",
              [](const fs::path&, const std::string& c) {
                PlantDropIn(c + "/run/systemd/system/decnet-lv.service.d", kPayloadDropIn, 0644, 0);
              },
              "unit-loaded-dropin"},
        Plant{"a root-owned operator drop-in with ExecStartPre=+",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "decnet-lv.service.d", kPayloadDropIn, 0644, 0);
              },
              "unit-loaded-exec-flags"},
        Plant{"a root-owned drop-in that sets User=root",
              [](const fs::path& u, const std::string&) {
                PlantDropIn(u / "decnet-lv.service.d", "[Service]\nUser=root\n", 0644, 0);
              },
              "unit-loaded-user"},
        // /run/systemd/system comes after /etc/systemd/system in systemd's search path and
        // does not shadow the helper's file; the *.control directories come first and do.
        Plant{"a fragment in /run/systemd/system.control that shadows the helper's",
              [](const fs::path&, const std::string& c) {
                WriteFile(c + "/run/systemd/system.control/decnet-lv.service",
                          HardenedUnit() + kPayload, 0644);
              },
              "unit-loaded-fragment"},
        Plant{"the helper's file changed after it wrote it",
              [](const fs::path& u, const std::string&) {
                std::ofstream(u / "decnet-lv.service", std::ios::app) << kPayload;
              },
              "unit-loaded-fragment-changed"}),
    decnet::test::NameFromWhat{});

// The control: the planted payload is real. Restarted directly over the bus (not through the
// helper), systemd runs it as root.
TEST_F(ALoadedViewOnARealSystemd, APlantedPayloadRunsAsRootWhenRestartedBehindTheHelpersBack) {
  InstallThroughTheHelper();
  if (HasFatalFailure()) return;
  PlantDropIn(Units() / "decnet-lv.service.d", kPayloadDropIn, 0644, 0);
  HelperRun run = Run("hello\ndaemon_reload\nrestart_unit " + std::string(kUnit) + "\n");
  EXPECT_EQ(Str(Reply(run, 2), "rule"), "unit-loaded-exec-flags") << Describe(run);
  ASSERT_FALSE(Pwned());
  auto systemd = helper::ConnectSystemd();
  ASSERT_TRUE(systemd);
  auto job = (*systemd)->RestartUnit(*UnitName::Parse(kUnit), 20s);
  ASSERT_TRUE(job) << job.error().message;
  EXPECT_TRUE(Pwned()) << "the payload did not run: the tests above would prove nothing";
}

// The updater's own unit: a foreign drop-in shows at start-up, in helperctl status, and
// refuses its restart (update-self).
TEST_F(ALoadedViewOnARealSystemd, AForeignDropInOnTheUpdatersOwnUnitShowsAndRefusesItsRestart) {
  ASSERT_TRUE(testbed().WriteUnit("decnet-updater.service",
                                  "[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"));
  PlantDropIn(Units() / "decnet-updater.service.d", kPayloadDropIn, 0644, kUnitUid);
  ReloadDirectly();

  // The stand-in daemon holds its restart request until the test opens the gate.
  const fs::path gate = fs::path(harness_->root()) / "status-shown";
  auto helper_run = std::async(std::launch::async, [this, gate] {
    return harness_->Run(
        "hello\nawait " + gate.string() + "\nrestart_unit decnet-updater.service\n", 60s);
  });
  // While the helper serves: helperctl status, from the operator's side. The helper writes
  // its confinement record after the self-unit view and just before it serves.
  const fs::path state = harness_->policy().state_dir;
  ASSERT_TRUE(test::WaitForPath(state / "confinement.json")) << "the helper never got to serve";
  const auto [status_exit, shown] =
      Command({DECNET_HELPERCTL_BINARY, "--config", harness_->config_path(), "status"});
  std::ofstream(gate).put('\n');

  const HelperRun run = helper_run.get();
  ASSERT_EQ(run.replies.size(), 2u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 1), "result"), "denied") << Describe(run);
  EXPECT_EQ(Str(Reply(run, 1), "rule"), "unit-loaded-dropin") << Describe(run);
  EXPECT_NE(run.log.find("SECURITY: the updater's own unit decnet-updater.service"),
            std::string::npos)
      << Describe(run);
  EXPECT_FALSE(Pwned());

  EXPECT_EQ(status_exit, 0) << shown;
  EXPECT_NE(shown.find("drop-in: /etc/systemd/system/decnet-updater.service.d/50-planted.conf "
                       "FOREIGN"),
            std::string::npos)
      << shown;
  EXPECT_NE(shown.find("restart (update-self): refused until the unit is clean"), std::string::npos)
      << shown;
  const json record = json::parse(Slurp(state / "self-unit-view.json"), nullptr, false);
  ASSERT_TRUE(record.is_object());
  ASSERT_EQ(record["drop_ins"].size(), 1u) << record.dump();
  EXPECT_TRUE(record["drop_ins"][0].value("foreign", false)) << record.dump();
}

TEST_F(ALoadedViewOnARealSystemd, RestartsTheUpdatersOwnUnitWhenItIsClean) {
  ASSERT_TRUE(testbed().WriteUnit("decnet-updater.service",
                                  "[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"));
  ReloadDirectly();
  HelperRun run = Run("hello\nrestart_unit decnet-updater.service\n");
  EXPECT_EQ(Str(Reply(run, 1), "job_result"), "done") << Describe(run);
  EXPECT_EQ(run.log.find("SECURITY:"), std::string::npos) << Describe(run);
}

}  // namespace
}  // namespace decnet::test
