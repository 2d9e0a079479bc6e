// Reads unit files the way systemd 252 does. The order of the steps matters and mirrors
// systemd's config_parse(): split lines (read_line), drop comment lines, join continuations,
// then parse the joined line (parse_line). Any difference from systemd here is a hole in the
// policy, because the policy may only rely on what systemd applies.
#include "policy/unit_file.h"

#include <algorithm>
#include <cstdint>

namespace decnet::helper {
namespace {

constexpr std::string_view kWhitespace = " \t";
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

std::string_view Strip(std::string_view s) {
  const size_t first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const size_t last = s.find_last_not_of(kWhitespace);
  return s.substr(first, last - first + 1);
}

// Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as systemd's utf8_is_valid.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else
      return false;
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// systemd's string_is_safe(): no control characters, quotes or backslashes.
bool IsSafeSectionName(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<uint8_t>(ch);
    return c < 0x20 || c == 0x7F || ch == '\\' || ch == '"' || ch == '\'';
  });
}

bool HasControlByte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<uint8_t>(ch);
    return (c < 0x20 && ch != '\t') || c == 0x7F;
  });
}

// True when the line ends in a backslash that is not itself escaped (systemd counts
// escapes from the start of the joined line).
bool EndsInContinuation(std::string_view s) {
  bool escaped = false;
  for (char c : s) {
    if (escaped)
      escaped = false;
    else if (c == '\\')
      escaped = true;
  }
  return escaped;
}

struct ReaderState {
  const std::set<std::string>* known = nullptr;
  std::optional<std::string> section;
  bool section_ignored = false;
  ParsedUnitFile out;

  void Problem(int line, std::string rule, std::string message, bool fatal) {
    out.problems.push_back({line, std::move(rule), std::move(message), fatal});
  }
  void SectionHeader(std::string_view l, int line);
  void ParseLine(std::string_view text, int line);
};

void ReaderState::SectionHeader(std::string_view l, int line) {
  if (l.back() != ']' || l.size() < 2) {
    Problem(line, "unit-syntax", "invalid section header '" + std::string(l) + "'", true);
    return;
  }
  const std::string name(l.substr(1, l.size() - 2));
  if (!IsSafeSectionName(name)) {
    Problem(line, "unit-syntax", "bad characters in section header", true);
    return;
  }
  if (known->count(name) == 0) {
    // systemd ignores the whole section (X- sections silently, others with a warning).
    Problem(line, "unit-section", "section [" + name + "] is not read by systemd", false);
    section.reset();
    section_ignored = true;
    return;
  }
  section = name;
  section_ignored = false;
  out.sections_seen.push_back(name);
}

void ReaderState::ParseLine(std::string_view text, int line) {
  const std::string_view l = Strip(text);
  if (l.empty() || l.front() == '#' || l.front() == ';') return;
  if (!IsValidUtf8(l)) {
    Problem(line, "unit-syntax", "line is not valid UTF-8", false);
    return;
  }
  if (HasControlByte(l)) {
    Problem(line, "unit-syntax", "line holds a control character", false);
  }
  if (l.substr(0, 8) == ".include") {
    // systemd 252 no longer includes anything: the line is read as a (bad) assignment.
    Problem(line, "unit-include", ".include is obsolete and refused", false);
  }
  if (l.front() == '[') return SectionHeader(l, line);
  if (!section) {
    if (!section_ignored) {
      Problem(line, "unit-syntax", "assignment outside of any section (systemd ignores it)", false);
    }
    return;
  }
  const size_t eq = l.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    Problem(line, "unit-syntax", "line '" + std::string(l) + "' is not KEY=VALUE", false);
    return;
  }
  out.assignments.push_back(
      {*section, std::string(Strip(l.substr(0, eq))), std::string(Strip(l.substr(eq + 1))), line});
}

}  // namespace

std::set<std::string> SystemdSectionsFor(std::string_view unit_name) {
  if (unit_name.ends_with(".target")) return {"Unit", "Target", "Install"};
  return {"Unit", "Service", "Install"};
}

std::vector<std::string> SplitSystemdLines(std::string_view content) {
  constexpr unsigned kLf = 1, kCr = 2, kNul = 4;
  std::vector<std::string> lines;
  size_t i = 0;
  while (i < content.size()) {
    std::string line;
    unsigned previous = 0;
    while (i < content.size()) {
      const char c = content[i];
      const unsigned eol = c == '\n' ? kLf : c == '\r' ? kCr : c == '\0' ? kNul : 0;
      // The end-of-line run is over after a NUL, at the first ordinary byte, or when a kind
      // of end repeats; that byte belongs to the next line.
      if ((previous & kNul) != 0 || (eol == 0 && previous != 0) || (eol & previous) != 0) break;
      ++i;
      if (eol != 0) {
        previous |= eol;
        continue;
      }
      line.push_back(c);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

ParsedUnitFile ReadUnitFile(std::string_view content, const std::set<std::string>& known_sections) {
  ReaderState state;
  state.known = &known_sections;
  if (content.find('\0') != std::string_view::npos) {
    state.Problem(0, "unit-syntax", "content holds a NUL byte (systemd reads it as a line end)",
                  false);
  }
  std::optional<std::string> continuation;
  int continuation_line = 0;
  int line_no = 0;
  for (const std::string& raw : SplitSystemdLines(content)) {
    ++line_no;
    const std::string_view lead = Strip(raw);
    if (!lead.empty() && (lead.front() == '#' || lead.front() == ';')) continue;
    std::string_view body = raw;
    if (body.starts_with(kByteOrderMark)) {
      state.Problem(line_no, "unit-syntax", "byte-order mark refused", false);
      body.remove_prefix(kByteOrderMark.size());
    }
    std::string text = continuation ? *continuation + std::string(body) : std::string(body);
    if (EndsInContinuation(text)) {
      text.back() = ' ';
      if (!continuation) continuation_line = line_no;
      continuation = std::move(text);
      continue;
    }
    const int start = continuation ? continuation_line : line_no;
    continuation.reset();
    state.ParseLine(text, start);
  }
  if (continuation) state.ParseLine(*continuation, continuation_line);
  return std::move(state.out);
}

std::optional<std::string> EffectiveValue(const ParsedUnitFile& unit, std::string_view section,
                                          std::string_view key) {
  std::optional<std::string> value;
  for (const UnitAssignment& a : unit.assignments) {
    if (a.section != section || a.key != key) continue;
    if (a.value.empty())
      value.reset();
    else
      value = a.value;
  }
  return value;
}

std::vector<UnitAssignment> EffectiveAssignments(const ParsedUnitFile& unit,
                                                 std::string_view section, std::string_view key) {
  std::vector<UnitAssignment> in_force;
  for (const UnitAssignment& a : unit.assignments) {
    if (a.section != section || a.key != key) continue;
    if (a.value.empty())
      in_force.clear();
    else
      in_force.push_back(a);
  }
  return in_force;
}

std::vector<std::string> SplitWords(std::string_view value) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < value.size()) {
    const size_t start = value.find_first_not_of(kWhitespace, i);
    if (start == std::string_view::npos) break;
    size_t end = value.find_first_of(kWhitespace, start);
    if (end == std::string_view::npos) end = value.size();
    words.emplace_back(value.substr(start, end - start));
    i = end;
  }
  return words;
}

std::optional<bool> ParseSystemdBool(std::string_view value) {
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  });
  for (std::string_view t : {"1", "yes", "y", "true", "t", "on"}) {
    if (lower == t) return true;
  }
  for (std::string_view f : {"0", "no", "n", "false", "f", "off"}) {
    if (lower == f) return false;
  }
  return std::nullopt;
}

}  // namespace decnet::helper
