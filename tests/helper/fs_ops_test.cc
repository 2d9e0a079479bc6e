#include "helper/fs_ops.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

class AUnitDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = ::open(dirs_.units().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }
  std::string Slurp(const std::string& name) {
    std::ifstream in(dirs_.units() + "/" + name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  test::TestDirs dirs_;
  int fd_ = -1;
};

TEST_F(AUnitDirectory, WritesAFileAtomicallyWithItsMode) {
  ASSERT_TRUE(AtomicWriteFile(fd_, "a.service", "one", 0644));
  ASSERT_TRUE(AtomicWriteFile(fd_, "a.service", "two", 0644));
  EXPECT_EQ(Slurp("a.service"), "two");
  struct stat st {};
  ASSERT_EQ(::stat((dirs_.units() + "/a.service").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  // No temporary file is left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dirs_.units())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(AUnitDirectory, ReplacesASymlinkRatherThanWritingThroughIt) {
  std::string victim = dirs_.root() + "/victim";
  { std::ofstream(victim) << "precious"; }
  ASSERT_EQ(::symlink(victim.c_str(), (dirs_.units() + "/a.service").c_str()), 0);
  ASSERT_TRUE(AtomicWriteFile(fd_, "a.service", "new", 0644));
  std::ifstream in(victim);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "precious");
  EXPECT_EQ(*InspectEntry(fd_, "a.service"), EntryKind::kRegular);
}

TEST_F(AUnitDirectory, RefusesToReadThroughASymlink) {
  ASSERT_EQ(::symlink("/etc/passwd", (dirs_.units() + "/a.service").c_str()), 0);
  auto r = ReadFileBeneath(fd_, "a.service", 1 << 20);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "fs-not-regular");
  EXPECT_EQ(*InspectEntry(fd_, "a.service"), EntryKind::kSymlink);
}

TEST_F(AUnitDirectory, RefusesNamesThatClimbOut) {
  EXPECT_FALSE(AtomicWriteFile(fd_, "../escaped", "x", 0644));
  EXPECT_FALSE(std::filesystem::exists(dirs_.root() + "/escaped"));
  EXPECT_FALSE(ReadFileBeneath(fd_, "../units/../../etc/passwd", 1 << 20));
}

TEST_F(AUnitDirectory, ReadsAMissingFileAsNothing) {
  auto r = ReadFileBeneath(fd_, "none.service", 100);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->has_value());
  EXPECT_EQ(*InspectEntry(fd_, "none.service"), EntryKind::kMissing);
}

TEST_F(AUnitDirectory, RefusesAFileOverTheSizeLimit) {
  ASSERT_TRUE(AtomicWriteFile(fd_, "big", std::string(200, 'x'), 0644));
  EXPECT_FALSE(ReadFileBeneath(fd_, "big", 100));
}

TEST_F(AUnitDirectory, RemovesOnceAndThenReportsNothingRemoved) {
  ASSERT_TRUE(AtomicWriteFile(fd_, "a.service", "x", 0644));
  EXPECT_EQ(*RemoveEntry(fd_, "a.service"), true);
  EXPECT_EQ(*RemoveEntry(fd_, "a.service"), false);
}

TEST_F(AUnitDirectory, RepointsASymlinkAtomically) {
  ASSERT_TRUE(AtomicSymlink(fd_, "decnet", "/opt/a"));
  EXPECT_EQ(**ReadSymlink(fd_, "decnet"), "/opt/a");
  ASSERT_TRUE(AtomicSymlink(fd_, "decnet", "/opt/b"));
  EXPECT_EQ(**ReadSymlink(fd_, "decnet"), "/opt/b");
  EXPECT_FALSE(ReadSymlink(fd_, "missing")->has_value());
}

TEST_F(AUnitDirectory, ReportsARegularFileWhereALinkIsExpected) {
  ASSERT_TRUE(AtomicWriteFile(fd_, "decnet", "binary", 0755));
  auto r = ReadSymlink(fd_, "decnet");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "link-not-symlink");
}

TEST(AUniqueFd, ClosesItsDescriptorOnceAndHandsItOnWhenMoved) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[1]);
  {
    UniqueFd a(p[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), p[0]);
    UniqueFd c;
    c = std::move(b);
    EXPECT_EQ(c.get(), p[0]);
    EXPECT_GE(::fcntl(p[0], F_GETFD), 0) << "still open while owned";
  }
  EXPECT_EQ(::fcntl(p[0], F_GETFD), -1) << "closed when its last owner went";
  EXPECT_EQ(errno, EBADF);
}

TEST_F(AUnitDirectory, OpensNothingThroughASymlinkAMagicLinkOrAnotherMount) {
  std::filesystem::create_directories(dirs_.units() + "/sub");
  { std::ofstream(dirs_.units() + "/sub/file") << "x"; }
  ASSERT_EQ(::symlink("sub", (dirs_.units() + "/inner").c_str()), 0);
  EXPECT_TRUE(OpenBeneath(fd_, "sub/file", O_RDONLY).valid()) << "the control opens";
  struct Case {
    int dir;
    std::string path;
  };
  const int proc_self = ::open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
  const int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(proc_self, 0);
  for (const Case& c : std::vector<Case>{{fd_, "inner/file"},         // a symlink on the way
                                         {fd_, "inner"},              // a symlink at the end
                                         {fd_, "../units/sub/file"},  // climbing out
                                         {fd_, "/etc/passwd"},        // absolute
                                         {proc_self, "root"},         // a magic link
                                         {proc_self, "cwd"},
                                         {root, "proc/self"}}) {  // another mount
    UniqueFd fd = OpenBeneath(c.dir, c.path, O_RDONLY);
    EXPECT_FALSE(fd.valid()) << c.path;
    EXPECT_TRUE(RefusedByResolve(errno)) << c.path << ": " << std::strerror(errno);
  }
  ::close(proc_self);
  ::close(root);
}

TEST_F(AUnitDirectory, RepointsALinkEvenWithTemporaryNamesPlantedBesideIt) {
  for (int i = 0; i < 4; ++i) {
    std::filesystem::create_directories(dirs_.units() + "/.#decnet.plant" + std::to_string(i));
  }
  ASSERT_TRUE(AtomicSymlink(fd_, "decnet", "/opt/a"));
  EXPECT_EQ(**ReadSymlink(fd_, "decnet"), "/opt/a");
  EXPECT_TRUE(std::filesystem::is_directory(dirs_.units() + "/.#decnet.plant0"));
}

}  // namespace
}  // namespace decnet::helper
