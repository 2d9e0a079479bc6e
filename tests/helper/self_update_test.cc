// The helper's half of update-self: the start record, the pure start decision, and the
// start-up revert on a real daemon store in a temporary directory (the test runs as root,
// like the helper at that point of its start-up).
#include "helper/self_update.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

namespace fs = std::filesystem;

constexpr char kOld[] = "00000000000000aa";
constexpr char kNew[] = "00000000000000bb";
constexpr uint64_t kProbation = 60'000;

StartRecord Attempt(std::string good, std::string build, uint64_t hello_ms, std::string ended = "",
                    uint64_t ended_ms = 0) {
  StartRecord r;
  r.good = std::move(good);
  r.build = std::move(build);
  r.started_ms = 1'000;
  r.hello_ms = hello_ms;
  r.ended = std::move(ended);
  r.ended_ms = ended_ms;
  return r;
}

// --- the record ---------------------------------------------------------------------------

TEST(AStartRecord, RoundTripsThroughItsJson) {
  StartRecord r = Attempt(kOld, kNew, 5'000, "failed", 9'000);
  auto back = ParseStartRecord(SerializeStartRecord(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->good, kOld);
  EXPECT_EQ(back->build, kNew);
  EXPECT_EQ(back->hello_ms, 5'000u);
  EXPECT_EQ(back->ended, "failed");
  EXPECT_EQ(back->ended_ms, 9'000u);
}

TEST(AStartRecord, RefusesAnythingButItsExactShape) {
  const std::string good = SerializeStartRecord(Attempt(kOld, kNew, 1));
  ASSERT_TRUE(ParseStartRecord(good));
  for (
      const std::string& bad : std::vector<std::string>{
          std::string("{}"),
          std::string("not json"),
          good.substr(0, good.size() - 3),
          R"({"format":2,"good":"","build":"","started_ms":0,"hello_ms":0,"ended":"","ended_ms":0})",
          R"({"format":1,"good":"../x","build":"","started_ms":0,"hello_ms":0,"ended":"","ended_ms":0})",
          R"({"format":1,"good":"","build":"00000000000000AA","started_ms":0,"hello_ms":0,"ended":"","ended_ms":0})",
          R"({"format":1,"good":"","build":"","started_ms":0,"hello_ms":0,"ended":"maybe","ended_ms":0})",
          R"({"format":1,"good":"","build":"","started_ms":-1,"hello_ms":0,"ended":"","ended_ms":0})",
          R"({"format":1,"good":"","build":"","started_ms":0,"hello_ms":0,"ended":"","ended_ms":0,"x":1})",
      }) {
    auto parsed = ParseStartRecord(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().rule, "start-record") << bad;
  }
}

// --- the decision -------------------------------------------------------------------------

struct DecisionCase {
  std::string name;
  StartRecord record;
  std::string current;
  bool good_complete;
  StartAction action;
  std::string good_after;  // the good build once the last attempt's verdict is folded in
};

void PrintTo(const DecisionCase& c, std::ostream* os) { *os << c.name; }

class AStartDecision : public ::testing::TestWithParam<DecisionCase> {};

TEST_P(AStartDecision, FollowsTheRules) {
  const DecisionCase& c = GetParam();
  StartDecision d = DecideStart(c.record, c.current, kProbation, c.good_complete);
  EXPECT_EQ(d.action, c.action);
  EXPECT_EQ(d.record.good, c.good_after);
  if (c.action == StartAction::kRevert) {
    EXPECT_NE(d.why.find(c.current), std::string::npos) << d.why;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, AStartDecision,
    ::testing::Values(
        DecisionCase{"FirstStartEver", StartRecord{}, kOld, false, StartAction::kStart, ""},
        DecisionCase{"ProvenBuildStartsAgain", Attempt("", kOld, 2'000), kOld, false,
                     StartAction::kStart, kOld},
        DecisionCase{"FirstStartAfterUpdateSelf", Attempt(kOld, kOld, 2'000), kNew, true,
                     StartAction::kStart, kOld},
        DecisionCase{"FreshBuildNeverSaidHello", Attempt(kOld, kNew, 0), kNew, true,
                     StartAction::kRevert, kOld},
        DecisionCase{"FreshBuildExitedBeforeHello", Attempt(kOld, kNew, 0, "failed", 3'000), kNew,
                     true, StartAction::kRevert, kOld},
        DecisionCase{"FreshBuildFailedWithinProbation",
                     Attempt(kOld, kNew, 2'000, "failed", 2'000 + kProbation - 1), kNew, true,
                     StartAction::kRevert, kOld},
        DecisionCase{"FreshBuildFailedAfterProbationIsKept",
                     Attempt(kOld, kNew, 2'000, "failed", 2'000 + kProbation), kNew, true,
                     StartAction::kStart, kNew},
        DecisionCase{"FreshBuildStoppedCleanlyIsKept", Attempt(kOld, kNew, 2'000, "clean", 2'500),
                     kNew, true, StartAction::kStart, kNew},
        DecisionCase{"FreshBuildWithNoRecordedEndIsKept", Attempt(kOld, kNew, 2'000), kNew, true,
                     StartAction::kStart, kNew},
        DecisionCase{"NothingToReturnToWithoutAGoodBuild", Attempt("", kNew, 0), kNew, false,
                     StartAction::kStart, ""},
        DecisionCase{"GoodBuildNoLongerComplete", Attempt(kOld, kNew, 0), kNew, false,
                     StartAction::kStart, kOld},
        DecisionCase{"TheGoodBuildFailingIsNeverReverted", Attempt(kOld, kOld, 0), kOld, true,
                     StartAction::kStart, kOld}),
    [](const auto& info) { return info.param.name; });

// --- start-up on a real store --------------------------------------------------------------

class ASelfUpdateStartUp : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dirs_.root() + "/updater";
    fs::create_directories(dirs_.root() + "/state");
    ::chmod((dirs_.root() + "/state").c_str(), 0755);
    for (const char* id : {kOld, kNew}) AddBuild(id);
    Point(kNew);
    dirs_.policy().daemon_store = store_;
    dirs_.policy().daemon_binary = store_ + "/current/bin/decnet-updaterd";
    dirs_.policy().self_update_probation_ms = kProbation;
    state_fd_ = ::open((dirs_.root() + "/state").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(state_fd_, 0);
  }
  void TearDown() override { ::close(state_fd_); }

  void AddBuild(const std::string& id) {
    fs::create_directories(store_ + "/releases/" + id + "/bin");
    std::ofstream(store_ + "/releases/" + id + "/.decnet-complete") << "complete\n";
  }
  void Point(const std::string& id) {
    fs::remove(store_ + "/current");
    fs::create_directory_symlink("releases/" + id, store_ + "/current");
  }
  std::string Current() const { return fs::read_symlink(store_ + "/current").string(); }
  void WriteRecord(const StartRecord& r) {
    std::ofstream(dirs_.root() + "/state/" + kDaemonStartFile) << SerializeStartRecord(r);
  }
  StartRecord ReadRecord() const {
    std::ifstream in(dirs_.root() + "/state/" + kDaemonStartFile);
    auto r = ParseStartRecord(std::string(std::istreambuf_iterator<char>(in), {}));
    EXPECT_TRUE(r);
    return r ? *r : StartRecord{};
  }

  test::TestDirs dirs_;
  std::string store_;
  int state_fd_ = -1;
};

TEST_F(ASelfUpdateStartUp, FlipsAFreshBuildThatNeverSaidHelloBackToTheGoodOne) {
  ASSERT_EQ(::chown(store_.c_str(), 65534, 65534), 0);  // daemon-owned, as in service
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_TRUE(started->active);
  EXPECT_EQ(started->build, kOld);
  EXPECT_NE(started->message.find("returning to build"), std::string::npos) << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
  struct stat store {};
  ASSERT_EQ(::stat(store_.c_str(), &store), 0);
  EXPECT_EQ(store.st_uid, 65534u) << "the store stays the daemon's";
  EXPECT_FALSE(fs::exists(fs::symlink_status(store_ + "/.current.helper-revert")));
  StartRecord r = ReadRecord();
  EXPECT_EQ(r.build, kOld);
  EXPECT_EQ(r.good, kOld);
  EXPECT_EQ(r.hello_ms, 0u);
  EXPECT_GT(r.started_ms, 0u);
}

TEST_F(ASelfUpdateStartUp, RevertsDespiteWhatTheDaemonPlantedUnderTheOldTemporaryName) {
  // A compromised daemon owns the store: it plants a non-empty directory, and a symlink to a
  // victim, where the revert used to make its temporary link. Neither may block the revert
  // (a failed start-up loops the unit), and neither is followed or removed.
  ASSERT_EQ(::chown(store_.c_str(), 65534, 65534), 0);
  fs::create_directories(store_ + "/.current.helper-revert/full");
  fs::create_directories(dirs_.root() + "/victim");
  fs::create_directory_symlink(dirs_.root() + "/victim", store_ + "/.current.helper-revert.1");
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(started->build, kOld);
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
  EXPECT_TRUE(fs::is_directory(store_ + "/.current.helper-revert/full"));
  EXPECT_TRUE(fs::is_empty(dirs_.root() + "/victim"));
  // Nothing of the helper's is left behind in the daemon's store.
  for (const auto& e : fs::directory_iterator(store_)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "current" || name == "releases" ||
                name.starts_with(".current.helper-revert"))
        << name;
  }
}

TEST_F(ASelfUpdateStartUp, RecordsTheHelloAndTheEndOfTheAttempt) {
  WriteRecord(Attempt(kOld, kOld, 2'000));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(started->build, kNew) << "the first start after update-self runs the new build";
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
  ASSERT_TRUE(RecordDaemonHello(state_fd_));
  ASSERT_TRUE(RecordDaemonEnd(state_fd_, /*clean=*/false));
  StartRecord r = ReadRecord();
  EXPECT_EQ(r.build, kNew);
  EXPECT_EQ(r.good, kOld);
  EXPECT_GT(r.hello_ms, 0u);
  EXPECT_EQ(r.ended, "failed");
  // Failed at once after its hello: within probation, so the next start returns to kOld.
  auto next = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->build, kOld);
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
}

TEST_F(ASelfUpdateStartUp, LeavesTheStoreAloneWhenTheGoodBuildIsIncomplete) {
  fs::remove(store_ + "/releases/" + kOld + "/.decnet-complete");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started);
  EXPECT_EQ(started->build, kNew);
  EXPECT_NE(started->message.find("no longer complete"), std::string::npos) << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
}

TEST_F(ASelfUpdateStartUp, NeverFollowsASymlinkPlantedForTheGoodBuild) {
  // A compromised daemon replaces the good build by a link to a root-owned tree.
  fs::remove_all(store_ + "/releases/" + kOld);
  fs::create_directories(dirs_.root() + "/elsewhere");
  std::ofstream(dirs_.root() + "/elsewhere/.decnet-complete") << "x";
  fs::create_directory_symlink(dirs_.root() + "/elsewhere", store_ + "/releases/" + kOld);
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started);
  EXPECT_EQ(started->build, kNew) << "a build reached through a symlink is not complete";
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
}

TEST_F(ASelfUpdateStartUp, RefusesToReplaceACurrentThatIsNotASymlink) {
  fs::remove(store_ + "/current");
  // `current` made a directory whose name still reads as a build: never replaced.
  fs::create_directories(store_ + "/current");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started);
  EXPECT_NE(started->message.find("nothing to decide"), std::string::npos) << started->message;
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(store_ + "/current")));
}

TEST_F(ASelfUpdateStartUp, IgnoresACurrentThatDoesNotNameABuild) {
  fs::remove(store_ + "/current");
  fs::create_directory_symlink("/etc", store_ + "/current");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started);
  EXPECT_EQ(Current(), "/etc") << "only releases/<16 hex> is read as a build";
}

TEST_F(ASelfUpdateStartUp, IsInactiveWhenTheDaemonDoesNotRunFromItsStore) {
  dirs_.policy().daemon_binary = "/usr/lib/decnet-updater/decnet-updaterd";
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started);
  EXPECT_FALSE(started->active);
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
  EXPECT_EQ(ReadRecord().build, kNew) << "the record is not touched";
}

TEST_F(ASelfUpdateStartUp, StartsTheCurrentBuildAndAFreshRecordWhenTheRecordIsCorrupt) {
  std::ofstream(dirs_.root() + "/state/" + kDaemonStartFile) << "{\"format\":1}";
  auto started = ApplySelfUpdateRevertDecision(dirs_.policy(), state_fd_);
  ASSERT_TRUE(started) << "a damaged record must not keep the unit from starting";
  EXPECT_EQ(started->build, kNew);
  EXPECT_NE(started->message.find("unreadable"), std::string::npos) << started->message;
  EXPECT_EQ(ReadRecord().build, kNew);
}

}  // namespace
}  // namespace decnet::helper
