// The update pipeline with real parts around it: real tarballs extracted into a real release
// store, the helper's real serve loop writing real unit files and links (systemd itself is a
// mock here; tests/integration drives a real one), and a scripted health gate.
#include "daemon/update_pipeline.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>

#include "daemon/self_update.h"
#include "helper/serve.h"
#include "proto/sha256.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::_;
using ::testing::Return;

constexpr char kAgentUnit[] =
    "[Unit]\nDescription=agent\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/opt/decnet/current/venv/bin/decnet agent\n";
// The agent's unit as DECNET's installer put it on the worker (releases without units rely on it).
const std::string kOperatorAgentUnit =
    test::OperatorUnit("DECNET worker agent", "/opt/decnet/current/venv/bin/decnet agent");
constexpr char kExtraUnit[] =
    "[Unit]\nDescription=extra\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";

// Gate verdicts, one per call, in order; healthy when the script runs out.
class ScriptedGate : public HealthGate {
 public:
  GateVerdict Check(const std::map<UnitName, uint32_t>& restarts, const std::string& version,
                    std::chrono::steady_clock::time_point) override {
    calls.push_back({restarts, version});
    if (script.empty()) return {true, "{\"status\":\"ok\"}", "", ""};
    GateVerdict v = script.front();
    script.pop_front();
    return v;
  }
  std::deque<GateVerdict> script;
  std::vector<std::pair<std::map<UnitName, uint32_t>, std::string>> calls;
};

using test::Tarball;

class AnUpdatePipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = dirs_.root() + "/opt/decnet";
    fs::create_directories(install_);
    config_.install_dir = install_;
    config_.units = {"decnet-agent.service", "decnet-extra.service"};
    config_.links = {{"decnet", "venv/bin/decnet"}};
    dirs_.policy().links = {{"decnet", install_ + "/current"}};
    ASSERT_NO_FATAL_FAILURE(stack_.Open(dirs_, config_));
  }
  void TearDown() override { stack_.Close(); }
  ::testing::NiceMock<test::MockSystemd>& systemd() { return stack_.helper->systemd(); }

  // Packs a release tree: version marker, the link target, and the given unit files.
  Tarball Pack(const std::string& version, const std::map<std::string, std::string>& units,
               const std::string& manifest = "") {
    std::string tree = dirs_.root() + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/venv/bin");
    std::ofstream(tree + "/VERSION") << version << "\n";
    if (with_link_target_)
      std::ofstream(tree + "/venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    if (!units.empty()) fs::create_directories(tree + "/etc/systemd/system");
    for (const auto& [name, content] : units)
      std::ofstream(tree + "/etc/systemd/system/" + name) << content;
    if (!manifest.empty()) std::ofstream(tree + "/.decnet-release.json") << manifest;
    return test::PackTree(tree);
  }
  ApiAnswer Push(const Tarball& t, std::optional<std::string> sha = std::nullopt) {
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    ApiAnswer a = stack_.pipeline->Update({"fp", "decnet-master"}, {fd, t.size, t.sha256, sha});
    ::close(fd);
    return a;
  }
  std::string Current() { return fs::read_symlink(install_ + "/current").string(); }
  std::string CurrentVersion() {
    std::ifstream in(install_ + "/current/VERSION");
    std::string v;
    std::getline(in, v);
    return v;
  }
  bool UnitInstalled(const std::string& name) { return fs::exists(dirs_.units() + "/" + name); }
  std::string InstalledUnit(const std::string& name) {
    std::ifstream in(dirs_.units() + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // A worker as DECNET's installer leaves it: the agent's unit in the unit directory, root's,
  // not written by the helper. For tests whose releases ship no units, as a master's do not.
  ::testing::AssertionResult OperatorInstalledAgent() {
    return test::InstallOperatorUnit(dirs_, "decnet-agent.service", kOperatorAgentUnit);
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
  test::ServedStack<ScriptedGate> stack_;
  int packed_ = 0;
  bool with_link_target_ = true;  // Pack() ships venv/bin/decnet, the `decnet` link's target
};

TEST_F(AnUpdatePipeline, InstallsAFirstReleaseWithItsUnitsAndLink) {
  auto t = Pack("1.0", {{"decnet-agent.service", kAgentUnit}});
  auto a = Push(t, "abc123");
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(a.body["status"], "updated");
  EXPECT_EQ(a.body["release"]["slot"], "active");
  EXPECT_EQ(a.body["release"]["sha"], "abc123");
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_TRUE(UnitInstalled("decnet-agent.service"));
  EXPECT_EQ(fs::read_symlink(dirs_.root() + "/bin/decnet").string(),
            install_ + "/current/venv/bin/decnet");
  ASSERT_EQ(stack_.gate.calls.size(), 1u);
  EXPECT_TRUE(stack_.gate.calls[0].first.contains(*UnitName::Parse("decnet-agent.service")));
}

TEST_F(AnUpdatePipeline, RollsBackAReleaseThatFailsItsGateToTheOldCodeAndUnits) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}})).status, 200u);
  std::string old_current = Current();
  stack_.gate.script = {GateVerdict{false, "503 unhealthy", "agent answered 503", "gate-probe"}};
  auto t2 =
      Pack("2.0", {{"decnet-agent.service", kAgentUnit}, {"decnet-extra.service", kExtraUnit}});
  auto a = Push(t2);
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], true);
  EXPECT_NE(a.body["detail"]["stderr"].get<std::string>().find("503 unhealthy"), std::string::npos);
  EXPECT_EQ(Current(), old_current);
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_FALSE(UnitInstalled("decnet-extra.service"))
      << "the failed release's unit was not removed";
  EXPECT_TRUE(UnitInstalled("decnet-agent.service"));
  auto releases = stack_.pipeline->Releases();
  ASSERT_GE(releases.size(), 2u);
  EXPECT_EQ(releases[0]["slot"], "active");
  EXPECT_EQ(releases[0]["state"], "ready");
  bool failed_recorded = false;
  for (auto& r : releases) failed_recorded |= r["sha256"] == t2.sha256 && r["state"] == "failed";
  EXPECT_TRUE(failed_recorded);
}

TEST_F(AnUpdatePipeline, RollsAFailedFirstInstallBackToNothing) {
  stack_.gate.script = {GateVerdict{false, "", "agent never answered", "gate-probe"}};
  auto a = Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}}));
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_FALSE(fs::exists(install_ + "/current"));
  EXPECT_FALSE(stack_.store->Active().has_value());
}

TEST_F(AnUpdatePipeline, RedeploysTheActiveDigestWithoutExtractingAgain) {
  ASSERT_TRUE(OperatorInstalledAgent());
  auto t = Pack("1.0", {});
  ASSERT_EQ(Push(t).status, 200u);
  std::string marker = install_ + "/current/VERSION";
  fs::remove(marker);  // a re-extraction would bring it back
  auto a = Push(t);
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(stack_.gate.calls.size(), 2u) << "a redeploy restarts and gates again";
}

TEST_F(AnUpdatePipeline, LeavesUnitsAloneForAReleaseWithoutUnitDirectory) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}})).status, 200u);
  ASSERT_EQ(Push(Pack("2.0", {})).status, 200u);
  EXPECT_TRUE(UnitInstalled("decnet-agent.service"));
  EXPECT_EQ(CurrentVersion(), "2.0");
}

TEST_F(AnUpdatePipeline, ListsTheUnitsEachStoredReleaseShipsAsReleasesServesThem) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}})).status, 200u);
  ASSERT_EQ(Push(Pack("2.0",
                      {{"decnet-extra.service", kExtraUnit}, {"decnet-agent.service", kAgentUnit}}))
                .status,
            200u);
  auto releases = stack_.pipeline->Releases();
  ASSERT_EQ(releases.size(), 2u);
  EXPECT_EQ(releases[0]["slot"], "active");
  EXPECT_EQ(releases[0]["units"],
            nlohmann::json::array({"decnet-agent.service", "decnet-extra.service"}))
      << releases[0].dump();
  EXPECT_EQ(releases[1]["units"], nlohmann::json::array({"decnet-agent.service"}))
      << releases[1].dump();
  // Read once per release: a listing after the tree changed still shows what it shipped.
  fs::remove(install_ + "/current/etc/systemd/system/decnet-extra.service");
  EXPECT_EQ(stack_.pipeline->Releases()[0]["units"].size(), 2u);

  // A release without etc/systemd/system/ leaves units alone: null, not an empty list.
  ASSERT_EQ(Push(Pack("3.0", {})).status, 200u);
  releases = stack_.pipeline->Releases();
  EXPECT_TRUE(releases[0]["units"].is_null()) << releases[0].dump();
  EXPECT_EQ(releases[1]["units"].size(), 2u) << releases[1].dump();
}

TEST_F(AnUpdatePipeline, RefusesAReleaseWithARootUnitBeforeSwitchingAnything) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  std::string root_unit = kAgentUnit;
  root_unit.replace(root_unit.find("User=decnet"), 11, "User=root");
  auto a = Push(Pack("2.0", {{"decnet-agent.service", root_unit}}));
  ASSERT_EQ(a.status, 500u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], false);
  EXPECT_EQ(a.body["detail"]["rule"], "unit-user-root");
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), kOperatorAgentUnit)
      << "the refused release's unit replaced the installed one";
  std::set<std::string> units;
  for (const auto& e : fs::directory_iterator(dirs_.units())) units.insert(e.path().filename());
  EXPECT_EQ(units, std::set<std::string>{"decnet-agent.service"}) << "the refused unit was written";
  std::string listing;
  int dirs = 0;
  for (const auto& e : fs::directory_iterator(install_ + "/releases")) {
    dirs += e.is_directory();
    listing += e.path().filename().string() + " ";
  }
  EXPECT_EQ(dirs, 1) << "the refused release was left behind: " << listing;
}

TEST_F(AnUpdatePipeline, AbortsOnAFailedInstallCommandWithItsOutput) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  config_.install_command = {"/bin/sh", "-c", "echo building {version}; echo broken >&2; exit 3"};
  auto a = Push(Pack("2.0", {}));
  ASSERT_EQ(a.status, 500u) << a.body.dump();
  EXPECT_NE(a.body["detail"]["stderr"].get<std::string>().find("broken"), std::string::npos);
  EXPECT_EQ(CurrentVersion(), "1.0");
}

TEST_F(AnUpdatePipeline, RollsBackManuallyAndRefusesWithoutAPreviousRelease) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ApiAnswer none = stack_.pipeline->Rollback({"fp", "decnet-master"});
  EXPECT_EQ(none.status, 404u);
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  EXPECT_EQ(ApiAnswer(stack_.pipeline->Rollback({"fp", "decnet-master"})).status, 404u);
  ASSERT_EQ(Push(Pack("2.0", {})).status, 200u);
  ApiAnswer a = stack_.pipeline->Rollback({"fp", "decnet-master"});
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(a.body["status"], "rolled_back");
  EXPECT_EQ(CurrentVersion(), "1.0");
  ApiAnswer b = stack_.pipeline->Rollback({"fp", "decnet-master"});
  ASSERT_EQ(b.status, 200u);
  EXPECT_EQ(CurrentVersion(), "2.0") << "a manual rollback swaps active and previous";
}

TEST_F(AnUpdatePipeline, RefusesAnUpdaterBuildOnTheServicePath) {
  auto a = Push(
      Pack("9.9", {},
           R"({"format":1,"version":"9.9","kind":"updater","arch":"x86_64","helper_protocol":1})"));
  ASSERT_EQ(a.status, 500u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rule"], "manifest-kind");
}

TEST_F(AnUpdatePipeline, PrunesBeyondKeepReleasesAndDeletesThemInTheBackground) {
  ASSERT_TRUE(OperatorInstalledAgent());
  test::PruneLatch prune(*stack_.pipeline);  // holds the pruner inside its first deletion
  std::vector<Tarball> pushed;               // the store keeps kDefaultKeepReleases (3)
  for (const char* v : {"1.0", "2.0", "3.0", "4.0"}) {
    pushed.push_back(Pack(v, {}));
    ASSERT_EQ(Push(pushed.back()).status, 200u);
  }
  prune.WaitHeld();  // the oldest release is being deleted, and the answer is out
  const std::string oldest = pushed[0].sha256.substr(0, 16);
  EXPECT_FALSE(fs::exists(install_ + "/releases/" + oldest)) << "moved aside before the answer";
  for (const auto& r : stack_.pipeline->Releases()) EXPECT_NE(r["id"], oldest) << "still listed";
  size_t waiting = 0;
  for (const auto& e : fs::directory_iterator(install_ + "/pruned")) {
    waiting += 1;
    EXPECT_TRUE(e.path().filename().string().starts_with(oldest + ".")) << e.path();
  }
  EXPECT_EQ(waiting, 1u) << "the pruned release waits beneath pruned/";
  prune.Release();
  ASSERT_TRUE(stack_.pipeline->WaitForPruning());
  EXPECT_TRUE(fs::is_empty(install_ + "/pruned")) << "pruning happens eventually";
  for (size_t i = 1; i < pushed.size(); ++i)
    EXPECT_TRUE(fs::exists(install_ + "/releases/" + pushed[i].sha256.substr(0, 16))) << i;
}

TEST_F(AnUpdatePipeline, ReinstallsARePushOfAPrunedReleaseWhileItsOldTreeIsStillBeingDeleted) {
  ASSERT_TRUE(OperatorInstalledAgent());
  test::PruneLatch prune(*stack_.pipeline);
  std::vector<Tarball> pushed;
  for (const char* v : {"1.0", "2.0", "3.0", "4.0"}) {
    pushed.push_back(Pack(v, {}));
    ASSERT_EQ(Push(pushed.back()).status, 200u);
  }
  prune.WaitHeld();
  // 1.0 again, while its pruned tree is held half way: extracted afresh into releases/<id>.
  auto a = Push(pushed[0]);
  EXPECT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(CurrentVersion(), "1.0");
  prune.Release();
  ASSERT_TRUE(stack_.pipeline->WaitForPruning());
  EXPECT_EQ(CurrentVersion(), "1.0") << "the pruner deleted the re-pushed release";
  EXPECT_TRUE(fs::exists(install_ + "/current/venv/bin/decnet"));
}

TEST_F(AnUpdatePipeline, RecoversFromACrashHalfWayThroughDeletingAPrunedRelease) {
  ASSERT_TRUE(OperatorInstalledAgent());
  std::vector<Tarball> pushed;
  for (const char* v : {"1.0", "2.0"}) {
    pushed.push_back(Pack(v, {}));
    ASSERT_EQ(Push(pushed.back()).status, 200u);
  }
  // What a crash leaves: a tree half deleted beneath pruned/, and one half deleted beneath
  // releases/ whose record was already dropped (its completion record gone first).
  fs::create_directories(install_ + "/pruned/0123456789abcdef.1.1/venv/lib");
  std::ofstream(install_ + "/pruned/0123456789abcdef.1.1/venv/lib/x.py") << "x";
  fs::create_directories(install_ + "/releases/fedcba9876543210/venv/bin");
  std::ofstream(install_ + "/releases/fedcba9876543210/VERSION") << "0.1\n";
  stack_.pipeline.reset();
  stack_.store.reset();
  auto store = ReleaseStore::Open(install_);
  ASSERT_TRUE(store) << store.error().message;
  stack_.store.emplace(std::move(*store));
  auto recovered = stack_.store->Recover();
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_EQ(recovered->removed, std::vector<std::string>{"fedcba9876543210"});
  EXPECT_EQ(stack_.store->Active()->str(), pushed[1].sha256.substr(0, 16));
  stack_.StartPipeline(dirs_, config_);
  ASSERT_TRUE(stack_.pipeline->Reconcile("start-up", false));
  ASSERT_TRUE(stack_.pipeline->WaitForPruning());
  EXPECT_TRUE(fs::is_empty(install_ + "/pruned")) << "the next pruner deletes the leftover";
  std::set<std::string> dirs;
  for (const auto& e : fs::directory_iterator(install_ + "/releases"))
    dirs.insert(e.path().filename());
  EXPECT_EQ(dirs, (std::set<std::string>{pushed[0].sha256.substr(0, 16),
                                         pushed[1].sha256.substr(0, 16)}));
  ASSERT_EQ(Push(Pack("3.0", {})).status, 200u);
  EXPECT_EQ(CurrentVersion(), "3.0");
}

TEST_F(AnUpdatePipeline, FailsWhenTheRequiredUnitDoesNotRestart) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  EXPECT_CALL(systemd(), RestartUnit(_, _)).WillRepeatedly(Return(helper::JobOutcome{"done"}));
  EXPECT_CALL(systemd(), RestartUnit(*UnitName::Parse("decnet-agent.service"), _))
      .WillOnce(Return(helper::JobOutcome{"failed"}))
      .WillRepeatedly(Return(helper::JobOutcome{"done"}));
  auto a = Push(Pack("2.0", {}));
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rule"], "unit-restart-failed");
  EXPECT_EQ(CurrentVersion(), "1.0");
}

// --- every step checked: a step that fails after `current` moved fails the update, which is
// rolled back (release, units, links) with that step's rule in the answer and the audit log.

constexpr char kAgentUnitV2[] =
    "[Unit]\nDescription=agent 2\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/opt/decnet/current/venv/bin/decnet agent\n";

class AFailingStep : public AnUpdatePipeline {
 protected:
  // Release 1.0 with the agent's unit, active and healthy.
  void InstallFirst() {
    auto a = Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}}));
    ASSERT_EQ(a.status, 200u) << a.body.dump();
    first_current_ = Current();
  }
  // Release 2.0: a changed agent unit and a new unit (so units are written, one removed on
  // the way back, and systemd reloaded).
  ApiAnswer PushSecond() {
    return Push(Pack(
        "2.0", {{"decnet-agent.service", kAgentUnitV2}, {"decnet-extra.service", kExtraUnit}}));
  }
  // The answer is DECNET's automatic rollback naming `rule`, the audit line says the same, and
  // the host is back on 1.0: current, units, the link and the store's verdict.
  void ExpectRolledBackToTheFirst(const ApiAnswer& a, const std::string& rule,
                                  const std::set<std::string>& foreign_units = {}) {
    EXPECT_EQ(a.status, 409u) << a.body.dump();
    EXPECT_EQ(a.body["detail"]["rolled_back"], true) << a.body.dump();
    EXPECT_EQ(a.body["detail"]["rule"], rule) << a.body.dump();
    auto lines = stack_.audit->Tail(1);
    ASSERT_TRUE(lines && lines->size() == 1u);
    auto audit = nlohmann::json::parse(lines->back());
    EXPECT_EQ(audit["op"], "update");
    EXPECT_EQ(audit["result"], "rolled_back") << audit.dump();
    EXPECT_EQ(audit["rule"], rule) << audit.dump();
    EXPECT_EQ(Current(), first_current_);
    EXPECT_EQ(CurrentVersion(), "1.0");
    EXPECT_EQ(InstalledUnit("decnet-agent.service"), kAgentUnit) << "the old unit is not back";
    std::set<std::string> units;
    for (const auto& e : fs::directory_iterator(dirs_.units())) {
      if (!e.path().filename().string().starts_with(".")) units.insert(e.path().filename());
    }
    std::set<std::string> expected = foreign_units;
    expected.insert("decnet-agent.service");
    EXPECT_EQ(units, expected) << "the failed release's units are still installed";
    const std::string link = dirs_.root() + "/bin/decnet";
    EXPECT_EQ(fs::read_symlink(link).string(), install_ + "/current/venv/bin/decnet");
    std::ifstream in(link);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "#!/bin/sh\necho 1.0\n")
        << "the link does not run the old release";
    ASSERT_TRUE(stack_.store->Active());
    EXPECT_EQ("releases/" + stack_.store->Active()->str(), first_current_);
    auto releases = stack_.pipeline->Releases();
    ASSERT_EQ(releases.size(), 2u);
    EXPECT_NE("releases/" + releases[1]["id"].get<std::string>(), first_current_);
    EXPECT_EQ(releases[1]["state"], "failed") << "the failed release is not recorded failed";
  }
  std::string first_current_;
};

TEST_F(AFailingStep, ALinkWhoseTargetTheReleaseLacksRollsTheUpdateBack) {
  InstallFirst();
  with_link_target_ = false;  // a DECNET tree without venv/bin/decnet
  ExpectRolledBackToTheFirst(PushSecond(), "link-target-missing");
}

TEST_F(AFailingStep, AUnitThatCannotBeWrittenRollsTheUpdateBack) {
  InstallFirst();
  // Not a regular file: the helper refuses to write over it (and the rollback must not try to
  // remove what it never wrote).
  fs::create_directory(dirs_.units() + "/decnet-extra.service");
  ExpectRolledBackToTheFirst(PushSecond(), "unit-file-not-regular", {"decnet-extra.service"});
  EXPECT_TRUE(fs::is_directory(dirs_.units() + "/decnet-extra.service"));
}

TEST_F(AFailingStep, ADaemonReloadThatFailsRollsTheUpdateBack) {
  InstallFirst();
  EXPECT_CALL(systemd(), Reload())
      .WillOnce(Return(Result<void>(tl::make_unexpected(
          Error{ErrorCode::kFailed, "systemd-reload-test", "Reload: the bus went away"}))))
      .WillRepeatedly(Return(Result<void>{}));
  ExpectRolledBackToTheFirst(PushSecond(), "systemd-reload-test");
}

TEST_F(AFailingStep, ARequiredRestartThatFailsRollsTheUpdateBack) {
  InstallFirst();
  EXPECT_CALL(systemd(), RestartUnit(_, _)).WillRepeatedly(Return(helper::JobOutcome{"done"}));
  EXPECT_CALL(systemd(), RestartUnit(*UnitName::Parse("decnet-agent.service"), _))
      .WillOnce(Return(helper::JobOutcome{"failed"}))
      .WillRepeatedly(Return(helper::JobOutcome{"done"}));
  ExpectRolledBackToTheFirst(PushSecond(), "unit-restart-failed");
}

TEST_F(AFailingStep, AFirstReleaseWithoutItsLinkTargetIsRolledBackToNothing) {
  with_link_target_ = false;
  auto a = Push(Pack("1.0", {{"decnet-agent.service", kAgentUnit}}));
  EXPECT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rule"], "link-target-missing");
  EXPECT_FALSE(fs::exists(install_ + "/current"));
  EXPECT_FALSE(stack_.store->Active().has_value());
  auto audit = nlohmann::json::parse(stack_.audit->Tail(1)->back());
  EXPECT_EQ(audit["rule"], "link-target-missing");
}

TEST_F(AnUpdatePipeline, WritesOneAuditLinePerOperation) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  (void)stack_.pipeline->Rollback({"fp", "decnet-master"});
  auto lines = stack_.audit->Tail(10);
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 2u);
  auto first = nlohmann::json::parse((*lines)[0]);
  EXPECT_EQ(first["op"], "update");
  EXPECT_EQ(first["result"], "updated");
  EXPECT_EQ(first["client"]["cn"], "decnet-master");
  EXPECT_EQ(nlohmann::json::parse((*lines)[1])["result"], "refused");
}

// --- update-self ----------------------------------------------------------------------------

class AnUpdateSelf : public AnUpdatePipeline {
 protected:
  void SetUp() override {
    AnUpdatePipeline::SetUp();
    updater_ = dirs_.root() + "/opt/decnet-updater/updater";
    fs::create_directories(updater_);
    config_.updater_dir = updater_;
    OpenStore();
  }
  void OpenStore() {
    stack_.pipeline->SetSelfUpdate({});
    stack_.updater_store.reset();
    auto opened = OpenUpdaterStore(config_, *stack_.audit);
    ASSERT_TRUE(opened) << opened.error().message;
    ASSERT_TRUE(opened->store.has_value()) << opened->note;
    note_ = opened->note;
    stack_.updater_store.emplace(std::move(*opened->store));
    stack_.EnableSelfUpdate();
  }
  static std::string Manifest(const std::string& version, const std::string& kind = "updater",
                              const std::string& arch = HostArch(), int protocol = 1) {
    nlohmann::json m = {{"format", 1}, {"version", version}, {"kind", kind}};
    if (!arch.empty()) m["arch"] = arch;
    if (kind == "updater") m["helper_protocol"] = protocol;
    return m.dump();
  }
  // An updater build: its manifest and bin/decnet-updaterd (a script answering --version).
  Tarball PackBuild(const std::string& manifest,
                    const std::string& binary = "#!/bin/sh\necho decnet-updaterd test\n") {
    std::string tree = dirs_.root() + "/build-" + std::to_string(++packed_);
    fs::create_directories(tree + "/bin");
    if (!binary.empty()) {
      std::ofstream(tree + "/bin/decnet-updaterd") << binary;
      fs::permissions(tree + "/bin/decnet-updaterd", fs::perms(0755));
    }
    if (!manifest.empty()) std::ofstream(tree + "/.decnet-release.json") << manifest;
    return test::PackTree(tree);
  }
  ApiAnswer PushSelf(const Tarball& t, std::function<void()>* after = nullptr) {
    std::function<void()> ignored;
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    ApiAnswer a = stack_.pipeline->UpdateSelf(
        {"fp", "decnet-master"}, {fd, t.size, t.sha256, std::nullopt}, after ? after : &ignored);
    ::close(fd);
    return a;
  }
  std::string UpdaterCurrent() const {
    std::error_code ec;
    return fs::read_symlink(updater_ + "/current", ec).string();
  }
  std::set<std::string> UpdaterReleases() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(updater_ + "/releases"))
      out.insert(e.path().filename().string());
    return out;
  }
  void ExpectRefused(const Tarball& t, const std::string& rule) {
    const std::string before = UpdaterCurrent();
    const auto releases = UpdaterReleases();
    ApiAnswer a = PushSelf(t);
    EXPECT_EQ(a.status, 500u) << a.body.dump();
    EXPECT_EQ(a.body["detail"]["rule"], rule) << a.body.dump();
    EXPECT_FALSE(a.body["detail"]["error"].get<std::string>().empty());
    EXPECT_EQ(UpdaterCurrent(), before) << "nothing was switched";
    EXPECT_EQ(UpdaterReleases(), releases) << "no incomplete build was left";
  }

  std::string updater_;
  std::string note_;
};

TEST_F(AnUpdateSelf, InstallsABuildFlipsItsCurrentAndRestartsTheUnitOnlyAfterTheReply) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-updater.service", test::kUpdaterUnit));
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  const std::string service_current = Current();
  Tarball build = PackBuild(Manifest("2.0.0"));
  std::function<void()> after;
  EXPECT_CALL(systemd(), RestartUnit(_, _)).Times(0);
  ApiAnswer a = PushSelf(build, &after);
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(a.body, (nlohmann::json{{"status", "self_update_queued"}, {"via", "systemd"}}));
  const std::string id = build.sha256.substr(0, 16);
  EXPECT_EQ(UpdaterCurrent(), "releases/" + id);
  EXPECT_TRUE(fs::exists(updater_ + "/releases/" + id + "/.decnet-complete"));
  EXPECT_FALSE(stack_.updater_store->Pending().has_value()) << "committed before the restart";
  EXPECT_EQ(Current(), service_current) << "the suite's release is not touched";
  ::testing::Mock::VerifyAndClearExpectations(&systemd());

  ASSERT_TRUE(after) << "the restart is handed to the API to run after the reply";
  EXPECT_CALL(systemd(), RestartUnit(UnitName::Parse("decnet-updater.service").value(), _))
      .WillOnce(Return(helper::JobOutcome{"done"}));
  after();
  auto lines = stack_.audit->Tail(10);
  ASSERT_TRUE(lines);
  auto last = nlohmann::json::parse(lines->back());
  EXPECT_EQ(last["op"], "update-self");
  EXPECT_EQ(last["result"], "queued");
  EXPECT_EQ(last["version"], "2.0.0");
  EXPECT_EQ(last["release"], id);
}

TEST_F(AnUpdateSelf, NamesTheRunningBuildByItsStoreIdAndManifestVersionOnly) {
  Tarball build = PackBuild(Manifest("2.0.0"));
  ASSERT_EQ(PushSelf(build).status, 200u);
  const std::string id = build.sha256.substr(0, 16);
  const std::string releases = fs::canonical(updater_ + "/releases").string();
  const ReleaseStore* store = &*stack_.updater_store;

  auto found = FindRunningBuild(releases + "/" + id + "/bin/decnet-updaterd", store, "0.1.0");
  EXPECT_EQ(found.version, "2.0.0");
  EXPECT_EQ(found.id, id);

  struct Row {
    const char* why;
    std::string exe;
    const ReleaseStore* store;
  };
  const Row rows[] = {
      {"installed elsewhere", "/usr/bin/decnet-updaterd", store},
      {"no store", releases + "/" + id + "/bin/decnet-updaterd", nullptr},
      {"no executable path", "", store},
      {"a sibling of releases/", releases + "-old/" + id + "/bin/decnet-updaterd", store},
      {"not a release id", releases + "/not-an-id/bin/decnet-updaterd", store},
      {"releases/ itself", releases + "/decnet-updaterd", store},
      {"another store's releases/", updater_ + "x/releases/" + id + "/bin/decnet-updaterd", store},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.why);
    auto b = FindRunningBuild(row.exe, row.store, "0.1.0");
    EXPECT_EQ(b.version, "0.1.0");
    EXPECT_FALSE(b.id.has_value()) << *b.id;
  }
  // A directory the store does not record keeps its id; its version is the compiled one.
  auto unrecorded =
      FindRunningBuild(releases + "/fedcba9876543210/bin/decnet-updaterd", store, "0.1.0");
  EXPECT_EQ(unrecorded.id, "fedcba9876543210");
  EXPECT_EQ(unrecorded.version, "0.1.0");
}

TEST_F(AnUpdateSelf, RefusesADecnetTreeWithoutAManifestSayingWhy) {
  Tarball t = PackBuild("");
  ExpectRefused(t, "update-self-manifest");
  ApiAnswer a = PushSelf(t);
  EXPECT_NE(a.body["detail"]["error"].get<std::string>().find("DECNET master"), std::string::npos)
      << a.body.dump();
}

TEST_F(AnUpdateSelf, RefusesAReleaseOfTheSuite) {
  ExpectRefused(PackBuild(Manifest("2.0.0", "service", "")), "update-self-kind");
}

TEST_F(AnUpdateSelf, RefusesABuildForAnotherArchitecture) {
  ExpectRefused(PackBuild(Manifest("2.0.0", "updater", HostArch() == "s390x" ? "x86_64" : "s390x")),
                "update-self-arch");
}

TEST_F(AnUpdateSelf, RefusesABuildThatSpeaksAnotherHelperProtocol) {
  ExpectRefused(PackBuild(Manifest("2.0.0", "updater", HostArch(), proto::kProtocolVersion + 1)),
                "update-self-helper-protocol");
}

TEST_F(AnUpdateSelf, RefusesABuildWithoutItsBinary) {
  ExpectRefused(PackBuild(Manifest("2.0.0"), ""), "update-self-binary");
}

TEST_F(AnUpdateSelf, RefusesABuildWhoseBinaryDoesNotRunHere) {
  ExpectRefused(PackBuild(Manifest("2.0.0"), "#!/bin/sh\necho 'wrong libc' >&2\nexit 127\n"),
                "update-self-smoke");
}

TEST_F(AnUpdateSelf, RefusesEverythingWhenNoStoreIsConfigured) {
  SelfUpdateTarget none;
  none.unavailable_why = "update-self unavailable: /nowhere does not exist";
  stack_.pipeline->SetSelfUpdate(none);
  ApiAnswer a = PushSelf(PackBuild(Manifest("2.0.0")));
  EXPECT_EQ(a.status, 500u);
  EXPECT_EQ(a.body["detail"]["rule"], "update-self-unavailable");
}

TEST_F(AnUpdateSelf, RecordsTheHelpersReturnToThePreviousBuildAtStartUp) {
  Tarball first = PackBuild(Manifest("1.0.0"));
  Tarball second = PackBuild(Manifest("2.0.0"));
  ASSERT_EQ(PushSelf(first).status, 200u);
  ASSERT_EQ(PushSelf(second).status, 200u);
  const std::string old_id = first.sha256.substr(0, 16), new_id = second.sha256.substr(0, 16);
  // The helper flips current back at its start-up (helper/self_update.cc), as root.
  fs::remove(updater_ + "/current");
  fs::create_directory_symlink("releases/" + old_id, updater_ + "/current");

  OpenStore();  // the daemon's start-up
  EXPECT_EQ(UpdaterCurrent(), "releases/" + old_id) << "recovery must not undo the helper's flip";
  ASSERT_TRUE(stack_.updater_store->Active());
  EXPECT_EQ(stack_.updater_store->Active()->str(), old_id);
  ASSERT_EQ(stack_.updater_store->Failed().size(), 1u);
  EXPECT_EQ(stack_.updater_store->Failed()[0].id.str(), new_id);
  EXPECT_NE(note_.find(new_id), std::string::npos) << note_;
  auto last = nlohmann::json::parse(stack_.audit->Tail(1)->back());
  EXPECT_EQ(last["op"], "update-self");
  EXPECT_EQ(last["result"], "reverted");
  EXPECT_EQ(last["release"], new_id);
}

#ifdef DECNET_DAEMON_BINARY
TEST_F(AnUpdateSelf, AcceptsThisProjectsOwnDaemonBinary) {
  std::ifstream in(DECNET_DAEMON_BINARY, std::ios::binary);
  std::string binary((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(binary.empty());
  ApiAnswer a = PushSelf(PackBuild(Manifest("2.0.0"), binary));
  EXPECT_EQ(a.status, 200u) << a.body.dump();
}
#endif

}  // namespace
}  // namespace decnet::daemon
