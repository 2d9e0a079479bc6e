// Tests daemon/extract*.cc: the path validator's table, DECNET's own extraction tests
// (docs/decnet-compat.md), and archives made by the system's tar.
#include "daemon/extract.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "daemon/extract_path.h"
#include "tests/daemon/extract_test_tar.h"
#include "tests/support/param_name.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using testing::Gzip;
using testing::MemFdWith;
using testing::TarHeader;
using testing::TestTar;

struct PathCase {
  std::string raw;
  std::string rule;  // empty: accepted
  std::string relative = {};
};

class AnEntryPath : public ::testing::TestWithParam<PathCase> {};

TEST_P(AnEntryPath, IsAcceptedOrRefusedWithItsRule) {
  const PathCase& c = GetParam();
  auto r = ParseEntryPath(c.raw, ExtractLimits{});
  if (c.rule.empty()) {
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->relative, c.relative);
  } else {
    ASSERT_FALSE(r) << "accepted " << c.raw;
    EXPECT_EQ(r.error().rule, c.rule) << r.error().message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, AnEntryPath,
    ::testing::Values(
        PathCase{"a", "", "a"}, PathCase{"./a", "", "a"}, PathCase{"a/b/c", "", "a/b/c"},
        PathCase{"a/b/", "", "a/b"}, PathCase{"./", "", ""}, PathCase{".", "", ""},
        PathCase{"a b/ü.py", "", "a b/ü.py"}, PathCase{"..a/b..", "", "..a/b.."},
        PathCase{"", "archive-path-invalid"}, PathCase{"/etc/passwd", "archive-path-absolute"},
        PathCase{"/", "archive-path-absolute"}, PathCase{"../x", "archive-path-dotdot"},
        PathCase{"a/../../x", "archive-path-dotdot"}, PathCase{"a/..", "archive-path-dotdot"},
        PathCase{"./..", "archive-path-dotdot"}, PathCase{"a//b", "archive-path-invalid"},
        PathCase{"a/./b", "archive-path-invalid"}, PathCase{"././a", "archive-path-invalid"},
        PathCase{"a//", "archive-path-invalid"}, PathCase{"a\nb", "archive-path-invalid"},
        PathCase{"a\x1b[31m", "archive-path-invalid"}, PathCase{"a\x7f", "archive-path-invalid"},
        PathCase{std::string(1025, 'a'), "archive-path-length"},
        PathCase{std::string(256, 'a'), "archive-path-length"}),
    [](const auto& info) {
      return decnet::test::IndexedName(
          info.index,
          info.param.raw + " " + (info.param.rule.empty() ? "accepted" : info.param.rule));
    });

TEST(EscapeEntryPath, EscapesControlCharactersQuotesAndCutsLongPaths) {
  EXPECT_EQ(EscapeEntryPath("a\nb\"c\\"), "a\\x0ab\\x22c\\x5c");
  EXPECT_EQ(EscapeEntryPath(std::string(300, 'x')), std::string(200, 'x') + "...");
}

class AnExtraction : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/extract-test-XXXXXX";
    root_ = mkdtemp(tmpl);
    dest_ = root_ / "release";
    fs::create_directory(dest_);
  }
  void TearDown() override { fs::remove_all(root_); }

  Result<ExtractStats> Extract(const std::string& gz, ExtractLimits limits = {}) {
    const int archive_fd = MemFdWith(gz);
    const int dest_fd = open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto r = ExtractRelease(archive_fd, dest_fd, limits);
    close(dest_fd);
    close(archive_fd);
    return r;
  }
  std::string Read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  mode_t Mode(const fs::path& p) {
    struct stat st {};
    lstat(p.c_str(), &st);
    return st.st_mode & 07777;
  }
  void ExpectRefused(const std::string& gz, const std::string& rule, ExtractLimits limits = {}) {
    auto r = Extract(gz, limits);
    ASSERT_FALSE(r) << "accepted";
    EXPECT_EQ(r.error().rule, rule) << r.error().message;
  }

  fs::path root_;
  fs::path dest_;
};

// DECNET's tests (docs/decnet-compat.md), each against our extractor.
TEST_F(AnExtraction, ExtractsANormalFileWithItsContent) {
  auto r = Extract(Gzip(TestTar().Dir("./").File("./hello.txt", "hello world\n").End().bytes()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / "hello.txt"), "hello world\n");
  EXPECT_EQ(r->files, 1u);
  EXPECT_EQ(r->file_bytes, 12u);
}

TEST_F(AnExtraction, RejectsDotDotX) {
  ExpectRefused(Gzip(TestTar().File("../x", "evil").End().bytes()), "archive-path-dotdot");
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

TEST_F(AnExtraction, RejectsAnAbsolutePath) {
  ExpectRefused(Gzip(TestTar().File("/tmp/evil", "evil").End().bytes()), "archive-path-absolute");
}

TEST_F(AnExtraction, RejectsASymlink) {
  ExpectRefused(Gzip(TestTar().Special("link", '2', "/etc/passwd").End().bytes()), "archive-link");
}

TEST_F(AnExtraction, RejectsAHardLink) {
  ExpectRefused(Gzip(TestTar().File("a", "x").Special("b", '1', "a").End().bytes()),
                "archive-link");
}

TEST_F(AnExtraction, RejectsADeviceNode) {
  ExpectRefused(Gzip(TestTar().Special("null", '3').End().bytes()), "archive-entry-type");
}

TEST_F(AnExtraction, RejectsOversizeContent) {
  ExtractLimits limits;
  limits.max_total_bytes = 1000;
  ExpectRefused(Gzip(TestTar()
                         .File("a", std::string(600, 'a'))
                         .File("b", std::string(600, 'b'))
                         .End()
                         .bytes()),
                "archive-total-bytes", limits);
}

TEST_F(AnExtraction, StripsSetIdStickyAndWriteBitsAndNormalisesModes) {
  auto r = Extract(Gzip(TestTar()
                            .Dir("d/", 07777)
                            .File("d/suid", "x", 04755)
                            .File("d/sgid", "x", 02711)
                            .File("d/world", "x", 0666)
                            .File("d/private", "x", 0400)
                            .End()
                            .bytes()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Mode(dest_ / "d"), 0755u);
  EXPECT_EQ(Mode(dest_ / "d/suid"), 0755u);
  EXPECT_EQ(Mode(dest_ / "d/sgid"), 0755u);
  EXPECT_EQ(Mode(dest_ / "d/world"), 0644u);
  EXPECT_EQ(Mode(dest_ / "d/private"), 0644u);
}

TEST_F(AnExtraction, IgnoresTheUmaskForModes) {
  const mode_t old = umask(077);
  auto r = Extract(Gzip(TestTar().File("a/x", "x", 0700).File("a/y", "y", 0600).End().bytes()));
  umask(old);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Mode(dest_ / "a"), 0755u);
  EXPECT_EQ(Mode(dest_ / "a/x"), 0755u);
  EXPECT_EQ(Mode(dest_ / "a/y"), 0644u);
}

TEST_F(AnExtraction, CreatesImplicitParentDirectories) {
  auto r = Extract(
      Gzip(TestTar().File("a/b/c/d.txt", "deep").File("a/e", "e").Dir("a/b/").End().bytes()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / "a/b/c/d.txt"), "deep");
  EXPECT_EQ(Mode(dest_ / "a/b/c"), 0755u);
}

TEST_F(AnExtraction, ReadsGnuLongNamesAndPaxPaths) {
  const std::string long_name = "pkg/" + std::string(150, 'n') + "/module.py";
  const std::string pax_name = "pkg/" + std::string(120, 'p') + "/x.py";
  TestTar tar;
  tar.GnuLongName(long_name).File("placeholder", "gnu");
  tar.Pax({{"path", pax_name}}).File("placeholder2", "pax");
  auto r = Extract(Gzip(tar.End().bytes()));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / long_name), "gnu");
  EXPECT_EQ(Read(dest_ / pax_name), "pax");
}

TEST_F(AnExtraction, NeverTakesOwnershipFromTheArchive) {
  auto r = Extract(Gzip(TestTar().File("f", "x").End().bytes()));
  ASSERT_TRUE(r) << r.error().message;
  struct stat st {};
  ASSERT_EQ(lstat((dest_ / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_gid, getegid());
}

TEST_F(AnExtraction, AcceptsAnArchiveMadeByTheSystemTarInEachFormat) {
  const fs::path src = root_ / "src";
  fs::create_directories(src / "pkg/sub");
  std::ofstream(src / "pkg/a.py") << "print('a')\n";
  std::ofstream(src / "pkg/sub/b.bin") << std::string(100000, 'b');
  std::ofstream(src / ("pkg/" + std::string(120, 'l'))) << "long";
  fs::permissions(src / "pkg/a.py", fs::perms::owner_exec, fs::perm_options::add);
  for (const std::string format : {"gnu", "pax", "ustar"}) {
    SCOPED_TRACE(format);
    const fs::path gz = root_ / ("r-" + format + ".tar.gz");
    const std::string cmd = "tar --format=" + format + " -czf " + gz.string() + " -C " +
                            src.string() + " . 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
      ASSERT_EQ(format, "ustar");  // ustar cannot hold the 124-byte name; that is tar's refusal
      continue;
    }
    fs::remove_all(dest_);
    fs::create_directory(dest_);
    auto r = Extract(Read(gz));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(Read(dest_ / "pkg/sub/b.bin"), std::string(100000, 'b'));
    EXPECT_EQ(Mode(dest_ / "pkg/a.py"), 0755u);
    EXPECT_EQ(r->files, 3u);
  }
}

TEST_F(AnExtraction, AcceptsConcatenatedGzipMembers) {
  const std::string tar = TestTar().File("a", std::string(5000, 'a')).End().bytes();
  auto r = Extract(Gzip(tar.substr(0, 1024)) + Gzip(tar.substr(1024)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / "a"), std::string(5000, 'a'));
}

TEST_F(AnExtraction, ExtractsFromAPipe) {
  testing::PipeFeeder feeder([](testing::GzipSink& sink) {
    sink.Write(TestTar().File("piped", "through a pipe").End().bytes());
    sink.Finish();
  });
  const int dest_fd = open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto r = ExtractRelease(feeder.read_fd(), dest_fd, ExtractLimits{});
  close(dest_fd);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / "piped"), "through a pipe");
}

TEST_F(AnExtraction, FsyncEachFileModeAlsoSucceeds) {
  ExtractLimits limits;
  limits.durability = Durability::kFsyncEachFile;
  auto r =
      Extract(Gzip(TestTar().Dir("d/").File("d/f", "x").File("e/g", "y").End().bytes()), limits);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read(dest_ / "e/g"), "y");
}

TEST_F(AnExtraction, NamesTheEntryAndTheCapInTheMessage) {
  ExtractLimits limits;
  limits.max_total_bytes = 10;
  auto r = Extract(Gzip(TestTar().File("big\"q.bin", std::string(11, 'x')).End().bytes()), limits);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("big\\x22q.bin"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("cap of 10"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace decnet::daemon
