// What decnet-rollout packs, a worker extracts: the tarballs of `pack` and `pack-self` go
// through the daemon's own ExtractRelease with its default limits, so a packing choice the
// worker refuses (padding after the gzip stream, a header it does not read) fails here, not
// in a rollout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>

#include "daemon/extract.h"
#include "fleet/commands.h"
#include "proto/release_manifest.h"
#include "tests/fleet/pack_test_support.h"

namespace decnet::fleet {
namespace {

using testing_support::Call;
using testing_support::ReadFile;
using testing_support::ScratchDir;

// Bytes that do not compress, so the gzip stream's length is not a round number by luck.
std::string Noise(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

// Extracts `tarball` with the worker's defaults into a fresh directory under `scratch`.
Result<daemon::ExtractStats> WorkerExtracts(const ScratchDir& scratch, const std::string& tarball,
                                            const std::string& dest) {
  std::filesystem::create_directories(scratch.Path(dest));
  int in = ::open(tarball.c_str(), O_RDONLY | O_CLOEXEC);
  int dir = ::open(scratch.Path(dest).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_GE(in, 0);
  EXPECT_GE(dir, 0);
  auto stats = daemon::ExtractRelease(in, dir, daemon::ExtractLimits{});
  ::close(in);
  ::close(dir);
  return stats;
}

TEST(APackedRelease, IsExtractedByTheWorkerWithEveryFileIntact) {
  for (size_t size : {size_t{1}, size_t{10'000}, size_t{70'001}, size_t{300'000}}) {
    ScratchDir s;
    const std::string noise = Noise(size, static_cast<unsigned>(size));
    s.File("tree/decnet/__init__.py", "");
    s.File("tree/decnet/data.bin", noise);
    s.File("tree/decnet/bin/run.sh", "#!/bin/sh\n", 0755);
    s.File("tree/pyproject.toml", "[project]\nname='decnet'\n");
    auto run =
        Call(RunPack, {"--root", s.Path("tree"), "--out", s.Path("r.tgz"), "--version", "1.2.3"});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    auto stats = WorkerExtracts(s, s.Path("r.tgz"), "release");
    ASSERT_TRUE(stats) << "noise of " << size << " bytes: [" << stats.error().rule << "] "
                       << stats.error().message;
    EXPECT_EQ(ReadFile(s.Path("release/decnet/data.bin")), noise);
    auto manifest = ParseReleaseManifest(ReadFile(s.Path("release/.decnet-release.json")));
    ASSERT_TRUE(manifest) << manifest.error().message;
    EXPECT_EQ(manifest->version.str(), "1.2.3");
    EXPECT_TRUE(::access(s.Path("release/decnet/bin/run.sh").c_str(), X_OK) == 0);
  }
}

TEST(APackedUpdaterBuild, IsExtractedByTheWorker) {
  ScratchDir s;
  // pack-self takes an ELF executable: this test binary is one.
  std::filesystem::create_directories(s.Path("build/bin"));
  std::filesystem::copy_file("/proc/self/exe", s.Path("build/bin/decnet-updaterd"));
  ASSERT_EQ(::chmod(s.Path("build/bin/decnet-updaterd").c_str(), 0755), 0);
  auto run = Call(RunPackSelf,
                  {"--build", s.Path("build"), "--out", s.Path("u.tgz"), "--version", "0.2.0"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto stats = WorkerExtracts(s, s.Path("u.tgz"), "build-release");
  ASSERT_TRUE(stats) << "[" << stats.error().rule << "] " << stats.error().message;
  EXPECT_EQ(ReadFile(s.Path("build-release/bin/decnet-updaterd")),
            ReadFile(s.Path("build/bin/decnet-updaterd")));
}

}  // namespace
}  // namespace decnet::fleet
