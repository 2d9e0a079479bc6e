// Hostile tarballs, generated at test time by a test-only tar writer: each is refused with the
// rule it breaks (or, for set-id, accepted with the bits stripped). After each case nothing
// outside the destination has changed (the caller deletes a refused, partial destination) and
// the process's peak RSS stays under 64 MiB. Heavy cases (10^6 entries, a 1 GiB gzip bomb) are
// streamed through a pipe by a generator thread, so only what the extractor reads is made.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <functional>

#include "daemon/extract.h"
#include "tests/daemon/extract_test_tar.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using testing::Gzip;
using testing::GzipSink;
using testing::TarHeader;
using testing::TestTar;

[[maybe_unused]] constexpr long kMaxHwmKiB = 64 * 1024;  // unused under a sanitizer

struct HostileCase {
  std::string name;
  std::string rule;  // empty: accepted, then `check` runs
  std::function<std::string()> bytes = nullptr;
  std::function<void(GzipSink&)> stream = nullptr;
  std::function<void(ExtractLimits&)> limits = nullptr;
  std::function<void(const fs::path&)> check = nullptr;
};

std::ostream& operator<<(std::ostream& os, const HostileCase& c) { return os << c.name; }

std::string GzTar(const TestTar& tar) { return Gzip(tar.bytes()); }

std::string OneFile(const std::string& name, std::string_view content = "x") {
  return GzTar(TestTar().File(name, content).End());
}

std::string Typed(const std::string& name, char type, const std::string& link = {}) {
  return GzTar(TestTar().Special(name, type, link).End());
}

std::string Nested(int depth) {
  std::string path;
  for (int i = 0; i < depth; ++i) path += "d/";
  return path + "f";
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}

std::vector<HostileCase> Cases() {
  std::vector<HostileCase> c;
  c.push_back({"TraversalDotDot", "archive-path-dotdot", [] { return OneFile("../escaped"); }});
  c.push_back(
      {"TraversalInside", "archive-path-dotdot", [] { return OneFile("a/../../escaped"); }});
  c.push_back({"AbsolutePath", "archive-path-absolute", [] { return OneFile("/tmp/escaped"); }});
  c.push_back({"Symlink", "archive-link", [] { return Typed("link", '2', "/etc"); }});
  c.push_back({"SymlinkThenWriteThrough", "archive-link", [] {
                 return GzTar(TestTar().Special("l", '2', "..").File("l/escaped", "x").End());
               }});
  c.push_back({"HardLink", "archive-link", [] {
                 return GzTar(TestTar().File("a", "x").Special("b", '1', "/etc/passwd").End());
               }});
  c.push_back({"CharDevice", "archive-entry-type", [] { return Typed("tty", '3'); }});
  c.push_back({"BlockDevice", "archive-entry-type", [] { return Typed("sda", '4'); }});
  c.push_back({"Fifo", "archive-entry-type", [] { return Typed("fifo", '6'); }});
  c.push_back(
      {"SetIdAcceptedAndStripped", "",
       [] { return GzTar(TestTar().File("suid", "x", 06755).File("sticky", "y", 01666).End()); },
       nullptr, nullptr,
       [](const fs::path& dest) {
         EXPECT_EQ(ModeOf(dest / "suid"), 0755u);
         EXPECT_EQ(ModeOf(dest / "sticky"), 0644u);
       }});
  c.push_back(
      {"PaxHeaderDeclaring100MiB", "archive-header-size",
       [] { return GzTar(TestTar().Pax({}, uint64_t{100} << 20).Raw(std::string(4096, 'p'))); },
       nullptr, nullptr});
  c.push_back(
      {"PaxHeaderOverOurCap", "archive-header-size", [] {
         return GzTar(TestTar().Pax({{"comment", std::string(200000, 'c')}}).File("f", "x").End());
       }});
  c.push_back({"GnuLongNameDeclaring100MiB", "archive-header-size",
               [] {
                 TarHeader h;
                 h.name = "././@LongLink";
                 h.type = 'L';
                 h.size = uint64_t{100} << 20;
                 return GzTar(TestTar().Header(h).Raw(std::string(4096, 'n')));
               },
               nullptr, nullptr});
  c.push_back({"MillionEntries", "archive-entries", nullptr,
               [](GzipSink& sink) {
                 sink.Write(TestTar().Dir("e/").bytes());
                 for (int i = 0; i < 1'000'000; ++i) {
                   char name[32];
                   std::snprintf(name, sizeof name, "e/%07d", i);
                   TarHeader h;
                   h.name = name;
                   if (!sink.Write(testing::HeaderBlock(h))) return;
                 }
                 sink.Write(std::string(1024, '\0'));
                 sink.Finish();
               },
               nullptr});
  c.push_back(
      {"OverLongPath", "archive-path-length", [] {
         return GzTar(TestTar().Pax({{"path", std::string(1500, 'p')}}).File("f", "x").End());
       }});
  c.push_back({"OverLongComponent", "archive-path-length", [] {
                 return GzTar(
                     TestTar().GnuLongName("a/" + std::string(300, 'c')).File("f", "x").End());
               }});
  c.push_back({"GzipBomb1GiBOfZeros", "archive-ratio", nullptr,
               [](GzipSink& sink) {
                 TarHeader h;
                 h.name = "bomb";
                 h.size = uint64_t{1} << 30;
                 sink.Write(testing::HeaderBlock(h));
                 const std::string zeros(1 << 20, '\0');
                 for (int i = 0; i < 1024; ++i) {
                   if (!sink.Write(zeros)) return;
                 }
                 sink.Write(std::string(1024, '\0'));
                 sink.Finish();
               },
               nullptr, [](const fs::path&) {}});
  c.push_back({"TruncatedGzip", "archive-corrupt", [] {
                 std::string gz = OneFile("f", std::string(100000, 'z') + "tail");
                 return gz.substr(0, gz.size() / 2);
               }});
  // libarchive 3.6 does not check the gzip CRC; the spool's SHA-256 is verified before any
  // extraction, so damage is caught there. Damage inside the deflate data is caught here.
  c.push_back({"DamagedDeflateData", "archive-corrupt", [] {
                 std::string gz = OneFile("f", std::string(200000, 'z'));
                 for (size_t i = 20; i < 40; ++i) gz[i] = static_cast<char>(0xff);
                 return gz;
               }});
  c.push_back({"TruncatedTarInsideGzip", "archive-corrupt", [] {
                 const std::string tar = TestTar().File("f", std::string(5000, 'x')).End().bytes();
                 return Gzip(tar.substr(0, 2048));
               }});
  c.push_back({"NotGzipPlainTar", "archive-not-gzip",
               [] { return TestTar().File("f", "x").End().bytes(); }});
  c.push_back({"NotGzipBzip2Magic", "archive-not-gzip",
               [] { return std::string("BZh91AY&SY") + std::string(100, 'x'); }});
  c.push_back({"GzipOfSomethingElse", "archive-format", [] {
                 return Gzip("this is not a tar archive, just text\n" + std::string(2000, 't'));
               }});
  c.push_back({"DoubleGzip", "archive-format",
               [] { return Gzip(OneFile("f") + std::string(2000, '\0')); }});
  c.push_back({"TrailingGarbageAfterGzip", "archive-trailing-data",
               [] { return OneFile("f") + "GARBAGE AFTER THE STREAM"; }});
  c.push_back({"TrailingDataAfterEndBlocks", "archive-trailing-data", [] {
                 return GzTar(
                     TestTar().File("f", "x").End().Raw(std::string(100, '\0') + "hidden"));
               }});
  c.push_back({"HiddenEntryAfterEndBlocks", "archive-trailing-data",
               [] { return GzTar(TestTar().File("f", "x").End().File("../../escaped", "x")); }});
  c.push_back({"DuplicateFile", "archive-duplicate",
               [] { return GzTar(TestTar().File("f", "first").File("f", "second").End()); }});
  c.push_back({"DuplicateDirectory", "archive-duplicate",
               [] { return GzTar(TestTar().Dir("d/").Dir("./d").End()); }});
  c.push_back({"FileWhereADirectoryWas", "archive-conflict",
               [] { return GzTar(TestTar().Dir("a/").File("a", "x").End()); }});
  c.push_back({"DirectoryWhereAFileWas", "archive-conflict",
               [] { return GzTar(TestTar().File("a", "x").Dir("a/").End()); }});
  c.push_back({"FileBeneathAFile", "archive-conflict",
               [] { return GzTar(TestTar().File("a", "x").File("a/b", "y").End()); }});
  c.push_back(
      {"EmptyArchiveOnlyEndBlocks", "archive-empty", [] { return GzTar(TestTar().End()); }});
  c.push_back({"EmptyGzipStream", "archive-empty", [] { return Gzip(""); }});
  c.push_back({"EmptyFile", "archive-empty", [] { return std::string(); }});
  c.push_back({"BadChecksumFirstHeader", "archive-format", [] {
                 TarHeader h;
                 h.name = "f";
                 h.corrupt_checksum = true;
                 return GzTar(TestTar().Header(h).End());
               }});
  c.push_back({"BadChecksumLaterHeader", "archive-corrupt", [] {
                 TarHeader h;
                 h.name = "g";
                 h.corrupt_checksum = true;
                 return GzTar(TestTar().File("f", "x").Header(h).End());
               }});
  c.push_back({"ControlCharactersInPath", "archive-path-invalid",
               [] { return OneFile("evil\x1b]0;pwned\x07name"); }});
  c.push_back({"NewlineInPath", "archive-path-invalid", [] { return OneFile("a\nb"); }});
  c.push_back({"DoubleSlashPath", "archive-path-invalid", [] { return OneFile("a//b"); }});
  c.push_back({"DotComponentPath", "archive-path-invalid", [] { return OneFile("a/./b"); }});
  c.push_back({"DotSlashFormsAccepted", "",
               [] {
                 return GzTar(
                     TestTar().Dir("./").Dir("./d/").File("./d/f", "x").File("g", "y").End());
               },
               nullptr, nullptr,
               [](const fs::path& dest) {
                 EXPECT_TRUE(fs::is_regular_file(dest / "d/f"));
                 EXPECT_TRUE(fs::is_regular_file(dest / "g"));
               }});
  c.push_back({"DeepNestingWithinCapAccepted", "",
               [] {
                 return GzTar(TestTar().Pax({{"path", Nested(500)}}).File("f", "deep").End());
               },
               nullptr, nullptr,
               [](const fs::path& dest) { EXPECT_TRUE(fs::is_regular_file(dest / Nested(500))); }});
  c.push_back({"DeepNestingOverCap", "archive-path-length", [] {
                 return GzTar(TestTar().Pax({{"path", Nested(600)}}).File("f", "deep").End());
               }});
  c.push_back({"OversizeContent", "archive-total-bytes",
               [] { return GzTar(TestTar().File("a", std::string(4096, 'a')).End()); }, nullptr,
               [](ExtractLimits& l) { l.max_total_bytes = 4095; }});
  c.push_back({"DeclaredHugeFile", "archive-total-bytes", [] {
                 TarHeader h;
                 h.name = "huge";
                 h.size = (uint64_t{8} << 30) - 1;  // the largest 11-digit octal size
                 return GzTar(TestTar().Header(h).Raw(std::string(4096, 'h')));
               }});
  return c;
}

class AHostileTarball : public ::testing::TestWithParam<HostileCase> {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }
  void SetUp() override {
    char tmpl[] = "/tmp/extract-hostile-XXXXXX";
    root_ = mkdtemp(tmpl);
    fs::create_directory(root_ / "sibling");
    std::ofstream(root_ / "sibling/keep") << "keep";
    std::ofstream(root_ / "escaped.orig") << "orig";
    dest_ = root_ / "release";
    fs::create_directory(dest_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
  fs::path dest_;
};

TEST_P(AHostileTarball, IsRefusedWithItsRuleAndTouchesNothingOutside) {
  const HostileCase& c = GetParam();
  const std::string before = testing::Snapshot(root_, dest_);
  ExtractLimits limits;
  if (c.limits) c.limits(limits);

  const int dest_fd = open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dest_fd, 0);
  Result<ExtractStats> result;
  if (c.stream) {
    testing::PipeFeeder feeder(c.stream);
    result = ExtractRelease(feeder.read_fd(), dest_fd, limits);
  } else {
    const int archive_fd = testing::MemFdWith(c.bytes());
    result = ExtractRelease(archive_fd, dest_fd, limits);
    close(archive_fd);
  }
  close(dest_fd);

  if (c.rule.empty()) {
    ASSERT_TRUE(result) << result.error().rule << ": " << result.error().message;
    c.check(dest_);
  } else {
    ASSERT_FALSE(result) << "accepted";
    EXPECT_EQ(result.error().rule, c.rule) << result.error().message;
    EXPECT_FALSE(result.error().message.empty());
  }
  EXPECT_EQ(testing::Snapshot(root_, dest_), before) << "something outside the destination changed";
#ifndef DECNET_SANITIZER_BUILD
  // AddressSanitizer's shadow memory and quarantine make the figure meaningless;
  // the release build's run of the same case holds the bound.
  EXPECT_LT(testing::VmHwmKiB(), kMaxHwmKiB);
#endif
}

INSTANTIATE_TEST_SUITE_P(Table, AHostileTarball, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<HostileCase>& info) {
                           return info.param.name;
                         });

TEST(HostileTarballTable, HasAtLeastTwentyFiveCases) { EXPECT_GE(Cases().size(), 25u); }

TEST(AGzipBomb, IsStoppedAfterWritingLittle) {
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/extract-bomb-XXXXXX";
  const fs::path dest = mkdtemp(tmpl);
  testing::PipeFeeder feeder([](GzipSink& sink) {
    TarHeader h;
    h.name = "bomb";
    h.size = uint64_t{1} << 30;
    sink.Write(testing::HeaderBlock(h));
    const std::string zeros(1 << 20, '\0');
    for (int i = 0; i < 1024; ++i) {
      if (!sink.Write(zeros)) return;
    }
    sink.Finish();
  });
  const int dest_fd = open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto r = ExtractRelease(feeder.read_fd(), dest_fd, ExtractLimits{});
  close(dest_fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "archive-ratio");
  std::error_code ec;
  const auto written = fs::file_size(dest / "bomb", ec);
  EXPECT_LT(ec ? 0 : written, uint64_t{32} << 20);  // stopped near the 200:1 point, not at 1 GiB
  fs::remove_all(dest);
}

}  // namespace
}  // namespace decnet::daemon
