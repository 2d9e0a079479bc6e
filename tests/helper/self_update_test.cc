// The helper's half of update-self: the start record, the pure start decision, and the
// start-up revert on a real daemon store in a temporary directory (the test runs as root,
// like the helper at that point of its start-up).
#include "helper/self_update.h"

#include <cap-ng.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

namespace fs = std::filesystem;

constexpr char kOld[] = "00000000000000aa";
constexpr char kNew[] = "00000000000000bb";
constexpr uint64_t kProbation = 60'000;
// The policy's daemon user and group, as start-up resolves them; the store is theirs.
constexpr DaemonIdentity kDaemon{65534, 65534};

uid_t FsUid() { return static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))); }
gid_t FsGid() { return static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))); }

// Runs `body` in a forked child without the capabilities `drop` names (effective and
// permitted) and without supplementary groups; returns its exit status, or 100 when the
// child could not drop them.
int InChildWithout(const std::vector<int>& drop, const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child < 0) return -1;
  if (child == 0) {
    if (::setgroups(0, nullptr) != 0) ::_exit(100);
    capng_get_caps_process();
    for (int cap : drop)
      capng_update(CAPNG_DROP, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED), cap);
    if (capng_apply(CAPNG_SELECT_CAPS) != 0) ::_exit(100);
    for (int cap : drop)
      if (capng_have_capability(CAPNG_EFFECTIVE, static_cast<unsigned>(cap))) ::_exit(100);
    ::_exit(body());
  }
  int status = 0;
  if (::waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

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
    // The daemon owns its store, as in service.
    for (const auto& e : fs::recursive_directory_iterator(store_))
      ASSERT_EQ(::lchown(e.path().c_str(), kDaemon.uid, kDaemon.gid), 0) << e.path();
    ASSERT_EQ(::chown(store_.c_str(), kDaemon.uid, kDaemon.gid), 0);
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
  Result<SelfUpdateStart> Apply(const DaemonIdentity& daemon = kDaemon) {
    return ApplySelfUpdateRevertDecision(dirs_.policy(), daemon, state_fd_);
  }
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
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = Apply();
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_TRUE(started->active);
  EXPECT_EQ(started->build, kOld);
  EXPECT_NE(started->message.find("returning to build"), std::string::npos) << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
  struct stat store {};
  ASSERT_EQ(::stat(store_.c_str(), &store), 0);
  EXPECT_EQ(store.st_uid, kDaemon.uid) << "the store stays the daemon's";
  EXPECT_EQ(FsUid(), 0u) << "root's file-system identity is back";
  EXPECT_EQ(FsGid(), 0u);
  EXPECT_FALSE(fs::exists(fs::symlink_status(store_ + "/.current.helper-revert")));
  StartRecord r = ReadRecord();
  EXPECT_EQ(r.build, kOld);
  EXPECT_EQ(r.good, kOld);
  EXPECT_EQ(r.hello_ms, 0u);
  EXPECT_GT(r.started_ms, 0u);
}

TEST_F(ASelfUpdateStartUp, RevertsDespiteWhatTheDaemonPlantedBesideCurrent) {
  // A compromised daemon owns the store: it plants a non-empty directory, and symlinks to a
  // victim, under the names a revert makes its temporary link with (".#current.<pid>...")
  // and used to make it with. None may block the revert (a failed start-up loops the unit),
  // and none is followed or removed.
  const std::string pid = std::to_string(::getpid());
  fs::create_directories(dirs_.root() + "/victim");
  const std::vector<std::string> plants = {".#current", ".#current." + pid,
                                           ".#current." + pid + ".1", ".#current." + pid + ".1.0",
                                           ".current.helper-revert"};
  for (const std::string& plant : plants) {
    fs::create_directories(store_ + "/" + plant + "/full");
    fs::create_directory_symlink(dirs_.root() + "/victim", store_ + "/" + plant + ".link");
  }
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = Apply();
  ASSERT_TRUE(started) << started.error().message;
  EXPECT_EQ(started->build, kOld) << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
  EXPECT_TRUE(fs::is_empty(dirs_.root() + "/victim"));
  for (const std::string& plant : plants) {
    EXPECT_TRUE(fs::is_directory(fs::symlink_status(store_ + "/" + plant + "/full"))) << plant;
    EXPECT_TRUE(fs::is_symlink(fs::symlink_status(store_ + "/" + plant + ".link"))) << plant;
  }
  // Nothing of the helper's is left behind in the daemon's store.
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(store_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2 + 2 * plants.size()) << "current, releases and the plants only";
}

TEST_F(ASelfUpdateStartUp, FlipsWithoutOverridingFilePermissions) {
  // The unit grants no CAP_DAC_OVERRIDE: a child without the capabilities that bypass file
  // permissions (this test process keeps them) makes the revert in the daemon's 0755 store.
  ASSERT_EQ(::chmod(store_.c_str(), 0755), 0);
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  const int status = InChildWithout({CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}, [&] {
    auto started = Apply();
    if (!started || started->build != kOld) return 1;
    return FsUid() == 0 && FsGid() == 0 ? 0 : 2;
  });
  ASSERT_NE(status, 100) << "the child could not drop its capabilities";
  EXPECT_EQ(status, 0) << "the revert needed a capability the unit does not grant, or left the "
                          "daemon's file-system identity in place";
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
  struct stat link {};
  ASSERT_EQ(::lstat((store_ + "/current").c_str(), &link), 0);
  EXPECT_EQ(link.st_uid, kDaemon.uid) << "the link is the daemon's, as its own would be";
  EXPECT_EQ(link.st_gid, kDaemon.gid);
}

TEST_F(ASelfUpdateStartUp, WritesWithTheDaemonsPermissionsOnlyEvenHoldingDacOverride) {
  // This process holds CAP_DAC_OVERRIDE; the daemon may not write its own store (0555). The
  // revert, made as the daemon, must fail where root's override would have succeeded.
  ASSERT_EQ(::chmod(store_.c_str(), 0555), 0);
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = Apply();
  ::chmod(store_.c_str(), 0755);
  ASSERT_TRUE(started) << "a failed revert must not keep the unit from starting";
  EXPECT_EQ(started->build, kNew);
  EXPECT_NE(started->message.find("self-update-revert"), std::string::npos) << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
  EXPECT_EQ(FsUid(), 0u) << "root's file-system identity is back after a failed revert";
  EXPECT_EQ(FsGid(), 0u);
  EXPECT_EQ(ReadRecord().build, kNew) << "the current build is recorded as started again";
}

TEST_F(ASelfUpdateStartUp, RefusesTheRevertWhenTheDaemonsIdentityCannotBeTaken) {
  // Without CAP_SETUID/CAP_SETGID setfsuid fails silently; with CAP_DAC_OVERRIDE still held,
  // a flip that did not check would be made as root. It must be refused instead.
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  const int status = InChildWithout({CAP_SETUID, CAP_SETGID}, [&] {
    auto started = Apply();
    if (!started) return 1;
    if (started->build != kNew) return 2;
    if (started->message.find("self-update-fs-identity") == std::string::npos) return 3;
    return FsUid() == 0 && FsGid() == 0 ? 0 : 4;
  });
  ASSERT_NE(status, 100) << "the child could not drop its capabilities";
  EXPECT_EQ(status, 0);
  EXPECT_EQ(Current(), std::string("releases/") + kNew) << "nothing was written as root";
}

struct ForeignOwner {
  std::string name;
  uid_t store_uid;
  gid_t store_gid;
  DaemonIdentity daemon;
};

void PrintTo(const ForeignOwner& c, std::ostream* os) { *os << c.name; }

class AStoreNotTheDaemons : public ASelfUpdateStartUp,
                            public ::testing::WithParamInterface<ForeignOwner> {};

TEST_P(AStoreNotTheDaemons, IsNeverWrittenInAnyonesName) {
  const ForeignOwner& c = GetParam();
  ASSERT_EQ(::chown(store_.c_str(), c.store_uid, c.store_gid), 0);
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  auto started = Apply(c.daemon);
  ASSERT_TRUE(started) << "a refused revert must not keep the unit from starting";
  EXPECT_EQ(started->build, kNew);
  EXPECT_NE(started->message.find("self-update-store-owner"), std::string::npos)
      << started->message;
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
  EXPECT_EQ(ReadRecord().build, kNew);
  EXPECT_EQ(FsUid(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AStoreNotTheDaemons,
    ::testing::Values(ForeignOwner{"OwnedByRoot", 0, 0, kDaemon},
                      ForeignOwner{"OwnedByRootWithTheDaemonsGroup", 0, kDaemon.gid, kDaemon},
                      ForeignOwner{"OwnedByAnotherUser", 4242, 4242, kDaemon},
                      ForeignOwner{"OwnedByAnotherUserWithTheDaemonsGroup", 4242, kDaemon.gid,
                                   kDaemon},
                      ForeignOwner{"RootAsTheDaemon", 0, 0, {0, 0}},
                      ForeignOwner{"RootUidWithTheDaemonsGroup", 0, kDaemon.gid, {0, kDaemon.gid}}),
    [](const auto& info) { return info.param.name; });

TEST_F(ASelfUpdateStartUp, RefusesAStoreReachedThroughASymlink) {
  // The store's path as configured, with a symlink in one component: a parent, or the store.
  fs::create_directories(dirs_.root() + "/real");
  fs::rename(store_, dirs_.root() + "/real/updater");
  fs::create_directory_symlink(dirs_.root() + "/real", dirs_.root() + "/via-parent");
  fs::create_directory_symlink(dirs_.root() + "/real/updater", store_);
  WriteRecord(Attempt(kOld, kNew, 0, "failed", 2'000));
  for (const std::string& path : {dirs_.root() + "/via-parent/updater", store_}) {
    dirs_.policy().daemon_store = path;
    dirs_.policy().daemon_binary = path + "/current/bin/decnet-updaterd";
    auto started = Apply();
    ASSERT_TRUE(started) << path;
    EXPECT_TRUE(started->active);
    EXPECT_NE(started->message.find("self-update-store-path"), std::string::npos)
        << started->message;
    EXPECT_EQ(fs::read_symlink(dirs_.root() + "/real/updater/current").string(),
              std::string("releases/") + kNew)
        << path;
    EXPECT_EQ(ReadRecord().ended, "failed") << "nothing is decided or recorded";
  }
  // The same store by its real path is reverted: the refusal was the symlink's.
  dirs_.policy().daemon_store = dirs_.root() + "/real/updater";
  dirs_.policy().daemon_binary = dirs_.root() + "/real/updater/current/bin/decnet-updaterd";
  auto started = Apply();
  ASSERT_TRUE(started);
  EXPECT_EQ(started->build, kOld) << started->message;
}

TEST_F(ASelfUpdateStartUp, RecordsTheHelloAndTheEndOfTheAttempt) {
  WriteRecord(Attempt(kOld, kOld, 2'000));
  auto started = Apply();
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
  auto next = Apply();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->build, kOld);
  EXPECT_EQ(Current(), std::string("releases/") + kOld);
}

TEST_F(ASelfUpdateStartUp, LeavesTheStoreAloneWhenTheGoodBuildIsIncomplete) {
  fs::remove(store_ + "/releases/" + kOld + "/.decnet-complete");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = Apply();
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
  auto started = Apply();
  ASSERT_TRUE(started);
  EXPECT_EQ(started->build, kNew) << "a build reached through a symlink is not complete";
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
}

TEST_F(ASelfUpdateStartUp, RefusesToReplaceACurrentThatIsNotASymlink) {
  fs::remove(store_ + "/current");
  // `current` made a directory whose name still reads as a build: never replaced.
  fs::create_directories(store_ + "/current");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = Apply();
  ASSERT_TRUE(started);
  EXPECT_NE(started->message.find("nothing to decide"), std::string::npos) << started->message;
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(store_ + "/current")));
}

TEST_F(ASelfUpdateStartUp, IgnoresACurrentThatDoesNotNameABuild) {
  fs::remove(store_ + "/current");
  fs::create_directory_symlink("/etc", store_ + "/current");
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = Apply();
  ASSERT_TRUE(started);
  EXPECT_EQ(Current(), "/etc") << "only releases/<16 hex> is read as a build";
}

TEST_F(ASelfUpdateStartUp, IsInactiveWhenTheDaemonDoesNotRunFromItsStore) {
  dirs_.policy().daemon_binary = "/usr/lib/decnet-updater/decnet-updaterd";
  WriteRecord(Attempt(kOld, kNew, 0));
  auto started = Apply();
  ASSERT_TRUE(started);
  EXPECT_FALSE(started->active);
  EXPECT_EQ(Current(), std::string("releases/") + kNew);
  EXPECT_EQ(ReadRecord().build, kNew) << "the record is not touched";
}

TEST_F(ASelfUpdateStartUp, StartsTheCurrentBuildAndAFreshRecordWhenTheRecordIsCorrupt) {
  std::ofstream(dirs_.root() + "/state/" + kDaemonStartFile) << "{\"format\":1}";
  auto started = Apply();
  ASSERT_TRUE(started) << "a damaged record must not keep the unit from starting";
  EXPECT_EQ(started->build, kNew);
  EXPECT_NE(started->message.find("unreadable"), std::string::npos) << started->message;
  EXPECT_EQ(ReadRecord().build, kNew);
}

}  // namespace
}  // namespace decnet::helper
