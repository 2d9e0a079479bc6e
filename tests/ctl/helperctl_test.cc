// helperctl as operators run it: a real subprocess with --config pointing at a root-owned
// policy file. check-unit must say exactly what the in-process unit policy says, in the
// "FILE:LINE: RULE: message" form; policy must print the tables the helper itself uses.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/unit_policy.h"
#include "tests/support/subprocess.h"
#include "tests/support/unit_test_support.h"

namespace decnet::helper {
namespace {

using namespace testing_support;
using nlohmann::json;

// One refusal line as check-unit prints it.
struct Line {
  std::string file;
  int line = 0;
  std::string rule;
};

class AHelperctl : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildFixtureRoot(tree_);
    policy_.unit_root = tree_.root();
    config_ = WriteFile("/helper.json", PolicyToJson(policy_), 0644);
  }

  // Writes `content` at `rel` (creating its directory), root-owned with `mode`.
  std::string WriteFile(const std::string& rel, const std::string& content, mode_t mode) {
    const std::string path = tree_.Path(rel);
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << content;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    EXPECT_EQ(chown(path.c_str(), 0, 0), 0);
    return path;
  }

  // A fixture copied under the unit name it is checked as, in a directory of its own (several
  // fixtures share a unit name).
  std::string Place(const UnitFixture& f) {
    return WriteFile("/units/" + f.file + "/" + f.unit_name, f.content, 0644);
  }

  // Runs helperctl with `args` after "--config CONFIG"; stdout and stderr go to files so a
  // long report cannot block the child on a full pipe.
  CtlRun Helperctl(const std::vector<std::string>& args, const std::string& config = "") {
    std::vector<std::string> argv = {HELPERCTL_PATH, "--config", config.empty() ? config_ : config};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCaptured(std::move(argv), tree_.root());
  }

  // What the unit policy says in-process about a placed fixture, as (line, rule) pairs.
  std::vector<std::pair<int, std::string>> Expected(const UnitFixture& f) {
    const auto name = UnitName::Parse(f.unit_name);
    EXPECT_TRUE(name) << f.unit_name;
    std::vector<std::pair<int, std::string>> out;
    if (auto ok = CheckUnitName(policy_, *name, UnitUse::kWrite); !ok) {
      out.emplace_back(0, ok.error().rule);
    }
    for (const auto& r :
         CheckUnitContent(policy_, *name, f.content, RootOnlyPathCheck(tree_.root()))) {
      out.emplace_back(r.line, r.rule);
    }
    return out;
  }

  TempTree tree_;
  Policy policy_ = FixturePolicy();
  std::string config_;
};

// Splits check-unit's stdout into lines, failing on any that is not "FILE:LINE: RULE: msg".
std::vector<Line> ParseLines(const std::string& out) {
  static const std::regex kLine(R"(^(/[^:]+):([0-9]+): ([a-z0-9-]+): (.+)$)");
  std::vector<Line> lines;
  std::istringstream in(out);
  std::string text;
  while (std::getline(in, text)) {
    std::smatch m;
    if (!std::regex_match(text, m, kLine)) {
      ADD_FAILURE() << "not FILE:LINE: RULE: message: " << text;
      continue;
    }
    lines.push_back({m[1], std::stoi(m[2]), m[3]});
  }
  return lines;
}

std::vector<std::pair<int, std::string>> LinesFor(const std::vector<Line>& lines,
                                                  const std::string& file) {
  std::vector<std::pair<int, std::string>> out;
  for (const Line& l : lines) {
    if (l.file == file) out.emplace_back(l.line, l.rule);
  }
  return out;
}

TEST_F(AHelperctl, PassesEveryAcceptedFixtureSilently) {
  const auto fixtures = LoadUnitFixtures(false);
  ASSERT_GE(fixtures.size(), 6u);
  std::vector<std::string> all = {"check-unit"};
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.file);
    const std::string path = Place(f);
    const CtlRun run = Helperctl({"check-unit", path});
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_EQ(run.out, "");
    EXPECT_EQ(run.err, "");
    all.push_back(path);
  }
  const CtlRun run = Helperctl(all);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.out, "");
}

TEST_F(AHelperctl, RefusesEachRefusedFixtureNamingFileLineAndItsRule) {
  const auto fixtures = LoadUnitFixtures(true);
  ASSERT_GE(fixtures.size(), 30u);
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.file);
    const std::string path = Place(f);
    const CtlRun run = Helperctl({"check-unit", path});
    EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
    const std::vector<Line> lines = ParseLines(run.out);
    ASSERT_FALSE(lines.empty()) << run.out << run.err;
    bool named = false;
    for (const Line& l : lines) {
      EXPECT_EQ(l.file, path);
      named = named || l.rule == f.expected_rule;
    }
    EXPECT_TRUE(named) << "no line names " << f.expected_rule << ":\n" << run.out;
    EXPECT_EQ(LinesFor(lines, path), Expected(f)) << run.out;
  }
}

TEST_F(AHelperctl, PrintsOneLinePerRefusalPerFileWhenGivenSeveral) {
  std::vector<std::string> args = {"check-unit"};
  std::vector<std::pair<std::string, UnitFixture>> placed;
  for (bool refused : {true, false}) {
    for (const auto& f : LoadUnitFixtures(refused)) {
      placed.emplace_back(Place(f), f);
      args.push_back(placed.back().first);
    }
  }
  const CtlRun run = Helperctl(args);
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const std::vector<Line> lines = ParseLines(run.out);
  size_t expected_lines = 0;
  for (const auto& [path, f] : placed) {
    SCOPED_TRACE(f.file);
    const auto expected = Expected(f);
    EXPECT_EQ(LinesFor(lines, path), expected);
    EXPECT_EQ(expected.empty(), f.expected_rule.empty());
    expected_lines += expected.size();
  }
  EXPECT_EQ(lines.size(), expected_lines);
}

TEST_F(AHelperctl, ExitsTwoOnAFileItCannotRead) {
  const std::string dangling = tree_.Path("/dangling.service");
  tree_.Link(tree_.Path("/nowhere"), "/dangling.service");
  const std::string directory = tree_.Path("/decnet-dir.service");
  std::filesystem::create_directory(directory);
  for (const std::string& path : {tree_.Path("/missing/decnet-x.service"), dangling, directory}) {
    SCOPED_TRACE(path);
    const CtlRun run = Helperctl({"check-unit", path});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_NE(run.err.find(path), std::string::npos) << run.err;
  }
}

TEST_F(AHelperctl, PrintsThePolicyAsOneJsonObjectOfTheHelpersTables) {
  const CtlRun run = Helperctl({"policy", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json doc = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << run.out;
  ASSERT_TRUE(doc.is_object());
  for (const char* key : {"requests", "units", "links", "seccomp"}) {
    EXPECT_TRUE(doc.contains(key)) << key;
  }

  ASSERT_TRUE(doc["requests"].is_array());
  std::set<std::string> types;
  for (const json& row : doc["requests"]) {
    ASSERT_TRUE(row.is_object()) << row.dump();
    ASSERT_TRUE(row.contains("type") && row["type"].is_string()) << row.dump();
    ASSERT_TRUE(row.contains("phase") && row["phase"].is_string()) << row.dump();
    ASSERT_TRUE(row.contains("once") && row["once"].is_boolean()) << row.dump();
    EXPECT_TRUE(types.insert(row["type"].get<std::string>()).second) << row.dump();
    if (row["type"] == "hello") {
      EXPECT_TRUE(row["once"].get<bool>());
      EXPECT_EQ(row["phase"], "await-hello");
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{"hello", "write_unit", "remove_unit", "daemon_reload",
                                          "restart_unit", "unit_status", "repoint_link"}));

  ASSERT_TRUE(doc["units"].is_object());
  ASSERT_TRUE(doc["units"].contains("directives"));
  ASSERT_TRUE(doc["units"]["directives"].is_array());
  EXPECT_EQ(doc["units"]["directives"].size(), DirectiveTable().size());
  ASSERT_TRUE(doc["links"].is_array());
  EXPECT_EQ(doc["links"].size(), policy_.links.size());

  ASSERT_TRUE(doc["seccomp"].is_array());
  EXPECT_FALSE(doc["seccomp"].empty());
  std::set<std::string> syscalls;
  for (const json& s : doc["seccomp"]) {
    ASSERT_TRUE(s.is_string()) << s.dump();
    syscalls.insert(s.get<std::string>());
  }
  EXPECT_EQ(syscalls.count("recvmsg"), 1u);
  EXPECT_EQ(syscalls.count("execve"), 0u);
  EXPECT_EQ(syscalls.count("ptrace"), 0u);
}

TEST_F(AHelperctl, ListsEveryRuleARefusedFixtureNamesInThePolicyJson) {
  const CtlRun run = Helperctl({"policy", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json doc = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(doc.is_object()) << run.out;
  ASSERT_TRUE(doc["units"]["rules"].is_array()) << run.out;
  std::set<std::string> listed;
  for (const json& r : doc["units"]["rules"]) {
    ASSERT_TRUE(r.contains("id") && r["id"].is_string()) << r.dump();
    EXPECT_FALSE(r.value("summary", "").empty()) << r.dump();
    EXPECT_FALSE(r.value("defends", "").empty()) << r.dump();
    listed.insert(r["id"].get<std::string>());
  }
  const auto fixtures = LoadUnitFixtures(true);
  ASSERT_GE(fixtures.size(), 150u);
  for (const auto& f : fixtures) {
    EXPECT_EQ(listed.count(f.expected_rule), 1u) << f.file << " names an unlisted rule";
  }
  EXPECT_EQ(doc["units"]["bounds"]["max_stop_timeout_sec"], policy_.max_stop_timeout_sec);
  const CtlRun text = Helperctl({"policy"});
  EXPECT_NE(text.out.find("unit-directory-reserved"), std::string::npos);
}

TEST_F(AHelperctl, PrintsEveryRequestTypeInThePolicyText) {
  const CtlRun run = Helperctl({"policy"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (const char* type : {"hello", "write_unit", "remove_unit", "daemon_reload", "restart_unit",
                           "unit_status", "repoint_link"}) {
    EXPECT_NE(run.out.find(type), std::string::npos) << type;
  }
}

TEST_F(AHelperctl, RefusesAPolicyFileOthersCouldHaveWritten) {
  for (mode_t mode : {0664, 0646}) {
    SCOPED_TRACE(mode);
    const std::string config = WriteFile("/writable.json", PolicyToJson(policy_), mode);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"policy", "--json"},
          std::vector<std::string>{"check-unit", tree_.Path("/none.service")}}) {
      const CtlRun run = Helperctl(args, config);
      EXPECT_EQ(run.exit_code, 2);
      EXPECT_EQ(run.out, "");
      EXPECT_NE(run.err.find("policy-file-owner"), std::string::npos) << run.err;
    }
  }
}

TEST_F(AHelperctl, RefusesAPolicyFileWithADuplicateKey) {
  const std::string config =
      WriteFile("/duplicate.json", R"({"unit_users": ["decnet"], "unit_users": ["w"]})", 0644);
  const CtlRun run = Helperctl({"policy"}, config);
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("json-duplicate-key"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace decnet::helper
