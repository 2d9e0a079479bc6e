// The man pages in docs/man/ hold to their programs. Each page is clean under
// `mandoc -T lint -W warning`, and names exactly the commands and options its program knows:
// the program's own --help (and each command's --help, where it has one) is one side, the
// page's SYNOPSIS, OPTIONS and COMMANDS sections the other; a command or option that either
// side gains alone fails the test. Where the program keeps its commands in a table in code,
// the table must also equal what --help prints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace {

namespace fs = std::filesystem;
using decnet::helper::testing_support::RunCaptured;
using Names = std::set<std::string>;

struct ManPage {
  std::string page;    // beneath docs/man/
  std::string binary;  // the built program; "" when this build leaves it out
  // Its commands have their own `COMMAND --help`.
  bool per_command_help = false;
  // Flags that may be missing from the usage text (each is probed: exit 0 counts).
  std::vector<std::string> probed_flags;
  // The source file holding the command table, and a pattern whose first group is a command's
  // name there; "" when the program has no commands.
  std::string command_source;
  std::string command_pattern;
  // Sources holding usage texts the program prints only where --help cannot reach them (a
  // second mode refused to root before its usage): their "usage:" lines are read too.
  std::vector<std::string> usage_sources = {};
};

std::ostream& operator<<(std::ostream& out, const ManPage& p) { return out << p.page; }

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string Join(const Names& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

Names Minus(const Names& a, const Names& b) {
  Names out;
  for (const auto& x : a)
    if (!b.contains(x)) out.insert(x);
  return out;
}

// Every long option (--name) in `text`.
Names LongOptions(const std::string& text) {
  Names out;
  static const std::regex option("(^|[^A-Za-z0-9-])(--[a-z][a-z0-9-]*)");
  for (std::sregex_iterator it(text.begin(), text.end(), option), end; it != end; ++it)
    out.insert((*it)[2]);
  return out;
}

// Usage lines name commands indented by exactly two spaces: "  NAME  what it does".
Names UsageCommands(const std::string& usage) {
  Names out;
  static const std::regex command("^  ([a-z][a-z0-9-]*)(\\s.*)?$");
  std::istringstream in(usage);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, command)) out.insert(m[1]);
  }
  return out;
}

// What the program says it knows: its commands, and every option of it and its commands.
struct Known {
  Names commands;
  Names options;
};

std::string Scratch() {
  static const std::string dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "man-pages-XXXXXX").string();
    return std::string(::mkdtemp(tmpl.data()));
  }();
  return dir;
}

std::string HelpText(const std::vector<std::string>& argv) {
  auto run = RunCaptured(argv, Scratch());
  return run.out + run.err;
}

Known FromProgram(const ManPage& p) {
  Known k;
  // From "usage:" on: an error before it (such as "bad argument '--help'") is no option.
  std::string usage = HelpText({p.binary, "--help"});
  if (const size_t at = usage.find("usage:"); at != std::string::npos) usage = usage.substr(at);
  k.commands = UsageCommands(usage);
  k.options = LongOptions(usage);
  for (const auto& c : k.commands) {
    if (p.per_command_help) k.options.merge(LongOptions(HelpText({p.binary, c, "--help"})));
  }
  for (const auto& source : p.usage_sources) {
    std::istringstream in(Slurp(fs::path(DECNET_SOURCE_DIR) / source));
    for (std::string line; std::getline(in, line);) {
      if (line.find("usage: ") != std::string::npos) k.options.merge(LongOptions(line));
    }
  }
  // --help is known when it is answered with the usage rather than refused (some programs
  // print the usage with status 2 for --help too, but then it comes first, not after an error).
  auto probes = p.probed_flags;
  probes.push_back("--help");
  for (const auto& flag : probes) {
    const auto run = RunCaptured({p.binary, flag}, Scratch());
    if (run.exit_code == 0 || (run.out + run.err).starts_with("usage:")) k.options.insert(flag);
  }
  return k;
}

// The page as plain words: comments dropped, roff escapes for hyphens, fonts and spaces
// undone, split into its sections ("SYNOPSIS" -> its lines).
std::map<std::string, std::vector<std::string>> Sections(const std::string& roff) {
  std::map<std::string, std::vector<std::string>> out;
  std::string current;
  std::istringstream in(roff);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(".\\\"")) continue;
    line = std::regex_replace(line, std::regex(R"(\\f[BIRP])"), "");
    line = std::regex_replace(line, std::regex(R"(\\-)"), "-");
    line = std::regex_replace(line, std::regex(R"(\\~|\\ )"), " ");
    line = std::regex_replace(line, std::regex(R"(\\&)"), "");
    std::smatch m;
    if (std::regex_match(line, m, std::regex(R"re(\.SH\s+"?([^"]*)"?\s*)re"))) {
      current = m[1];
      continue;
    }
    out[current].push_back(line);
  }
  return out;
}  // namespace

// The page's side: commands are the tags (`.TP` then `.B NAME ...`) of its COMMANDS section;
// options are every --name in SYNOPSIS, OPTIONS and COMMANDS.
Known FromPage(const std::string& roff) {
  Known k;
  auto sections = Sections(roff);
  const auto& commands = sections["COMMANDS"];
  for (size_t i = 0; i + 1 < commands.size(); ++i) {
    std::smatch m;
    if (commands[i] == ".TP" &&
        std::regex_search(commands[i + 1], m, std::regex(R"(^\.B\s+([a-z][a-z0-9-]*))")))
      k.commands.insert(m[1]);
  }
  for (const char* s : {"SYNOPSIS", "OPTIONS", "COMMANDS"}) {
    std::string text;
    for (const auto& line : sections[s]) text += line + "\n";
    k.options.merge(LongOptions(text));
  }
  return k;
}

std::string SynopsisText(const std::string& roff) {
  std::string text;
  auto sections = Sections(roff);
  for (const auto& line : sections["SYNOPSIS"]) text += line + "\n";
  return text;
}

const std::string kSource = DECNET_SOURCE_DIR;

class AManPage : public ::testing::TestWithParam<ManPage> {
 protected:
  fs::path Page() const { return fs::path(kSource) / "docs/man" / GetParam().page; }
  void RequireBinary() const {
    if (GetParam().binary.empty()) GTEST_SKIP() << "this build leaves the program out";
    ASSERT_TRUE(fs::exists(GetParam().binary)) << GetParam().binary;
  }
};

TEST_P(AManPage, IsCleanUnderMandocLint) {
  ASSERT_TRUE(fs::exists(Page())) << Page();
  ASSERT_TRUE(fs::exists("/usr/bin/mandoc")) << "mandoc is not installed (scripts/setup.sh)";
  auto run =
      RunCaptured({"/usr/bin/mandoc", "-T", "lint", "-W", "warning", Page().string()}, Scratch());
  EXPECT_EQ(run.out + run.err, "");
  EXPECT_EQ(run.exit_code, 0);
}

TEST_P(AManPage, IsTitledWithItsNameAndSection) {
  const std::string name = Page().stem().string();
  const std::string section = Page().extension().string().substr(1);
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string roff = Slurp(Page());
  EXPECT_TRUE(std::regex_search(roff, std::regex("(^|\n)\\.TH " + upper + " " + section + " ")))
      << Page() << " has no .TH " << upper << " " << section;
  EXPECT_TRUE(std::regex_search(
      roff, std::regex("(^|\n)\\.SH NAME\n" + std::regex_replace(name, std::regex("-"), "\\\\?-"))))
      << "NAME must begin with " << name;
}

TEST_P(AManPage, NamesEveryCommandAndOptionItsProgramKnowsAndNoOther) {
  RequireBinary();
  const Known program = FromProgram(GetParam());
  const Known page = FromPage(Slurp(Page()));
  ASSERT_FALSE(program.options.empty()) << "no option read from " << GetParam().binary;
  EXPECT_EQ(Join(Minus(program.commands, page.commands)), "(none)")
      << "commands --help lists that " << GetParam().page << "'s COMMANDS lacks";
  EXPECT_EQ(Join(Minus(page.commands, program.commands)), "(none)")
      << "commands " << GetParam().page << " describes that the program does not know";
  EXPECT_EQ(Join(Minus(program.options, page.options)), "(none)")
      << "options the program knows that " << GetParam().page << " does not name";
  EXPECT_EQ(Join(Minus(page.options, program.options)), "(none)")
      << "options " << GetParam().page << " names that the program does not know";
  const std::string synopsis = SynopsisText(Slurp(Page()));
  for (const auto& c : program.commands) {
    EXPECT_TRUE(std::regex_search(synopsis, std::regex("(^|\n)\\.B[R]? " + c + "(\\s|$)")))
        << "SYNOPSIS of " << GetParam().page << " lacks the command " << c;
  }
}

// Only the pages whose program keeps a table of commands in its code (instantiated below).
class AManPageOfAProgramWithCommands : public AManPage {};

TEST_P(AManPageOfAProgramWithCommands, ItsProgramsUsageListsEveryCommandOfItsCodeTable) {
  RequireBinary();
  ASSERT_FALSE(GetParam().command_source.empty());
  const std::string code = Slurp(fs::path(kSource) / GetParam().command_source);
  Names table;
  const std::regex pattern(GetParam().command_pattern);
  for (std::sregex_iterator it(code.begin(), code.end(), pattern), end; it != end; ++it)
    table.insert((*it)[1]);
  ASSERT_FALSE(table.empty()) << "no command found in " << GetParam().command_source;
  EXPECT_EQ(Join(table), Join(FromProgram(GetParam()).commands))
      << GetParam().command_source << "'s commands against --help";
}

const ManPage kPages[] = {
    {"helperctl.8",
     HELPERCTL_BINARY,
     false,
     {},
     "ctl/main.cc",
     R"re(command == "([a-z][a-z-]*)")re"},
    {"decnet-rollout.1",
     ROLLOUT_BINARY,
     true,
     {"--version"},
     "fleet/rollout_main.cc",
     R"re(\{"([a-z][a-z-]*)", decnet::fleet::Run)re"},
    {"decnet-update-helper.8", HELPER_BINARY, false, {}, "", ""},
    {"decnet-adopt.8", ADOPT_BINARY, false, {}, "", ""},
    {"decnet-updater-enrol.8", ENROL_BINARY, false, {}, "", ""},
    {"decnet-updaterd.8",
     DAEMON_BINARY,
     false,
     {"--version"},
     "",
     "",
     {"daemon/release_import.cc"}},
};

std::string CaseName(const ::testing::TestParamInfo<ManPage>& info) {
  return std::regex_replace(info.param.page, std::regex("[^A-Za-z0-9]"), "_");
}

std::vector<ManPage> PagesOfProgramsWithCommands() {
  std::vector<ManPage> pages;
  for (const auto& p : kPages)
    if (!p.command_source.empty()) pages.push_back(p);
  return pages;
}

INSTANTIATE_TEST_SUITE_P(Docs, AManPage, ::testing::ValuesIn(kPages), CaseName);
INSTANTIATE_TEST_SUITE_P(Docs, AManPageOfAProgramWithCommands,
                         ::testing::ValuesIn(PagesOfProgramsWithCommands()), CaseName);

// Every page in docs/man/ is one of the cases (a new page needs its program here).
TEST(TheManPages, AreEachCheckedAgainstTheirProgram) {
  Names cases, pages;
  for (const auto& p : kPages) cases.insert(p.page);
  for (const auto& e : fs::directory_iterator(fs::path(kSource) / "docs/man"))
    pages.insert(e.path().filename().string());
  EXPECT_EQ(Join(Minus(pages, cases)), "(none)") << "pages in docs/man/ that no case checks";
  EXPECT_EQ(Join(Minus(cases, pages)), "(none)") << "cases whose page is missing";
}

}  // namespace
