#include "daemon/release_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "proto/sha256.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;

std::string DigestOf(std::string_view name) { return Sha256Hex(name); }
ReleaseId IdOf(std::string_view name) { return *ReleaseId::FromSha256Hex(DigestOf(name)); }

ReleaseRecord RecordFor(std::string_view name) {
  return ReleaseRecord{DigestOf(name),
                       std::string(name),
                       *ReleaseVersion::Parse(name),
                       ReleaseKind::kService,
                       1234,
                       "",
                       ReleaseState::kReady,
                       0};
}

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class AReleaseStore : public ::testing::Test {
 protected:
  void SetUp() override { root_ = MakeRoot(); }
  void TearDown() override { fs::remove_all(root_); }

  static std::string MakeRoot() {
    std::string tmpl = (fs::temp_directory_path() / "decnet-store-XXXXXX").string();
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    return tmpl;
  }

  static ReleaseStore OpenStore(const std::string& root, size_t keep = 3) {
    auto store = ReleaseStore::Open(root, keep);
    EXPECT_TRUE(store) << store.error().message;
    return std::move(*store);
  }

  // Extracts (a file naming the release) and completes one release.
  static void Install(ReleaseStore& store, std::string_view name) {
    auto dir = store.BeginRelease(IdOf(name));
    ASSERT_TRUE(dir) << dir.error().message;
    int fd = openat(dir->get(), "app.txt", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, name.data(), name.size()), static_cast<ssize_t>(name.size()));
    close(fd);
    auto done = store.MarkComplete(IdOf(name), RecordFor(name));
    ASSERT_TRUE(done) << done.error().message;
  }

  static void InstallAndActivate(ReleaseStore& store, std::string_view name) {
    Install(store, name);
    auto activated = store.Activate(IdOf(name));
    ASSERT_TRUE(activated) << activated.error().message;
    ASSERT_TRUE(store.Commit());
  }

  // What the code under `current` says it is ("" when there is no current).
  static std::string CurrentApp(const std::string& root) {
    std::error_code ec;
    if (!fs::is_symlink(fs::path(root) / "current", ec)) return "";
    return ReadText(fs::path(root) / "current" / "app.txt");
  }

  // The store's invariant after Recover(): nothing pending, `current` points at the complete
  // active release (or is absent), every release directory is recorded and complete, no
  // temp files.
  static void ExpectConsistent(const std::string& root) {
    auto store = OpenStore(root);
    EXPECT_FALSE(store.Pending());
    std::error_code ec;
    fs::path current = fs::path(root) / "current";
    if (store.Active()) {
      ASSERT_TRUE(fs::is_symlink(current, ec));
      EXPECT_EQ(fs::read_symlink(current).string(), "releases/" + store.Active()->str());
      EXPECT_TRUE(store.IsComplete(*store.Active()));
    } else {
      EXPECT_FALSE(fs::exists(fs::symlink_status(current)));
    }
    if (store.Previous()) {
      EXPECT_TRUE(store.IsComplete(*store.Previous()));
    }
    for (const auto& entry : fs::directory_iterator(fs::path(root) / "releases")) {
      auto id = ReleaseId::Parse(entry.path().filename().string());
      ASSERT_TRUE(id) << entry.path();
      EXPECT_TRUE(store.IsComplete(*id)) << entry.path();
    }
    EXPECT_FALSE(fs::exists(fs::symlink_status(fs::path(root) / "current.tmp")));
    EXPECT_FALSE(fs::exists(fs::path(root) / "state.json.tmp"));
  }

  std::string root_;
};

TEST_F(AReleaseStore, InstallsAndActivatesAFirstRelease) {
  auto store = OpenStore(root_);
  ASSERT_TRUE(store.Recover());
  InstallAndActivate(store, "v1");
  EXPECT_EQ(CurrentApp(root_), "v1");
  EXPECT_EQ(store.Active(), IdOf("v1"));
  EXPECT_FALSE(store.Previous());
  EXPECT_EQ(fs::read_symlink(fs::path(root_) / "current").string(), "releases/" + IdOf("v1").str());
  auto perms = fs::status(fs::path(root_) / "releases" / IdOf("v1").str()).permissions();
  EXPECT_EQ(perms, fs::perms(0755));
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, KeepsItsStateAcrossReopening) {
  {
    auto store = OpenStore(root_);
    InstallAndActivate(store, "v1");
    InstallAndActivate(store, "v2");
  }
  auto store = OpenStore(root_);
  EXPECT_EQ(store.Active(), IdOf("v2"));
  EXPECT_EQ(store.Previous(), IdOf("v1"));
  auto record = store.Find(IdOf("v2"));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->sha256, DigestOf("v2"));
  EXPECT_EQ(record->sha, "v2");
  EXPECT_EQ(record->size, 1234u);
  EXPECT_FALSE(record->installed_at.empty());
}

TEST_F(AReleaseStore, MakesTheOldActiveReleasePreviousOnActivation) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  InstallAndActivate(store, "v2");
  EXPECT_EQ(CurrentApp(root_), "v2");
  auto list = store.Releases();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, IdOf("v2"));
  EXPECT_EQ(list[0].slot, ReleaseSlot::kActive);
  EXPECT_EQ(list[1].id, IdOf("v1"));
  EXPECT_EQ(list[1].slot, ReleaseSlot::kPrevious);
}

TEST_F(AReleaseStore, SwapsActiveAndPreviousOnRollback) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  InstallAndActivate(store, "v2");
  ASSERT_TRUE(store.Rollback());
  ASSERT_TRUE(store.Commit());
  EXPECT_EQ(CurrentApp(root_), "v1");
  EXPECT_EQ(store.Active(), IdOf("v1"));
  EXPECT_EQ(store.Previous(), IdOf("v2"));
  ASSERT_TRUE(store.Rollback());
  ASSERT_TRUE(store.Commit());
  EXPECT_EQ(CurrentApp(root_), "v2");
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, RefusesARollbackWithoutAPreviousRelease) {
  auto store = OpenStore(root_);
  auto empty = store.Rollback();
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().rule, "rollback-no-previous");
  EXPECT_EQ(empty.error().code, ErrorCode::kNotFound);
  InstallAndActivate(store, "v1");
  auto first = store.Rollback();
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().rule, "rollback-no-previous");
  EXPECT_EQ(CurrentApp(root_), "v1");
}

TEST_F(AReleaseStore, RevertsAFailedActivationAndRecordsItFailed) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  InstallAndActivate(store, "v2");
  Install(store, "v3");
  ASSERT_TRUE(store.Activate(IdOf("v3")));
  EXPECT_EQ(CurrentApp(root_), "v3");
  ASSERT_TRUE(store.Revert(RevertMark::kRecordFailed, "agent health 503"));
  EXPECT_EQ(CurrentApp(root_), "v2");
  EXPECT_EQ(store.Active(), IdOf("v2"));
  EXPECT_EQ(store.Previous(), IdOf("v1"));  // previous unchanged by the automatic rollback
  ASSERT_EQ(store.Failed().size(), 1u);
  EXPECT_EQ(store.Failed()[0].id, IdOf("v3"));
  EXPECT_EQ(store.Failed()[0].cause, "agent health 503");
  EXPECT_EQ(store.Find(IdOf("v3"))->state, ReleaseState::kFailed);
  ExpectConsistent(root_);
}

// update-self's store: the daemon died after `current` moved and before the commit; the
// helper has started what `current` names, so the change is kept rather than reverted.
TEST_F(AReleaseStore, CommitsAnInterruptedActivationWhoseCurrentAlreadyMoved) {
  {
    auto store = OpenStore(root_);
    InstallAndActivate(store, "v1");
    Install(store, "v2");
    ASSERT_TRUE(store.Activate(IdOf("v2")));
  }  // the process dies here: state.json still holds the pending activation
  auto store = OpenStore(root_);
  ASSERT_TRUE(store.Pending());
  auto committed = store.CommitFlippedActivation();
  ASSERT_TRUE(committed) << committed.error().message;
  EXPECT_EQ(*committed, IdOf("v2"));
  EXPECT_FALSE(store.Pending());
  ASSERT_TRUE(store.Recover());
  EXPECT_EQ(CurrentApp(root_), "v2");
  EXPECT_EQ(store.Active(), IdOf("v2"));
  EXPECT_EQ(store.Previous(), IdOf("v1"));
  EXPECT_TRUE(store.Failed().empty());
  ExpectConsistent(root_);
}

// ... but one whose `current` had not moved yet (died right after the journal) is left to
// Recover(), which reverts it: `current` and the state agree on the old release.
TEST_F(AReleaseStore, LeavesAnInterruptedActivationWhoseCurrentDidNotMoveToRecover) {
  {
    auto store = OpenStore(root_);
    InstallAndActivate(store, "v1");
    Install(store, "v2");
    ASSERT_TRUE(store.Activate(IdOf("v2")));
  }
  fs::path current = fs::path(root_) / "current";
  fs::remove(current);
  fs::create_symlink("releases/" + IdOf("v1").str(), current);  // as before the flip
  auto store = OpenStore(root_);
  auto committed = store.CommitFlippedActivation();
  ASSERT_TRUE(committed) << committed.error().message;
  EXPECT_FALSE(committed->has_value());
  ASSERT_TRUE(store.Pending());
  auto recovered = store.Recover();
  ASSERT_TRUE(recovered) << recovered.error().message;
  EXPECT_TRUE(recovered->reverted);
  EXPECT_EQ(CurrentApp(root_), "v1");
  EXPECT_EQ(store.Active(), IdOf("v1"));
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, RevertsAFailedFirstInstallToNoRelease) {
  auto store = OpenStore(root_);
  Install(store, "v1");
  ASSERT_TRUE(store.Activate(IdOf("v1")));
  ASSERT_TRUE(store.Revert(RevertMark::kRecordFailed, "unhealthy"));
  EXPECT_FALSE(store.Active());
  EXPECT_FALSE(fs::exists(fs::symlink_status(fs::path(root_) / "current")));
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, RefusesToBeginACompleteReleaseSoTheCallerRedeploysIt) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  auto again = store.BeginRelease(IdOf("v1"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().rule, "store-release-complete");
  // Activating the active release is a redeploy: nothing moves, nothing pending.
  ASSERT_TRUE(store.Activate(IdOf("v1")));
  EXPECT_FALSE(store.Pending());
  EXPECT_EQ(CurrentApp(root_), "v1");
}

TEST_F(AReleaseStore, RefusesToActivateAnIncompleteOrUnknownRelease) {
  auto store = OpenStore(root_);
  ASSERT_TRUE(store.BeginRelease(IdOf("v1")));
  auto incomplete = store.Activate(IdOf("v1"));
  ASSERT_FALSE(incomplete);
  EXPECT_EQ(incomplete.error().rule, "store-release-unknown");
  auto unknown = store.Activate(IdOf("nope"));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().rule, "store-release-unknown");
}

TEST_F(AReleaseStore, RefusesASecondChangeWhileOneIsPending) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  Install(store, "v2");
  Install(store, "v3");
  ASSERT_TRUE(store.Activate(IdOf("v2")));
  auto second = store.Activate(IdOf("v3"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().rule, "store-pending");
  auto begin = store.BeginRelease(IdOf("v4"));
  ASSERT_FALSE(begin);
  EXPECT_EQ(begin.error().rule, "store-pending");
  auto none = OpenStore(root_).Commit();  // the journal is on disk
  ASSERT_TRUE(none);
}

TEST_F(AReleaseStore, RefusesCommitOrRevertWithNothingPending) {
  auto store = OpenStore(root_);
  EXPECT_EQ(store.Commit().error().rule, "store-no-pending");
  EXPECT_EQ(store.Revert(RevertMark::kKeepState, "").error().rule, "store-no-pending");
}

TEST_F(AReleaseStore, PrunesToTheNewestKeepingActiveAndPrevious) {
  auto store = OpenStore(root_, 3);
  InstallAndActivate(store, "v1");
  InstallAndActivate(store, "v2");
  Install(store, "v3");
  Install(store, "v4");
  Install(store, "v5");
  // Roll back, so the active and previous releases are the OLDEST ones.
  ASSERT_TRUE(store.Rollback());
  ASSERT_TRUE(store.Commit());
  auto pruned = store.Prune();
  ASSERT_TRUE(pruned) << pruned.error().message;
  std::set<ReleaseId> gone(pruned->begin(), pruned->end());
  EXPECT_EQ(gone, (std::set<ReleaseId>{IdOf("v3"), IdOf("v4")}));
  EXPECT_EQ(store.Releases().size(), 3u);
  EXPECT_TRUE(store.IsComplete(IdOf("v1")));
  EXPECT_TRUE(store.IsComplete(IdOf("v2")));
  EXPECT_TRUE(store.IsComplete(IdOf("v5")));
  EXPECT_FALSE(fs::exists(fs::path(root_) / "releases" / IdOf("v3").str()));
  EXPECT_EQ(CurrentApp(root_), "v1");
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, NeverPrunesActiveOrPreviousEvenAtTheMinimumKeep) {
  auto store = OpenStore(root_, 2);
  InstallAndActivate(store, "v1");
  InstallAndActivate(store, "v2");
  InstallAndActivate(store, "v3");
  auto pruned = store.Prune();
  ASSERT_TRUE(pruned);
  ASSERT_EQ(pruned->size(), 1u);
  EXPECT_EQ((*pruned)[0], IdOf("v1"));
  EXPECT_TRUE(store.IsComplete(IdOf("v3")));
  EXPECT_TRUE(store.IsComplete(IdOf("v2")));
  EXPECT_EQ(ReleaseStore::Open(root_, 1).error().rule, "store-keep");
}

TEST_F(AReleaseStore, RemovesIncompleteAndUnrecordedReleaseDirectories) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  ASSERT_TRUE(store.BeginRelease(IdOf("half")));
  fs::create_directories(fs::path(root_) / "releases" / "not-an-id" / "deep" / "er");
  fs::create_directories(fs::path(root_) / "releases" / IdOf("unrecorded").str());
  std::ofstream(fs::path(root_) / "releases" / IdOf("unrecorded").str() / ".decnet-complete")
      << "{}";
  auto removed = store.RemoveIncomplete();
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->size(), 3u);
  EXPECT_TRUE(store.IsComplete(IdOf("v1")));
  ExpectConsistent(root_);
}

TEST_F(AReleaseStore, RemovesIncompleteReleasesOnEveryCallNotOnlyTheFirst) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  ASSERT_TRUE(store.RemoveIncomplete());
  ASSERT_TRUE(store.BeginRelease(IdOf("half")));
  auto removed = store.RemoveIncomplete();
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->size(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(root_) / "releases" / IdOf("half").str()));
}

TEST_F(AReleaseStore, RefusesACompletionRecordShippedInTheTarball) {
  auto store = OpenStore(root_);
  auto dir = store.BeginRelease(IdOf("v1"));
  ASSERT_TRUE(dir);
  std::ofstream(fs::path(root_) / "releases" / IdOf("v1").str() / ".decnet-complete")
      << R"({"sha256":")" << DigestOf("v1") << "\"}";
  EXPECT_FALSE(store.IsComplete(IdOf("v1")));
  auto done = store.MarkComplete(IdOf("v1"), RecordFor("v1"));
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().rule, "store-completion-planted");
}

TEST_F(AReleaseStore, RefusesARecordWhoseDigestNamesAnotherRelease) {
  auto store = OpenStore(root_);
  ASSERT_TRUE(store.BeginRelease(IdOf("v1")));
  auto done = store.MarkComplete(IdOf("v1"), RecordFor("v2"));
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().rule, "store-record-digest");
}

TEST_F(AReleaseStore, DoesNotFollowASymlinkPlantedAtAReleaseDirectory) {
  std::string outside = MakeRoot();
  std::ofstream(fs::path(outside) / "precious") << "keep me";
  fs::create_directories(fs::path(root_) / "releases");
  fs::create_directory_symlink(outside, fs::path(root_) / "releases" / IdOf("v1").str());
  auto store = OpenStore(root_);
  EXPECT_FALSE(store.IsComplete(IdOf("v1")));
  auto dir = store.BeginRelease(IdOf("v1"));
  ASSERT_TRUE(dir) << dir.error().message;
  fs::path release = fs::path(root_) / "releases" / IdOf("v1").str();
  EXPECT_FALSE(fs::is_symlink(release));
  EXPECT_TRUE(fs::is_directory(release));
  EXPECT_EQ(ReadText(fs::path(outside) / "precious"), "keep me");
  fs::remove_all(outside);
}

TEST_F(AReleaseStore, DeletesALinkInsideARemovedReleaseWithoutFollowingIt) {
  std::string outside = MakeRoot();
  std::ofstream(fs::path(outside) / "precious") << "keep me";
  auto store = OpenStore(root_);
  ASSERT_TRUE(store.BeginRelease(IdOf("half")));
  fs::path release = fs::path(root_) / "releases" / IdOf("half").str();
  fs::create_directory_symlink(outside, release / "link");
  fs::create_directories(release / "a" / "b");
  fs::create_directory_symlink(outside, release / "a" / "b" / "link");
  auto removed = store.RemoveIncomplete();
  ASSERT_TRUE(removed);
  EXPECT_FALSE(fs::exists(fs::symlink_status(release)));
  EXPECT_EQ(ReadText(fs::path(outside) / "precious"), "keep me");
  fs::remove_all(outside);
}

TEST_F(AReleaseStore, RefusesACurrentThatIsNotASymlink) {
  auto store = OpenStore(root_);
  Install(store, "v1");
  fs::create_directory(fs::path(root_) / "current");
  std::ofstream(fs::path(root_) / "current" / "data") << "x";
  auto activated = store.Activate(IdOf("v1"));
  ASSERT_FALSE(activated);
  EXPECT_EQ(activated.error().rule, "store-current-not-symlink");
  auto recovered = store.Recover();
  ASSERT_FALSE(recovered);
  EXPECT_EQ(recovered.error().rule, "store-current-not-symlink");
  EXPECT_TRUE(fs::exists(fs::path(root_) / "current" / "data"));
}

TEST_F(AReleaseStore, RepointsACurrentThatPointsElsewhereWithoutFollowingIt) {
  std::string outside = MakeRoot();
  std::ofstream(fs::path(outside) / "precious") << "keep me";
  {
    auto store = OpenStore(root_);
    InstallAndActivate(store, "v1");
  }
  fs::remove(fs::path(root_) / "current");
  fs::create_directory_symlink(outside, fs::path(root_) / "current");
  auto store = OpenStore(root_);
  auto report = store.Recover();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_TRUE(report->current_repointed);
  EXPECT_EQ(CurrentApp(root_), "v1");
  EXPECT_EQ(ReadText(fs::path(outside) / "precious"), "keep me");
  fs::remove_all(outside);
}

TEST_F(AReleaseStore, RefusesAReleasesDirectoryThatIsASymlink) {
  std::string outside = MakeRoot();
  fs::create_directory_symlink(outside, fs::path(root_) / "releases");
  auto store = ReleaseStore::Open(root_);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().rule, "store-not-directory");
  fs::remove_all(outside);
}

TEST_F(AReleaseStore, RefusesACorruptOrUnknownStateFile) {
  const char* kBad[] = {
      "",
      "{",
      "[]",
      R"({"format":1})",
      R"({"format":2,"active":null,"previous":null,"next_seq":1,"pending":null,"failed":[],"releases":{}})",
      R"({"format":1,"active":"../etc","previous":null,"next_seq":1,"pending":null,"failed":[],"releases":{}})",
      R"({"format":1,"active":null,"previous":null,"next_seq":1,"pending":null,"failed":[],"releases":{},"x":1})",
      R"({"format":1,"active":null,"previous":null,"next_seq":1,"pending":{"op":"delete"},"failed":[],"releases":{}})",
      R"({"format":1,"active":null,"previous":null,"next_seq":1,"pending":null,"failed":[],"releases":{"0123456789abcdef":{}}})",
  };
  for (const char* text : kBad) {
    std::ofstream(fs::path(root_) / "state.json", std::ios::trunc) << text;
    auto store = ReleaseStore::Open(root_);
    ASSERT_FALSE(store) << text;
    EXPECT_EQ(store.error().rule, "store-state") << text;
  }
}

// ---- Crash simulations -------------------------------------------------------------------
//
// Each scenario sets up a store, then runs a state-changing operation in a forked child that
// _exit()s at the n-th crash point. The parent reopens, runs Recover(), and checks the
// invariant plus which releases may be active.

struct CrashScenario {
  const char* name;
  std::function<void(ReleaseStore&)> setup;
  std::function<void(ReleaseStore&)> operation;
  std::set<std::string> allowed_active;  // "" = no active release
  size_t keep = 3;
};

std::string ActiveName(const ReleaseStore& store, const std::vector<std::string>& names) {
  if (!store.Active()) return "";
  for (const auto& n : names) {
    if (IdOf(n) == *store.Active()) return n;
  }
  return "?";
}

class ACrashedStore : public AReleaseStore {
 protected:
  // Runs `scenario.operation` in a child; the child dies at crash point `crash_at` (0-based
  // count of hook calls) or, with crash_at = -1, reports every point's name on a pipe.
  static std::vector<std::string> RunChild(const std::string& root, const CrashScenario& scenario,
                                           int crash_at) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      auto store = ReleaseStore::Open(root, scenario.keep);
      if (!store) _exit(3);
      int count = 0;
      store->SetCrashHook([&](std::string_view point) {
        std::string line = std::string(point) + "\n";
        if (write(fds[1], line.data(), line.size()) < 0) _exit(4);
        if (count++ == crash_at) _exit(0);
      });
      scenario.operation(*store);
      _exit(testing::Test::HasFailure() ? 2 : 0);
    }
    close(fds[1]);
    std::string all;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << scenario.name;
    std::vector<std::string> points;
    size_t start = 0;
    for (size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
      points.push_back(all.substr(start, nl - start));
    }
    return points;
  }

  static void RunScenario(const CrashScenario& scenario) {
    const std::vector<std::string> names = {"v1", "v2", "v3", "v4", "v5", "new"};
    std::string probe_root = MakeRoot();
    {
      auto store = OpenStore(probe_root, scenario.keep);
      scenario.setup(store);
    }
    auto points = RunChild(probe_root, scenario, -1);
    fs::remove_all(probe_root);
    ASSERT_FALSE(points.empty()) << scenario.name;
    for (size_t i = 0; i < points.size(); ++i) {
      SCOPED_TRACE(std::string(scenario.name) + " crashed at " + points[i] + " (#" +
                   std::to_string(i) + ")");
      std::string root = MakeRoot();
      {
        auto store = OpenStore(root, scenario.keep);
        scenario.setup(store);
      }
      RunChild(root, scenario, static_cast<int>(i));
      auto store = OpenStore(root, scenario.keep);
      auto report = store.Recover();
      ASSERT_TRUE(report) << report.error().message;
      ExpectConsistent(root);
      std::string active = ActiveName(store, names);
      EXPECT_TRUE(scenario.allowed_active.contains(active)) << "active: " << active;
      EXPECT_EQ(CurrentApp(root), active);
      // The store is usable afterwards: the next update succeeds.
      auto next = std::string("next");
      Install(store, next);
      ASSERT_TRUE(store.Activate(IdOf(next)));
      ASSERT_TRUE(store.Commit());
      EXPECT_EQ(CurrentApp(root), next);
      fs::remove_all(root);
    }
  }
};

TEST_F(ACrashedStore, RecoversFromACrashAnywhereInAnInstall) {
  RunScenario({"install",
               [](ReleaseStore& s) { InstallAndActivate(s, "v1"); },
               [](ReleaseStore& s) { Install(s, "new"); },
               {"v1"}});
}

TEST_F(ACrashedStore, RevertsAnActivationInterruptedBeforeItsCommit) {
  RunScenario({"activate+commit",
               [](ReleaseStore& s) {
                 InstallAndActivate(s, "v1");
                 InstallAndActivate(s, "v2");
                 Install(s, "new");
               },
               [](ReleaseStore& s) {
                 ASSERT_TRUE(s.Activate(IdOf("new")));
                 ASSERT_TRUE(s.Commit());
               },
               {"v2", "new"}});
}

TEST_F(ACrashedStore, NeverKeepsAnActivationThatHadNoVerdict) {
  RunScenario({"activate (no verdict)",
               [](ReleaseStore& s) {
                 InstallAndActivate(s, "v1");
                 Install(s, "new");
               },
               [](ReleaseStore& s) { ASSERT_TRUE(s.Activate(IdOf("new"))); },
               {"v1"}});
}

TEST_F(ACrashedStore, CompletesOrUndoesAnAutomaticRollback) {
  RunScenario({"activate+revert",
               [](ReleaseStore& s) {
                 InstallAndActivate(s, "v1");
                 InstallAndActivate(s, "v2");
                 Install(s, "new");
               },
               [](ReleaseStore& s) {
                 ASSERT_TRUE(s.Activate(IdOf("new")));
                 ASSERT_TRUE(s.Revert(RevertMark::kRecordFailed, "gate failed"));
               },
               {"v2"}});
}

TEST_F(ACrashedStore, RecoversFromACrashInAFirstInstall) {
  RunScenario({"first install",
               [](ReleaseStore&) {},
               [](ReleaseStore& s) { InstallAndActivate(s, "new"); },
               {"", "new"}});
}

TEST_F(ACrashedStore, RecoversFromACrashInAManualRollback) {
  RunScenario({"rollback+commit",
               [](ReleaseStore& s) {
                 InstallAndActivate(s, "v1");
                 InstallAndActivate(s, "v2");
               },
               [](ReleaseStore& s) {
                 ASSERT_TRUE(s.Rollback());
                 ASSERT_TRUE(s.Commit());
               },
               {"v1", "v2"}});
}

TEST_F(ACrashedStore, RecoversFromACrashWhilePruning) {
  RunScenario({"prune",
               [](ReleaseStore& s) {
                 InstallAndActivate(s, "v1");
                 InstallAndActivate(s, "v2");
                 InstallAndActivate(s, "v3");
                 InstallAndActivate(s, "v4");
               },
               [](ReleaseStore& s) { ASSERT_TRUE(s.Prune()); },
               {"v4"},
               2});
}

TEST_F(ACrashedStore, RecordsAnInterruptedActivationAsFailed) {
  auto store = OpenStore(root_);
  InstallAndActivate(store, "v1");
  Install(store, "new");
  pid_t pid = fork();
  if (pid == 0) {
    store.SetCrashHook([](std::string_view point) {
      if (point == "current-flipped") _exit(0);
    });
    (void)store.Activate(IdOf("new"));
    _exit(1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(CurrentApp(root_), "new");  // the crash left the new code live
  auto reopened = OpenStore(root_);
  auto report = reopened.Recover();
  ASSERT_TRUE(report);
  ASSERT_TRUE(report->reverted);
  EXPECT_EQ(report->reverted->id, IdOf("new"));
  EXPECT_EQ(CurrentApp(root_), "v1");
  ASSERT_EQ(reopened.Failed().size(), 1u);
  EXPECT_EQ(reopened.Failed()[0].id, IdOf("new"));
  EXPECT_EQ(reopened.Find(IdOf("new"))->state, ReleaseState::kFailed);
}

}  // namespace
}  // namespace decnet::daemon
