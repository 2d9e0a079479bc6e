// Importing a release tree already on the host into the store (daemon/release_import.h), with
// a stand-in install command (the Python installer has its own tests; the adoption test runs
// it for real).
#include "daemon/release_import.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class AnImportedTree : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-import-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ / "store");
    config_.install_dir = (root_ / "store").string();
    // Stands for the install step: leaves a mark in the release directory only.
    config_.install_command = {"/bin/sh", "-c", "echo installed {version} > installed.txt"};
    config_.install_timeout_ms = 20'000;
  }
  void TearDown() override { fs::remove_all(root_); }

  // A DECNET slot: sources, DECNET's sidecar, an environment of its own, caches.
  fs::path Tree(const std::string& name, const std::string& version) {
    const fs::path t = root_ / name;
    Write(t / "pyproject.toml", "[project]\nname = \"decnet\"\nversion = \"" + version + "\"\n");
    Write(t / "decnet/__init__.py", "__version__ = \"" + version + "\"\n");
    Write(t / "decnet/tool.sh", "#!/bin/sh\n", 04775);
    Write(t / "decnet/__pycache__/x.pyc", "cache");
    Write(t / ".decnet-release.json",
          "{\"sha\": \"abc123" + version + "\", \"installed_at\": null}");
    Write(t / ".venv/bin/python", "not ours");
    return t;
  }

  ReleaseStore OpenStore() {
    auto store = ReleaseStore::Open(config_.install_dir);
    EXPECT_TRUE(store) << store.error().message;
    EXPECT_TRUE(store->Recover());
    return std::move(*store);
  }

  fs::path root_;
  DaemonConfig config_;
};

TEST_F(AnImportedTree, BecomesACompleteInstalledReleaseWithDecnetsCommitAsItsSha) {
  const fs::path tree = Tree("active", "1");
  ReleaseStore store = OpenStore();
  auto imported = ImportReleaseTree(config_, store, tree.string(), ImportSlot::kActive);
  ASSERT_TRUE(imported) << imported.error().rule << ": " << imported.error().message;
  EXPECT_FALSE(imported->already_present);
  EXPECT_EQ(imported->version, "abc1231");
  const fs::path dir = root_ / "store/releases" / imported->id.str();
  EXPECT_TRUE(store.IsComplete(imported->id));
  EXPECT_EQ(store.Active(), imported->id);
  EXPECT_EQ(fs::read_symlink(root_ / "store/current"), fs::path("releases") / imported->id.str());
  EXPECT_EQ(Slurp(dir / "installed.txt"), "installed abc1231\n");
  EXPECT_EQ(Slurp(dir / "decnet/__init__.py"), "__version__ = \"1\"\n");
  auto record = store.Find(imported->id);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->sha, "abc1231");
  EXPECT_EQ(record->sha256, imported->digest);
}

TEST_F(AnImportedTree, LeavesOutTheSidecarTheOldEnvironmentCachesAndSetIdBits) {
  const fs::path tree = Tree("active", "1");
  ASSERT_EQ(::symlink("/etc/shadow", (tree / "decnet/link").c_str()), 0);
  ReleaseStore store = OpenStore();
  auto imported = ImportReleaseTree(config_, store, tree.string(), ImportSlot::kActive);
  ASSERT_TRUE(imported) << imported.error().message;
  const fs::path dir = root_ / "store/releases" / imported->id.str();
  EXPECT_FALSE(fs::exists(dir / ".decnet-release.json"));
  EXPECT_FALSE(fs::exists(dir / ".venv/bin/python"));
  EXPECT_FALSE(fs::exists(dir / "decnet/__pycache__"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir / "decnet/link")));
  EXPECT_EQ(imported->skipped_links, 1u);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "decnet/tool.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((dir / "pyproject.toml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(AnImportedTree, ImportedPreviousThenActiveFillsBothSlots) {
  ReleaseStore store = OpenStore();
  auto prev = ImportReleaseTree(config_, store, Tree("prev", "1").string(), ImportSlot::kPrevious);
  ASSERT_TRUE(prev) << prev.error().message;
  auto active =
      ImportReleaseTree(config_, store, Tree("active", "2").string(), ImportSlot::kActive);
  ASSERT_TRUE(active) << active.error().message;
  EXPECT_EQ(store.Active(), active->id);
  EXPECT_EQ(store.Previous(), prev->id);
  EXPECT_NE(active->id, prev->id);
}

TEST_F(AnImportedTree, ImportedAgainChangesNothing) {
  ReleaseStore store = OpenStore();
  const fs::path p = Tree("prev", "1"), a = Tree("active", "2");
  ASSERT_TRUE(ImportReleaseTree(config_, store, p.string(), ImportSlot::kPrevious));
  ASSERT_TRUE(ImportReleaseTree(config_, store, a.string(), ImportSlot::kActive));
  const std::string state = Slurp(root_ / "store/state.json");
  auto again_prev = ImportReleaseTree(config_, store, p.string(), ImportSlot::kPrevious);
  auto again_active = ImportReleaseTree(config_, store, a.string(), ImportSlot::kActive);
  ASSERT_TRUE(again_prev) << again_prev.error().message;
  ASSERT_TRUE(again_active) << again_active.error().message;
  EXPECT_TRUE(again_prev->already_present);
  EXPECT_TRUE(again_active->already_present);
  EXPECT_EQ(Slurp(root_ / "store/state.json"), state);
}

TEST_F(AnImportedTree, AsPreviousAfterAnotherActiveIsRefusedNamingTheOrder) {
  ReleaseStore store = OpenStore();
  ASSERT_TRUE(ImportReleaseTree(config_, store, Tree("active", "2").string(), ImportSlot::kActive));
  auto prev = ImportReleaseTree(config_, store, Tree("prev", "1").string(), ImportSlot::kPrevious);
  ASSERT_FALSE(prev);
  EXPECT_EQ(prev.error().rule, "import-order");
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ / "store/releases"), {}), 1);
}

TEST_F(AnImportedTree, WhoseInstallFailsLeavesNoReleaseAndCarriesTheOutput) {
  config_.install_command = {"/bin/sh", "-c", "echo no wheel for frobnicate >&2; exit 3"};
  ReleaseStore store = OpenStore();
  auto imported =
      ImportReleaseTree(config_, store, Tree("active", "1").string(), ImportSlot::kActive);
  ASSERT_FALSE(imported);
  EXPECT_EQ(imported.error().rule, "install-failed");
  EXPECT_NE(imported.error().message.find("no wheel for frobnicate"), std::string::npos);
  EXPECT_FALSE(store.Active());
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ / "store/releases"), {}), 0);
}

TEST_F(AnImportedTree, WithAFifoIsRefused) {
  const fs::path tree = Tree("active", "1");
  ASSERT_EQ(::mkfifo((tree / "decnet/pipe").c_str(), 0644), 0);
  ReleaseStore store = OpenStore();
  auto imported = ImportReleaseTree(config_, store, tree.string(), ImportSlot::kActive);
  ASSERT_FALSE(imported);
  EXPECT_EQ(imported.error().rule, "import-special-file");
  EXPECT_FALSE(store.Active());
}

TEST_F(AnImportedTree, ThatIsMissingIsRefused) {
  ReleaseStore store = OpenStore();
  auto imported = ImportReleaseTree(config_, store, (root_ / "nope").string(), ImportSlot::kActive);
  ASSERT_FALSE(imported);
  EXPECT_EQ(imported.error().rule, "import-source");
}

// The digest covers every copied entry and nothing skipped.
struct DigestRow {
  const char* name;
  const char* path;  // written (or changed) after the first digest
  bool changes;
};

class ATreeDigest : public AnImportedTree, public ::testing::WithParamInterface<DigestRow> {};

TEST_P(ATreeDigest, ChangesExactlyWhenACopiedEntryChanges) {
  const fs::path tree = Tree("t", "1");
  auto before = DigestReleaseTree(tree.string());
  ASSERT_TRUE(before);
  Write(tree / GetParam().path, "changed");
  auto after = DigestReleaseTree(tree.string());
  ASSERT_TRUE(after);
  EXPECT_EQ(before->sha256 != after->sha256, GetParam().changes) << GetParam().path;
}

INSTANTIATE_TEST_SUITE_P(Rows, ATreeDigest,
                         ::testing::Values(DigestRow{"source", "decnet/__init__.py", true},
                                           DigestRow{"new_file", "decnet/new.py", true},
                                           DigestRow{"nested_venv_dir", "decnet/venv/x", true},
                                           DigestRow{"sidecar", ".decnet-release.json", false},
                                           DigestRow{"old_env", ".venv/bin/python", false},
                                           DigestRow{"shared_env", "venv/bin/python", false},
                                           DigestRow{"cache", "decnet/__pycache__/x.pyc", false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TheImportMode, IsRecognisedOnlyByItsFirstArgument) {
  const char* yes[] = {"decnet-updaterd", "--import-release", "/x"};
  const char* eq[] = {"decnet-updaterd", "--import-release=/x"};
  const char* no[] = {"decnet-updaterd", "--config", "/c", "--import-release", "/x"};
  const char* none[] = {"decnet-updaterd"};
  EXPECT_TRUE(IsImportReleaseInvocation(3, yes));
  EXPECT_TRUE(IsImportReleaseInvocation(2, eq));
  EXPECT_FALSE(IsImportReleaseInvocation(5, no));
  EXPECT_FALSE(IsImportReleaseInvocation(1, none));
}

TEST(TheImportMode, RefusesMissingOrUnknownArguments) {
  const char* no_slot[] = {"decnet-updaterd", "--import-release", "/x"};
  const char* bad_slot[] = {"decnet-updaterd", "--import-release", "/x", "--slot", "prev"};
  const char* unknown[] = {"decnet-updaterd", "--import-release", "/x", "--slot", "active", "--y"};
  EXPECT_EQ(RunImportRelease(3, no_slot), 2);
  EXPECT_EQ(RunImportRelease(5, bad_slot), 2);
  EXPECT_EQ(RunImportRelease(6, unknown), 2);
}

}  // namespace
}  // namespace decnet::daemon
