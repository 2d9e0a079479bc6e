#include "helper/handlers.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"
#include "tests/support/param_name.h"

namespace decnet::helper {
namespace {

using ::testing::_;
using ::testing::Return;
using ::testing::StrictMock;

constexpr char kGoodUnit[] =
    "[Unit]\nDescription=demo\n\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n";

class AServingSession : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = OpenHelperDirs(dirs_.policy());
    ASSERT_TRUE(opened) << opened.error().message;
    helper_dirs_ = *opened;
    auto units = UnitRecord::Load(helper_dirs_.state_dir);
    ASSERT_TRUE(units);
    units_.emplace(std::move(*units));
    session_.emplace(
        Session{dirs_.policy(), helper_dirs_, systemd_, *units_, "digest", Phase::kServing, {}});
  }
  void TearDown() override {
    for (int fd : {helper_dirs_.unit_dir, helper_dirs_.link_dir, helper_dirs_.state_dir})
      ::close(fd);
  }
  static UnitName Unit(const char* n) { return *UnitName::Parse(n); }
  Result<proto::ReplyBody> Write(const char* name, std::string content) {
    return HandleWriteUnit(*session_, proto::WriteUnitRequest{Unit(name), std::move(content)});
  }
  std::string UnitPath(const char* name) { return dirs_.units() + "/" + name; }
  LoadedView CleanView(const char* name) {
    return test::CleanLoadedView(dirs_.policy(), Unit(name));
  }

  test::TestDirs dirs_;
  HelperDirs helper_dirs_;
  StrictMock<test::MockSystemd> systemd_;
  std::optional<UnitRecord> units_;
  std::optional<Session> session_;
};

TEST_F(AServingSession, WritesAnAcceptedUnitAndReportsWhetherItChanged) {
  auto first = Write("decnet-demo.service", kGoodUnit);
  ASSERT_TRUE(first) << first.error().rule << ": " << first.error().message;
  EXPECT_TRUE(std::get<proto::WriteUnitReply>(*first).changed);
  auto second = Write("decnet-demo.service", kGoodUnit);
  ASSERT_TRUE(second);
  EXPECT_FALSE(std::get<proto::WriteUnitReply>(*second).changed);
}

TEST_F(AServingSession, RefusesAUnitRunningAsRootNamingTheRule) {
  std::string root_unit = kGoodUnit;
  root_unit.replace(root_unit.find("User=decnet"), 11, "User=root");
  auto r = Write("decnet-demo.service", root_unit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_FALSE(r.error().rule.empty());
  EXPECT_FALSE(std::filesystem::exists(UnitPath("decnet-demo.service")));
}

TEST_F(AServingSession, NeverWritesTheUpdatersOwnUnit) {
  auto r = Write("decnet-updater.service", kGoodUnit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "unit-self");
}

TEST_F(AServingSession, LeavesAUnitFileItDidNotWriteAlone) {
  { std::ofstream(UnitPath("decnet-agent.service")) << "operator's own\n"; }
  auto r = Write("decnet-agent.service", kGoodUnit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "unit-not-ours");
  std::ifstream in(UnitPath("decnet-agent.service"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "operator's own\n");
}

TEST_F(AServingSession, AdoptsAFileOnlyWhenThePolicyListsIt) {
  { std::ofstream(UnitPath("decnet-agent.service")) << "old\n"; }
  dirs_.policy().adoptable_units.insert("decnet-agent.service");
  ASSERT_TRUE(Write("decnet-agent.service", kGoodUnit));
}

TEST_F(AServingSession, RefusesToReplaceAMask) {
  ASSERT_EQ(::symlink("/dev/null", UnitPath("decnet-agent.service").c_str()), 0);
  auto r = Write("decnet-agent.service", kGoodUnit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "unit-file-symlink");
}

TEST_F(AServingSession, RefusesToOverwriteAUnitChangedBehindItsBack) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  { std::ofstream(UnitPath("decnet-demo.service"), std::ios::app) << "# edited\n"; }
  auto r = Write("decnet-demo.service", kGoodUnit);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "unit-changed-outside");
}

TEST_F(AServingSession, StopsAUnitBeforeRemovingItsFile) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  EXPECT_CALL(systemd_, StopUnit(Unit("decnet-demo.service"), _))
      .WillOnce(Return(JobOutcome{"done"}));
  auto r = HandleRemoveUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_TRUE(r);
  EXPECT_TRUE(std::get<proto::RemoveUnitReply>(*r).removed);
  EXPECT_FALSE(std::filesystem::exists(UnitPath("decnet-demo.service")));
}

TEST_F(AServingSession, KeepsTheFileWhenTheStopFails) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  EXPECT_CALL(systemd_, StopUnit(_, _))
      .WillOnce(Return(tl::make_unexpected(Error{ErrorCode::kTimeout, "job-timeout", "slow"})));
  auto r = HandleRemoveUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(std::filesystem::exists(UnitPath("decnet-demo.service")));
}

TEST_F(AServingSession, RemovesNothingWhenThereIsNoFile) {
  auto r = HandleRemoveUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_TRUE(r);
  EXPECT_FALSE(std::get<proto::RemoveUnitReply>(*r).removed);
}

TEST_F(AServingSession, RefusesARestartOutsideTheAllowListWithoutReachingSystemd) {
  for (const char* name :
       {"ssh.service", "systemd-journald.service", "poweroff.target", "decnetagent.service"}) {
    auto r = HandleRestartUnit(*session_, {Unit(name)});
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kDenied) << name;
  }
  // StrictMock: any call to systemd_ would have failed the test.
}

TEST_F(AServingSession, RestartsAnAllowedUnitAndReportsTheJobAndState) {
  ASSERT_TRUE(Write("decnet-agent.service", kGoodUnit));
  proto::UnitState st{"loaded", "active", "running", 99, 0};
  {
    ::testing::InSequence in_order;  // the loaded view is read before the restart
    EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-agent.service")))
        .WillOnce(Return(CleanView("decnet-agent.service")));
    EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-agent.service"), _))
        .WillOnce(Return(JobOutcome{"done"}));
    EXPECT_CALL(systemd_, GetUnitState(Unit("decnet-agent.service"))).WillOnce(Return(st));
  }
  auto r = HandleRestartUnit(*session_, {Unit("decnet-agent.service")});
  ASSERT_TRUE(r) << r.error().rule << ": " << r.error().message;
  EXPECT_EQ(std::get<proto::RestartUnitReply>(*r).job_result, "done");
  EXPECT_EQ(std::get<proto::RestartUnitReply>(*r).unit, st);
}

TEST_F(AServingSession, MayRestartTheUpdatersOwnUnit) {
  { std::ofstream(UnitPath("decnet-updater.service")) << "[Service]\nExecStart=/bin/true\n"; }
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-updater.service")))
      .WillOnce(Return(CleanView("decnet-updater.service")));
  EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-updater.service"), _))
      .WillOnce(Return(JobOutcome{"done"}));
  EXPECT_CALL(systemd_, GetUnitState(_)).WillOnce(Return(proto::UnitState{}));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-updater.service")});
  EXPECT_TRUE(r) << r.error().rule << ": " << r.error().message;
}

TEST_F(AServingSession, AnswersThatItsOwnUnitIsStoppingWhenItsRestartStopsTheHelper) {
  // update-self: the job of the updater's own restart cannot finish while the helper lives;
  // the wait ends when the helper's stop arrives, and that is the restart under way.
  { std::ofstream(UnitPath("decnet-updater.service")) << "[Service]\nExecStart=/bin/true\n"; }
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-updater.service")))
      .WillOnce(Return(CleanView("decnet-updater.service")));
  EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-updater.service"), _))
      .WillOnce(Return(tl::make_unexpected(
          Error{ErrorCode::kFailed, kHelperStoppingRule, "stopped while the job ran"})));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-updater.service")});
  ASSERT_TRUE(r) << r.error().rule << ": " << r.error().message;
  EXPECT_EQ(std::get<proto::RestartUnitReply>(*r).job_result, "stopping");
  EXPECT_EQ(std::get<proto::RestartUnitReply>(*r).unit.active_state, "deactivating");
}

TEST_F(AServingSession, ReportsAnotherUnitsRestartCutShortByTheHelpersStopAsAFailure) {
  ASSERT_TRUE(Write("decnet-agent.service", kGoodUnit));
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-agent.service")))
      .WillOnce(Return(CleanView("decnet-agent.service")));
  EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-agent.service"), _))
      .WillOnce(Return(tl::make_unexpected(
          Error{ErrorCode::kFailed, kHelperStoppingRule, "stopped while the job ran"})));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-agent.service")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, kHelperStoppingRule);
}

TEST_F(AServingSession, ReportsAFailedRestartOfItsOwnUnitAsAFailure) {
  { std::ofstream(UnitPath("decnet-updater.service")) << "[Service]\nExecStart=/bin/true\n"; }
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-updater.service")))
      .WillOnce(Return(CleanView("decnet-updater.service")));
  EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-updater.service"), _))
      .WillOnce(Return(tl::make_unexpected(
          Error{ErrorCode::kTimeout, "systemd-job-timeout", "did not finish in time"})));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-updater.service")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "systemd-job-timeout");
}

TEST_F(AServingSession, RepointsAnAllowedLinkBeneathItsPrefix) {
  std::string target = dirs_.root() + "/opt/current";
  auto r = HandleRepointLink(*session_, {*LinkName::Parse("decnet"), *AbsPath::Parse(target)});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(std::get<proto::RepointLinkReply>(*r).changed);
  EXPECT_EQ(std::filesystem::read_symlink(dirs_.root() + "/bin/decnet"), target);
  auto again = HandleRepointLink(*session_, {*LinkName::Parse("decnet"), *AbsPath::Parse(target)});
  EXPECT_FALSE(std::get<proto::RepointLinkReply>(*again).changed);
}

TEST_F(AServingSession, RefusesLinksOutsideTheAllowListOrPrefix) {
  auto other = HandleRepointLink(
      *session_, {*LinkName::Parse("sudo"), *AbsPath::Parse(dirs_.root() + "/opt/current")});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().rule, "link-name-allowlist");
  auto outside =
      HandleRepointLink(*session_, {*LinkName::Parse("decnet"), *AbsPath::Parse("/bin/sh")});
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().rule, "link-target-prefix");
  auto sibling = HandleRepointLink(
      *session_, {*LinkName::Parse("decnet"), *AbsPath::Parse(dirs_.root() + "/opt/current-evil")});
  ASSERT_FALSE(sibling);
  EXPECT_EQ(sibling.error().rule, "link-target-prefix");
  auto missing = HandleRepointLink(
      *session_, {*LinkName::Parse("decnet"), *AbsPath::Parse(dirs_.root() + "/opt/current/nope")});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(AServingSession, NeverReplacesARegularFileWithALink) {
  { std::ofstream(dirs_.root() + "/bin/decnet") << "a real binary"; }
  auto r = HandleRepointLink(
      *session_, {*LinkName::Parse("decnet"), *AbsPath::Parse(dirs_.root() + "/opt/current")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "link-not-symlink");
}

TEST_F(AServingSession, AnswersHelloOnlyForAnOverlappingVersion) {
  EXPECT_TRUE(HandleHello(*session_, {1, 3, "x"}));
  auto r = HandleHello(*session_, {2, 3, "x"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "protocol-version");
}

// The loaded-view check in restart_unit: each row alters what systemd loaded for a unit the
// helper wrote; the restart is refused with the row's rule and never reaches systemd
// (StrictMock: a RestartUnit call fails the test).
struct ForeignViewRow {
  const char* what;
  std::function<void(LoadedView&, const std::string& unit_dir)> alter;
  const char* rule;
};

class AServingSessionRefusingForeignViews : public AServingSession,
                                            public ::testing::WithParamInterface<ForeignViewRow> {};

TEST_P(AServingSessionRefusingForeignViews, RefusesTheRestartWithTheRuleAndNeverRestarts) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  LoadedView view = CleanView("decnet-demo.service");
  GetParam().alter(view, dirs_.units());
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-demo.service"))).WillOnce(Return(view));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_FALSE(r) << GetParam().what;
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_EQ(r.error().rule, GetParam().rule) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Rows, AServingSessionRefusingForeignViews,
    ::testing::Values(
        ForeignViewRow{"a drop-in next to the helper's file",
                       [](LoadedView& v, const std::string& dir) {
                         v.drop_in_paths = {dir + "/decnet-demo.service.d/evil.conf"};
                       },
                       "unit-loaded-dropin"},
        ForeignViewRow{"a drop-in in the runtime directory that does not exist",
                       [](LoadedView& v, const std::string&) {
                         v.drop_in_paths = {"/run/systemd/system/decnet-demo.service.d/x.conf"};
                       },
                       "unit-loaded-dropin"},
        ForeignViewRow{"a shadowing fragment in /run",
                       [](LoadedView& v, const std::string&) {
                         v.fragment_path = "/run/systemd/system/decnet-demo.service";
                       },
                       "unit-loaded-fragment"},
        ForeignViewRow{"a transient unit",
                       [](LoadedView& v, const std::string&) { v.transient = true; },
                       "unit-loaded-transient"},
        ForeignViewRow{"not loaded",
                       [](LoadedView& v, const std::string&) { v.load_state = "not-found"; },
                       "unit-loaded-state"},
        ForeignViewRow{"User=root in effect",
                       [](LoadedView& v, const std::string&) { v.user = "root"; },
                       "unit-loaded-user"},
        ForeignViewRow{"ExecStartPre=+",
                       [](LoadedView& v, const std::string&) {
                         v.exec.push_back({"ExecStartPre", "/bin/touch", {"privileged"}});
                       },
                       "unit-loaded-exec-flags"},
        ForeignViewRow{"KillMode=none",
                       [](LoadedView& v, const std::string&) { v.kill_mode = "none"; },
                       "unit-loaded-kill-mode"}),
    decnet::test::NameFromWhat{});

TEST_F(AServingSession, RefusesTheRestartOfAUnitChangedOnDiskSinceItWasWritten) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  { std::ofstream(UnitPath("decnet-demo.service"), std::ios::app) << "ExecStartPre=+/bin/true\n"; }
  EXPECT_CALL(systemd_, GetLoadedView(_)).WillOnce(Return(CleanView("decnet-demo.service")));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "unit-loaded-fragment-changed") << r.error().message;
}

TEST_F(AServingSession, RefusesTheRestartWhenTheLoadedViewCannotBeRead) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  EXPECT_CALL(systemd_, GetLoadedView(_))
      .WillOnce(Return(tl::make_unexpected(
          Error{ErrorCode::kFailed, "systemd-loaded-view", "no property DropInPaths"})));
  auto r = HandleRestartUnit(*session_, {Unit("decnet-demo.service")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "systemd-loaded-view");
}

TEST_F(AServingSession, ChecksEveryWrittenUnitAfterAReloadAndNamesTheRefusedOnes) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  ASSERT_TRUE(Write("decnet-other.service", kGoodUnit));
  LoadedView foreign = CleanView("decnet-demo.service");
  foreign.drop_in_paths = {dirs_.units() + "/decnet-demo.service.d/evil.conf"};
  LoadedView absent;
  absent.load_state = "not-found";
  {
    ::testing::InSequence in_order;  // the views are read after the reload
    EXPECT_CALL(systemd_, Reload()).WillOnce(Return(Result<void>{}));
    EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-demo.service"))).WillOnce(Return(foreign));
    EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-other.service")))
        .WillOnce(Return(CleanView("decnet-other.service")));
    EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-updater.service"))).WillOnce(Return(absent));
  }
  auto r = HandleDaemonReload(*session_, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_EQ(r.error().rule, "unit-loaded-dropin");
  EXPECT_NE(r.error().message.find("decnet-demo.service"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("decnet-other.service"), std::string::npos) << r.error().message;
}

TEST_F(AServingSession, ReloadsCleanlyWhenEveryLoadedViewIsApproved) {
  ASSERT_TRUE(Write("decnet-demo.service", kGoodUnit));
  LoadedView absent;
  absent.load_state = "not-found";
  EXPECT_CALL(systemd_, Reload()).WillOnce(Return(Result<void>{}));
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-demo.service")))
      .WillOnce(Return(CleanView("decnet-demo.service")));
  EXPECT_CALL(systemd_, GetLoadedView(Unit("decnet-updater.service"))).WillOnce(Return(absent));
  auto r = HandleDaemonReload(*session_, {});
  EXPECT_TRUE(r) << r.error().rule << ": " << r.error().message;
}

}  // namespace
}  // namespace decnet::helper
