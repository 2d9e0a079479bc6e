// Every command the documents show is run by a test or a script, so a documented command
// cannot drift from what is run. The commands are the lines of every fenced shell block
// (```bash, ```sh, ```shell, ```console) in README.md, SECURITY.md and docs/*.md:
//
// * comment lines are dropped, and so is a trailing ` # comment`;
// * a line ending in a backslash continues on the next;
// * in ```console blocks only lines after a `$ ` or `# ` prompt are commands (the rest is output);
// * `A && B` is two commands;
// * <NAME> (letters, digits, `_`, `.`, `-`) is a placeholder: it stands for any one word.
//
// Each command must occur, whitespace-normalised and as whole words (more arguments may follow
// it), in a test source under tests/ or a script under scripts/ (scripts/demo.sh among them),
// outside comment lines. Two exceptions, both checked: the ```sh blocks that
// tests/daemon/operations_doc_test.cc runs as written, and the two entry points themselves
// (the demo and the test command, README.md's first lines).
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/docs/repo_files.h"

namespace decnet::docs_test {
namespace {

namespace fs = std::filesystem;

struct DocCommand {
  std::string where;  // FILE:LINE of the block line the command starts on
  std::string lang;   // the fence's language
  std::string text;   // whitespace-normalised
};

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string Normalise(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// `line` without a trailing comment: a # that begins a word outside quotes.
std::string StripComment(const std::string& line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
      if (c == '\\' && quote == '"') ++i;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\') {
      ++i;
    } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
      return line.substr(0, i);
    }
  }
  return line;
}

// `command` split at each && outside quotes.
std::vector<std::string> SplitAnd(const std::string& command) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (quote == 0 && c == '&' && i + 1 < command.size() && command[i + 1] == '&') {
      out.push_back(Normalise(cur));
      cur.clear();
      ++i;
      continue;
    }
    if (quote != 0 && c == quote) {
      quote = 0;
    } else if (quote == 0 && (c == '\'' || c == '"')) {
      quote = c;
    }
    cur += c;
  }
  out.push_back(Normalise(cur));
  return out;
}

const std::set<std::string>& ShellLanguages() {
  static const std::set<std::string> langs = {"bash", "sh", "shell", "console"};
  return langs;
}

std::vector<DocCommand> Commands(const std::string& file, const std::string& text) {
  std::vector<DocCommand> out;
  std::istringstream in(text);
  bool inside = false;
  std::string lang, pending, pending_where;
  size_t number = 0;
  for (std::string raw; std::getline(in, raw);) {
    ++number;
    const std::string trimmed = Trim(raw);
    if (trimmed.starts_with("```")) {
      if (!inside) {
        inside = true;
        lang = Trim(trimmed.substr(3));
      } else {
        inside = false;
      }
      pending.clear();
      continue;
    }
    if (!inside || !ShellLanguages().contains(lang)) continue;
    std::string line = trimmed;
    if (pending.empty()) {
      if (lang == "console") {
        if (!line.starts_with("$ ") && !line.starts_with("# ")) continue;
        line = line.substr(2);
      }
      if (Trim(line).starts_with("#")) continue;
      pending_where = file + ":" + std::to_string(number);
    }
    line = Trim(StripComment(line));
    if (line.ends_with("\\")) {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    pending += line;
    for (const auto& c : SplitAnd(pending)) {
      if (!c.empty()) out.push_back({pending_where, lang, c});
    }
    pending.clear();
  }
  return out;
}

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

// The command's literal pieces between its <NAME> placeholders.
std::vector<std::string> Pieces(const std::string& command) {
  std::vector<std::string> pieces;
  static const std::regex placeholder("<[A-Za-z][A-Za-z0-9_.-]*>");
  size_t at = 0;
  for (std::sregex_iterator it(command.begin(), command.end(), placeholder), end; it != end; ++it) {
    pieces.push_back(command.substr(at, it->position() - at));
    at = it->position() + it->length();
  }
  pieces.push_back(command.substr(at));
  return pieces;
}

// Does pieces[i..] match `hay` at `pos`, one or more non-blank characters standing between
// two pieces?
bool MatchFrom(const std::string& hay, size_t pos, const std::vector<std::string>& pieces,
               size_t i) {
  if (hay.compare(pos, pieces[i].size(), pieces[i]) != 0) return false;
  pos += pieces[i].size();
  if (i + 1 == pieces.size()) {
    return pos == hay.size() || (!IsWordChar(hay[pos]) && hay[pos] != '/' && hay[pos] != '=');
  }
  for (size_t k = pos + 1; k <= hay.size() && hay[k - 1] != ' ' && hay[k - 1] != '\n'; ++k) {
    if (MatchFrom(hay, k, pieces, i + 1)) return true;
  }
  return false;
}

// True when `command` occurs in `hay` as whole words.
bool Occurs(const std::string& hay, const std::string& command) {
  const auto pieces = Pieces(command);
  const std::string& first = pieces.front();
  if (first.empty()) return false;  // a command that begins with a placeholder matches anything
  for (size_t pos = hay.find(first); pos != std::string::npos; pos = hay.find(first, pos + 1)) {
    if (pos > 0 && IsWordChar(hay[pos - 1])) continue;
    if (MatchFrom(hay, pos, pieces, 0)) return true;
  }
  return false;
}

// One searchable text for a file: comment lines dropped, backslash-newlines joined, and (for
// C and C++ sources) a second copy with string escapes undone, each normalised.
std::string Searchable(const std::string& name, const std::string& text) {
  std::string kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const std::string t = Trim(line);
    if (t.starts_with("#!") || (t.starts_with("#") && !t.starts_with("#include")) ||
        t.starts_with("//"))
      continue;
    kept += line + "\n";
  }
  kept = std::regex_replace(kept, std::regex("\\\\\n"), " ");
  std::string out = Normalise(kept);
  if (name.ends_with(".cc") || name.ends_with(".h")) {
    std::string unescaped;
    for (size_t i = 0; i < kept.size(); ++i) {
      if (kept[i] == '\\' && i + 1 < kept.size() && (kept[i + 1] == '"' || kept[i + 1] == '\\'))
        ++i;
      unescaped += kept[i];
    }
    out += "\n" + Normalise(unescaped);
  }
  return out;
}

// Every test source under tests/ and every script under scripts/, as one text.
const std::string& WhatIsRun() {
  static const std::string hay = [] {
    std::string out;
    for (const auto& f : RepoTextFiles()) {
      const bool test = f.starts_with("tests/");
      const bool script = f.starts_with("scripts/") && f.ends_with(".sh");
      if (test || script) out += Searchable(f, Slurp(SourceDir() / f)) + "\n";
    }
    return out;
  }();
  return hay;
}

std::vector<std::string> Documents() {
  std::vector<std::string> docs = {"README.md", "SECURITY.md"};
  for (const auto& f : RepoTextFiles()) {
    const fs::path p(f);
    if (p.parent_path() == "docs" && p.extension() == ".md") docs.push_back(f);
  }
  return docs;
}

// Blocks another test runs as written, line by line: (document, fence language) and the test
// that does it, which must read that document's blocks of that language.
struct RunAsWritten {
  std::string doc, lang, runner;
};
const std::vector<RunAsWritten>& RunAsWrittenBlocks() {
  static const std::vector<RunAsWritten> blocks = {
      {"docs/operations.md", "sh", "tests/daemon/operations_doc_test.cc"},
  };
  return blocks;
}

// The entry points README.md's first lines give: they are the demo and the test command.
const std::set<std::string>& EntryPoints() {
  static const std::set<std::string> entry = {"bash scripts/demo.sh", "bash scripts/test.sh"};
  return entry;
}

TEST(TheDocumentsCommands, AreEachRunByATestOrAScript) {
  size_t checked = 0, missing = 0;
  for (const auto& doc : Documents()) {
    for (const auto& c : Commands(doc, Slurp(SourceDir() / doc))) {
      ++checked;
      if (EntryPoints().contains(c.text) && c.where.starts_with("README.md:")) continue;
      bool run_as_written = false;
      for (const auto& b : RunAsWrittenBlocks())
        run_as_written = run_as_written || (doc == b.doc && c.lang == b.lang);
      if (run_as_written || Occurs(WhatIsRun(), c.text)) continue;
      ++missing;
      ADD_FAILURE() << c.where << ": no test under tests/ and no script under scripts/ runs `"
                    << c.text
                    << "`: run it in a test (as written, or with <NAME> placeholders), or "
                       "change the document to a command that is run";
    }
  }
  EXPECT_GT(checked, 20u) << "too few commands found: is the block extraction broken?";
  EXPECT_EQ(missing, 0u);
}

TEST(TheDocumentsCommands, RunAsWrittenElsewhereOnlyWhereATestReadsThatDocument) {
  for (const auto& b : RunAsWrittenBlocks()) {
    const std::string runner = Slurp(SourceDir() / b.runner);
    ASSERT_FALSE(runner.empty()) << b.runner << " is missing";
    EXPECT_NE(runner.find("/" + b.doc), std::string::npos)
        << b.runner << " does not read " << b.doc;
    EXPECT_NE(runner.find("```" + b.lang + "\""), std::string::npos)
        << b.runner << " does not run the ```" << b.lang << " blocks of " << b.doc;
    EXPECT_FALSE(Commands(b.doc, Slurp(SourceDir() / b.doc)).empty()) << b.doc;
  }
  for (const auto& e : EntryPoints()) {
    EXPECT_TRUE(fs::exists(SourceDir() / e.substr(e.find(' ') + 1))) << e;
    EXPECT_NE(Slurp(SourceDir() / "README.md").substr(0, 400).find(e), std::string::npos)
        << "README.md's first lines no longer give " << e;
  }
}

TEST(TheDocumentsCommandExtraction, ReadsShellBlocksAsAShellWould) {
  const std::string md =
      "intro `not a command`\n"
      "```bash\n"
      "# a comment line\n"
      "helperctl status   # the live helper\n"
      "grep -E '^(Uid|Gid):' \\\n"
      "  \"/proc/$PID/status\"\n"
      "cmake --preset x && ctest --preset x\n"
      "echo 'a # inside quotes'\n"
      "```\n"
      "```console\n"
      "$ helperctl policy --json\n"
      "{\"output\": true}\n"
      "```\n"
      "```json\n"
      "{\"not\": \"shell\"}\n"
      "```\n"
      "```sh\n"
      "bash scripts/fuzz.sh <SECONDS>\n"
      "```\n";
  std::vector<std::string> texts, wheres;
  for (const auto& c : Commands("d.md", md)) {
    texts.push_back(c.text);
    wheres.push_back(c.where);
  }
  EXPECT_EQ(texts, (std::vector<std::string>{
                       "helperctl status", "grep -E '^(Uid|Gid):' \"/proc/$PID/status\"",
                       "cmake --preset x", "ctest --preset x", "echo 'a # inside quotes'",
                       "helperctl policy --json", "bash scripts/fuzz.sh <SECONDS>"}));
  EXPECT_EQ(wheres.front(), "d.md:4");
  EXPECT_EQ(wheres[1], "d.md:5");
}

TEST(TheDocumentsCommandSearch, FindsWholeCommandsOutsideCommentsOnly) {
  const std::string cc = Searchable("t.cc",
                                    "// helperctl audit --last 20 in a comment\n"
                                    "Run(R\"(helperctl status --json)\");\n"
                                    "Shell(\"grep -q \\\"x y\\\" \\\"$F\\\"\");\n"
                                    "Shell(\"bash scripts/fuzz.sh 15\");\n");
  EXPECT_TRUE(Occurs(cc, "helperctl status"));  // more arguments may follow
  EXPECT_TRUE(Occurs(cc, "helperctl status --json"));
  EXPECT_TRUE(Occurs(cc, "grep -q \"x y\" \"$F\""));
  EXPECT_TRUE(Occurs(cc, "bash scripts/fuzz.sh <SECONDS>"));
  EXPECT_FALSE(Occurs(cc, "helperctl audit --last 20"));  // only in a comment
  EXPECT_FALSE(Occurs(cc, "helperctl stat"));             // not a whole word
  EXPECT_FALSE(Occurs(cc, "elperctl status"));
  EXPECT_FALSE(Occurs(cc, "bash scripts/fuzz.sh <SECONDS> --long"));
  EXPECT_FALSE(Occurs(cc, "helperctl status --json --pretty"));
  const std::string sh = Searchable("t.sh",
                                    "#!/bin/sh\n"
                                    "# cmake --preset asan\n"
                                    "cmake --build --preset release \\\n"
                                    "  --target debs\n");
  EXPECT_FALSE(Occurs(sh, "cmake --preset asan"));
  EXPECT_TRUE(Occurs(sh, "cmake --build --preset release --target debs"));
  EXPECT_FALSE(Occurs(sh, "cmake --build --preset release --target deb"));
}

}  // namespace
}  // namespace decnet::docs_test
