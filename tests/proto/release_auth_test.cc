// The descriptor, UTC times, signature lines and the version order (no keys involved).
#include "proto/release_auth.h"

#include <gtest/gtest.h>
#include <time.h>

#include <compare>
#include <string>
#include <utility>
#include <vector>

namespace decnet {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

const std::string kDigest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A valid descriptor's fields as raw JSON values, in the serialiser's order.
Fields BaseFields() {
  return {{"format", "1"},
          {"sha256", "\"" + kDigest + "\""},
          {"size", "1234"},
          {"kind", "\"service\""},
          {"version", "\"1.2.0\""},
          {"created", "\"2025-01-01T00:00:00Z\""},
          {"expires", "\"2025-01-31T00:00:00Z\""}};
}

std::string Json(const Fields& fields) {
  std::string out = "{";
  for (const auto& [key, value] : fields) {
    if (out.size() > 1) out += ",";
    out += "\"" + key + "\":" + value;
  }
  return out + "}";
}

// The base descriptor with `key` set to `value` (appended when new).
std::string With(const std::string& key, const std::string& value) {
  Fields fields = BaseFields();
  bool found = false;
  for (auto& [k, v] : fields) {
    if (k == key) {
      v = value;
      found = true;
    }
  }
  if (!found) fields.emplace_back(key, value);
  return Json(fields);
}

std::string Without(const std::string& key) {
  Fields fields;
  for (const auto& field : BaseFields()) {
    if (field.first != key) fields.push_back(field);
  }
  return Json(fields);
}

// ---- the descriptor ----------------------------------------------------------------------

TEST(AReleaseDescriptor, ParsesEveryField) {
  auto d = ParseReleaseDescriptor(With("commit", "\"3f2a9c1\""));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->sha256, kDigest);
  EXPECT_EQ(d->size, 1234u);
  EXPECT_EQ(d->kind, ReleaseKind::kService);
  EXPECT_EQ(d->version.str(), "1.2.0");
  EXPECT_EQ(d->commit, "3f2a9c1");
  EXPECT_EQ(d->created, 1735689600);
  EXPECT_EQ(d->expires, 1735689600 + 30 * 86400);
}

TEST(AReleaseDescriptor, AcceptsTheEdgesOfEachRange) {
  const std::string rows[] = {
      Json(BaseFields()),
      With("kind", "\"updater\""),
      With("size", "1"),
      With("size", "9007199254740992"),
      With("commit", "\"" + std::string(64, 'a') + "\""),
      With("commit", "\"0000000\""),
      With("expires", "\"2025-01-01T00:00:01Z\""),
      With("version", "\"" + kDigest + "\""),
      With("version", "\"1.2.0-rc.1+build.7\""),
      "  " + Json(BaseFields()) + "\n",
  };
  for (const auto& row : rows) {
    auto d = ParseReleaseDescriptor(row);
    EXPECT_TRUE(d) << row << ": " << d.error().message;
  }
}

struct RefusedDescriptor {
  const char* name;
  std::string bytes;
  const char* rule;
};

TEST(AReleaseDescriptor, RefusesEachMalformedRowWithItsRule) {
  const RefusedDescriptor rows[] = {
      {"empty", "", "descriptor-json"},
      {"not json", "format=1", "descriptor-json"},
      {"array", "[" + Json(BaseFields()) + "]", "descriptor-json"},
      {"trailing bytes", Json(BaseFields()) + "x", "descriptor-json"},
      {"two objects", Json(BaseFields()) + Json(BaseFields()), "descriptor-json"},
      {"duplicate key", With("version", "\"1.2.0\",\"version\":\"9.9.9\""), "descriptor-json"},
      {"duplicate sha", With("sha256", "\"" + kDigest + "\",\"sha256\":\"" + kDigest + "\""),
       "descriptor-json"},
      {"nested object", With("extra", "{}"), "descriptor-json"},
      {"nested array", With("kind", "[\"service\"]"), "descriptor-json"},
      {"oversize", With("version", "\"1\"" + std::string(2100, ' ')), "descriptor-size"},
      {"unknown key", With("signature", "\"x\""), "descriptor-unknown-key"},
      {"unknown key case", With("Version", "\"1\""), "descriptor-unknown-key"},
      {"manifest key", With("arch", "\"x86_64\""), "descriptor-unknown-key"},
      {"format missing", Without("format"), "descriptor-format"},
      {"format 2", With("format", "2"), "descriptor-format"},
      {"format 0", With("format", "0"), "descriptor-format"},
      {"format string", With("format", "\"1\""), "descriptor-format"},
      {"format float", With("format", "1.0"), "descriptor-format"},
      {"format negative", With("format", "-1"), "descriptor-format"},
      {"sha missing", Without("sha256"), "descriptor-sha256"},
      {"sha upper case", With("sha256", "\"" + std::string(64, 'A') + "\""), "descriptor-sha256"},
      {"sha 63", With("sha256", "\"" + std::string(63, 'a') + "\""), "descriptor-sha256"},
      {"sha 65", With("sha256", "\"" + std::string(65, 'a') + "\""), "descriptor-sha256"},
      {"sha not hex", With("sha256", "\"" + std::string(63, 'a') + "g\""), "descriptor-sha256"},
      {"sha number", With("sha256", "12"), "descriptor-sha256"},
      {"size missing", Without("size"), "descriptor-size-field"},
      {"size zero", With("size", "0"), "descriptor-size-field"},
      {"size over 2^53", With("size", "9007199254740993"), "descriptor-size-field"},
      {"size negative", With("size", "-1"), "descriptor-size-field"},
      {"size float", With("size", "12.5"), "descriptor-size-field"},
      {"size exponent", With("size", "1e3"), "descriptor-size-field"},
      {"size string", With("size", "\"1234\""), "descriptor-size-field"},
      {"kind missing", Without("kind"), "descriptor-kind"},
      {"kind unknown", With("kind", "\"python\""), "descriptor-kind"},
      {"kind upper case", With("kind", "\"Service\""), "descriptor-kind"},
      {"kind null", With("kind", "null"), "descriptor-kind"},
      {"version missing", Without("version"), "descriptor-version"},
      {"version empty", With("version", "\"\""), "descriptor-version"},
      {"version space", With("version", "\"1 2\""), "descriptor-version"},
      {"version slash", With("version", "\"../1\""), "descriptor-version"},
      {"version 65 chars", With("version", "\"" + std::string(65, '1') + "\""),
       "descriptor-version"},
      {"version number", With("version", "1"), "descriptor-version"},
      {"commit empty", With("commit", "\"\""), "descriptor-commit"},
      {"commit 6", With("commit", "\"3f2a9c\""), "descriptor-commit"},
      {"commit 65", With("commit", "\"" + std::string(65, 'a') + "\""), "descriptor-commit"},
      {"commit upper", With("commit", "\"3F2A9C1\""), "descriptor-commit"},
      {"commit not hex", With("commit", "\"3f2a9z1\""), "descriptor-commit"},
      {"commit null", With("commit", "null"), "descriptor-commit"},
      {"commit number", With("commit", "1234567"), "descriptor-commit"},
      {"created missing", Without("created"), "descriptor-created"},
      {"created number", With("created", "1735689600"), "descriptor-created"},
      {"created offset", With("created", "\"2025-01-01T00:00:00+00:00\""), "descriptor-created"},
      {"created fraction", With("created", "\"2025-01-01T00:00:00.5Z\""), "descriptor-created"},
      {"created date only", With("created", "\"2025-01-01\""), "descriptor-created"},
      {"created Feb 30", With("created", "\"2025-02-30T00:00:00Z\""), "descriptor-created"},
      {"expires missing", Without("expires"), "descriptor-expires"},
      {"expires equal", With("expires", "\"2025-01-01T00:00:00Z\""), "descriptor-expires"},
      {"expires before", With("expires", "\"2024-12-31T23:59:59Z\""), "descriptor-expires"},
      {"expires hour 24", With("expires", "\"2025-01-31T24:00:00Z\""), "descriptor-expires"},
      {"expires lower z", With("expires", "\"2025-01-31T00:00:00z\""), "descriptor-expires"},
  };
  for (const auto& row : rows) {
    auto d = ParseReleaseDescriptor(row.bytes);
    ASSERT_FALSE(d) << row.name;
    EXPECT_EQ(d.error().rule, row.rule) << row.name << ": " << d.error().message;
    EXPECT_EQ(d.error().code, ErrorCode::kMalformed) << row.name;
  }
}

TEST(AReleaseDescriptor, RefusesOneByteOverTheLimitButNotAtIt) {
  const std::string base = Json(BaseFields());
  const std::string at = base + std::string(kMaxReleaseDescriptorBytes - base.size(), ' ');
  ASSERT_EQ(at.size(), kMaxReleaseDescriptorBytes);
  EXPECT_TRUE(ParseReleaseDescriptor(at));
  auto over = ParseReleaseDescriptor(at + " ");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().rule, "descriptor-size");
}

TEST(AReleaseDescriptor, RoundTripsThroughSerializeAsOneLine) {
  for (const std::string& bytes :
       {With("commit", "\"3f2a9c1\""), With("kind", "\"updater\""), Json(BaseFields())}) {
    auto d = ParseReleaseDescriptor(bytes);
    ASSERT_TRUE(d) << d.error().message;
    const std::string out = SerializeReleaseDescriptor(*d);
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1);
    auto again = ParseReleaseDescriptor(out);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->sha256, d->sha256);
    EXPECT_EQ(again->size, d->size);
    EXPECT_EQ(again->kind, d->kind);
    EXPECT_EQ(again->version, d->version);
    EXPECT_EQ(again->commit, d->commit);
    EXPECT_EQ(again->created, d->created);
    EXPECT_EQ(again->expires, d->expires);
    EXPECT_EQ(SerializeReleaseDescriptor(*again), out);
  }
}

TEST(AReleaseDescriptor, SerializesKeysInTheDocumentedOrder) {
  auto d = ParseReleaseDescriptor(With("commit", "\"3f2a9c1\""));
  ASSERT_TRUE(d);
  EXPECT_EQ(SerializeReleaseDescriptor(*d),
            "{\"format\":1,\"sha256\":\"" + kDigest +
                "\",\"size\":1234,\"kind\":\"service\",\"version\":\"1.2.0\",\"commit\":"
                "\"3f2a9c1\",\"created\":\"2025-01-01T00:00:00Z\",\"expires\":"
                "\"2025-01-31T00:00:00Z\"}\n");
}

// ---- UTC times -------------------------------------------------------------------------

TEST(AUtcTime, ParsesKnownInstants) {
  const std::pair<const char*, int64_t> rows[] = {
      {"1970-01-01T00:00:00Z", 0},          {"1970-01-01T00:00:01Z", 1},
      {"1970-01-02T00:00:00Z", 86400},      {"2000-02-29T12:34:56Z", 951827696},
      {"2024-12-31T23:59:59Z", 1735689599}, {"2025-01-01T00:00:00Z", 1735689600},
      {"2038-01-19T03:14:08Z", 2147483648}, {"9999-12-31T23:59:59Z", 253402300799},
  };
  for (const auto& [text, seconds] : rows) {
    auto t = ParseUtcTime(text);
    ASSERT_TRUE(t) << text << ": " << t.error().message;
    EXPECT_EQ(*t, seconds) << text;
    EXPECT_EQ(FormatUtcTime(seconds), text);
  }
}

TEST(AUtcTime, RefusesEveryOtherFormAndImpossibleDates) {
  const char* rows[] = {
      "",
      "2025-01-01",
      "2025-01-01T00:00:00",
      "2025-01-01T00:00:00z",
      "2025-01-01t00:00:00Z",
      "2025-01-01 00:00:00Z",
      "2025-01-01T00:00:00+00:00",
      "2025-01-01T00:00:00.0Z",
      "2025-01-01T00:00:00Z\n",
      " 2025-01-01T00:00:00Z",
      "2025-1-01T00:00:00Z",
      "2025-01-01T0:00:00Z0",
      "+025-01-01T00:00:00Z",
      "2025-01-01T00:00:-1Z",
      "2025/01/01T00:00:00Z",
      "2025-0a-01T00:00:00Z",
      "1969-12-31T23:59:59Z",
      "1900-01-01T00:00:00Z",
      "0000-01-01T00:00:00Z",
      "2025-00-01T00:00:00Z",
      "2025-13-01T00:00:00Z",
      "2025-01-00T00:00:00Z",
      "2025-01-32T00:00:00Z",
      "2025-02-29T00:00:00Z",
      "2024-02-30T00:00:00Z",
      "2100-02-29T00:00:00Z",
      "2025-04-31T00:00:00Z",
      "2025-06-31T00:00:00Z",
      "2025-09-31T00:00:00Z",
      "2025-11-31T00:00:00Z",
      "2025-01-01T24:00:00Z",
      "2025-01-01T23:60:00Z",
      "2016-12-31T23:59:60Z",
      "2025-01-01T99:99:99Z",
  };
  for (const char* text : rows) {
    auto t = ParseUtcTime(text);
    ASSERT_FALSE(t) << text;
    EXPECT_EQ(t.error().rule, "descriptor-time") << text;
  }
}

TEST(AUtcTime, AcceptsLeapDaysOfLeapYearsOnly) {
  EXPECT_TRUE(ParseUtcTime("2024-02-29T00:00:00Z"));
  EXPECT_TRUE(ParseUtcTime("2000-02-29T00:00:00Z"));
  EXPECT_TRUE(ParseUtcTime("2400-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseUtcTime("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(ParseUtcTime("2200-02-29T00:00:00Z"));
}

TEST(AUtcTime, AgreesWithTheCLibraryOverFourCenturies) {
  // gmtime_r as an independent oracle, every 3 days and 7 hours from 1970 to 2399.
  for (int64_t s = 0; s < 13569465600; s += 3 * 86400 + 7 * 3600 + 13) {
    const time_t t = static_cast<time_t>(s);
    struct tm tm {};
    ASSERT_NE(gmtime_r(&t, &tm), nullptr);
    char expected[32];
    strftime(expected, sizeof expected, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ASSERT_EQ(FormatUtcTime(s), expected) << s;
    auto back = ParseUtcTime(expected);
    ASSERT_TRUE(back) << expected;
    ASSERT_EQ(*back, s) << expected;
  }
}

TEST(AUtcTime, ClampsFormattingToTheRepresentableYears) {
  EXPECT_EQ(FormatUtcTime(-1), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUtcTime(253402300800), "9999-12-31T23:59:59Z");
}

// ---- signature lines -------------------------------------------------------------------

const std::string kKeyId = "0123456789abcdef";
const std::string kZeros = std::string(86, 'A') + "==";  // 64 zero bytes
const std::string kCounting =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

TEST(ASignatureLine, ParsesAlgorithmKeyIdAndSignature) {
  for (const std::string& line :
       {"ed25519 " + kKeyId + " " + kCounting, "ed25519 " + kKeyId + " " + kCounting + "\n"}) {
    auto s = ParseSignatureLine(line);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(s->key_id, kKeyId);
    ASSERT_EQ(s->signature.size(), 64u);
    for (size_t i = 0; i < 64; ++i) EXPECT_EQ(s->signature[i], i);
  }
}

TEST(ASignatureLine, FormatsAsStandardPaddedBase64) {
  std::vector<std::uint8_t> counting(64);
  for (size_t i = 0; i < 64; ++i) counting[i] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(FormatSignatureLine({kKeyId, counting}), "ed25519 " + kKeyId + " " + kCounting + "\n");
  EXPECT_EQ(FormatSignatureLine({kKeyId, std::vector<std::uint8_t>(64, 0xff)}),
            "ed25519 " + kKeyId + " " + std::string(85, '/') + "w==\n");
  auto back = ParseSignatureLine(FormatSignatureLine({kKeyId, counting}));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->signature, counting);
}

struct RefusedLine {
  const char* name;
  std::string line;
  const char* rule;
};

TEST(ASignatureLine, RefusesEachMalformedRowWithItsRule) {
  const std::string ok_tail = " " + kKeyId + " " + kZeros;
  const std::string prefix = "ed25519 " + kKeyId + " ";
  const RefusedLine rows[] = {
      {"empty", "", "signature-format"},
      {"newline only", "\n", "signature-format"},
      {"over 256 bytes", prefix + std::string(300, 'A'), "signature-size"},
      {"two fields", "ed25519 " + kKeyId, "signature-format"},
      {"four fields", "ed25519" + ok_tail + " extra", "signature-format"},
      {"double space", "ed25519  " + kKeyId + " " + kZeros, "signature-format"},
      {"leading space", " ed25519" + ok_tail, "signature-format"},
      {"trailing space", "ed25519" + ok_tail + " ", "signature-format"},
      {"tab separator", "ed25519\t" + kKeyId + " " + kZeros, "signature-format"},
      {"crlf", "ed25519" + ok_tail + "\r\n", "signature-format"},
      {"two newlines", "ed25519" + ok_tail + "\n\n", "signature-format"},
      {"newline in base64", prefix + kZeros.substr(0, 40) + "\n" + kZeros.substr(40),
       "signature-format"},
      {"nul byte", "ed25519" + ok_tail + std::string(1, '\0'), "signature-format"},
      {"non-ascii", "ed25519" + ok_tail + "\xc3\xa9", "signature-format"},
      {"rsa", "rsa" + ok_tail, "signature-algorithm"},
      {"upper case algorithm", "Ed25519" + ok_tail, "signature-algorithm"},
      {"ed448", "ed448" + ok_tail, "signature-algorithm"},
      {"key id 15", "ed25519 0123456789abcde " + kZeros, "signature-key-id"},
      {"key id 17", "ed25519 0123456789abcdef0 " + kZeros, "signature-key-id"},
      {"key id upper", "ed25519 0123456789ABCDEF " + kZeros, "signature-key-id"},
      {"key id not hex", "ed25519 0123456789abcdeg " + kZeros, "signature-key-id"},
      {"key id full digest", "ed25519 " + kDigest + " " + kZeros, "signature-key-id"},
      {"no padding", prefix + std::string(86, 'A'), "signature-encoding"},
      {"one pad", prefix + std::string(86, 'A') + "=", "signature-encoding"},
      {"pad replaced", prefix + std::string(88, 'A'), "signature-encoding"},
      {"three pads", prefix + std::string(85, 'A') + "===", "signature-encoding"},
      {"87 chars", prefix + std::string(85, 'A') + "==", "signature-encoding"},
      {"89 chars", prefix + std::string(87, 'A') + "==", "signature-encoding"},
      {"63 bytes", prefix + std::string(84, 'A'), "signature-encoding"},
      {"65 bytes", prefix + std::string(87, 'A') + "=", "signature-encoding"},
      {"66 bytes", prefix + std::string(88, 'A'), "signature-encoding"},
      {"48 bytes", prefix + std::string(64, 'A'), "signature-encoding"},
      {"url-safe alphabet", prefix + std::string(85, '_') + "w==", "signature-encoding"},
      {"dash alphabet", prefix + std::string(85, '-') + "w==", "signature-encoding"},
      {"padding inside",
       prefix + std::string(40, 'A') + "==" + std::string(44, 'A') + "==", "signature-encoding"},
      {"non-canonical last char", prefix + std::string(85, 'A') + "B==", "signature-encoding"},
      {"non-canonical ff", prefix + std::string(85, '/') + "x==", "signature-encoding"},
      {"empty signature", prefix.substr(0, prefix.size() - 1) + " x", "signature-encoding"},
  };
  for (const auto& row : rows) {
    auto s = ParseSignatureLine(row.line);
    ASSERT_FALSE(s) << row.name;
    EXPECT_EQ(s.error().rule, row.rule) << row.name << ": " << s.error().message;
    EXPECT_EQ(s.error().code, ErrorCode::kMalformed) << row.name;
  }
}

TEST(ASignatureLine, AcceptsExactlyTheLimitAndRefusesOneMore) {
  // Lengths are fixed by the format, so the limit is exercised with a line of valid shape
  // padded by the trailing newline; anything longer is refused unread.
  const std::string line = "ed25519 " + kKeyId + " " + kZeros + "\n";
  ASSERT_LT(line.size(), kMaxSignatureLineBytes);
  EXPECT_TRUE(ParseSignatureLine(line));
  auto over = ParseSignatureLine(line + std::string(kMaxSignatureLineBytes + 1 - line.size(), 'A'));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().rule, "signature-size");
  auto at = ParseSignatureLine(line + std::string(kMaxSignatureLineBytes - line.size(), 'A'));
  ASSERT_FALSE(at);
  EXPECT_NE(at.error().rule, "signature-size");
}

// ---- the version order -------------------------------------------------------------------

enum class Order { kLess, kEqual, kGreater, kNone };

struct VersionRow {
  const char* a;
  const char* b;
  Order order;
};

Order OrderOf(std::optional<std::strong_ordering> o) {
  if (!o) return Order::kNone;
  if (*o < 0) return Order::kLess;
  if (*o > 0) return Order::kGreater;
  return Order::kEqual;
}

Order Reverse(Order o) {
  if (o == Order::kLess) return Order::kGreater;
  if (o == Order::kGreater) return Order::kLess;
  return o;
}

TEST(TheVersionOrder, ComparesEachRowBothWays) {
  const std::string commit = "3f2a9c1e0b7d4a5f6e8c9b0a1d2e3f4a5b6c7d8e";
  const std::string digits40(40, '7');
  const VersionRow rows[] = {
      // numbers
      {"1.2.0", "1.2.0", Order::kEqual},
      {"1.2.0", "1.10.0", Order::kLess},
      {"2", "10", Order::kLess},
      {"0.9.9", "1", Order::kLess},
      {"1.2.1", "1.2", Order::kGreater},
      {"0", "0.0.0", Order::kEqual},
      {"1.2", "1.2.0", Order::kEqual},
      {"1", "1.0.0.0", Order::kEqual},
      {"1.0.0.1", "1", Order::kGreater},
      {"999999999999999999", "1", Order::kGreater},
      {"999999999999999999", "999999999999999998", Order::kGreater},
      // leading zeros and malformed numbers have no order
      {"01.2", "1.2", Order::kNone},
      {"1.02", "1.2", Order::kNone},
      {"1.00", "1", Order::kNone},
      {"1000000000000000000", "1", Order::kNone},
      {"", "1", Order::kNone},
      {"1", "", Order::kNone},
      {".", "1", Order::kNone},
      {"1.", "1", Order::kNone},
      {".1", "1", Order::kNone},
      {"1..2", "1", Order::kNone},
      {"v1.2", "1.2", Order::kNone},
      {"1.2a", "1.2", Order::kNone},
      {" 1.2", "1.2", Order::kNone},
      {"1.2 ", "1.2", Order::kNone},
      {"1_2", "1", Order::kNone},
      {"-1", "1", Order::kNone},
      // pre-release (the Semantic Versioning example chain)
      {"1.0.0-alpha", "1.0.0-alpha.1", Order::kLess},
      {"1.0.0-alpha.1", "1.0.0-alpha.beta", Order::kLess},
      {"1.0.0-alpha.beta", "1.0.0-beta", Order::kLess},
      {"1.0.0-beta", "1.0.0-beta.2", Order::kLess},
      {"1.0.0-beta.2", "1.0.0-beta.11", Order::kLess},
      {"1.0.0-beta.11", "1.0.0-rc.1", Order::kLess},
      {"1.0.0-rc.1", "1.0.0", Order::kLess},
      {"1.0.0-rc.1", "1.0", Order::kLess},
      {"1.0.1-alpha", "1.0.0", Order::kGreater},
      {"1.0-1", "1.0-a", Order::kLess},
      {"1.0-2", "1.0-10", Order::kLess},
      {"1.0-1a", "1.0-2", Order::kGreater},
      {"1.0-a", "1.0-B", Order::kGreater},
      {"1.0--", "1.0-0", Order::kGreater},
      {"1.0-rc.1", "1.0-rc.1", Order::kEqual},
      {"1.0-99999999999999999999999", "1.0-100000000000000000000000", Order::kLess},
      {"1.0-01", "1.0-1", Order::kNone},
      {"1.0-", "1.0", Order::kNone},
      {"1.0-a..b", "1.0", Order::kNone},
      {"1.0-a.", "1.0", Order::kNone},
      {"1.0-a_b", "1.0", Order::kNone},
      {"1.0-rc.1", "1.0-rc.1.", Order::kNone},
      // build metadata is ignored
      {"1.0+b1", "1.0+b2", Order::kEqual},
      {"1.0+b1", "1.0", Order::kEqual},
      {"1.0.0+20250101.sha.3f2a9c1", "1.0.0", Order::kEqual},
      {"1.0-rc.1+x", "1.0-rc.1", Order::kEqual},
      {"1.0-rc.1+x", "1.0", Order::kLess},
      {"1.1+a", "1.0+z", Order::kGreater},
      {"1.0+", "1.0", Order::kNone},
      {"1.0+a+b", "1.0", Order::kNone},
      {"1.0+a_b", "1.0", Order::kNone},
      {"+b", "1.0", Order::kNone},
      // commits and digests have no place in the order
      {commit.c_str(), "1.0", Order::kNone},
      {commit.c_str(), commit.c_str(), Order::kNone},
      {digits40.c_str(), "1.0", Order::kNone},
      {kDigest.c_str(), "1.0", Order::kNone},
      {"3f2a9c1", "1.0", Order::kNone},
  };
  for (const auto& row : rows) {
    EXPECT_EQ(OrderOf(CompareVersions(row.a, row.b)), row.order)
        << "\"" << row.a << "\" vs \"" << row.b << "\"";
    EXPECT_EQ(OrderOf(CompareVersions(row.b, row.a)), Reverse(row.order))
        << "\"" << row.b << "\" vs \"" << row.a << "\"";
  }
}

TEST(TheVersionOrder, NamesOrderedVersions) {
  for (const char* ok :
       {"0", "1.2.3", "1.2.3-rc.1", "1.2.3+build", "1.2.3-rc.1+b.2", "10.20.30.40.50", "1-0"}) {
    EXPECT_TRUE(IsOrderedVersion(ok)) << ok;
  }
  for (const char* bad : {"", "v1", "1.2.3-", "1.2.3+", "01", "1.2.x", "latest", "1.2.3-01",
                          "3f2a9c1e0b7d4a5f6e8c9b0a1d2e3f4a5b6c7d8e"}) {
    EXPECT_FALSE(IsOrderedVersion(bad)) << bad;
  }
}

}  // namespace
}  // namespace decnet
