// Ed25519 keys, the k-of-n signature check and the trusted key directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proto/release_auth.h"
#include "proto/sha256.h"

namespace decnet {
namespace {

namespace fs = std::filesystem;

const std::string kDescriptor =
    "{\"format\":1,\"sha256\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
    "\"size\":1234,\"kind\":\"service\",\"version\":\"1.2.0\",\"created\":\"2025-01-01T00:00:00Z\","
    "\"expires\":\"2025-01-31T00:00:00Z\"}\n";
constexpr int64_t kCreated = 1735689600;
constexpr int64_t kExpires = kCreated + 30 * 86400;
constexpr int64_t kNow = kCreated + 3600;

SigningKey NewKey() {
  auto key = SigningKey::Generate();
  EXPECT_TRUE(key) << key.error().message;
  return std::move(*key);
}

TrustedKeySet SetOf(const std::vector<const SigningKey*>& keys, unsigned threshold) {
  TrustedKeySet set;
  for (const SigningKey* key : keys) set.keys.push_back(key->Public());
  set.threshold = threshold;
  return set;
}

std::string RawHex(const std::vector<std::uint8_t>& raw) {
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

// A PEM written by OpenSSL directly, for key types the project never makes.
std::string OtherKeyPem(const char* type, bool private_key) {
  EVP_PKEY* pkey = std::string_view(type) == "EC"
                       ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, "P-256")
                       : EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_key) {
    PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    PEM_write_bio_PUBKEY(bio, pkey);
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return out;
}

// ---- keys ------------------------------------------------------------------------------

TEST(ASigningKey, SignsWhatItsPublicKeyVerifies) {
  SigningKey key = NewKey();
  const TrustedKey pub = key.Public();
  ASSERT_EQ(pub.raw.size(), 32u);
  EXPECT_EQ(pub.key_id, RawHex(pub.raw).substr(0, 16));
  ReleaseSignature sig = key.Sign(kDescriptor);
  EXPECT_EQ(sig.key_id, pub.key_id);
  EXPECT_EQ(sig.signature.size(), 64u);
  auto verdict = VerifyReleaseSignatures(kDescriptor, {sig}, SetOf({&key}, 1), kNow);
  ASSERT_TRUE(verdict) << verdict.error().message;
  EXPECT_EQ(verdict->valid_key_ids, std::vector<std::string>{pub.key_id});
  EXPECT_EQ(verdict->threshold, 1u);
}

TEST(ASigningKey, RoundTripsThroughItsPemFiles) {
  SigningKey key = NewKey();
  const std::string private_pem = key.PrivatePem();
  EXPECT_NE(private_pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  auto again = SigningKey::FromPem(private_pem);
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->Public().raw, key.Public().raw);
  // Ed25519 is deterministic: the same key signs the same bytes identically.
  EXPECT_EQ(again->Sign(kDescriptor).signature, key.Sign(kDescriptor).signature);

  const std::string public_pem = key.PublicPem();
  EXPECT_NE(public_pem.find("-----BEGIN PUBLIC KEY-----"), std::string::npos);
  auto pub = ParsePublicKeyPem(public_pem);
  ASSERT_TRUE(pub) << pub.error().message;
  EXPECT_EQ(pub->raw, key.Public().raw);
  EXPECT_EQ(pub->key_id, key.Public().key_id);
}

TEST(ASigningKey, GeneratesADifferentKeyEachTime) {
  EXPECT_NE(NewKey().Public().raw, NewKey().Public().raw);
}

TEST(ASignature, SignsThePrefixedPayloadOnly) {
  EXPECT_EQ(DescriptorSigningPayload("{}"), "decnet-release-descriptor-v1\n{}");
  // A signature by the same key over the bare descriptor (no prefix) does not verify.
  SigningKey key = NewKey();
  const std::string pem = key.PrivatePem();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(pkey, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::vector<std::uint8_t> bare(64);
  size_t len = bare.size();
  ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, pkey), 1);
  ASSERT_EQ(EVP_DigestSign(ctx, bare.data(), &len,
                           reinterpret_cast<const unsigned char*>(kDescriptor.data()),
                           kDescriptor.size()),
            1);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  auto verdict =
      VerifyReleaseSignatures(kDescriptor, {{key.Public().key_id, bare}}, SetOf({&key}, 1), kNow);
  ASSERT_FALSE(verdict);
  EXPECT_EQ(verdict.error().rule, "signature-threshold");
  EXPECT_TRUE(
      VerifyReleaseSignatures(kDescriptor, {key.Sign(kDescriptor)}, SetOf({&key}, 1), kNow));
}

TEST(APublicKeyPem, RefusesEverythingButOneEd25519PublicKey) {
  SigningKey key = NewKey();
  const std::string good = key.PublicPem();
  const std::pair<const char*, std::string> rows[] = {
      {"empty", ""},
      {"garbage", "hello"},
      {"truncated", good.substr(0, good.size() / 2)},
      {"body altered", good.substr(0, 30) + "!" + good.substr(31)},
      {"private key", key.PrivatePem()},
      {"two keys", good + NewKey().PublicPem()},
      {"trailing garbage", good + "x\n"},
      {"EC P-256", OtherKeyPem("EC", false)},
      {"X25519", OtherKeyPem("X25519", false)},
      {"Ed448", OtherKeyPem("ED448", false)},
      {"oversize", std::string(20000, '\n') + good},
  };
  for (const auto& [name, pem] : rows) {
    auto parsed = ParsePublicKeyPem(pem);
    ASSERT_FALSE(parsed) << name;
    EXPECT_EQ(parsed.error().rule, "trusted-key-format") << name;
  }
  EXPECT_TRUE(ParsePublicKeyPem(good + "\n\n"));
}

TEST(ASigningKeyPem, RefusesEverythingButAnUnencryptedEd25519Pkcs8Key) {
  SigningKey key = NewKey();
  // An encrypted copy of a valid key: refused without asking for a passphrase.
  const std::string pem = key.PrivatePem();
  BIO* in = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  BIO* out = BIO_new(BIO_s_mem());
  char pass[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out, pkey, EVP_aes_256_cbc(), pass, 6, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long len = BIO_get_mem_data(out, &data);
  const std::string encrypted(data, static_cast<size_t>(len));
  BIO_free(out);
  EVP_PKEY_free(pkey);

  const std::pair<const char*, std::string> rows[] = {
      {"empty", ""},
      {"garbage", "-----BEGIN PRIVATE KEY-----\nxyz\n-----END PRIVATE KEY-----\n"},
      {"public key", key.PublicPem()},
      {"encrypted", encrypted},
      {"EC P-256", OtherKeyPem("EC", true)},
      {"X25519", OtherKeyPem("X25519", true)},
  };
  for (const auto& [name, text] : rows) {
    auto parsed = SigningKey::FromPem(text);
    ASSERT_FALSE(parsed) << name;
    EXPECT_EQ(parsed.error().rule, "signing-key-format") << name;
  }
}

// ---- the k-of-n check --------------------------------------------------------------------

void ExpectRefused(const Result<SignatureVerdict>& verdict, const std::string& rule,
                   const char* what) {
  ASSERT_FALSE(verdict) << what;
  EXPECT_EQ(verdict.error().rule, rule) << what << ": " << verdict.error().message;
  EXPECT_EQ(verdict.error().code, ErrorCode::kDenied) << what;
}

TEST(TheSignatureCheck, RefusesAReleaseWithoutSignatures) {
  SigningKey a = NewKey();
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {}, SetOf({&a}, 1), kNow),
                "signature-required", "none");
}

TEST(TheSignatureCheck, RefusesASignatureByAnUntrustedKey) {
  SigningKey trusted = NewKey();
  SigningKey other = NewKey();
  ExpectRefused(
      VerifyReleaseSignatures(kDescriptor, {other.Sign(kDescriptor)}, SetOf({&trusted}, 1), kNow),
      "signature-threshold", "other key");
  // Claiming the trusted key's id does not help a signature by another key.
  ReleaseSignature forged = other.Sign(kDescriptor);
  forged.key_id = trusted.Public().key_id;
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {forged}, SetOf({&trusted}, 1), kNow),
                "signature-threshold", "forged key id");
}

TEST(TheSignatureCheck, RefusesADescriptorWithAnyOneByteChanged) {
  SigningKey key = NewKey();
  const ReleaseSignature sig = key.Sign(kDescriptor);
  const TrustedKeySet set = SetOf({&key}, 1);
  ASSERT_TRUE(VerifyReleaseSignatures(kDescriptor, {sig}, set, kNow));
  for (size_t i = 0; i < kDescriptor.size(); ++i) {
    std::string tampered = kDescriptor;
    tampered[i] = static_cast<char>(tampered[i] ^ 0x01);
    auto verdict = VerifyReleaseSignatures(tampered, {sig}, set, kNow);
    ASSERT_FALSE(verdict) << "byte " << i;
    EXPECT_EQ(verdict.error().rule, "signature-threshold") << "byte " << i;
  }
  ExpectRefused(VerifyReleaseSignatures(kDescriptor + " ", {sig}, set, kNow), "signature-threshold",
                "appended byte");
  ExpectRefused(
      VerifyReleaseSignatures(kDescriptor.substr(0, kDescriptor.size() - 1), {sig}, set, kNow),
      "signature-threshold", "dropped byte");
}

TEST(TheSignatureCheck, RefusesATruncatedOrAlteredSignature) {
  SigningKey key = NewKey();
  const TrustedKeySet set = SetOf({&key}, 1);
  ReleaseSignature sig = key.Sign(kDescriptor);
  ReleaseSignature truncated = sig;
  truncated.signature.pop_back();
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {truncated}, set, kNow), "signature-threshold",
                "63 bytes");
  ReleaseSignature empty{sig.key_id, {}};
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {empty}, set, kNow), "signature-threshold",
                "0 bytes");
  ReleaseSignature flipped = sig;
  flipped.signature[10] ^= 0x80;
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {flipped}, set, kNow), "signature-threshold",
                "one bit");
  // The line form of a truncated signature does not even parse.
  std::string line = FormatSignatureLine(sig);
  auto cut = ParseSignatureLine(line.substr(0, line.size() - 5) + "\n");
  ASSERT_FALSE(cut);
  EXPECT_EQ(cut.error().rule, "signature-encoding");
  auto whole = ParseSignatureLine(line);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(VerifyReleaseSignatures(kDescriptor, {*whole}, set, kNow));
}

TEST(TheSignatureCheck, CountsRepeatedSignaturesOfOneKeyOnce) {
  SigningKey a = NewKey();
  SigningKey b = NewKey();
  const ReleaseSignature sig = a.Sign(kDescriptor);
  auto verdict = VerifyReleaseSignatures(kDescriptor, {sig, sig, sig}, SetOf({&a, &b}, 2), kNow);
  ExpectRefused(verdict, "signature-threshold", "same key thrice");
  EXPECT_NE(verdict.error().message.find("1 of 2"), std::string::npos) << verdict.error().message;
  // The same key listed twice in a hand-built set still counts once.
  TrustedKeySet doubled = SetOf({&a, &a}, 2);
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {sig, sig}, doubled, kNow),
                "signature-threshold", "key listed twice");
}

TEST(TheSignatureCheck, IgnoresUnknownKeysButStillNeedsTheThreshold) {
  SigningKey a = NewKey();
  SigningKey stranger = NewKey();
  auto verdict = VerifyReleaseSignatures(
      kDescriptor, {stranger.Sign(kDescriptor), a.Sign(kDescriptor)}, SetOf({&a}, 1), kNow);
  ASSERT_TRUE(verdict) << verdict.error().message;
  EXPECT_EQ(verdict->valid_key_ids, std::vector<std::string>{a.Public().key_id});
  ExpectRefused(
      VerifyReleaseSignatures(kDescriptor, {stranger.Sign(kDescriptor)}, SetOf({&a}, 1), kNow),
      "signature-threshold", "stranger only");
}

TEST(TheSignatureCheck, NeedsTwoOfThreeWhereTheThresholdIsTwo) {
  SigningKey a = NewKey();
  SigningKey b = NewKey();
  SigningKey c = NewKey();
  const TrustedKeySet set = SetOf({&a, &b, &c}, 2);
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {a.Sign(kDescriptor)}, set, kNow),
                "signature-threshold", "one valid");
  ReleaseSignature bad_b = b.Sign(kDescriptor);
  bad_b.signature[0] ^= 1;
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {a.Sign(kDescriptor), bad_b}, set, kNow),
                "signature-threshold", "one valid, one broken");
  auto two =
      VerifyReleaseSignatures(kDescriptor, {c.Sign(kDescriptor), a.Sign(kDescriptor)}, set, kNow);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(two->valid_key_ids.size(), 2u);
  EXPECT_EQ(two->threshold, 2u);
  auto three = VerifyReleaseSignatures(
      kDescriptor, {a.Sign(kDescriptor), b.Sign(kDescriptor), c.Sign(kDescriptor)}, set, kNow);
  ASSERT_TRUE(three);
  EXPECT_EQ(three->valid_key_ids.size(), 3u);
}

TEST(TheSignatureCheck, FollowsARotatedKeySet) {
  SigningKey old_key = NewKey();
  SigningKey new_key = NewKey();
  SigningKey spare = NewKey();
  const TrustedKeySet rotated = SetOf({&new_key, &spare}, 1);
  // Signed during the overlap by both: the removed key is ignored, the new one suffices.
  auto overlap = VerifyReleaseSignatures(
      kDescriptor, {old_key.Sign(kDescriptor), new_key.Sign(kDescriptor)}, rotated, kNow);
  ASSERT_TRUE(overlap) << overlap.error().message;
  EXPECT_EQ(overlap->valid_key_ids, std::vector<std::string>{new_key.Public().key_id});
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, {old_key.Sign(kDescriptor)}, rotated, kNow),
                "signature-threshold", "old key only");
}

TEST(TheSignatureCheck, RefusesAnExpiredDescriptor) {
  SigningKey key = NewKey();
  const auto sigs = std::vector<ReleaseSignature>{key.Sign(kDescriptor)};
  const TrustedKeySet set = SetOf({&key}, 1);
  EXPECT_TRUE(VerifyReleaseSignatures(kDescriptor, sigs, set, kExpires - 1));
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, sigs, set, kExpires), "descriptor-expired",
                "at expiry");
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, sigs, set, kExpires + 86400 * 365),
                "descriptor-expired", "a year later");
}

TEST(TheSignatureCheck, RefusesADescriptorFromTheFutureBeyondFiveMinutes) {
  SigningKey key = NewKey();
  const auto sigs = std::vector<ReleaseSignature>{key.Sign(kDescriptor)};
  const TrustedKeySet set = SetOf({&key}, 1);
  EXPECT_TRUE(VerifyReleaseSignatures(kDescriptor, sigs, set, kCreated));
  EXPECT_TRUE(VerifyReleaseSignatures(kDescriptor, sigs, set, kCreated - 300));
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, sigs, set, kCreated - 301),
                "descriptor-not-yet-valid", "301 s early");
  ExpectRefused(VerifyReleaseSignatures(kDescriptor, sigs, set, 0), "descriptor-not-yet-valid",
                "epoch");
}

TEST(TheSignatureCheck, RefusesASignedDescriptorThatDoesNotParse) {
  SigningKey key = NewKey();
  const std::string bad = "{\"format\":2}";
  ExpectRefused(VerifyReleaseSignatures(bad, {key.Sign(bad)}, SetOf({&key}, 1), kNow),
                "descriptor-format", "signed but malformed");
  const std::string big(kMaxReleaseDescriptorBytes + 1, ' ');
  ExpectRefused(VerifyReleaseSignatures(big, {key.Sign(big)}, SetOf({&key}, 1), kNow),
                "descriptor-size", "signed but oversize");
}

TEST(TheSignatureCheck, NeverAcceptsWithAThresholdOfZero) {
  SigningKey key = NewKey();
  ExpectRefused(
      VerifyReleaseSignatures(kDescriptor, {key.Sign(kDescriptor)}, SetOf({&key}, 0), kNow),
      "signature-threshold", "threshold 0");
  ExpectRefused(
      VerifyReleaseSignatures(kDescriptor, {key.Sign(kDescriptor)}, TrustedKeySet{{}, 0}, kNow),
      "signature-threshold", "empty set");
}

// ---- the trusted key directory -----------------------------------------------------------

class ATrustedKeyDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-trusted-keys-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ / "keys";
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
    ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path Write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    fs::path path = dir_ / name;
    std::ofstream(path) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  fs::path WriteKey(const std::string& name, const SigningKey& key) {
    return Write(name, key.PublicPem());
  }

  void ExpectRefused(unsigned threshold, const std::string& rule, const char* what,
                     std::optional<uid_t> owner = std::nullopt) {
    auto set = LoadTrustedKeys(dir_, threshold, owner.value_or(me_));
    ASSERT_FALSE(set) << what;
    EXPECT_EQ(set.error().rule, rule) << what << ": " << set.error().message;
  }

  const uid_t me_ = geteuid();
  fs::path root_;
  fs::path dir_;
};

TEST_F(ATrustedKeyDir, LoadsEveryPubFileInNameOrder) {
  SigningKey a = NewKey();
  SigningKey b = NewKey();
  WriteKey("b.pub", b);
  WriteKey("a.pub", a);
  auto set = LoadTrustedKeys(dir_, 2, me_);
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->keys.size(), 2u);
  EXPECT_EQ(set->threshold, 2u);
  EXPECT_EQ(set->keys[0].key_id, a.Public().key_id);
  EXPECT_EQ(set->keys[0].source, (dir_ / "a.pub").string());
  EXPECT_EQ(set->keys[1].raw, b.Public().raw);
  auto verdict =
      VerifyReleaseSignatures(kDescriptor, {a.Sign(kDescriptor), b.Sign(kDescriptor)}, *set, kNow);
  EXPECT_TRUE(verdict) << verdict.error().message;
}

TEST_F(ATrustedKeyDir, IgnoresOtherNamesAndSubdirectories) {
  SigningKey a = NewKey();
  WriteKey("a.pub", a);
  Write("README", "not a key");
  Write("old.pub.disabled", "not a key");
  Write("a.pem", "not a key");
  Write(".pub", "not a key");
  Write("b.PUB", "not a key");
  ASSERT_EQ(mkdir((dir_ / "sub.pub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir_ / "sub").c_str(), 0755), 0);
  std::ofstream(dir_ / "sub" / "c.pub") << "not a key";
  auto set = LoadTrustedKeys(dir_, 1, me_);
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(set->keys.size(), 1u);
}

TEST_F(ATrustedKeyDir, RefusesAThresholdOutsideOneToN) {
  SigningKey a = NewKey();
  SigningKey b = NewKey();
  ExpectRefused(1, "trusted-key-threshold", "empty directory");
  WriteKey("a.pub", a);
  WriteKey("b.pub", b);
  ExpectRefused(0, "trusted-key-threshold", "threshold 0");
  ExpectRefused(3, "trusted-key-threshold", "threshold 3 of 2");
  EXPECT_TRUE(LoadTrustedKeys(dir_, 1, me_));
  EXPECT_TRUE(LoadTrustedKeys(dir_, 2, me_));
}

TEST_F(ATrustedKeyDir, RefusesAFileThatIsNotAKey) {
  SigningKey a = NewKey();
  WriteKey("a.pub", a);
  Write("b.pub", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB== user@host\n");
  ExpectRefused(1, "trusted-key-format", "ssh key");
  Write("b.pub", a.PrivatePem());
  ExpectRefused(1, "trusted-key-format", "private key");
  Write("b.pub", "");
  ExpectRefused(1, "trusted-key-format", "empty file");
  Write("b.pub", std::string(20000, '\n') + NewKey().PublicPem());
  ExpectRefused(1, "trusted-key-format", "oversize file");
}

TEST_F(ATrustedKeyDir, RefusesTheSameKeyUnderTwoNames) {
  SigningKey a = NewKey();
  WriteKey("a.pub", a);
  WriteKey("a-copy.pub", a);
  ExpectRefused(1, "trusted-key-duplicate", "duplicate");
}

TEST_F(ATrustedKeyDir, RefusesAKeyFileOwnedByAnotherUser) {
  SigningKey a = NewKey();
  const fs::path path = WriteKey("a.pub", a);
  ExpectRefused(1, "trusted-key-owner", "required owner differs (directory)", me_ + 1);
  if (me_ == 0) {
    ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
    ExpectRefused(1, "trusted-key-owner", "file owned by nobody");
    ASSERT_EQ(chown(path.c_str(), 0, 0), 0);
    EXPECT_TRUE(LoadTrustedKeys(dir_, 1, 0));
    ASSERT_EQ(chown(dir_.c_str(), 65534, 65534), 0);
    ExpectRefused(1, "trusted-key-owner", "directory owned by nobody");
  }
}

TEST_F(ATrustedKeyDir, RefusesAKeyFileOwnedByAnotherUserWhateverTheDirectory) {
  // The directory is acceptable, the file alone is not: required_owner names a uid that owns
  // the directory only.
  SigningKey a = NewKey();
  const fs::path path = WriteKey("a.pub", a);
  if (me_ == 0) {
    ASSERT_EQ(chown(dir_.c_str(), 4242, 0), 0);
    ExpectRefused(1, "trusted-key-owner", "file owned by root, directory by 4242", 4242);
    ASSERT_EQ(chown(path.c_str(), 4242, 0), 0);
    EXPECT_TRUE(LoadTrustedKeys(dir_, 1, 4242));
  } else {
    ExpectRefused(1, "trusted-key-owner", "not root", me_ + 1);
  }
}

TEST_F(ATrustedKeyDir, RefusesWritableByGroupOrOthers) {
  SigningKey a = NewKey();
  const fs::path path = WriteKey("a.pub", a);
  ASSERT_TRUE(LoadTrustedKeys(dir_, 1, me_));
  const std::pair<mode_t, const char*> modes[] = {
      {0664, "file g+w"}, {0646, "file o+w"}, {0666, "file a+w"}};
  for (const auto& [mode, what] : modes) {
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
    ExpectRefused(1, "trusted-key-owner", what);
  }
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(LoadTrustedKeys(dir_, 1, me_));
  for (const auto& [mode, what] : std::vector<std::pair<mode_t, const char*>>{
           {0775, "dir g+w"}, {0757, "dir o+w"}, {01777, "dir sticky a+w"}}) {
    ASSERT_EQ(chmod(dir_.c_str(), mode), 0);
    ExpectRefused(1, "trusted-key-owner", what);
  }
}

TEST_F(ATrustedKeyDir, RefusesASymbolicLinkInsteadOfAFile) {
  SigningKey a = NewKey();
  const fs::path elsewhere = root_ / "elsewhere.pub";
  std::ofstream(elsewhere) << a.PublicPem();
  fs::create_symlink(elsewhere, dir_ / "a.pub");
  ExpectRefused(1, "trusted-key-owner", "symlink to a key");
  fs::remove(dir_ / "a.pub");
  ASSERT_EQ(mkdir((root_ / "d").c_str(), 0755), 0);
  fs::create_symlink(root_ / "d", dir_ / "d.pub");
  WriteKey("a.pub", a);
  ExpectRefused(1, "trusted-key-owner", "symlink to a directory");
}

TEST_F(ATrustedKeyDir, RefusesAFifoNamedLikeAKey) {
  SigningKey a = NewKey();
  WriteKey("a.pub", a);
  ASSERT_EQ(mkfifo((dir_ / "b.pub").c_str(), 0644), 0);
  ExpectRefused(1, "trusted-key-owner", "fifo");
}

TEST_F(ATrustedKeyDir, RefusesADirectoryThatIsALinkOrMissing) {
  SigningKey a = NewKey();
  WriteKey("a.pub", a);
  const fs::path link = root_ / "link";
  fs::create_symlink(dir_, link);
  auto via_link = LoadTrustedKeys(link, 1, me_);
  ASSERT_FALSE(via_link);
  EXPECT_EQ(via_link.error().rule, "trusted-key-owner");
  auto missing = LoadTrustedKeys(root_ / "missing", 1, me_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().rule, "trusted-key-dir");
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto file = LoadTrustedKeys(dir_ / "a.pub", 1, me_);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().rule, "trusted-key-owner");
}

}  // namespace
}  // namespace decnet
