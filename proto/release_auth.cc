// The descriptor, UTC times and the version order. The OpenSSL half (signature lines, keys,
// verification) lives in release_auth_keys.cc.
#include "proto/release_auth.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet {
namespace {

constexpr size_t kMinCommitLength = 7;
constexpr size_t kMaxCommitLength = 64;
constexpr uint64_t kMaxDescriptorSize = uint64_t{1} << 53;
constexpr size_t kMaxVersionNumberDigits = 18;
constexpr int64_t kSecondsPerDay = 86400;
constexpr int kMinYear = 1970;
constexpr int kMaxYear = 9999;

tl::unexpected<Error> Malformed(std::string rule, std::string message) {
  return Fail(ErrorCode::kMalformed, std::move(rule), std::move(message));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!IsDigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool IsIdentifierChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

// ---- civil calendar arithmetic (proleptic Gregorian, no locale, no time zone) -----------

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a valid date. Counts in 400-year eras (146097 days each) from
// 0000-03-01, so that the leap day falls at the end of each counted year.
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t year_of_era = y - era * 400;
  const int64_t month_from_march = m > 2 ? m - 3 : m + 9;
  const int64_t day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

struct CivilDate {
  int64_t year;
  int month;
  int day;
};

// The inverse of DaysFromCivil.
CivilDate CivilFromDays(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_from_march = (5 * day_of_year + 2) / 153;
  const int day = static_cast<int>(day_of_year - (153 * month_from_march + 2) / 5 + 1);
  const int month =
      static_cast<int>(month_from_march < 10 ? month_from_march + 3 : month_from_march - 9);
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return {year, month, day};
}

// Reads `width` decimal digits at `pos`; -1 when any is not a digit.
int64_t Digits(std::string_view text, size_t pos, size_t width) {
  int64_t value = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (!IsDigit(text[i])) return -1;
    value = value * 10 + (text[i] - '0');
  }
  return value;
}

// ---- the descriptor ------------------------------------------------------------------

tl::unexpected<Error> FieldError(std::string rule, std::string_view key, std::string_view what) {
  return Malformed(std::move(rule),
                   "release descriptor key \"" + std::string(key) + "\" " + std::string(what));
}

// A string field that must be present.
Result<std::string> RequiredString(strict_json::StrictObject& object, std::string_view key,
                                   const std::string& rule) {
  if (!object.Has(key)) return FieldError(rule, key, "is missing");
  auto value = object.String(key);
  if (!value) return FieldError(rule, key, "must be a string");
  return *value;
}

Result<int64_t> TimeField(strict_json::StrictObject& object, std::string_view key,
                          const std::string& rule) {
  auto text = RequiredString(object, key, rule);
  if (!text) return tl::make_unexpected(text.error());
  auto seconds = ParseUtcTime(*text);
  if (!seconds) return FieldError(rule, key, seconds.error().message);
  return *seconds;
}

Result<ReleaseDescriptor> ParseDescriptorObject(strict_json::StrictObject& object) {
  if (!object.Has("format")) return FieldError("descriptor-format", "format", "is missing");
  auto format = object.Uint("format");
  if (!format || *format != kReleaseDescriptorFormat) {
    return FieldError("descriptor-format", "format", "must be the integer 1");
  }

  auto sha = RequiredString(object, "sha256", "descriptor-sha256");
  if (!sha) return tl::make_unexpected(sha.error());
  if (!IsSha256Hex(*sha)) {
    return FieldError("descriptor-sha256", "sha256", "must be 64 lower-case hex digits");
  }

  if (!object.Has("size")) return FieldError("descriptor-size-field", "size", "is missing");
  auto size = object.Uint("size");
  if (!size || *size == 0 || *size > kMaxDescriptorSize) {
    return FieldError("descriptor-size-field", "size", "must be an integer from 1 to 2^53");
  }

  auto kind_text = RequiredString(object, "kind", "descriptor-kind");
  if (!kind_text) return tl::make_unexpected(kind_text.error());
  auto kind = ParseReleaseKind(*kind_text);
  if (!kind) return FieldError("descriptor-kind", "kind", "must be \"service\" or \"updater\"");

  auto version_text = RequiredString(object, "version", "descriptor-version");
  if (!version_text) return tl::make_unexpected(version_text.error());
  auto version = ReleaseVersion::Parse(*version_text);
  if (!version) return FieldError("descriptor-version", "version", version.error().message);

  std::optional<std::string> commit_value;
  if (object.Has("commit")) {
    auto commit = object.String("commit");
    if (!commit || commit->size() < kMinCommitLength || commit->size() > kMaxCommitLength ||
        !IsLowerHex(*commit)) {
      return FieldError("descriptor-commit", "commit", "must be 7 to 64 lower-case hex digits");
    }
    commit_value = *commit;
  }

  auto created = TimeField(object, "created", "descriptor-created");
  if (!created) return tl::make_unexpected(created.error());
  auto expires = TimeField(object, "expires", "descriptor-expires");
  if (!expires) return tl::make_unexpected(expires.error());
  if (*expires <= *created) {
    return FieldError("descriptor-expires", "expires", "must be after \"created\"");
  }
  return ReleaseDescriptor{*sha, *size, *kind, *version, commit_value, *created, *expires};
}

// ---- versions ------------------------------------------------------------------------

struct OrderedVersion {
  std::vector<uint64_t> numbers;
  std::vector<std::string_view> pre_release;
};

// A decimal number without leading zeros, at most 18 digits (so it fits in 64 bits).
std::optional<uint64_t> VersionNumber(std::string_view text) {
  if (text.empty() || text.size() > kMaxVersionNumberDigits) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// Splits on '.', keeping empty parts (so that "1..2" and "1." are refused by the caller).
std::vector<std::string_view> SplitDots(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    parts.push_back(text.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

bool IsNumericIdentifier(std::string_view id) {
  for (char c : id) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

std::optional<OrderedVersion> ParseOrderedVersion(std::string_view text) {
  const size_t plus = text.find('+');
  if (plus != std::string_view::npos) {
    std::string_view build = text.substr(plus + 1);
    if (build.empty()) return std::nullopt;
    for (char c : build) {
      if (!IsIdentifierChar(c) && c != '.') return std::nullopt;
    }
    text = text.substr(0, plus);
  }
  OrderedVersion v;
  const size_t dash = text.find('-');
  if (dash != std::string_view::npos) {
    for (std::string_view id : SplitDots(text.substr(dash + 1))) {
      if (id.empty()) return std::nullopt;
      for (char c : id) {
        if (!IsIdentifierChar(c)) return std::nullopt;
      }
      // Semantic Versioning forbids leading zeros in numeric identifiers: "01" and "1"
      // would otherwise be two spellings with no agreed order.
      if (IsNumericIdentifier(id) && id.size() > 1 && id[0] == '0') return std::nullopt;
      v.pre_release.push_back(id);
    }
    text = text.substr(0, dash);
  }
  for (std::string_view part : SplitDots(text)) {
    auto number = VersionNumber(part);
    if (!number) return std::nullopt;
    v.numbers.push_back(*number);
  }
  return v;
}

std::strong_ordering CompareIdentifiers(std::string_view a, std::string_view b) {
  const bool a_numeric = IsNumericIdentifier(a);
  const bool b_numeric = IsNumericIdentifier(b);
  if (a_numeric && b_numeric) {
    // No leading zeros, so the longer number is the larger one; this needs no size limit.
    if (a.size() != b.size()) return a.size() <=> b.size();
    return a.compare(b) <=> 0;
  }
  if (a_numeric != b_numeric)
    return a_numeric ? std::strong_ordering::less : std::strong_ordering::greater;
  return a.compare(b) <=> 0;
}

}  // namespace

// ---- times ---------------------------------------------------------------------------

Result<int64_t> ParseUtcTime(std::string_view text) {
  // Positions of "YYYY-MM-DDTHH:MM:SSZ".
  if (text.size() != 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != 'Z') {
    return Malformed("descriptor-time",
                     "time " + QuotePrintable(text) + " is not of the form YYYY-MM-DDTHH:MM:SSZ");
  }
  const int64_t year = Digits(text, 0, 4);
  const int64_t month = Digits(text, 5, 2);
  const int64_t day = Digits(text, 8, 2);
  const int64_t hour = Digits(text, 11, 2);
  const int64_t minute = Digits(text, 14, 2);
  const int64_t second = Digits(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) {
    return Malformed("descriptor-time",
                     "time " + QuotePrintable(text) + " has a non-digit where a digit belongs");
  }
  // Seconds up to 59 only: a leap second ":60" has no place in seconds since the epoch.
  if (year < kMinYear || year > kMaxYear || month < 1 || month > 12 || day < 1 ||
      day > DaysInMonth(year, static_cast<int>(month)) || hour > 23 || minute > 59 || second > 59) {
    return Malformed("descriptor-time", "time " + QuotePrintable(text) + " is not a real date");
  }
  const int64_t days = DaysFromCivil(year, static_cast<int>(month), static_cast<int>(day));
  return days * kSecondsPerDay + hour * 3600 + minute * 60 + second;
}

std::string FormatUtcTime(int64_t seconds) {
  constexpr int64_t kLast = 253402300799;  // 9999-12-31T23:59:59Z
  seconds = std::clamp<int64_t>(seconds, 0, kLast);
  const int64_t days = seconds / kSecondsPerDay;
  const int64_t rest = seconds % kSecondsPerDay;
  const CivilDate date = CivilFromDays(days);
  std::array<char, 64> out{};
  std::snprintf(out.data(), out.size(), "%04lld-%02d-%02dT%02lld:%02lld:%02lldZ",
                static_cast<long long>(date.year), date.month, date.day,
                static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                static_cast<long long>(rest % 60));
  return out.data();
}

// ---- the descriptor ------------------------------------------------------------------

Result<ReleaseDescriptor> ParseReleaseDescriptor(std::string_view bytes) {
  if (bytes.size() > kMaxReleaseDescriptorBytes) {
    return Malformed("descriptor-size", "release descriptor is larger than " +
                                            std::to_string(kMaxReleaseDescriptorBytes) + " bytes");
  }
  // Depth 1: one flat object; duplicate keys are refused by the strict reader, because two
  // readers of the same signed bytes must never see different values.
  auto parsed = strict_json::ParseObject(bytes, /*max_depth=*/1);
  if (!parsed) {
    return Malformed("descriptor-json", "release descriptor: " + parsed.error().message);
  }
  strict_json::StrictObject object(*parsed, "release descriptor");
  auto descriptor = ParseDescriptorObject(object);
  if (!descriptor) return descriptor;
  if (auto done = object.Finish(); !done) {
    return Malformed("descriptor-unknown-key", done.error().message);
  }
  return descriptor;
}

std::string SerializeReleaseDescriptor(const ReleaseDescriptor& descriptor) {
  nlohmann::ordered_json out;
  out["format"] = kReleaseDescriptorFormat;
  out["sha256"] = descriptor.sha256;
  out["size"] = descriptor.size;
  out["kind"] = std::string(ReleaseKindName(descriptor.kind));
  out["version"] = descriptor.version.str();
  if (descriptor.commit) out["commit"] = *descriptor.commit;
  out["created"] = FormatUtcTime(descriptor.created);
  out["expires"] = FormatUtcTime(descriptor.expires);
  return out.dump() + "\n";
}

// ---- versions ------------------------------------------------------------------------

bool IsOrderedVersion(std::string_view text) { return ParseOrderedVersion(text).has_value(); }

std::optional<std::strong_ordering> CompareVersions(std::string_view a, std::string_view b) {
  auto va = ParseOrderedVersion(a);
  auto vb = ParseOrderedVersion(b);
  if (!va || !vb) return std::nullopt;
  const size_t n = std::max(va->numbers.size(), vb->numbers.size());
  for (size_t i = 0; i < n; ++i) {
    const uint64_t x = i < va->numbers.size() ? va->numbers[i] : 0;
    const uint64_t y = i < vb->numbers.size() ? vb->numbers[i] : 0;
    if (x != y) return x <=> y;
  }
  // A release sorts after every pre-release of the same numbers.
  const bool a_pre = !va->pre_release.empty();
  const bool b_pre = !vb->pre_release.empty();
  if (a_pre != b_pre) return a_pre ? std::strong_ordering::less : std::strong_ordering::greater;
  const size_t m = std::min(va->pre_release.size(), vb->pre_release.size());
  for (size_t i = 0; i < m; ++i) {
    auto order = CompareIdentifiers(va->pre_release[i], vb->pre_release[i]);
    if (order != 0) return order;
  }
  return va->pre_release.size() <=> vb->pre_release.size();
}

}  // namespace decnet
