// The crash matrix: an update is cut off abruptly at each named point, the way a killed
// unit dies (daemon and helper together, no destructors, no flush). A fresh helper and daemon
// then start as systemd would restart them: the store recovers, units and links are
// reconciled, and the host must be on one complete release whose units and link match it;
// the next update must succeed. The two points before the pipeline ("uploading", "spooled")
// need the HTTP server and are in crash_upload_test.cc.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "daemon/self_update.h"
#include "daemon/update_pipeline.h"
#include "helper/serve.h"
#include "proto/sha256.h"
#include "tests/daemon/served_helper.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::_;
using ::testing::Return;

std::string Unit(const std::string& what) {
  return "[Unit]\nDescription=" + what + "\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
         "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";
}

// Fails its first `failures` checks; calls `on_check` first (the crash matrix ends there).
class Gate : public HealthGate {
 public:
  GateVerdict Check(const std::map<UnitName, uint32_t>&, const std::string&,
                    std::chrono::steady_clock::time_point) override {
    if (on_check) on_check();
    if (failures > 0) {
      --failures;
      return {false, "503", "agent unhealthy", "gate-probe"};
    }
    return {true, "{\"status\":\"ok\"}", "", ""};
  }
  int failures = 0;
  std::function<void()> on_check;
};

// One run of "the unit": helper serve loop and daemon pipeline in one process.
struct Unit_ {
  explicit Unit_(test::TestDirs& dirs, const DaemonConfig& config) : helper(dirs, "crash-matrix") {
    store.emplace(std::move(*ReleaseStore::Open(config.install_dir)));
    audit.emplace(std::move(*AuditLog::Open(dirs.root() + "/audit.jsonl")));
    pipeline.emplace(config, dirs.policy(), *store, helper.client(), gate, *audit);
  }
  test::ServedHelper helper;  // before what borrows its client
  std::optional<ReleaseStore> store;
  std::optional<AuditLog> audit;
  Gate gate;
  std::optional<UpdatePipeline> pipeline;
};

using test::Tarball;

struct Point {
  std::string step;      // pipeline step at which the process dies
  bool gate_fails;       // the new release fails its gate (the rollback path)
  int delay_ms;          // > 0: die this long after the step starts (mid-step)
};

void PrintTo(const Point& p, std::ostream* os) { *os << p.step << (p.gate_fails ? "/rollback" : ""); }

class ACrashedUpdate : public ::testing::TestWithParam<Point> {
 protected:
  void SetUp() override {
    install_ = dirs_.root() + "/opt/decnet";
    fs::create_directories(install_);
    config_.install_dir = install_;
    config_.units = {"decnet-agent.service"};
    config_.links = {{"decnet", "bin/decnet"}};
    dirs_.policy().links = {{"decnet", install_ + "/current"}};
  }

  // A release: its version file, link target, units, and `bulk` files to slow extraction.
  Tarball Pack(const std::string& version, const std::map<std::string, std::string>& units, int bulk = 0) {
    std::string tree = dirs_.root() + "/tree-" + version;
    fs::create_directories(tree + "/bin");
    std::ofstream(tree + "/VERSION") << version;
    std::ofstream(tree + "/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    if (!units.empty()) fs::create_directories(tree + "/etc/systemd/system");
    for (const auto& [n, c] : units) std::ofstream(tree + "/etc/systemd/system/" + n) << c;
    for (int i = 0; i < bulk; ++i) {
      fs::create_directories(tree + "/data/" + std::to_string(i % 50));
      std::ofstream(tree + "/data/" + std::to_string(i % 50) + "/f" + std::to_string(i)) << std::string(4096, 'a' + i % 26);
    }
    return test::PackTree(tree);
  }
  ApiAnswer Push(Unit_& unit, const Tarball& t) {
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    auto a = unit.pipeline->Update({"fp", "decnet-master"}, {fd, t.size, t.sha256, std::nullopt});
    ::close(fd);
    return a;
  }
  std::string ActiveVersion() {
    std::ifstream in(install_ + "/current/VERSION");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // Units in the unit directory must be exactly those the active release ships.
  void ExpectUnitsMatch(const std::map<std::string, std::string>& units) {
    std::set<std::string> present;
    for (const auto& e : fs::directory_iterator(dirs_.units())) {
      if (!e.path().filename().string().starts_with(".")) present.insert(e.path().filename().string());
    }
    std::set<std::string> expected;
    for (const auto& [n, c] : units) {
      expected.insert(n);
      std::ifstream in(dirs_.units() + "/" + n);
      EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), c) << n;
    }
    EXPECT_EQ(present, expected);
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
};

TEST_P(ACrashedUpdate, LeavesTheHostOnOneCompleteReleaseAndTheNextUpdateSucceeds) {
  const Point point = GetParam();
  const std::map<std::string, std::string> v1_units = {{"decnet-agent.service", Unit("agent v1")}};
  const std::map<std::string, std::string> v2_units = {{"decnet-agent.service", Unit("agent v2")},
                                                       {"decnet-extra.service", Unit("extra v2")}};
  {
    Unit_ first(dirs_, config_);
    ASSERT_EQ(Push(first, Pack("v1", v1_units)).status, 200u);
  }
  if (point.step == "installing") config_.install_command = {"/bin/sleep", "5"};
  Tarball v2 = Pack("v2", v2_units, point.step == "extracting" ? 3000 : 0);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The unit that dies. _exit: no destructors, no flush, like SIGKILL.
    Unit_ unit(dirs_, config_);
    auto die = [delay = point.delay_ms] {
      if (delay <= 0) ::_exit(0);
      std::thread([delay] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        ::_exit(0);
      }).detach();
    };
    unit.gate.failures = point.gate_fails ? 1 : 0;
    if (point.step == "gate") unit.gate.on_check = [] { ::_exit(0); };
    unit.pipeline->SetStepHook([&](std::string_view step) {
      if (step == point.step) die();
    });
    (void)Push(unit, v2);
    ::_exit(3);  // the named point was never reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the update never reached " << point.step;

  // systemd restarts the unit: recovery, then reconciliation of units and links.
  config_.install_command.clear();
  Unit_ restarted(dirs_, config_);
  auto report = restarted.store->Recover();
  ASSERT_TRUE(report) << report.error().message;
  ASSERT_TRUE(restarted.pipeline->Reconcile("test restart", report->reverted.has_value()));
  EXPECT_FALSE(restarted.store->Pending().has_value());
  ASSERT_TRUE(restarted.store->Active().has_value());
  EXPECT_TRUE(restarted.store->IsComplete(*restarted.store->Active()));
  std::string version = ActiveVersion();
  const bool committed = point.step == "committed";
  EXPECT_EQ(version, committed ? "v2" : "v1") << "only a release that passed its gate may stay";
  ExpectUnitsMatch(committed ? v2_units : v1_units);
  EXPECT_EQ(fs::read_symlink(dirs_.root() + "/bin/decnet").string(), install_ + "/current/bin/decnet");
  for (const auto& e : fs::directory_iterator(install_ + "/releases")) {
    auto id = ReleaseId::Parse(e.path().filename().string());
    ASSERT_TRUE(id) << e.path();
    EXPECT_TRUE(restarted.store->IsComplete(*id)) << "incomplete release left: " << e.path();
  }
  auto v3 = Push(restarted, Pack("v3", v1_units));
  EXPECT_EQ(v3.status, 200u) << v3.body.dump();
  EXPECT_EQ(ActiveVersion(), "v3");
}

INSTANTIATE_TEST_SUITE_P(
    Points, ACrashedUpdate,
    ::testing::Values(Point{"extracting", false, 15}, Point{"extracted", false, 0},
                      Point{"installing", false, 150}, Point{"complete", false, 0},
                      Point{"flipped", false, 0}, Point{"unit-written", false, 0},
                      Point{"reloaded", false, 0}, Point{"restarted", false, 0},
                      Point{"gate", false, 0}, Point{"committed", false, 0},
                      Point{"rolling-back", true, 0}, Point{"reverted", true, 0}),
    [](const auto& info) {
      std::string n = info.param.step + (info.param.gate_fails ? "_in_rollback" : "");
      for (char& c : n) if (c == '-') c = '_';
      return n;
    });


// update-self cut off at each of its steps: after the restart the daemon's own store is on
// one complete build (the old one: nothing was committed before the crash), nothing
// incomplete is left, the suite's release is untouched, and the next update-self succeeds.
class ACrashedUpdateSelf : public ACrashedUpdate {
 protected:
  // Opens the daemon's store as start-up does and enables update-self on `unit`.
  std::optional<ReleaseStore> EnableSelf(Unit_& unit) {
    auto opened = OpenUpdaterStore(config_, *unit.audit);
    EXPECT_TRUE(opened && opened->store) << (opened ? opened->note : opened.error().message);
    if (!opened || !opened->store) return std::nullopt;
    return std::move(opened->store);
  }
  void Target(Unit_& unit, ReleaseStore& store) {
    SelfUpdateTarget t;
    t.store = &store;
    t.helper_protocol = proto::kProtocolVersion;
    t.arch = HostArch();
    unit.pipeline->SetSelfUpdate(t);
  }
  Tarball PackBuild(const std::string& version, int bulk = 0) {
    std::string tree = dirs_.root() + "/build-" + version;
    fs::create_directories(tree + "/bin");
    std::ofstream(tree + "/.decnet-release.json")
        << R"({"format":1,"version":")" << version << R"(","kind":"updater","arch":")"
        << HostArch() << R"(","helper_protocol":)" << proto::kProtocolVersion << "}";
    std::ofstream(tree + "/bin/decnet-updaterd") << "#!/bin/sh\necho decnet-updaterd " << version << "\n";
    fs::permissions(tree + "/bin/decnet-updaterd", fs::perms(0755));
    for (int i = 0; i < bulk; ++i) {
      fs::create_directories(tree + "/share/" + std::to_string(i % 50));
      std::ofstream(tree + "/share/" + std::to_string(i % 50) + "/f" + std::to_string(i))
          << std::string(4096, 'a' + i % 26);
    }
    return test::PackTree(tree);
  }
  ApiAnswer PushSelf(Unit_& unit, const Tarball& t) {
    std::function<void()> after;
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    auto a = unit.pipeline->UpdateSelf({"fp", "decnet-master"}, {fd, t.size, t.sha256, std::nullopt},
                                       &after);
    ::close(fd);
    return a;
  }
  std::string Updater() const { return dirs_.root() + "/updater"; }
  std::string UpdaterCurrent() const { return fs::read_symlink(Updater() + "/current").string(); }
};

TEST_P(ACrashedUpdateSelf, LeavesTheDaemonOnOneCompleteBuildAndTheNextUpdateSelfSucceeds) {
  const Point point = GetParam();
  fs::create_directories(Updater());
  config_.updater_dir = Updater();
  const std::map<std::string, std::string> units = {{"decnet-agent.service", Unit("agent v1")}};
  Tarball first = PackBuild("1.0.0");
  {
    Unit_ unit(dirs_, config_);
    ASSERT_EQ(Push(unit, Pack("v1", units)).status, 200u);
    auto store = EnableSelf(unit);
    ASSERT_TRUE(store);
    Target(unit, *store);
    ASSERT_EQ(PushSelf(unit, first).status, 200u);
  }
  Tarball second = PackBuild("2.0.0", point.step == "self-extracting" ? 3000 : 0);

  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Unit_ unit(dirs_, config_);
    auto store = EnableSelf(unit);
    if (!store) ::_exit(4);
    Target(unit, *store);
    unit.pipeline->SetStepHook([&](std::string_view step) {
      if (step != point.step) return;
      if (point.delay_ms <= 0) ::_exit(0);
      std::thread([delay = point.delay_ms] {
        std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        ::_exit(0);
      }).detach();
    });
    (void)PushSelf(unit, second);
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "update-self never reached " << point.step;

  Unit_ restarted(dirs_, config_);
  auto store = EnableSelf(restarted);
  ASSERT_TRUE(store);
  EXPECT_FALSE(store->Pending().has_value());
  ASSERT_TRUE(store->Active().has_value());
  EXPECT_EQ(store->Active()->str(), first.sha256.substr(0, 16)) << "nothing was committed";
  EXPECT_EQ(UpdaterCurrent(), "releases/" + first.sha256.substr(0, 16));
  for (const auto& e : fs::directory_iterator(Updater() + "/releases")) {
    auto id = ReleaseId::Parse(e.path().filename().string());
    ASSERT_TRUE(id) << e.path();
    EXPECT_TRUE(store->IsComplete(*id)) << "incomplete build left: " << e.path();
  }
  EXPECT_EQ(ActiveVersion(), "v1") << "the suite's release is not touched";
  ExpectUnitsMatch(units);
  Target(restarted, *store);
  Tarball third = PackBuild("3.0.0");
  auto next = PushSelf(restarted, third);
  EXPECT_EQ(next.status, 200u) << next.body.dump();
  EXPECT_EQ(UpdaterCurrent(), "releases/" + third.sha256.substr(0, 16));
}

INSTANTIATE_TEST_SUITE_P(
    Points, ACrashedUpdateSelf,
    ::testing::Values(Point{"self-extracting", false, 15}, Point{"self-extracted", false, 0},
                      Point{"self-complete", false, 0}, Point{"self-flipped", false, 0}),
    [](const auto& info) {
      std::string n = info.param.step;
      for (char& c : n) if (c == '-') c = '_';
      return n;
    });

}  // namespace
}  // namespace decnet::daemon
