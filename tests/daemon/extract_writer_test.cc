// The TreeWriter on its own, fed operations the archive parser would never let through: paths
// with "..", absolute paths, and a destination whose directories were swapped for symlinks
// after the writer made them. Whatever the parser misses, nothing may be written outside the
// destination and nothing may be written through a symlink.
#include "daemon/extract_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;

// A throw-away tree: root/dest (where the writer writes) and root/outside (a sibling that
// must never change), with one file in the sibling.
class AWriterBeneathItsDestination : public ::testing::Test {
 protected:
  AWriterBeneathItsDestination() {
    std::string pattern = (fs::temp_directory_path() / "extract-writer-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp");
    root_ = pattern;
    dest_ = root_ / "dest";
    outside_ = root_ / "outside";
    fs::create_directory(dest_);
    fs::create_directory(outside_);
    std::ofstream(outside_ / "keep") << "untouched";
    dest_fd_ = open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dest_fd_ < 0) throw std::runtime_error("open dest");
    outside_before_ = Snapshot(outside_);
  }
  ~AWriterBeneathItsDestination() override {
    if (dest_fd_ >= 0) close(dest_fd_);
    std::error_code ec;
    fs::remove_all(root_, ec);  // never follows symlinks
  }

  // Every entry below `dir`: its relative path, type and size (symlinks are not followed).
  static std::map<std::string, std::string> Snapshot(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      const auto status = e.symlink_status();
      std::string what = std::to_string(static_cast<int>(status.type()));
      if (status.type() == fs::file_type::regular) what += ":" + std::to_string(e.file_size());
      out[fs::relative(e.path(), dir).string()] = what;
    }
    return out;
  }

  static WriteBatch MakeDirectoryBatch(const std::string& path) {
    WriteBatch b;
    b.ops.push_back(WriteOp{WriteOpKind::kMakeDirectory, 0, 0, 0, path});
    return b;
  }

  // One whole file: create, append its bytes, close.
  static WriteBatch FileBatch(const std::string& path, const std::string& content = "payload") {
    WriteBatch b;
    b.bytes.assign(content.begin(), content.end());
    b.ops.push_back(WriteOp{WriteOpKind::kCreateFile, 0644, 0, 0, path});
    b.ops.push_back(WriteOp{WriteOpKind::kAppend, 0, 0, content.size(), path});
    b.ops.push_back(WriteOp{WriteOpKind::kCloseFile, 0, 0, 0, path});
    return b;
  }

  void ExpectOutsideUntouched() const {
    EXPECT_EQ(Snapshot(outside_), outside_before_);
    // Nothing new next to dest/ and outside/ either (a ".." that climbed one level too far).
    std::vector<std::string> top;
    for (const auto& e : fs::directory_iterator(root_)) top.push_back(e.path().filename());
    std::sort(top.begin(), top.end());
    EXPECT_EQ(top, (std::vector<std::string>{"dest", "outside"}));
  }

  fs::path root_, dest_, outside_;
  int dest_fd_ = -1;
  std::map<std::string, std::string> outside_before_;
};

TEST_F(AWriterBeneathItsDestination, WritesAnOrdinaryTree) {
  // Positive control: the fixture and the batches are right, so refusals below are refusals.
  TreeWriter writer(dest_fd_, Durability::kFsyncEachFile);
  ASSERT_TRUE(writer.Apply(MakeDirectoryBatch("a/b")).has_value());
  ASSERT_TRUE(writer.Apply(FileBatch("a/b/f")).has_value());
  ASSERT_TRUE(writer.Apply(FileBatch("c/g")).has_value());  // implicit parent
  ASSERT_TRUE(writer.Finish().has_value());
  EXPECT_TRUE(fs::is_regular_file(dest_ / "a/b/f"));
  EXPECT_EQ(fs::file_size(dest_ / "c/g"), 7u);
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, RefusesAFileThroughADirectorySwappedForASymlinkToOutside) {
  TreeWriter writer(dest_fd_, Durability::kNotDurable);
  ASSERT_TRUE(writer.Apply(MakeDirectoryBatch("a")).has_value());
  // Between two batches, "a" becomes a symlink to the sibling (absolute and relative forms).
  fs::remove(dest_ / "a");
  fs::create_directory_symlink(outside_, dest_ / "a");
  fs::create_directory_symlink("../outside", dest_ / "r");
  for (const std::string path : {"a/x", "r/x", "a/new/x", "r/new/x"}) {
    auto r = writer.Apply(FileBatch(path));
    ASSERT_FALSE(r.has_value()) << path;
    EXPECT_EQ(r.error().rule, "extract-io") << path;
  }
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, RefusesAFileThroughASymlinkThatStaysInsideTheDestination) {
  // Beneath-only resolution would allow this one: the symlink itself is the refusal.
  TreeWriter writer(dest_fd_, Durability::kNotDurable);
  ASSERT_TRUE(writer.Apply(MakeDirectoryBatch("real")).has_value());
  fs::create_directory_symlink("real", dest_ / "alias");
  auto r = writer.Apply(FileBatch("alias/x"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().rule, "extract-io");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "real/x")));
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, RefusesFilesThatClimbOutOrAreAbsolute) {
  TreeWriter writer(dest_fd_, Durability::kNotDurable);
  const std::vector<std::string> paths = {
      "../outside/x",
      "../escaped",
      "a/../../outside/x",
      "./../outside/x",
      "../outside/newdir/x",
      outside_.string() + "/x",
      (root_ / "escaped").string(),
  };
  for (const auto& path : paths) {
    auto r = writer.Apply(FileBatch(path));
    ASSERT_FALSE(r.has_value()) << path;
    EXPECT_EQ(r.error().rule, "extract-io") << path;
  }
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, RefusesDirectoriesThatClimbOutOrAreAbsolute) {
  TreeWriter writer(dest_fd_, Durability::kNotDurable);
  const std::vector<std::string> paths = {
      "../outside/newdir",
      "../newdir",
      "a/../../outside/newdir",
      outside_.string() + "/newdir",
  };
  for (const auto& path : paths) {
    auto r = writer.Apply(MakeDirectoryBatch(path));
    ASSERT_FALSE(r.has_value()) << path;
    EXPECT_EQ(r.error().rule, "extract-io") << path;
  }
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, RefusesADirectoryBelowADirectorySwappedForASymlink) {
  // Two locks hold here: O_NOFOLLOW on each component and the resolve flags; either suffices.
  TreeWriter writer(dest_fd_, Durability::kNotDurable);
  ASSERT_TRUE(writer.Apply(MakeDirectoryBatch("a")).has_value());
  fs::remove(dest_ / "a");
  fs::create_directory_symlink(outside_, dest_ / "a");
  auto r = writer.Apply(MakeDirectoryBatch("a/newdir"));
  ASSERT_FALSE(r.has_value());
  ExpectOutsideUntouched();
}

TEST_F(AWriterBeneathItsDestination, DoesNotFollowASwappedDirectoryWhenMakingItDurable) {
  TreeWriter writer(dest_fd_, Durability::kFsyncEachFile);
  ASSERT_TRUE(writer.Apply(MakeDirectoryBatch("a")).has_value());
  fs::remove(dest_ / "a");
  fs::create_directory_symlink(outside_, dest_ / "a");
  auto r = writer.Finish();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().rule, "extract-io");
  ExpectOutsideUntouched();
}

}  // namespace
}  // namespace decnet::daemon
