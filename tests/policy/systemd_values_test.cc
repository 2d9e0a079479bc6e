// The readers of systemd's time spans, sizes, counts and resource limits: what they accept
// must read to the number systemd reads, and what they cannot read exactly they refuse.
#include "policy/systemd_values.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace decnet::helper {
namespace {

constexpr uint64_t kSec = 1'000'000;

struct SpanRow {
  std::string text;
  std::optional<uint64_t> usec;
};

TEST(ParseTimeSpanUsec, ReadsSystemdSpansAndRefusesTheRest) {
  const std::vector<SpanRow> rows = {
      {"90", 90 * kSec},
      {"5s", 5 * kSec},
      {"1min 30s", 90 * kSec},
      {"1min30s", 90 * kSec},
      {"2 min", 120 * kSec},
      {" 45s ", 45 * kSec},
      {"1.5s", 1'500'000},
      {"0.5min", 30 * kSec},
      {"500ms", 500'000},
      {"500msec", 500'000},
      {"1m", 60 * kSec},
      {"1M", 2'629'800 * kSec},
      {"1h", 3600 * kSec},
      {"1hr 1sec", 3601 * kSec},
      {"1d", 86400 * kSec},
      {"1w", 604800 * kSec},
      {"1y", 31'557'600 * kSec},
      {"7us", 7},
      {"7usec", 7},
      {"0", 0},
      {"0s", 0},
      {"90 30", 120 * kSec},
      {"infinity", kInfinity},
      {" infinity ", kInfinity},
      {"", std::nullopt},
      {"   ", std::nullopt},
      {"Infinity", std::nullopt},
      {"infinity 5s", std::nullopt},
      {"-1", std::nullopt},
      {"+5", std::nullopt},
      {"05", std::nullopt},
      {"0x10", std::nullopt},
      {"5x", std::nullopt},
      {"5mins", std::nullopt},
      {"5 s please", std::nullopt},
      {".5s", std::nullopt},
      {"5.s", std::nullopt},
      {"1.1234567890s", std::nullopt},
      {"1e3", std::nullopt},
      {"s", std::nullopt},
      {"999999999999999999", std::nullopt},
      {"200y", std::nullopt},
      {"1y 99y", std::nullopt},
  };
  for (const SpanRow& row : rows) {
    SCOPED_TRACE("'" + row.text + "'");
    EXPECT_EQ(ParseTimeSpanUsec(row.text), row.usec);
  }
}

TEST(ParseTimeSpanUsec, CountsBareNumbersInTheGivenUnit) {
  EXPECT_EQ(ParseTimeSpanUsec("5", 1000), std::optional<uint64_t>(5000));
}

TEST(ParseSizeBytes, ReadsBase1024SizesAndRefusesTheRest) {
  const std::vector<SpanRow> rows = {
      {"4096", 4096},
      {"1K", 1024},
      {"512M", 512ULL << 20},
      {"2G", 2ULL << 30},
      {"1.5G", 3ULL << 29},
      {"1 T", 1ULL << 40},
      {"7B", 7},
      {"infinity", kInfinity},
      {"", std::nullopt},
      {"1k", std::nullopt},
      {"1KB", std::nullopt},
      {"1G 1G", std::nullopt},
      {"50%", std::nullopt},
      {"-1", std::nullopt},
      {"01G", std::nullopt},
      {"16E", std::nullopt},
      {"max", std::nullopt},
  };
  for (const SpanRow& row : rows) {
    SCOPED_TRACE("'" + row.text + "'");
    EXPECT_EQ(ParseSizeBytes(row.text), row.usec);
  }
}

TEST(ParseCount, ReadsPlainDecimalsOnly) {
  EXPECT_EQ(ParseCount("0", false), std::optional<uint64_t>(0));
  EXPECT_EQ(ParseCount("65536", false), std::optional<uint64_t>(65536));
  EXPECT_EQ(ParseCount("infinity", true), std::optional<uint64_t>(kInfinity));
  for (const char* bad : {"infinity", "", "010", "0x10", "0o7", "1.5", "1K", "+1", "-1", "1 2"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseCount(bad, false), std::nullopt);
  }
}

TEST(ParseRlimitHard, ReturnsTheHardLimit) {
  auto count = [](std::string_view v) { return ParseCount(v, true); };
  EXPECT_EQ(ParseRlimitHard("1024", +count), std::optional<uint64_t>(1024));
  EXPECT_EQ(ParseRlimitHard("1024:4096", +count), std::optional<uint64_t>(4096));
  EXPECT_EQ(ParseRlimitHard("1024:infinity", +count), std::optional<uint64_t>(kInfinity));
  EXPECT_EQ(ParseRlimitHard("0:1G", ParseSizeBytes), std::optional<uint64_t>(1ULL << 30));
  for (const char* bad : {"4096:1024", "1:2:3", ":5", "5:", "", "infinity:5"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ParseRlimitHard(bad, +count), std::nullopt);
  }
}

}  // namespace
}  // namespace decnet::helper
