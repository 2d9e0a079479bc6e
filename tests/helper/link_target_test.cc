// repoint_link's target, resolved beneath a descriptor of the prefix (helper/link_target.cc):
// the daemon's symlinks lead nowhere, and a root-only directory answers the same whether
// what the daemon asks about exists or not.
#include "helper/link_target.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

namespace fs = std::filesystem;

class AReleaseTree : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(Prefix() + "/bin");
    { std::ofstream(Prefix() + "/bin/decnet") << "#!/bin/sh\n"; }
    fs::create_directories(Prefix() + "/private");
    { std::ofstream(Prefix() + "/private/key") << "secret"; }
    ::chmod((Prefix() + "/private").c_str(), 0700);
    fs::create_directories(dirs_.root() + "/rootonly");
    { std::ofstream(dirs_.root() + "/rootonly/exists") << "x"; }
    ::chmod((dirs_.root() + "/rootonly").c_str(), 0700);
  }
  std::string Prefix() const { return dirs_.root() + "/opt/current"; }
  Result<void> Resolve(const std::string& target, const std::string& prefix = "") {
    return ResolveLinkTarget(*AbsPath::Parse(prefix.empty() ? Prefix() : prefix),
                             *AbsPath::Parse(target));
  }
  static std::string Rule(const Result<void>& r) { return r ? "ok" : r.error().rule; }
  test::TestDirs dirs_;
};

TEST_F(AReleaseTree, AcceptsAFileOrDirectoryReachedWithoutASymlink) {
  EXPECT_EQ(Rule(Resolve(Prefix() + "/bin/decnet")), "ok");
  EXPECT_EQ(Rule(Resolve(Prefix() + "/bin")), "ok");
  EXPECT_EQ(Rule(Resolve(Prefix())), "ok");
}

TEST_F(AReleaseTree, ReportsAMissingTargetAsNotFound) {
  auto r = Resolve(Prefix() + "/bin/nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().rule, "link-target-missing");
  EXPECT_EQ(Rule(Resolve(Prefix() + "/nope/deeper")), "link-target-missing");
}

TEST_F(AReleaseTree, NeverFollowsASymlinkOutOfTheTree) {
  fs::create_directory_symlink(dirs_.root() + "/rootonly", Prefix() + "/escape");
  fs::create_directory_symlink("/etc", Prefix() + "/etc");
  fs::create_symlink("../../rootonly/exists", Prefix() + "/bin/relative");
  fs::create_symlink("decnet", Prefix() + "/bin/inside");
  for (const std::string& target :
       {Prefix() + "/escape/exists", Prefix() + "/escape/missing", Prefix() + "/etc/shadow",
        Prefix() + "/etc/no-such-file", Prefix() + "/bin/relative", Prefix() + "/bin/inside",
        Prefix() + "/escape"}) {
    EXPECT_EQ(Rule(Resolve(target)), "link-target-symlink") << target;
  }
}

TEST_F(AReleaseTree, AnswersTheSameForExistingAndMissingNamesInAPrivateDirectory) {
  EXPECT_EQ(Rule(Resolve(Prefix() + "/private/key")), "link-target-private");
  EXPECT_EQ(Rule(Resolve(Prefix() + "/private/none")), "link-target-private");
  // A prefix the daemon pointed at a root-only directory: nothing inside it is probed.
  const std::string pivot = dirs_.root() + "/opt/pivot";
  fs::create_directory_symlink(dirs_.root() + "/rootonly", pivot);
  EXPECT_EQ(Rule(Resolve(pivot + "/exists", pivot)), "link-target-private");
  EXPECT_EQ(Rule(Resolve(pivot + "/missing", pivot)), "link-target-private");
}

TEST_F(AReleaseTree, RefusesATargetThatIsNeitherAFileNorADirectory) {
  ASSERT_EQ(::mkfifo((Prefix() + "/bin/fifo").c_str(), 0644), 0);
  EXPECT_EQ(Rule(Resolve(Prefix() + "/bin/fifo")), "link-target-kind");
}

}  // namespace
}  // namespace decnet::helper
