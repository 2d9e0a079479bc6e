// A reader of systemd unit files that follows systemd 252's own reading (fileio.c read_line,
// conf-parser.c config_parse) rather than approximating it, so that the unit policy sees the
// directives systemd will apply and nothing else.
//
// What systemd does, and so what this reader does:
//  * A line ends at LF, CR or NUL. A run of end-of-line bytes counts as one end as long as no
//    kind repeats (CRLF and LFCR are one end, LFLF is two); a NUL always closes the run.
//  * A line whose first non-whitespace byte is '#' or ';' is dropped before continuation
//    lines are joined, so a comment inside a continuation is skipped and does not end it.
//  * A line ending in an unescaped backslash continues onto the next one; the backslash
//    becomes a space. An empty line ends a continuation. A continuation still open at the end
//    of the file is read as a line.
//  * Leading and trailing whitespace (space, tab) is stripped; "[Name]" opens a section;
//    "KEY=VALUE" splits at the first '=' with whitespace around both halves stripped.
//    Section and key names are case-sensitive.
//  * Assignments in a section systemd does not know for this unit type, and assignments
//    before any section, are ignored by systemd: they are not returned as assignments.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace decnet::helper {

// One assignment systemd applies, in file order.
struct UnitAssignment {
  std::string section;
  std::string key;
  std::string value;
  int line = 0;  // 1-based physical line where the (possibly continued) line starts
};

// Something in the file's structure that the policy refuses (systemd would ignore the line,
// warn, or fail to load the unit). `rule` is a stable id ("unit-syntax", "unit-section",
// "unit-include"); `fatal` is true when systemd itself refuses to load the unit.
struct UnitProblem {
  int line = 0;
  std::string rule;
  std::string message;
  bool fatal = false;
};

struct ParsedUnitFile {
  std::vector<UnitAssignment> assignments;
  std::vector<UnitProblem> problems;
  // Every section header that opened a section systemd reads, in order.
  std::vector<std::string> sections_seen;
};

// The sections systemd reads for a unit: {"Unit","Service","Install"} for a .service,
// {"Unit","Target","Install"} for a .target.
std::set<std::string> SystemdSectionsFor(std::string_view unit_name);

// Reads `content` as systemd reads a unit file whose type knows `known_sections`. Never
// fails: structural trouble is reported in `problems` (sections not in `known_sections`,
// assignments outside a section, lines without '=' or key, bad section headers, `.include`,
// NUL and other control bytes, a byte-order mark, invalid UTF-8).
ParsedUnitFile ReadUnitFile(std::string_view content, const std::set<std::string>& known_sections);

// Splits `content` into lines exactly as systemd's read_line does (see above). Exposed for
// tests.
std::vector<std::string> SplitSystemdLines(std::string_view content);

// The effective value of a single-valued key: the last assignment wins and an empty
// assignment resets to the default (nullopt). nullopt also when the key is never assigned.
std::optional<std::string> EffectiveValue(const ParsedUnitFile& unit, std::string_view section,
                                          std::string_view key);

// The assignments of a list-valued key that are in force: those after the last empty
// assignment (which resets the list). Each keeps its line for messages.
std::vector<UnitAssignment> EffectiveAssignments(const ParsedUnitFile& unit,
                                                 std::string_view section, std::string_view key);

// Splits a value into whitespace-separated words (space and tab). No unquoting: callers
// refuse quotes and backslashes where they matter.
std::vector<std::string> SplitWords(std::string_view value);

// systemd's parse_boolean: 1/yes/y/true/t/on -> true, 0/no/n/false/f/off -> false
// (case-insensitive); nullopt for anything else.
std::optional<bool> ParseSystemdBool(std::string_view value);

}  // namespace decnet::helper
