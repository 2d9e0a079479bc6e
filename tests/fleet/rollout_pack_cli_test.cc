// The real decnet-rollout binary as operators run it: pack, pack-self, keygen and sign end to
// end, their exit codes, and the same bytes as the commands called in process.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "fleet/commands.h"
#include "proto/release_auth.h"
#include "tests/fleet/pack_test_support.h"
#include "tests/support/subprocess.h"

namespace decnet::fleet {
namespace {

using namespace testing_support;
using helper::testing_support::CtlRun;
using helper::testing_support::RunCaptured;

class TheRolloutBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.File("pyproject.toml", "[project]\n");
    tree_.File("decnet/__init__.py", "");
    tree_.File("decnet/.env", "SECRET=1\n");
    fs::create_symlink("/etc/passwd", tree_.Path("decnet/passwd"));
  }

  CtlRun Run(std::vector<std::string> args) {
    args.insert(args.begin(), DECNET_ROLLOUT_PATH);
    return RunCaptured(args, scratch_.root().string());
  }

  std::vector<std::string> PackArgs(const std::string& out) const {
    return {"pack",  "--root",    tree_.root().string(), "--out", out, "--version",
            "1.0.0", "--created", "2030-01-01T00:00:00Z"};
  }

  ScratchDir tree_, out_, scratch_;
};

TEST_F(TheRolloutBinary, PacksTheSameBytesAsTheCommandInProcess) {
  const std::string a = out_.Path("a.tgz");
  const CtlRun run = Run(PackArgs(a));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("skipped symbolic link decnet/passwd"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("1 denied"), std::string::npos) << run.out;

  std::vector<std::string> in_process = PackArgs(out_.Path("b.tgz"));
  in_process.erase(in_process.begin());
  ASSERT_EQ(Call(RunPack, in_process).exit_code, 0);
  EXPECT_EQ(ReadFile(a), ReadFile(out_.Path("b.tgz")));
  EXPECT_EQ(EntryPaths(ReadTarball(a)),
            (std::vector<std::string>{".decnet-release.json", "decnet/", "decnet/__init__.py",
                                      "pyproject.toml"}));
}

TEST_F(TheRolloutBinary, MakesAKeyAndSignsWhatItPacked) {
  const std::string tarball = out_.Path("r.tgz");
  ASSERT_EQ(Run(PackArgs(tarball)).exit_code, 0);
  const std::string key = out_.Path("ops");
  const CtlRun keygen = Run({"keygen", "--out", key});
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;
  const CtlRun sign = Run({"sign", "--key", key + ".key", tarball + ".manifest.json"});
  ASSERT_EQ(sign.exit_code, 0) << sign.err;
  auto pub = ParsePublicKeyPem(ReadFile(key + ".pub"));
  ASSERT_TRUE(pub);
  auto sig = ParseSignatureLine(ReadFile(tarball + ".manifest.json.sig"));
  ASSERT_TRUE(sig);
  auto verdict = VerifyReleaseSignatures(ReadFile(tarball + ".manifest.json"), {*sig}, {{*pub}, 1},
                                         *ParseUtcTime("2030-01-02T00:00:00Z"));
  EXPECT_TRUE(verdict) << verdict.error().message;
  // A second signature by the same key: exit 1, the file unchanged.
  const std::string before = ReadFile(tarball + ".manifest.json.sig");
  EXPECT_EQ(Run({"sign", "--key", key + ".key", tarball + ".manifest.json"}).exit_code, 1);
  EXPECT_EQ(ReadFile(tarball + ".manifest.json.sig"), before);
}

TEST_F(TheRolloutBinary, ExitsTwoOnUsageAndZeroOnHelp) {
  for (const char* command : {"pack", "pack-self", "keygen", "sign"}) {
    SCOPED_TRACE(command);
    EXPECT_EQ(Run({command, "--no-such-option"}).exit_code, 2);
    const CtlRun help = Run({command, "--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.out.find(std::string("usage: decnet-rollout ") + command), std::string::npos);
  }
}

TEST_F(TheRolloutBinary, ExitsOneWhenATreeIsRefused) {
  tree_.File(".decnet-release.json", "{}");
  const CtlRun run = Run(PackArgs(out_.Path("r.tgz")));
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-manifest-present"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace decnet::fleet
