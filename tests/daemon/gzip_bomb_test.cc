// Gzip bombs are refused by the compression-ratio rule as soon as the ratio is exceeded, counted
// per entry and over the whole stream as the data is decompressed: what reaches the release
// directory before the refusal is measured (bytes written there), not the time it took.
// Every archive is generated on the fly through a pipe, so only what the extractor reads is made.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <random>

#include "daemon/extract.h"
#include "tests/daemon/extract_test_tar.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using testing::GzipSink;
using testing::TarHeader;

constexpr uint64_t kMiB = uint64_t{1} << 20;
// What a refused bomb may leave behind: the per-entry grace (1 MiB) or the overall one
// (8 MiB), plus one decompressed block and one write batch in flight.
constexpr uint64_t kMaxWritten = 10 * kMiB;

// `size` bytes that deflate cannot shrink.
std::string Incompressible(size_t size) {
  std::mt19937_64 rng(42);
  std::string out(size, '\0');
  for (size_t i = 0; i + 8 <= size; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, 8);
  }
  return out;
}

// Writes one ustar entry whose data is `size` zero bytes, in 1 MiB pieces; false once the
// extractor stopped reading.
bool ZeroEntry(GzipSink& sink, const std::string& name, uint64_t size) {
  TarHeader h;
  h.name = name;
  h.size = size;
  if (!sink.Write(testing::HeaderBlock(h))) return false;
  static const std::string zeros(kMiB, '\0');
  for (uint64_t left = size; left > 0;) {
    const uint64_t n = std::min<uint64_t>(left, zeros.size());
    if (!sink.Write(std::string_view(zeros).substr(0, n))) return false;
    left -= n;
  }
  const uint64_t pad = (512 - size % 512) % 512;
  return sink.Write(std::string(pad, '\0'));
}

uint64_t BytesBeneath(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

class AGzipBombStream : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }
  void SetUp() override {
    char tmpl[] = "/tmp/extract-bomb-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dest_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dest_); }

  // Extracts what `produce` streams; the refusal, and the bytes it left in the destination.
  Result<ExtractStats> Extract(std::function<void(GzipSink&)> produce,
                               const ExtractLimits& limits = {}) {
    testing::PipeFeeder feeder(std::move(produce));
    const int dest_fd = open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(dest_fd, 0);
    auto r = ExtractRelease(feeder.read_fd(), dest_fd, limits);
    close(dest_fd);
    written_ = BytesBeneath(dest_);
    RecordProperty("bytes_written", std::to_string(written_));
    return r;
  }

  fs::path dest_;
  uint64_t written_ = 0;
};

TEST_F(AGzipBombStream, OfOneGiBOfZerosIsRefusedAfterWritingLittle) {
  auto r = Extract([](GzipSink& sink) {
    if (ZeroEntry(sink, "bomb", uint64_t{1} << 30)) sink.Write(std::string(1024, '\0'));
    sink.Finish();
  });
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().rule, "archive-ratio") << r.error().message;
  EXPECT_NE(r.error().message.find("\"bomb\""), std::string::npos) << r.error().message;
  EXPECT_LE(written_, kMaxWritten) << written_ << " bytes written";
}

// An incompressible first file raises the overall count of compressed bytes; counted over the
// whole stream only, 2.5 MiB of it would let 500 MiB of zeros through before the refusal.
TEST_F(AGzipBombStream, BehindAnIncompressibleFileIsRefusedByItsOwnRatio) {
  auto r = Extract([](GzipSink& sink) {
    const std::string noise = Incompressible(5 * kMiB / 2);
    if (!sink.Write(testing::TestTar().File("noise", noise).bytes())) return;
    if (ZeroEntry(sink, "bomb", uint64_t{1} << 30)) sink.Write(std::string(1024, '\0'));
    sink.Finish();
  });
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().rule, "archive-ratio") << r.error().message;
  EXPECT_NE(r.error().message.find("\"bomb\""), std::string::npos) << r.error().message;
  EXPECT_LE(written_, 5 * kMiB / 2 + kMaxWritten) << written_ << " bytes written";
}

// Entries each below the per-entry grace: only the count over the whole stream sees the bomb.
TEST_F(AGzipBombStream, OfManySmallEntriesIsRefusedByTheOverallRatio) {
  auto r = Extract([](GzipSink& sink) {
    for (int i = 0; i < 2048; ++i) {
      if (!ZeroEntry(sink, "part" + std::to_string(i), kMiB / 2)) return;
    }
    sink.Write(std::string(1024, '\0'));
    sink.Finish();
  });
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().rule, "archive-ratio") << r.error().message;
  EXPECT_LE(written_, kMaxWritten) << written_ << " bytes written";
}

// The per-entry grace is a cap of its own: lowering it stops the same bomb sooner.
TEST_F(AGzipBombStream, StopsAtTheConfiguredPerEntryGrace) {
  ExtractLimits limits;
  limits.entry_ratio_grace_bytes = 256 * 1024;
  auto r = Extract(
      [](GzipSink& sink) {
        if (ZeroEntry(sink, "bomb", uint64_t{1} << 30)) sink.Write(std::string(1024, '\0'));
        sink.Finish();
      },
      limits);
  ASSERT_FALSE(r) << "accepted";
  EXPECT_EQ(r.error().rule, "archive-ratio") << r.error().message;
  EXPECT_LE(written_, 2 * kMiB) << written_ << " bytes written";
}

// Legitimate content within the ratio is unaffected: 12 MiB of text that compresses about 4:1,
// then a small, highly compressible file under the per-entry grace.
TEST_F(AGzipBombStream, LeavesAnOrdinaryReleaseAlone) {
  auto r = Extract([](GzipSink& sink) {
    std::mt19937 rng(7);
    std::string text;
    while (text.size() < 12 * kMiB) text += "line " + std::to_string(rng() % 100000) + " ok\n";
    sink.Write(testing::TestTar()
                   .File("venv/lib/module.py", text)
                   .File("venv/empty.db", std::string(512 * 1024, '\0'))
                   .End()
                   .bytes());
    sink.Finish();
  });
  ASSERT_TRUE(r) << r.error().rule << ": " << r.error().message;
  EXPECT_EQ(r->files, 2u);
}

}  // namespace
}  // namespace decnet::daemon
