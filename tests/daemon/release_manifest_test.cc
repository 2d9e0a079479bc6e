#include "proto/release_manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace decnet {
namespace {

struct RefusedManifest {
  const char* name;
  std::string bytes;
  const char* rule;
};

const std::string kDigest(64, 'a');

TEST(AReleaseManifest, ParsesAServiceManifest) {
  auto m = ParseReleaseManifest(R"({"format":1,"version":"1.4.2+g3f2a","kind":"service"})");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->version.str(), "1.4.2+g3f2a");
  EXPECT_EQ(m->kind, ReleaseKind::kService);
  EXPECT_FALSE(m->arch);
  EXPECT_FALSE(m->helper_protocol);
}

TEST(AReleaseManifest, ParsesAnUpdaterManifestWithArchAndProtocol) {
  auto m = ParseReleaseManifest(
      R"({"format":1,"version":"0.2.0","kind":"updater","arch":"aarch64","helper_protocol":1})");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->kind, ReleaseKind::kUpdater);
  EXPECT_EQ(m->arch, "aarch64");
  EXPECT_EQ(m->helper_protocol, 1u);
}

TEST(AReleaseManifest, AcceptsAnArchOnAServiceRelease) {
  EXPECT_TRUE(
      ParseReleaseManifest(R"({"format":1,"version":"1","kind":"service","arch":"x86_64"})"));
}

TEST(AReleaseManifest, ReadsAnOptionalCommit) {
  auto with =
      ParseReleaseManifest(R"({"format":1,"version":"1.0","kind":"service","commit":"3f2a9c1"})");
  ASSERT_TRUE(with) << with.error().message;
  EXPECT_EQ(with->commit, "3f2a9c1");
  auto full = ParseReleaseManifest(R"({"format":1,"version":"1.0","kind":"service","commit":")" +
                                   std::string(64, 'f') + R"("})");
  ASSERT_TRUE(full) << full.error().message;
  EXPECT_EQ(full->commit, std::string(64, 'f'));
  auto without = ParseReleaseManifest(R"({"format":1,"version":"1.0","kind":"service"})");
  ASSERT_TRUE(without);
  EXPECT_FALSE(without->commit);
}

TEST(AReleaseManifest, KeepsTheCommitThroughSerialize) {
  auto m = ParseReleaseManifest(
      R"({"format":1,"version":"2","kind":"updater","arch":"x86_64","helper_protocol":1,)"
      R"("commit":"0123456789abcdef0123456789abcdef01234567"})");
  ASSERT_TRUE(m) << m.error().message;
  const std::string bytes = SerializeReleaseManifest(*m);
  EXPECT_NE(bytes.find("\"commit\":\"0123456789abcdef0123456789abcdef01234567\""),
            std::string::npos)
      << bytes;
  auto again = ParseReleaseManifest(bytes);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->commit, m->commit);
  auto plain = ParseReleaseManifest(R"({"format":1,"version":"2","kind":"service"})");
  ASSERT_TRUE(plain);
  EXPECT_EQ(SerializeReleaseManifest(*plain).find("commit"), std::string::npos);
}

TEST(AReleaseManifest, RoundTripsThroughSerialize) {
  auto m = ParseReleaseManifest(
      R"({"kind":"updater","arch":"x86_64","helper_protocol":7,"version":"v_1-2","format":1})");
  ASSERT_TRUE(m);
  auto again = ParseReleaseManifest(SerializeReleaseManifest(*m));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->version, m->version);
  EXPECT_EQ(again->arch, m->arch);
  EXPECT_EQ(again->helper_protocol, m->helper_protocol);
}

TEST(AReleaseManifest, RefusesEachMalformedRowWithItsRule) {
  const RefusedManifest kRows[] = {
      {"empty", "", "manifest-json"},
      {"not json", "version=1", "manifest-json"},
      {"array", R"([1])", "manifest-json"},
      {"trailing bytes", R"({"format":1,"version":"1","kind":"service"} x)", "manifest-json"},
      {"duplicate key", R"({"format":1,"version":"1","version":"2","kind":"service"})",
       "manifest-json"},
      {"nested object", R"({"format":1,"version":"1","kind":"service","units":{}})",
       "manifest-json"},
      {"oversize",
       R"({"format":1,"version":"1","kind":"service","x":")" + std::string(5000, 'a') + "\"}",
       "manifest-size"},
      {"unknown key", R"({"format":1,"version":"1","kind":"service","signed":true})",
       "manifest-unknown-key"},
      {"unknown key case", R"({"format":1,"version":"1","kind":"service","Version":"1"})",
       "manifest-unknown-key"},
      {"format missing", R"({"version":"1","kind":"service"})", "manifest-format"},
      {"format 2", R"({"format":2,"version":"1","kind":"service"})", "manifest-format"},
      {"format 0", R"({"format":0,"version":"1","kind":"service"})", "manifest-format"},
      {"format string", R"({"format":"1","version":"1","kind":"service"})", "manifest-format"},
      {"format float", R"({"format":1.0,"version":"1","kind":"service"})", "manifest-format"},
      {"format negative", R"({"format":-1,"version":"1","kind":"service"})", "manifest-format"},
      {"version missing", R"({"format":1,"kind":"service"})", "manifest-version"},
      {"version empty", R"({"format":1,"version":"","kind":"service"})", "manifest-version"},
      {"version number", R"({"format":1,"version":1,"kind":"service"})", "manifest-version"},
      {"version null", R"({"format":1,"version":null,"kind":"service"})", "manifest-version"},
      {"version space", R"({"format":1,"version":"1 2","kind":"service"})", "manifest-version"},
      {"version slash", R"({"format":1,"version":"../1","kind":"service"})", "manifest-version"},
      {"version newline", R"({"format":1,"version":"1\n","kind":"service"})", "manifest-version"},
      {"version nul", R"({"format":1,"version":"1\u0000","kind":"service"})", "manifest-version"},
      {"version non-ascii", R"({"format":1,"version":"1.\u00e9","kind":"service"})",
       "manifest-version"},
      {"version 65 chars",
       R"({"format":1,"version":")" + std::string(65, '1') + R"(","kind":"service"})",
       "manifest-version"},
      {"kind missing", R"({"format":1,"version":"1"})", "manifest-kind"},
      {"kind unknown", R"({"format":1,"version":"1","kind":"python"})", "manifest-kind"},
      {"kind upper case", R"({"format":1,"version":"1","kind":"Service"})", "manifest-kind"},
      {"kind array", R"({"format":1,"version":"1","kind":["service"]})", "manifest-json"},
      {"kind bool", R"({"format":1,"version":"1","kind":true})", "manifest-kind"},
      {"updater no arch", R"({"format":1,"version":"1","kind":"updater","helper_protocol":1})",
       "manifest-arch"},
      {"arch empty", R"({"format":1,"version":"1","kind":"updater","arch":"","helper_protocol":1})",
       "manifest-arch"},
      {"arch slash",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86/64","helper_protocol":1})",
       "manifest-arch"},
      {"arch dash",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86-64","helper_protocol":1})",
       "manifest-arch"},
      {"arch too long",
       R"({"format":1,"version":"1","kind":"updater","arch":")" + std::string(33, 'a') +
           R"(","helper_protocol":1})",
       "manifest-arch"},
      {"arch number",
       R"({"format":1,"version":"1","kind":"updater","arch":64,"helper_protocol":1})",
       "manifest-arch"},
      {"updater no protocol", R"({"format":1,"version":"1","kind":"updater","arch":"x86_64"})",
       "manifest-helper-protocol"},
      {"protocol zero",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86_64","helper_protocol":0})",
       "manifest-helper-protocol"},
      {"protocol huge",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86_64","helper_protocol":65536})",
       "manifest-helper-protocol"},
      {"protocol string",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86_64","helper_protocol":"1"})",
       "manifest-helper-protocol"},
      {"protocol negative",
       R"({"format":1,"version":"1","kind":"updater","arch":"x86_64","helper_protocol":-1})",
       "manifest-helper-protocol"},
      {"protocol on service", R"({"format":1,"version":"1","kind":"service","helper_protocol":1})",
       "manifest-helper-protocol"},
      {"commit empty", R"({"format":1,"version":"1","kind":"service","commit":""})",
       "manifest-commit"},
      {"commit 6 digits", R"({"format":1,"version":"1","kind":"service","commit":"3f2a9c"})",
       "manifest-commit"},
      {"commit 65 digits",
       R"({"format":1,"version":"1","kind":"service","commit":")" + std::string(65, 'a') + "\"}",
       "manifest-commit"},
      {"commit upper case", R"({"format":1,"version":"1","kind":"service","commit":"3F2A9C1"})",
       "manifest-commit"},
      {"commit not hex", R"({"format":1,"version":"1","kind":"service","commit":"3f2a9g1"})",
       "manifest-commit"},
      {"commit with space", R"({"format":1,"version":"1","kind":"service","commit":"3f2a9c1 "})",
       "manifest-commit"},
      {"commit number", R"({"format":1,"version":"1","kind":"service","commit":3210987})",
       "manifest-commit"},
      {"commit null", R"({"format":1,"version":"1","kind":"service","commit":null})",
       "manifest-commit"},
      {"commit key case", R"({"format":1,"version":"1","kind":"service","Commit":"3f2a9c1"})",
       "manifest-unknown-key"},
  };
  for (const auto& row : kRows) {
    auto m = ParseReleaseManifest(row.bytes);
    ASSERT_FALSE(m) << row.name;
    EXPECT_EQ(m.error().rule, row.rule) << row.name << ": " << m.error().message;
    EXPECT_EQ(m.error().code, ErrorCode::kMalformed) << row.name;
  }
}

TEST(AReleaseId, IsTheFirstSixteenHexDigitsOfTheDigest) {
  auto id = ReleaseId::FromSha256Hex("0123456789abcdef" + std::string(48, 'f'));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->str(), "0123456789abcdef");
}

TEST(AReleaseId, RefusesAnythingButSixteenLowerCaseHexDigits) {
  for (const char* bad :
       {"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg",
        "../3456789abcdef", "0123456789abcde/", "current", "0123456789abcd\n"}) {
    auto id = ReleaseId::Parse(bad);
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().rule, "release-id");
  }
  for (const std::string& bad : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
                                 std::string(63, 'a') + "g"}) {
    auto id = ReleaseId::FromSha256Hex(bad);
    ASSERT_FALSE(id) << bad;
    EXPECT_EQ(id.error().rule, "release-digest");
  }
}

TEST(ATreeWithoutAManifest, TakesItsVersionFromTheShaField) {
  auto v = VersionWithoutManifest("3f2a9c1", kDigest);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->str(), "3f2a9c1");
}

TEST(ATreeWithoutAManifest, FallsBackToTheDigestWhenShaIsAbsentOrEmpty) {
  auto absent = VersionWithoutManifest(std::nullopt, kDigest);
  auto empty = VersionWithoutManifest("", kDigest);
  ASSERT_TRUE(absent);
  ASSERT_TRUE(empty);
  EXPECT_EQ(absent->str(), kDigest);
  EXPECT_EQ(empty->str(), kDigest);
}

TEST(ATreeWithoutAManifest, RefusesAnInvalidShaOrDigest) {
  auto bad_sha = VersionWithoutManifest("a b", kDigest);
  ASSERT_FALSE(bad_sha);
  EXPECT_EQ(bad_sha.error().rule, "manifest-version");
  auto bad_digest = VersionWithoutManifest(std::nullopt, "xyz");
  ASSERT_FALSE(bad_digest);
  EXPECT_EQ(bad_digest.error().rule, "release-digest");
}

TEST(TheSigningPayload, IsPrefixDigestNewlineAndRawManifestBytes) {
  std::string manifest = "{\"format\":1, \"version\":\"1\",\"kind\":\"service\"}\n";
  EXPECT_EQ(ManifestSigningPayload(manifest, kDigest),
            "decnet-release-v1\n" + kDigest + "\n" + manifest);
  EXPECT_EQ(ManifestSigningPayload("", kDigest), "decnet-release-v1\n" + kDigest + "\n");
}

TEST(TheSigningPayload, DiffersWhenEitherTheDigestOrAManifestByteDiffers) {
  std::string a = ManifestSigningPayload("{}", kDigest);
  EXPECT_NE(a, ManifestSigningPayload("{} ", kDigest));
  EXPECT_NE(a, ManifestSigningPayload("{}", std::string(64, 'b')));
}

}  // namespace
}  // namespace decnet
