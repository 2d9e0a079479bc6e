// The release store on a real, small file system (a tmpfs with a size and an inode limit, in a
// private mount namespace), with real updates through the update pipeline: the disk runs out of
// space or inodes at each phase of an update (extraction, the install command, the completion
// record, state.json when the release is recorded, when it is activated, when it is committed,
// when old releases are pruned). After each failure, without a restart: the store's listing
// and the directories on disk agree, state.json names the same releases, no temp file is left,
// the failed release is not listed as kept and ready, `current` has not moved (or is back);
// then the space is freed and the next update succeeds and prunes normally.
//
// Needs root (CAP_SYS_ADMIN) for the mount; skipped otherwise.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>

#include "daemon/update_pipeline.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using test::Tarball;

// Whether this process could make itself a private mount namespace (once, for the suite).
bool PrivateMounts(std::string* why) {
  static const std::string failure = [] {
    if (geteuid() != 0) return std::string("not root");
    if (unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + strerror(errno);
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return std::string("make / private: ") + strerror(errno);
    }
    return std::string();
  }();
  *why = failure;
  return failure.empty();
}

// Fills the small file system from a directory of its own, and frees it again.
class Filler {
 public:
  explicit Filler(std::string dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  // Takes every free block (a file written until ENOSPC); the inodes stay free.
  void TakeSpace() {
    const std::string path = dir_ + "/space-" + std::to_string(files_++);
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0) << strerror(errno);
    const std::string chunk(1 << 16, 'f');
    for (size_t size = chunk.size(); size > 0; size /= 2) {
      while (write(fd, chunk.data(), size) == static_cast<ssize_t>(size)) {
      }
    }
    close(fd);
  }
  // Takes every free inode (empty files until ENOSPC); blocks stay as they are.
  void TakeInodes() {
    for (;;) {
      const std::string path = dir_ + "/inode-" + std::to_string(files_++);
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) break;
      close(fd);
    }
  }
  void TakeAll() {
    TakeSpace();
    TakeInodes();
  }
  void Free() {
    for (const auto& e : fs::directory_iterator(dir_)) fs::remove(e.path());
  }

 private:
  std::string dir_;
  int files_ = 0;
};

class AStoreOnAFullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!PrivateMounts(&why)) GTEST_SKIP() << "needs a private mount namespace: " << why;
    char tmpl[] = "/tmp/decnet-full-disk-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    ASSERT_EQ(mount("tmpfs", mount_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                    "size=8m,nr_inodes=400,mode=0755"),
              0)
        << strerror(errno);
    mounted_ = true;
    install_ = test::LayOutHost(dirs_, mount_, config_, test::SelfUpdate::kOff);
    filler_.emplace(mount_ + "/filler");
    config_.units = {"decnet-agent.service"};
    config_.links = {{"decnet", "venv/bin/decnet"}};
    // The agent's unit is installed (the releases here ship none): it restarts as configured.
    ASSERT_TRUE(test::InstallOperatorUnit(
        dirs_, "decnet-agent.service",
        test::OperatorUnit("agent", "/opt/decnet/current/venv/bin/decnet agent")));
    ASSERT_NO_FATAL_FAILURE(stack_.Open(dirs_, config_));
  }
  void TearDown() override {
    stack_.Close();
    if (mounted_) umount2(mount_.c_str(), MNT_DETACH);
    if (!mount_.empty()) rmdir(mount_.c_str());
  }

  // A release of 12 files of 32 KiB each (incompressible) and its version marker.
  Tarball Pack(const std::string& version) {
    std::string tree = dirs_.root() + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/venv/bin");
    fs::create_directories(tree + "/venv/lib");
    std::ofstream(tree + "/VERSION") << version << "\n";
    std::ofstream(tree + "/venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    std::mt19937 rng(packed_);
    for (int i = 0; i < 12; ++i) {
      std::string bytes(32 * 1024, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng());
      std::ofstream(tree + "/venv/lib/m" + std::to_string(i) + ".so") << bytes;
    }
    return test::PackTree(tree);
  }
  // One update as the API runs it: the operation (which prunes), then the background
  // deletion of what it pruned, awaited so each test sees the space it frees.
  ApiAnswer Push(const Tarball& t) {
    int fd = ::open(t.path.c_str(), O_RDONLY | O_CLOEXEC);
    ApiAnswer a =
        stack_.pipeline->Update({"fp", "decnet-master"}, {fd, t.size, t.sha256, std::nullopt});
    ::close(fd);
    (void)stack_.pipeline->WaitForPruning();
    return a;
  }
  // Runs `fill` when the pipeline reaches step `step` (once).
  void FillAtStep(std::string step, std::function<void()> fill) {
    stack_.pipeline->SetStepHook(
        [step = std::move(step), fill = std::move(fill)](std::string_view s) mutable {
          if (s == step && fill) std::exchange(fill, nullptr)();
        });
  }
  // Runs `fill` when the store reaches its point `point` (once).
  void FillAtStorePoint(std::string point, std::function<void()> fill) {
    stack_.store->SetCrashHook(
        [point = std::move(point), fill = std::move(fill)](std::string_view p) mutable {
          if (p == point && fill) std::exchange(fill, nullptr)();
        });
  }
  void ClearHooks() {
    stack_.pipeline->SetStepHook(nullptr);
    stack_.store->SetCrashHook(nullptr);
  }

  static std::string Id(const Tarball& t) { return t.sha256.substr(0, 16); }
  std::string Current() {
    std::error_code ec;
    return fs::read_symlink(install_ + "/current", ec).string();
  }
  std::set<std::string> Directories() {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(install_ + "/releases")) {
      out.insert(e.path().filename().string());
    }
    return out;
  }
  std::set<std::string> Listed() {
    std::set<std::string> out;
    for (const auto& e : stack_.store->Releases()) out.insert(e.id.str());
    return out;
  }
  // The releases state.json names, read by a second store on the same root.
  std::set<std::string> InStateJson() {
    auto other = ReleaseStore::Open(install_);
    EXPECT_TRUE(other) << other.error().message;
    std::set<std::string> out;
    if (other) {
      for (const auto& e : other->Releases()) out.insert(e.id.str());
    }
    return out;
  }
  std::vector<std::string> TempFiles() {
    std::vector<std::string> out;
    for (auto it = fs::recursive_directory_iterator(install_);
         it != fs::recursive_directory_iterator(); ++it) {
      if (it->path().extension() == ".tmp") out.push_back(it->path().string());
    }
    return out;
  }
  std::string ListedState(const std::string& id) {
    for (const auto& r : stack_.pipeline->Releases()) {
      if (r["id"] == id) return r["slot"].get<std::string>() + "/" + r["state"].get<std::string>();
    }
    return "absent";
  }

  // What must hold after any failed update, without a restart.
  void ExpectConsistentAfterFailure(const Tarball& failed, const std::string& current_before) {
    SCOPED_TRACE("after the failure");
    EXPECT_EQ(Listed(), Directories()) << "the listing and the directories disagree";
    EXPECT_EQ(InStateJson(), Listed()) << "state.json and the listing disagree";
    EXPECT_TRUE(TempFiles().empty()) << "left behind: " << ::testing::PrintToString(TempFiles());
    const std::string state = ListedState(Id(failed));
    EXPECT_TRUE(state == "absent" || state.ends_with("/failed"))
        << "the failed release is listed as " << state;
    EXPECT_EQ(Current(), current_before) << "`current` moved";
    EXPECT_EQ(ListedState(current_before.substr(current_before.find('/') + 1)), "active/ready");
    EXPECT_FALSE(stack_.store->Pending().has_value());
  }

  // Frees the disk; the next update succeeds, and the store prunes to keep_releases.
  void ExpectTheNextUpdateSucceedsAndPrunes() {
    SCOPED_TRACE("after freeing the disk");
    ClearHooks();
    filler_->Free();
    auto next = Pack("next-" + std::to_string(packed_));
    auto a = Push(next);
    ASSERT_EQ(a.status, 200u) << a.body.dump();
    EXPECT_EQ(Current(), "releases/" + Id(next));
    EXPECT_EQ(Listed(), Directories());
    EXPECT_EQ(InStateJson(), Listed());
    EXPECT_LE(Directories().size(), kDefaultKeepReleases);
    EXPECT_TRUE(TempFiles().empty());
  }

  // Three releases installed, the third active: the oldest is the next to be pruned.
  void InstallThree() {
    for (const char* v : {"1.0", "2.0", "3.0"}) {
      auto t = Pack(v);
      auto a = Push(t);
      ASSERT_EQ(a.status, 200u) << v << ": " << a.body.dump();
      installed_.push_back(t);
    }
    ASSERT_EQ(Directories().size(), 3u);
  }

  test::TestDirs dirs_;
  std::string mount_;
  bool mounted_ = false;
  std::string install_;
  std::optional<Filler> filler_;
  DaemonConfig config_;
  // Always healthy: a full disk is the only thing that goes wrong here.
  test::ServedStack<test::HealthyGate> stack_;
  std::vector<Tarball> installed_;
  int packed_ = 0;
};

struct FullDiskCase {
  std::string name;
  std::string phase;  // pipeline step, or "store:<point>" for a point of the store
  std::function<void(Filler&)> fill;
  unsigned status;   // the answer
  std::string rule;  // its rule
  bool install_command = false;
};

std::ostream& operator<<(std::ostream& os, const FullDiskCase& c) { return os << c.name; }

class AnUpdateOnAFullDisk : public AStoreOnAFullDisk,
                            public ::testing::WithParamInterface<FullDiskCase> {};

TEST_P(AnUpdateOnAFullDisk, LeavesRecordsAndDirectoriesAgreeingWithoutARestart) {
  const FullDiskCase& c = GetParam();
  ASSERT_NO_FATAL_FAILURE(InstallThree());
  const std::string current_before = Current();
  if (c.install_command) {
    config_.install_command = {"/bin/sh", "-c", "head -c 262144 /dev/urandom > built"};
  }
  auto failing = Pack("4.0");
  Filler& filler = *filler_;
  auto fill = [&filler, f = c.fill] { f(filler); };
  if (c.phase.starts_with("store:")) {
    FillAtStorePoint(c.phase.substr(6), fill);
  } else {
    FillAtStep(c.phase, fill);
  }
  auto a = Push(failing);
  EXPECT_EQ(a.status, c.status) << a.body.dump();
  EXPECT_EQ(a.body["detail"]["rule"], c.rule) << a.body.dump();
  ExpectConsistentAfterFailure(failing, current_before);
  config_.install_command.clear();
  ExpectTheNextUpdateSucceedsAndPrunes();
}

std::vector<FullDiskCase> Cases() {
  auto space = [](Filler& f) { f.TakeSpace(); };
  auto inodes = [](Filler& f) { f.TakeInodes(); };
  auto all = [](Filler& f) { f.TakeAll(); };
  return {
      {"ExtractionOutOfSpace", "extracting", space, 500, "extract-io"},
      {"ExtractionOutOfInodes", "extracting", inodes, 500, "extract-io"},
      {"InstallCommandOutOfSpace", "installing", space, 500, "install-failed", true},
      {"CompletionRecordOutOfInodes", "extracted", inodes, 500, "store-io"},
      {"StateJsonOutOfInodesWhenRecorded", "store:complete-recorded", inodes, 500, "store-io"},
      {"StateJsonOutOfSpaceWhenRecorded", "store:complete-recorded", space, 500, "store-io"},
      {"StateJsonOutOfEverythingWhenRecorded", "store:complete-recorded", all, 500, "store-io"},
      {"StateJsonOutOfSpaceWhenActivated", "complete", space, 500, "store-io"},
      {"StateJsonOutOfInodesWhenActivated", "complete", inodes, 500, "store-io"},
      {"StateJsonOutOfSpaceWhenCommitted", "restarted", space, 409, "store-io"},
      {"StateJsonOutOfEverythingWhenCommitted", "restarted", all, 409, "store-io"},
  };
}

INSTANTIATE_TEST_SUITE_P(Phases, AnUpdateOnAFullDisk, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<FullDiskCase>& info) {
                           return info.param.name;
                         });

// The update itself succeeds; the disk is full when the oldest release is pruned after the
// answer, so state.json cannot be rewritten first: the directory goes, then the record.
TEST_F(AStoreOnAFullDisk, PrunesTheOldestReleaseEvenWhenStateJsonCannotBeRewritten) {
  ASSERT_NO_FATAL_FAILURE(InstallThree());
  auto fourth = Pack("4.0");
  FillAtStep("committed", [this] { filler_->TakeAll(); });
  auto a = Push(fourth);
  ASSERT_EQ(a.status, 200u) << a.body.dump();
  EXPECT_EQ(Current(), "releases/" + Id(fourth));
  EXPECT_FALSE(Directories().contains(Id(installed_[0]))) << "the oldest release was not pruned";
  EXPECT_EQ(Listed(), Directories()) << "the listing and the directories disagree";
  EXPECT_EQ(InStateJson(), Listed()) << "state.json and the listing disagree";
  EXPECT_TRUE(TempFiles().empty()) << ::testing::PrintToString(TempFiles());
  ExpectTheNextUpdateSucceedsAndPrunes();
}

// A release directory no record names (what a failure used to leave) is deleted by the next
// prune, not only at the next start.
TEST_F(AStoreOnAFullDisk, DeletesAnUnrecordedDirectoryAtTheNextPrune) {
  ASSERT_NO_FATAL_FAILURE(InstallThree());
  fs::create_directories(install_ + "/releases/0123456789abcdef/venv");
  std::ofstream(install_ + "/releases/0123456789abcdef/venv/x") << "left";
  auto fourth = Pack("4.0");
  ASSERT_EQ(Push(fourth).status, 200u);
  EXPECT_FALSE(Directories().contains("0123456789abcdef"));
  EXPECT_EQ(Listed(), Directories());
}

}  // namespace
}  // namespace decnet::daemon
