// Strict readers of the value syntaxes systemd 252 uses for time spans, sizes and resource
// limits. Each accepts a subset of what systemd accepts and reads it to the same number; a
// string outside that subset gives nullopt, and the unit policy refuses it. The subset never
// holds a string systemd would read as a larger value: integers have no sign, no leading
// zero and no base prefix (systemd reads some integers with base 0, where "010" is octal).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace decnet::helper {

// systemd's "infinity" in every unit below.
inline constexpr uint64_t kInfinity = UINT64_MAX;

// A time span in microseconds: "infinity", or one or more components NUMBER[.FRACTION]
// [whitespace] [UNIT] ("90", "5s", "1min 30s", "1.5h", "2min30s"), where a component
// without a unit counts in `default_unit_usec` (seconds for *Sec= directives). Units as
// systemd's parse_time table (us, ms, s, min, m, h, d, w, M, y and their long forms).
// nullopt for anything else (empty, a sign, garbage, overflow past 100 years).
std::optional<uint64_t> ParseTimeSpanUsec(std::string_view text,
                                          uint64_t default_unit_usec = 1'000'000);

// A size in bytes, base 1024: "infinity" or NUMBER[.FRACTION][whitespace][K|M|G|T|P|E|B]
// ("512M", "1.5G", "4096"). One component only; percentages are not sizes. nullopt for
// anything else or on overflow.
std::optional<uint64_t> ParseSizeBytes(std::string_view text);

// A plain count: "0" or [1-9][0-9]* up to UINT64_MAX-1, or "infinity" when `infinity_ok`.
std::optional<uint64_t> ParseCount(std::string_view text, bool infinity_ok);

// A resource limit as Limit*= takes it: VALUE or SOFT:HARD, each read by `one` (a count or
// a size). Returns the hard limit (for VALUE both are VALUE); nullopt when either half does
// not read or soft exceeds hard.
std::optional<uint64_t> ParseRlimitHard(std::string_view text,
                                        std::optional<uint64_t> (*one)(std::string_view));

}  // namespace decnet::helper
