// Readers of systemd's number syntaxes. Written against systemd 252's parse_time(),
// parse_size() and rlimit_parse(): where systemd is lenient (signs, bases, repeated size
// components) these refuse, so the policy never reads a smaller number than systemd does.
#include "policy/systemd_values.h"

#include <array>
#include <string>
#include <utility>

namespace decnet::helper {
namespace {

constexpr std::string_view kSpace = " \t\n\r";
constexpr uint64_t kMaxSpanUsec = 100ULL * 365 * 24 * 3600 * 1'000'000;  // beyond any cap

std::string_view Trim(std::string_view s) {
  const size_t a = s.find_first_not_of(kSpace);
  if (a == std::string_view::npos) return {};
  return s.substr(a, s.find_last_not_of(kSpace) - a + 1);
}

std::string_view TrimFront(std::string_view s) {
  const size_t a = s.find_first_not_of(kSpace);
  return a == std::string_view::npos ? std::string_view() : s.substr(a);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// NUMBER[.FRACTION] at the front of `s`: the integer part and the fraction as
// (digits, scale). Refuses a leading zero before more digits and more than 18 digits.
struct Number {
  uint64_t whole = 0;
  uint64_t frac = 0;
  uint64_t frac_scale = 1;
};
std::optional<Number> TakeNumber(std::string_view& s) {
  size_t i = 0;
  Number n;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == 0 || i > 18 || (i > 1 && s[0] == '0')) return std::nullopt;
  for (size_t k = 0; k < i; ++k) n.whole = n.whole * 10 + static_cast<uint64_t>(s[k] - '0');
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && IsDigit(s[j])) ++j;
    if (j == i + 1 || j - i - 1 > 9) return std::nullopt;
    for (size_t k = i + 1; k < j; ++k) {
      n.frac = n.frac * 10 + static_cast<uint64_t>(s[k] - '0');
      n.frac_scale *= 10;
    }
    i = j;
  }
  s.remove_prefix(i);
  return n;
}

// whole*mult + frac*mult/scale, or nullopt past `limit`.
std::optional<uint64_t> Scale(const Number& n, uint64_t mult, uint64_t limit) {
  if (mult != 0 && n.whole > limit / mult) return std::nullopt;
  const uint64_t whole = n.whole * mult;
  // frac < scale <= 1e9 and mult <= ~3.2e13 for years: split to stay within 64 bits.
  const uint64_t frac =
      (mult / n.frac_scale) * n.frac + (mult % n.frac_scale) * n.frac / n.frac_scale;
  if (whole > limit - frac) return std::nullopt;
  return whole + frac;
}

}  // namespace

std::optional<uint64_t> ParseTimeSpanUsec(std::string_view text, uint64_t default_unit_usec) {
  constexpr uint64_t kSec = 1'000'000, kMin = 60 * kSec, kHour = 60 * kMin, kDay = 24 * kHour;
  // systemd's table, in its order: the first suffix the text starts with wins.
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 30> kUnits = {{
      {"seconds", kSec},
      {"second", kSec},
      {"sec", kSec},
      {"s", kSec},
      {"minutes", kMin},
      {"minute", kMin},
      {"min", kMin},
      {"months", 2629800 * kSec},
      {"month", 2629800 * kSec},
      {"M", 2629800 * kSec},
      {"msec", 1000},
      {"ms", 1000},
      {"m", kMin},
      {"hours", kHour},
      {"hour", kHour},
      {"hr", kHour},
      {"h", kHour},
      {"days", kDay},
      {"day", kDay},
      {"d", kDay},
      {"weeks", 7 * kDay},
      {"week", 7 * kDay},
      {"w", 7 * kDay},
      {"years", 31557600 * kSec},
      {"year", 31557600 * kSec},
      {"y", 31557600 * kSec},
      {"usec", 1},
      {"us", 1},
      {"\xCE\xBCs", 1},
      {"\xC2\xB5s", 1},
  }};
  std::string_view s = Trim(text);
  if (s == "infinity") return kInfinity;
  if (s.empty()) return std::nullopt;
  uint64_t total = 0;
  while (!s.empty()) {
    auto n = TakeNumber(s);
    if (!n) return std::nullopt;
    s = TrimFront(s);
    uint64_t mult = default_unit_usec;
    for (const auto& [suffix, usec] : kUnits) {
      if (s.starts_with(suffix)) {
        mult = usec;
        s.remove_prefix(suffix.size());
        break;
      }
    }
    auto part = Scale(*n, mult, kMaxSpanUsec);
    if (!part || total > kMaxSpanUsec - *part) return std::nullopt;
    total += *part;
    s = Trim(s);
  }
  return total;
}

std::optional<uint64_t> ParseSizeBytes(std::string_view text) {
  std::string_view s = Trim(text);
  if (s == "infinity") return kInfinity;
  auto n = TakeNumber(s);
  if (!n) return std::nullopt;
  s = Trim(s);
  uint64_t mult = 1;
  if (s.size() == 1) {
    const std::string_view kSuffixes = "BKMGTPE";
    const size_t at = kSuffixes.find(s[0]);
    if (at == std::string_view::npos) return std::nullopt;
    for (size_t k = 0; k < at; ++k) mult *= 1024;
  } else if (!s.empty()) {
    return std::nullopt;
  }
  return Scale(*n, mult, kInfinity - 1);
}

std::optional<uint64_t> ParseCount(std::string_view text, bool infinity_ok) {
  std::string_view s = Trim(text);
  if (s == "infinity") return infinity_ok ? std::optional<uint64_t>(kInfinity) : std::nullopt;
  std::string_view rest = s;
  auto n = TakeNumber(rest);
  if (!n || !rest.empty() || n->frac_scale != 1) return std::nullopt;
  return n->whole;
}

std::optional<uint64_t> ParseRlimitHard(std::string_view text,
                                        std::optional<uint64_t> (*one)(std::string_view)) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return one(text);
  if (text.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
  const auto soft = one(text.substr(0, colon));
  const auto hard = one(text.substr(colon + 1));
  if (!soft || !hard || *soft > *hard) return std::nullopt;
  return hard;
}

}  // namespace decnet::helper
