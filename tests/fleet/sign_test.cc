// decnet-rollout keygen and sign, called in process: key files and their modes, never an
// overwrite; signature lines appended beside a descriptor that verify with the workers' own
// check; refusals of an expired or bad descriptor, a swapped tarball, a double signature, a
// key others can read and a signature file that is corrupt or full.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "fleet/commands.h"
#include "proto/release_auth.h"
#include "tests/fleet/pack_test_support.h"

namespace decnet::fleet {
namespace {

using namespace testing_support;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl == std::string::npos ? nl : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class AKeygen : public ::testing::Test {
 protected:
  ScratchDir dir_;
  std::string name_ = dir_.Path("release");
};

TEST_F(AKeygen, WritesAPrivateKeyOnlyItsOwnerReadsAndAPublicKeyWithTheSameId) {
  const mode_t old_umask = umask(0);  // the key's mode must not depend on the caller's umask
  const CommandRun run = Call(RunKeygen, {"--out", name_});
  umask(old_umask);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ModeOf(name_ + ".key"), 0600u);
  EXPECT_EQ(ModeOf(name_ + ".pub"), 0644u);
  auto key = SigningKey::FromPem(ReadFile(name_ + ".key"));
  ASSERT_TRUE(key) << key.error().message;
  auto pub = ParsePublicKeyPem(ReadFile(name_ + ".pub"));
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(key->Public().key_id, pub->key_id);
  EXPECT_EQ(key->Public().raw, pub->raw);
  EXPECT_NE(run.out.find("key id " + pub->key_id), std::string::npos) << run.out;
}

TEST_F(AKeygen, MakesADifferentKeyEachTime) {
  ASSERT_EQ(Call(RunKeygen, {"--out", dir_.Path("a")}).exit_code, 0);
  ASSERT_EQ(Call(RunKeygen, {"--out", dir_.Path("b")}).exit_code, 0);
  EXPECT_NE(ReadFile(dir_.Path("a.pub")), ReadFile(dir_.Path("b.pub")));
}

TEST_F(AKeygen, NeverOverwritesAPrivateKey) {
  ASSERT_EQ(Call(RunKeygen, {"--out", name_}).exit_code, 0);
  const std::string key = ReadFile(name_ + ".key");
  fs::remove(name_ + ".pub");
  const CommandRun run = Call(RunKeygen, {"--out", name_});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("keygen-exists"), std::string::npos) << run.err;
  EXPECT_EQ(ReadFile(name_ + ".key"), key);
  EXPECT_FALSE(fs::exists(name_ + ".pub"));
}

TEST_F(AKeygen, NeverOverwritesAPublicKeyNorLeavesAHalfPair) {
  dir_.File("release.pub", "mine\n");
  const CommandRun run = Call(RunKeygen, {"--out", name_});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(ReadFile(name_ + ".pub"), "mine\n");
  EXPECT_FALSE(fs::exists(name_ + ".key"));
}

TEST_F(AKeygen, RefusesALinkPlantedWhereTheKeyGoes) {
  fs::create_symlink(dir_.Path("elsewhere"), name_ + ".key");
  EXPECT_EQ(Call(RunKeygen, {"--out", name_}).exit_code, 1);
  EXPECT_FALSE(fs::exists(dir_.Path("elsewhere")));
}

TEST_F(AKeygen, ExitsTwoWithoutOut) {
  EXPECT_EQ(Call(RunKeygen, {}).exit_code, 2);
  EXPECT_EQ(Call(RunKeygen, {"--out"}).exit_code, 2);
  EXPECT_EQ(Call(RunKeygen, {"--out", ""}).exit_code, 2);
  EXPECT_EQ(Call(RunKeygen, {"--out", name_, "extra"}).exit_code, 2);
}

// ---------------------------------------------------------------------------------------

class ASign : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.File("decnet/__init__.py", "");
    ASSERT_EQ(Pack(tarball_), 0);
    ASSERT_EQ(Call(RunKeygen, {"--out", keys_.Path("k1")}).exit_code, 0);
    ASSERT_EQ(Call(RunKeygen, {"--out", keys_.Path("k2")}).exit_code, 0);
  }

  int Pack(const std::string& out, const std::string& created = "2030-01-01T00:00:00Z",
           const std::string& days = "3650") {
    return Call(RunPack, {"--root", tree_.root().string(), "--out", out, "--version", "1.0.0",
                          "--created", created, "--valid-for", days})
        .exit_code;
  }

  CommandRun Sign(const std::string& key, const std::string& descriptor = "") {
    return Call(RunSign, {"--key", keys_.Path(key + ".key"),
                          descriptor.empty() ? Descriptor() : descriptor});
  }

  std::string Descriptor() const { return tarball_ + ".manifest.json"; }
  std::string Sig() const { return Descriptor() + ".sig"; }
  TrustedKey Pub(const std::string& key) const {
    return *ParsePublicKeyPem(ReadFile(keys_.Path(key + ".pub")));
  }

  std::vector<ReleaseSignature> Signatures() const {
    std::vector<ReleaseSignature> out;
    for (const std::string& line : Lines(ReadFile(Sig()))) {
      auto sig = ParseSignatureLine(line);
      EXPECT_TRUE(sig) << line;
      if (sig) out.push_back(*sig);
    }
    return out;
  }

  ScratchDir tree_, out_, keys_;
  std::string tarball_ = out_.Path("r.tgz");
  const int64_t valid_time_ = *ParseUtcTime("2030-01-02T00:00:00Z");
};

TEST_F(ASign, AppendsASignatureThatTheWorkersCheckAccepts) {
  const CommandRun run = Sign("k1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find(Pub("k1").key_id), std::string::npos) << run.out;
  const auto sigs = Signatures();
  ASSERT_EQ(sigs.size(), 1u);
  EXPECT_EQ(sigs[0].key_id, Pub("k1").key_id);
  auto verdict =
      VerifyReleaseSignatures(ReadFile(Descriptor()), sigs, {{Pub("k1")}, 1}, valid_time_);
  ASSERT_TRUE(verdict) << verdict.error().rule << ": " << verdict.error().message;
  EXPECT_EQ(verdict->valid_key_ids, std::vector<std::string>{Pub("k1").key_id});
}

TEST_F(ASign, AppendsOneLinePerSignerSoTwoOfTwoVerify) {
  ASSERT_EQ(Sign("k1").exit_code, 0);
  const std::string first = ReadFile(Sig());
  ASSERT_EQ(Sign("k2").exit_code, 0);
  const std::string both = ReadFile(Sig());
  EXPECT_EQ(both.substr(0, first.size()), first);
  EXPECT_EQ(Lines(both).size(), 2u);
  auto verdict = VerifyReleaseSignatures(ReadFile(Descriptor()), Signatures(),
                                         {{Pub("k1"), Pub("k2")}, 2}, valid_time_);
  EXPECT_TRUE(verdict) << verdict.error().message;
}

TEST_F(ASign, ProducesASignatureThatDoesNotVerifyForAnotherDescriptor) {
  ASSERT_EQ(Sign("k1").exit_code, 0);
  std::string other = ReadFile(Descriptor());
  other.replace(other.find("1.0.0"), 5, "1.0.1");
  auto verdict = VerifyReleaseSignatures(other, Signatures(), {{Pub("k1")}, 1}, valid_time_);
  EXPECT_FALSE(verdict);
}

TEST_F(ASign, RefusesASecondSignatureByTheSameKey) {
  ASSERT_EQ(Sign("k1").exit_code, 0);
  const std::string before = ReadFile(Sig());
  const CommandRun run = Sign("k1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("sign-already-signed"), std::string::npos) << run.err;
  EXPECT_EQ(ReadFile(Sig()), before);
}

TEST_F(ASign, RefusesAnExpiredDescriptor) {
  const std::string old = out_.Path("old.tgz");
  ASSERT_EQ(Pack(old, "2001-01-01T00:00:00Z", "1"), 0);
  const CommandRun run = Sign("k1", old + ".manifest.json");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("descriptor-expired"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(old + ".manifest.json.sig"));
}

TEST_F(ASign, SignsADescriptorThatIsNotValidYet) {
  const std::string later = out_.Path("later.tgz");
  ASSERT_EQ(Pack(later, "2090-01-01T00:00:00Z", "30"), 0);
  EXPECT_EQ(Sign("k1", later + ".manifest.json").exit_code, 0);
}

TEST_F(ASign, RefusesADescriptorWhoseTarballBesideItWasSwapped) {
  std::ofstream(tarball_, std::ios::binary | std::ios::app) << "x";
  const CommandRun run = Sign("k1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("sign-tarball-mismatch"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Sig()));
}

TEST_F(ASign, SignsADescriptorAloneWhenNoTarballIsBesideIt) {
  const std::string alone = keys_.Path("alone.json");
  fs::copy_file(Descriptor(), alone);
  const CommandRun run = Sign("k1", alone);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("signing the descriptor alone"), std::string::npos) << run.err;
  EXPECT_TRUE(fs::exists(alone + ".sig"));
}

// Descriptors a worker would refuse are not signed.
struct BadDescriptor {
  const char* name;
  std::string (*mutate)(std::string);
  const char* rule;
};

class ABadDescriptor : public ASign, public ::testing::WithParamInterface<BadDescriptor> {};

TEST_P(ABadDescriptor, IsRefusedWithItsRule) {
  const std::string path = keys_.Path("bad.json");
  std::ofstream(path, std::ios::binary) << GetParam().mutate(ReadFile(Descriptor()));
  const CommandRun run = Sign("k1", path);
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(GetParam().rule), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(path + ".sig"));
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ABadDescriptor,
    ::testing::Values(
        BadDescriptor{"Empty", [](std::string) { return std::string(); }, "descriptor-json"},
        BadDescriptor{"NotJson", [](std::string) { return std::string("hello"); },
                      "descriptor-json"},
        BadDescriptor{"UnknownKey", [](std::string s) { return Replace(s, "{", "{\"extra\":1,"); },
                      "descriptor-unknown-key"},
        BadDescriptor{"BadSha",
                      [](std::string s) { return Replace(s, "\"sha256\":\"", "\"sha256\":\"X"); },
                      "descriptor-sha256"},
        BadDescriptor{"BadKind",
                      [](std::string s) { return Replace(s, "\"service\"", "\"other\""); },
                      "descriptor-kind"},
        BadDescriptor{
            "ExpiresBeforeCreated",
            [](std::string s) { return Replace(s, "\"expires\":\"2", "\"expires\":\"1"); },
            "descriptor-expires"},
        BadDescriptor{"Oversize", [](std::string s) { return s + std::string(3000, ' '); },
                      "descriptor-size"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(ASign, RefusesAKeyOthersCanRead) {
  ASSERT_EQ(chmod(keys_.Path("k1.key").c_str(), 0640), 0);
  const CommandRun run = Sign("k1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("sign-key-permissions"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Sig()));
}

TEST_F(ASign, RefusesAPublicKeyOrAnythingElseAsTheKey) {
  fs::copy_file(keys_.Path("k1.pub"), keys_.Path("pubaskey.key"));
  ASSERT_EQ(chmod(keys_.Path("pubaskey.key").c_str(), 0600), 0);
  EXPECT_EQ(Sign("pubaskey").exit_code, 1);
  keys_.File("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0600);
  EXPECT_EQ(Sign("junk").exit_code, 1);
  EXPECT_EQ(Sign("missing").exit_code, 1);
  EXPECT_FALSE(fs::exists(Sig()));
}

TEST_F(ASign, RefusesToAppendToACorruptSignatureFile) {
  std::ofstream(Sig()) << "rsa 0123456789abcdef AAAA\n";
  const CommandRun run = Sign("k1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("signature-"), std::string::npos) << run.err;
  EXPECT_EQ(ReadFile(Sig()), "rsa 0123456789abcdef AAAA\n");
}

TEST_F(ASign, KeepsALastLineWithoutItsNewlineOnItsOwnLine) {
  ASSERT_EQ(Sign("k2").exit_code, 0);
  std::string one = ReadFile(Sig());
  one.pop_back();
  std::ofstream(Sig(), std::ios::trunc) << one;
  ASSERT_EQ(Sign("k1").exit_code, 0);
  EXPECT_EQ(Signatures().size(), 2u);
}

TEST_F(ASign, RefusesASeventeenthSignature) {
  std::ofstream sig(Sig());
  for (int i = 0; i < 16; ++i) {
    auto key = SigningKey::Generate();
    ASSERT_TRUE(key);
    sig << FormatSignatureLine(key->Sign(ReadFile(Descriptor())));
  }
  sig.close();
  const CommandRun run = Sign("k1");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("sign-limit"), std::string::npos) << run.err;
  EXPECT_EQ(Lines(ReadFile(Sig())).size(), 16u);
}

TEST_F(ASign, ExitsTwoOnUsageErrors) {
  EXPECT_EQ(Call(RunSign, {Descriptor()}).exit_code, 2);
  EXPECT_EQ(Call(RunSign, {"--key", keys_.Path("k1.key")}).exit_code, 2);
  EXPECT_EQ(Call(RunSign, {"--key", keys_.Path("k1.key"), Descriptor(), Descriptor()}).exit_code,
            2);
  EXPECT_EQ(Call(RunSign, {"--key", keys_.Path("k1.key"), "--bogus", Descriptor()}).exit_code, 2);
  EXPECT_FALSE(fs::exists(Sig()));
}

}  // namespace
}  // namespace decnet::fleet
