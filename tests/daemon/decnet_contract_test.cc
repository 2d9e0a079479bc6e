// DECNET's contract and its defects (docs/decnet-compat.md), where no other test
// pinned them: the real update pipeline, release store and extractor, the helper's real serve
// loop writing real unit files and links, systemd mocked (every call recorded), a scripted
// health gate. With the HTTP build, the digest rules also run through the real mTLS server and
// API in front of the real pipeline, curl as DECNET's master. docs/decnet-compat.md maps every
// item to its tests, these and the others.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>

#include "daemon/extract.h"
#include "daemon/self_update.h"
#include "daemon/update_pipeline.h"
#include "helper/serve.h"
#include "policy/unit_policy.h"
#include "proto/sha256.h"
#include "tests/daemon/served_stack.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

#ifdef DECNET_CONTRACT_HTTP
#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/tls.h"
#include "tests/daemon/test_pki.h"
#endif

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::_;

std::string Unit(const std::string& what) {
  return "[Unit]\nDescription=" + what +
         "\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
         "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Sh(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  ::pclose(pipe);
  return out;
}

// Gate verdicts, one per call, in order; healthy when the script runs out.
class ScriptedGate : public HealthGate {
 public:
  GateVerdict Check(const std::map<UnitName, uint32_t>&, const std::string&,
                    std::chrono::steady_clock::time_point) override {
    ++calls;
    if (script.empty()) return {true, "{\"status\":\"ok\"}", "", ""};
    GateVerdict v = script.front();
    script.pop_front();
    return v;
  }
  std::deque<GateVerdict> script;
  int calls = 0;
};

struct Tarball {
  std::string path, sha256;
  uint64_t size = 0;
};

class ADecnetContract : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = dirs_.root() + "/opt/decnet";
    fs::create_directories(install_);
    config_.install_dir = install_;
    config_.units = {"decnet-agent.service", "decnet-forwarder.service"};
    config_.links = {{"decnet", "venv/bin/decnet"}};
    dirs_.policy().links = {{"decnet", install_ + "/current"}};
    ASSERT_NO_FATAL_FAILURE(stack_.Open(dirs_, config_, {.client = "contract"}));
    auto& systemd_ = stack_.helper->systemd();
    ON_CALL(systemd_, Reload()).WillByDefault([this]() -> Result<void> {
      Record("reload");
      if (fail_reload_once_.exchange(false))
        return Fail(ErrorCode::kFailed, "dbus", "Reload: bus error");
      return {};
    });
    ON_CALL(systemd_, RestartUnit(_, _))
        .WillByDefault(
            [this](const UnitName& u, std::chrono::milliseconds) -> Result<helper::JobOutcome> {
              Record("restart " + u.str());
              if (u.str() == "decnet-agent.service" && fail_restart_once_.exchange(false))
                return Fail(ErrorCode::kFailed, "dbus", "RestartUnit: connection reset");
              std::lock_guard lock(mu_);
              return helper::JobOutcome{failed_jobs_.contains(u.str()) ? "failed" : "done"};
            });
    ON_CALL(systemd_, StopUnit(_, _))
        .WillByDefault(
            [this](const UnitName& u, std::chrono::milliseconds) -> Result<helper::JobOutcome> {
              Record("stop " + u.str());
              return helper::JobOutcome{"done"};
            });
    ON_CALL(systemd_, GetUnitState(_))
        .WillByDefault([this](const UnitName& u) -> Result<proto::UnitState> {
          std::lock_guard lock(mu_);
          if (not_installed_.contains(u.str()))
            return proto::UnitState{"not-found", "inactive", "dead", 0, 0};
          return proto::UnitState{"loaded", "active", "running", 42, 0};
        });
  }
  void TearDown() override { stack_.Close(); }

  void Record(const std::string& event) {
    std::lock_guard lock(mu_);
    events_.push_back(event);
  }
  // Recorded systemd calls equal to `event` since the last Take().
  int Count(const std::string& event) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count(events_.begin(), events_.end(), event));
  }
  std::vector<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(events_, {});
  }

  // A release tree: VERSION, the link target (a script printing the version), and units.
  Tarball Pack(const std::string& version, const std::map<std::string, std::string>& units) {
    std::string tree = dirs_.root() + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/venv/bin");
    std::ofstream(tree + "/VERSION") << version;
    std::ofstream(tree + "/venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    if (!units.empty()) fs::create_directories(tree + "/etc/systemd/system");
    for (const auto& [name, content] : units)
      std::ofstream(tree + "/etc/systemd/system/" + name) << content;
    Tarball t{tree + ".tar.gz", "", 0};
    EXPECT_EQ(std::system(("tar -C " + tree + " -czf " + t.path + " .").c_str()), 0);
    std::string bytes = ReadFile(t.path);
    t.sha256 = Sha256Hex(bytes);
    t.size = bytes.size();
    return t;
  }
  ApiAnswer Push(const Tarball& t) {
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    ApiAnswer a =
        stack_.pipeline->Update({"fp", "decnet-master"}, {fd, t.size, t.sha256, std::nullopt});
    ::close(fd);
    return a;
  }
  std::string CurrentVersion() { return ReadFile(install_ + "/current/VERSION"); }
  std::string InstalledUnit(const std::string& name) {
    return ReadFile(dirs_.units() + "/" + name);
  }
  bool UnitInstalled(const std::string& name) { return fs::exists(dirs_.units() + "/" + name); }
  // A worker as DECNET's installer leaves it: the agent's unit in the unit directory, root's,
  // not written by the helper. For tests whose releases ship no units, as a master's do not.
  ::testing::AssertionResult OperatorInstalledAgent() {
    return test::InstallOperatorUnit(dirs_, "decnet-agent.service", Unit("agent"));
  }
  std::set<std::string> ReleaseDirs() {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(install_ + "/releases"))
      out.insert(e.path().filename());
    return out;
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
  std::mutex mu_;
  std::vector<std::string> events_;
  std::set<std::string> not_installed_, failed_jobs_;
  std::atomic<bool> fail_reload_once_{false}, fail_restart_once_{false};
  test::ServedStack<ScriptedGate> stack_;
  int packed_ = 0;
};

// --- §3: the behaviour DECNET's own tests pin down ------------------------------------------

TEST_F(ADecnetContract, ReloadsExactlyOnceWhenUnitsChangeAndNeverWhenTheyDoNot) {
  const std::map<std::string, std::string> v1 = {{"decnet-agent.service", Unit("agent v1")},
                                                 {"decnet-forwarder.service", Unit("forwarder")}};
  ASSERT_EQ(Push(Pack("1.0", v1)).status, 200u);
  EXPECT_EQ(Count("reload"), 1) << "two new units, one daemon-reload";
  Take();

  ASSERT_EQ(Push(Pack("2.0", v1)).status, 200u);
  EXPECT_EQ(CurrentVersion(), "2.0");
  EXPECT_EQ(Count("reload"), 0) << "the same units again: no daemon-reload";
  EXPECT_EQ(Count("restart decnet-agent.service"), 1)
      << "the services still restart on the new code";
  Take();

  auto v3 = v1;
  v3["decnet-agent.service"] = Unit("agent v3");
  ASSERT_EQ(Push(Pack("3.0", v3)).status, 200u);
  EXPECT_EQ(Count("reload"), 1) << "one changed unit, one daemon-reload";
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v3"));
  EXPECT_EQ(InstalledUnit("decnet-forwarder.service"), Unit("forwarder"));
}

TEST_F(ADecnetContract, UpdatesWhenAnOptionalUnitIsNotInstalledOrDoesNotRestart) {
  {
    std::lock_guard lock(mu_);
    not_installed_ = {"decnet-forwarder.service"};  // no forwarder on this host
  }
  auto a = Push(Pack("1.0", {{"decnet-agent.service", Unit("agent")}}));
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(Count("restart decnet-agent.service"), 1);
  EXPECT_EQ(Count("restart decnet-forwarder.service"), 0)
      << "a unit that is not there is not restarted";

  // The unit's state still reads "loaded", but by the restart nothing of it is loaded (its
  // file is gone): the helper refuses the restart (unit-loaded-state) before systemd is asked,
  // and a refused optional unit is reported, not fatal.
  {
    std::lock_guard lock(mu_);
    not_installed_.clear();
  }
  ASSERT_FALSE(UnitInstalled("decnet-forwarder.service"));
  auto& systemd = stack_.helper->systemd();
  EXPECT_CALL(systemd, GetLoadedView(_)).Times(::testing::AnyNumber());
  EXPECT_CALL(systemd, GetLoadedView(*UnitName::Parse("decnet-forwarder.service")))
      .Times(::testing::AtLeast(1));
  Take();
  a = Push(Pack("1.1", {{"decnet-agent.service", Unit("agent")}}));
  ASSERT_EQ(a.status, 200u) << "a refused best-effort unit cannot fail the update: "
                            << a.body.dump();
  EXPECT_EQ(Count("restart decnet-agent.service"), 1);
  EXPECT_EQ(Count("restart decnet-forwarder.service"), 0)
      << "the helper let a not-found unit through";
  EXPECT_EQ(CurrentVersion(), "1.1");
  ::testing::Mock::VerifyAndClearExpectations(&systemd);

  // DECNET's installer put the forwarder in place, but its restart fails.
  ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-forwarder.service", Unit("forwarder")));
  {
    std::lock_guard lock(mu_);
    failed_jobs_ = {"decnet-forwarder.service"};
  }
  Take();
  a = Push(Pack("2.0", {{"decnet-agent.service", Unit("agent")}}));
  ASSERT_EQ(a.status, 200u) << "a best-effort unit cannot fail the update: " << a.body.dump();
  EXPECT_EQ(Count("restart decnet-forwarder.service"), 1);
  EXPECT_EQ(CurrentVersion(), "2.0");
}

TEST_F(ADecnetContract, CarriesBothProbesWhenItRollsBackAndSays500WhenTheOldReleaseFailsToo) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  stack_.gate.script = {
      GateVerdict{false, "new-probe: 503 starting", "agent answered 503", "gate-probe"},
      GateVerdict{true, "old-probe: {\"status\":\"ok\"}", "", ""}};
  auto a = Push(Pack("2.0", {}));
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], true);
  const std::string both = a.body["detail"]["stderr"];
  EXPECT_NE(both.find("new-probe: 503 starting"), std::string::npos) << both;
  EXPECT_NE(both.find("old-probe: {\"status\":\"ok\"}"), std::string::npos) << both;
  EXPECT_EQ(CurrentVersion(), "1.0");

  stack_.gate.script = {
      GateVerdict{false, "new-probe: down", "agent never answered", "gate-probe"},
      GateVerdict{false, "old-probe: down too", "agent never answered", "gate-probe"}};
  a = Push(Pack("3.0", {}));
  ASSERT_EQ(a.status, 500u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], false);
  EXPECT_NE(a.body["detail"]["stderr"].get<std::string>().find("old-probe: down too"),
            std::string::npos);
  EXPECT_EQ(CurrentVersion(), "1.0")
      << "the old code is active even when it does not prove healthy";
}

// --- §4: DECNET's defects -------------------------------------------------------------------

// Defect 1: DECNET installs every release into one shared environment, so a rollback renames
// directories but keeps the newer build. Here the install command builds inside the release.
TEST_F(ADecnetContract, RollsBackToTheOldCodeExactlyIncludingWhatTheInstallCommandBuilt) {
  config_.install_command = {"/bin/sh", "-c",
                             "mkdir -p venv/lib && echo built $(cat VERSION) > venv/lib/artefact"};
  const std::string built = install_ + "/current/venv/lib/artefact";
  const std::string linked = dirs_.root() + "/bin/decnet";  // the PATH link
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  ASSERT_EQ(ReadFile(built), "built 1.0\n");

  stack_.gate.script = {GateVerdict{false, "503", "agent answered 503", "gate-probe"}};
  ASSERT_EQ(Push(Pack("2.0", {})).status, 409u);
  EXPECT_EQ(ReadFile(built), "built 1.0\n") << "the failed release's build leaked into the old one";
  EXPECT_EQ(ReadFile(linked), "#!/bin/sh\necho 1.0\n");

  auto t3 = Pack("3.0", {});
  ASSERT_EQ(Push(t3).status, 200u);
  ASSERT_EQ(ReadFile(built), "built 3.0\n");
  ASSERT_EQ(ReadFile(linked), "#!/bin/sh\necho 3.0\n");
  ApiAnswer back = stack_.pipeline->Rollback({"fp", "decnet-master"});
  ASSERT_EQ(back.status, 200u) << back.body.dump();
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_EQ(ReadFile(built), "built 1.0\n") << "a manual rollback must run the old build";
  EXPECT_EQ(ReadFile(linked), "#!/bin/sh\necho 1.0\n");
  EXPECT_EQ(ReadFile(install_ + "/releases/" + t3.sha256.substr(0, 16) + "/venv/lib/artefact"),
            "built 3.0\n")
      << "each release keeps its own build";
}

// Defect 3: DECNET's unit sync writes any name, never removes, never reverts.
TEST_F(ADecnetContract, RefusesAReleaseShippingAUnitOutsideTheAllowListBeforeSwitching) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", Unit("agent v1")}})).status, 200u);
  const auto releases = ReleaseDirs();
  Take();
  auto a = Push(
      Pack("2.0", {{"decnet-agent.service", Unit("agent v2")}, {"ssh.service", Unit("not ours")}}));
  ASSERT_EQ(a.status, 500u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], false);
  EXPECT_EQ(a.body["detail"]["rule"], "unit-name-allowlist") << a.body.dump();
  EXPECT_FALSE(UnitInstalled("ssh.service"));
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1")) << "nothing was switched";
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_EQ(ReleaseDirs(), releases) << "the refused release was left behind";
  EXPECT_TRUE(Take().empty()) << "systemd was asked something for a refused release";
}

TEST_F(ADecnetContract, RemovesUnitsTheNewReleaseDropsAndPutsThemBackOnEitherRollback) {
  const std::map<std::string, std::string> v1 = {
      {"decnet-agent.service", Unit("agent v1")},
      {"decnet-forwarder.service", Unit("forwarder v1")}};
  const std::map<std::string, std::string> v2 = {{"decnet-agent.service", Unit("agent v2")}};
  ASSERT_EQ(Push(Pack("1.0", v1)).status, 200u);

  // Automatic rollback: the failed release changed one unit and dropped the other.
  Take();
  stack_.gate.script = {GateVerdict{false, "503", "agent answered 503", "gate-probe"}};
  ASSERT_EQ(Push(Pack("2.0", v2)).status, 409u);
  EXPECT_EQ(Count("stop decnet-forwarder.service"), 1)
      << "the dropped unit is stopped before removal";
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1"));
  EXPECT_EQ(InstalledUnit("decnet-forwarder.service"), Unit("forwarder v1"));

  // A healthy release drops the unit for good.
  ASSERT_EQ(Push(Pack("3.0", v2)).status, 200u);
  EXPECT_FALSE(UnitInstalled("decnet-forwarder.service")) << "a stale unit stayed installed";
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v2"));

  // Manual rollback: the old units come back exactly.
  ASSERT_EQ(ApiAnswer(stack_.pipeline->Rollback({"fp", "decnet-master"})).status, 200u);
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1"));
  EXPECT_EQ(InstalledUnit("decnet-forwarder.service"), Unit("forwarder v1"));
}

// Defect 5: failures outside DECNET's own error type skipped its rollback.
TEST_F(ADecnetContract, RollsBackWhenSystemdFailsOutsideTheHealthGate) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", Unit("agent v1")}})).status, 200u);
  const int gate_calls = stack_.gate.calls;

  fail_reload_once_ = true;  // the daemon-reload itself errors (D-Bus), not a unit
  auto a = Push(Pack("2.0", {{"decnet-agent.service", Unit("agent v2")}}));
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], true);
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1"));
  EXPECT_EQ(stack_.gate.calls, gate_calls + 1)
      << "only the old release is gated; the new one never got that far";

  fail_restart_once_ = true;  // the restart call errors instead of reporting a failed job
  a = Push(Pack("3.0", {{"decnet-agent.service", Unit("agent v3")}}));
  ASSERT_EQ(a.status, 409u) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rolled_back"], true);
  EXPECT_NE(a.body["detail"]["error"].get<std::string>().find("connection reset"),
            std::string::npos)
      << a.body.dump();
  EXPECT_EQ(CurrentVersion(), "1.0");
  EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1"));
  int failed = 0;
  for (const auto& r : stack_.pipeline->Releases()) failed += r["state"] == "failed";
  EXPECT_EQ(failed, 2) << "both releases are recorded as failed";
}

// Defect 6: DECNET keeps the archive's owner and world-writable modes.
TEST_F(ADecnetContract, IgnoresTheArchivesOwnerAndWorldWritableModes) {
  const std::string tree = dirs_.root() + "/owned";
  fs::create_directories(tree + "/lib");
  std::ofstream(tree + "/lib/module.py") << "x = 1\n";
  std::ofstream(tree + "/run") << "#!/bin/sh\n";
  fs::permissions(tree + "/run", fs::perms(0755));
  const std::string tarball = dirs_.root() + "/owned.tar.gz";
  ASSERT_EQ(std::system(("tar --owner=4242 --group=4243 --numeric-owner --mode=a+w -C " + tree +
                         " -czf " + tarball + " .")
                            .c_str()),
            0);
  const std::string listing = Sh("tar -tvzf " + tarball);
  ASSERT_NE(listing.find("4242/4243"), std::string::npos) << listing;
  ASSERT_NE(listing.find("rw-rw-rw-"), std::string::npos) << listing;

  const std::string dest = dirs_.root() + "/dest";
  fs::create_directories(dest);
  int in = ::open(tarball.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto stats = ExtractRelease(in, out, ExtractLimits{});
  ::close(in);
  ::close(out);
  ASSERT_TRUE(stats) << stats.error().message;
  int seen = 0;
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    struct stat st {};
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, ::geteuid()) << e.path();
    EXPECT_EQ(st.st_gid, ::getegid()) << e.path();
    EXPECT_EQ(st.st_mode & 07022, 0u) << e.path() << " mode " << std::oct << (st.st_mode & 07777);
    ++seen;
  }
  EXPECT_EQ(seen, 3);
  struct stat run {};
  ASSERT_EQ(::stat((dest + "/run").c_str(), &run), 0);
  EXPECT_EQ(run.st_mode & 07777, 0755u) << "the executable bit survives normalisation";
}

// Defect 8 (the part that is code): the digest of every push is recorded.
TEST_F(ADecnetContract, RecordsEachPushsDigestInTheStoreAndTheAuditLog) {
  ASSERT_TRUE(OperatorInstalledAgent());
  auto t = Pack("1.0", {});
  ASSERT_EQ(Push(t).status, 200u);
  auto releases = stack_.pipeline->Releases();
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0]["sha256"], t.sha256);
  auto lines = stack_.audit->Tail(1);
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines->back())["sha256"], t.sha256);
}

// Defect 11: DECNET's update-self repoints the PATH link into the updater's environment. Here
// the daemon's own builds live in their own store; the suite's link and release stay put.
TEST_F(ADecnetContract, UpdatesItselfWithoutTouchingTheSuitesPathLinkOrRelease) {
  ASSERT_TRUE(OperatorInstalledAgent());
  ASSERT_EQ(Push(Pack("1.0", {})).status, 200u);
  const std::string link = dirs_.root() + "/bin/decnet";
  const std::string link_before = fs::read_symlink(link).string();
  const std::string current_before = fs::read_symlink(install_ + "/current").string();

  // The updater's own unit, installed with the updater (it runs the helper as root by design).
  ASSERT_TRUE(test::InstallOperatorUnit(
      dirs_, "decnet-updater.service",
      "[Unit]\nDescription=DECNET release updater\n[Service]\nType=notify\n"
      "ExecStart=/usr/libexec/decnet-updater/decnet-update-helper\n"));
  const std::string updater = dirs_.root() + "/opt/decnet-updater/updater";
  fs::create_directories(updater);
  config_.updater_dir = updater;
  auto opened = OpenUpdaterStore(config_, *stack_.audit);
  ASSERT_TRUE(opened) << opened.error().message;
  ASSERT_TRUE(opened->store) << opened->note;
  std::optional<ReleaseStore> updater_store(std::move(*opened->store));
  SelfUpdateTarget target;
  target.store = &*updater_store;
  target.helper_protocol = proto::kProtocolVersion;
  target.arch = HostArch();
  stack_.pipeline->SetSelfUpdate(target);

  const std::string tree = dirs_.root() + "/build";
  fs::create_directories(tree + "/bin");
  std::ofstream(tree + "/bin/decnet-updaterd") << "#!/bin/sh\necho decnet-updaterd 2.0.0\n";
  fs::permissions(tree + "/bin/decnet-updaterd", fs::perms(0755));
  std::ofstream(tree + "/.decnet-release.json") << nlohmann::json{
      {"format", 1},
      {"version", "2.0.0"},
      {"kind", "updater"},
      {"arch", HostArch()},
      {"helper_protocol", proto::kProtocolVersion}}.dump();
  const std::string tarball = tree + ".tar.gz";
  ASSERT_EQ(std::system(("tar -C " + tree + " -czf " + tarball + " .").c_str()), 0);
  const std::string bytes = ReadFile(tarball);
  Take();
  std::function<void()> after_reply;
  int fd = ::open(tarball.c_str(), O_RDONLY | O_CLOEXEC);
  ApiAnswer a = stack_.pipeline->UpdateSelf(
      {"fp", "decnet-master"}, {fd, bytes.size(), Sha256Hex(bytes), std::nullopt}, &after_reply);
  ::close(fd);
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(fs::read_symlink(updater + "/current").string(),
            "releases/" + Sha256Hex(bytes).substr(0, 16));
  EXPECT_EQ(fs::read_symlink(link).string(), link_before) << "update-self moved the PATH link";
  EXPECT_EQ(ReadFile(link), "#!/bin/sh\necho 1.0\n");
  EXPECT_EQ(fs::read_symlink(install_ + "/current").string(), current_before);
  EXPECT_TRUE(Take().empty()) << "systemd was reached before the reply";
  ASSERT_TRUE(after_reply);
  after_reply();
  EXPECT_EQ(Count("restart decnet-updater.service"), 1) << "the restart follows the reply";
  stack_.pipeline->SetSelfUpdate({});
}

// Defect 12: DECNET's polkit rule `^decnet-[a-z]+\.service$` misses a second hyphen.
TEST_F(ADecnetContract, InstallsAndRestartsAUnitWhoseNameHasASecondHyphen) {
  auto name = UnitName::Parse("decnet-fleet-heavy.service");
  ASSERT_TRUE(name);
  EXPECT_TRUE(helper::CheckUnitName(helper::Policy::Defaults(), *name, helper::UnitUse::kWrite));
  EXPECT_TRUE(helper::CheckUnitName(helper::Policy::Defaults(), *name, helper::UnitUse::kRestart));

  config_.units = {"decnet-agent.service", "decnet-fleet-heavy.service"};
  auto a = Push(Pack("1.0", {{"decnet-agent.service", Unit("agent")},
                             {"decnet-fleet-heavy.service", Unit("fleet heavy")}}));
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(InstalledUnit("decnet-fleet-heavy.service"), Unit("fleet heavy"));
  EXPECT_EQ(Count("restart decnet-fleet-heavy.service"), 1);
}

#ifdef DECNET_CONTRACT_HTTP
// §3: the digest is mandatory and checked before anything else. Through the real server and
// API in front of the real pipeline: every bad digest is refused, and no release directory,
// spool file, unit or systemd call is left behind.
TEST_F(ADecnetContract, RefusesEachMissingBlankMalformedOrMismatchingDigestLeavingNothingStaged) {
  ASSERT_EQ(Push(Pack("1.0", {{"decnet-agent.service", Unit("agent v1")}})).status, 200u);
  const test::UpdaterPki pki;
  const ApiOptions options = test::TestApiOptions(dirs_);
  const std::string spool = options.spool_dir;
  test::ServedFront front;
  ASSERT_NO_FATAL_FAILURE(front.Start(*stack_.pipeline, options, pki));

  auto t2 = Pack("2.0", {{"decnet-agent.service", Unit("agent v2")}});
  auto push = [&](const std::string& digest_args) {
    std::string out =
        Sh("curl -sS --max-time 60 " + pki.CurlAsMaster() + " -w '\\n@@%{http_code}' -F tarball=@" +
           t2.path + " " + digest_args + " " + front.Url() + "/update 2>/dev/null");
    size_t at = out.rfind("\n@@");
    return at == std::string::npos ? std::make_pair(std::string("none"), out)
                                   : std::make_pair(out.substr(at + 3), out.substr(0, at));
  };
  const auto releases = ReleaseDirs();
  const std::string hex_upper = [&] {
    std::string s = t2.sha256;
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }();
  Take();
  for (const std::string& args :
       {std::string(""), std::string("--form-string sha256="),
        std::string("--form-string 'sha256=   '"), "--form-string 'sha256= " + t2.sha256 + "'",
        "--form-string sha256=" + t2.sha256.substr(0, 63),
        "--form-string sha256=" + t2.sha256 + "0", "--form-string sha256=" + std::string(64, 'z'),
        "--form-string sha256=" + std::string(64, 'b')}) {
    SCOPED_TRACE(args);
    auto [status, body] = push(args);
    EXPECT_EQ(status, "400") << body;
    auto json = nlohmann::json::parse(body, nullptr, false);
    ASSERT_TRUE(json.is_object()) << body;
    if (json["detail"].is_object())
      EXPECT_EQ(json["detail"]["rolled_back"], false) << body;
    else
      EXPECT_EQ(json["detail"], "sha256 of the tarball is required") << body;
    EXPECT_EQ(ReleaseDirs(), releases) << "a release was staged";
    EXPECT_TRUE(fs::is_empty(spool)) << "the spool kept the refused upload";
    EXPECT_EQ(CurrentVersion(), "1.0");
    EXPECT_EQ(InstalledUnit("decnet-agent.service"), Unit("agent v1"));
  }
  EXPECT_TRUE(Take().empty()) << "systemd was reached for a refused digest";
  auto [status, body] = push("--form-string sha256=" + hex_upper);
  EXPECT_EQ(status, "200") << "the same tarball with its digest goes through: " << body;
  EXPECT_EQ(CurrentVersion(), "2.0");
  front.Stop();
}
#endif

}  // namespace
}  // namespace decnet::daemon
