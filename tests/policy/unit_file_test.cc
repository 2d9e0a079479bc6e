// The systemd-faithful reader: line ends, comments, continuations, sections.
#include "policy/unit_file.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace decnet::helper {
namespace {

using Lines = std::vector<std::string>;

struct SplitRow {
  std::string input;
  Lines lines;
};

TEST(SplitSystemdLines, EndsLinesAsSystemdsReadLineDoes) {
  const std::vector<SplitRow> rows = {
      {"", {}},
      {"a", {"a"}},
      {"a\n", {"a"}},
      {"a\nb", {"a", "b"}},
      {"a\r\nb\r\n", {"a", "b"}},
      {"a\rb", {"a", "b"}},
      {"a\n\rb", {"a", "b"}},
      {"a\n\nb", {"a", "", "b"}},
      {"a\r\rb", {"a", "", "b"}},
      {"a\r\n\rb", {"a", "", "b"}},
      {std::string("a\0b", 3), {"a", "b"}},
      {std::string("a\n\0b", 4), {"a", "b"}},
      {std::string("a\0\nb", 4), {"a", "", "b"}},
      {std::string("a\0\0b", 4), {"a", "", "b"}},
      {std::string("a\r\n\0b", 5), {"a", "b"}},
  };
  for (const SplitRow& row : rows) {
    SCOPED_TRACE(testing::PrintToString(row.input));
    EXPECT_EQ(SplitSystemdLines(row.input), row.lines);
  }
}

const std::set<std::string> kService = {"Unit", "Service", "Install"};

std::vector<std::string> Keys(const ParsedUnitFile& f) {
  std::vector<std::string> out;
  for (const auto& a : f.assignments) out.push_back(a.section + "." + a.key + "=" + a.value);
  return out;
}

bool HasProblem(const ParsedUnitFile& f, std::string_view rule) {
  for (const auto& p : f.problems) {
    if (p.rule == rule) return true;
  }
  return false;
}

TEST(ReadUnitFile, StripsWhitespaceAroundKeysAndValues) {
  auto f = ReadUnitFile("  [Service]  \n\t User =  decnet \t\nA==b\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.User=decnet", "Service.A==b"}));
  EXPECT_TRUE(f.problems.empty());
}

TEST(ReadUnitFile, JoinsContinuationsReplacingTheBackslashWithASpace) {
  auto f = ReadUnitFile("[Service]\nExecStart=/bin/x \\\n  --a \\\n  --b\nUser=decnet\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.ExecStart=/bin/x    --a    --b", "Service.User=decnet"}));
  EXPECT_EQ(f.assignments[1].line, 5);
}

TEST(ReadUnitFile, SkipsCommentLinesInsideAContinuation) {
  auto f =
      ReadUnitFile("[Service]\nEnvironment=A=1 \\\n# comment\n ; another\nUser=decnet\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.Environment=A=1  User=decnet"}));
}

TEST(ReadUnitFile, EndsAContinuationAtAnEmptyLine) {
  auto f = ReadUnitFile("[Service]\nEnvironment=A=1 \\\n\nUser=decnet\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.Environment=A=1", "Service.User=decnet"}));
}

TEST(ReadUnitFile, TreatsAnEscapedBackslashAsNoContinuation) {
  auto f = ReadUnitFile("[Service]\nEnvironment=A=1\\\\\nUser=decnet\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.Environment=A=1\\\\", "Service.User=decnet"}));
}

TEST(ReadUnitFile, ReadsAContinuationOpenAtEndOfFile) {
  auto f = ReadUnitFile("[Service]\nUser=decnet \\", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.User=decnet"}));
}

TEST(ReadUnitFile, IgnoresUnknownSectionsAndReportsThem) {
  auto f = ReadUnitFile("[Servce]\nUser=root\n[X-Foo]\nA=b\n[Service]\nUser=decnet\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.User=decnet"}));
  EXPECT_TRUE(HasProblem(f, "unit-section"));
}

TEST(ReadUnitFile, IsCaseSensitiveInSectionsAndKeys) {
  auto f = ReadUnitFile("[service]\nUser=root\n[Service]\nuser=root\n", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.user=root"}));
  EXPECT_TRUE(HasProblem(f, "unit-section"));
}

TEST(ReadUnitFile, IgnoresAndReportsAssignmentsOutsideSections) {
  auto f = ReadUnitFile("User=root\n[Service]\n", kService);
  EXPECT_TRUE(f.assignments.empty());
  EXPECT_TRUE(HasProblem(f, "unit-syntax"));
}

TEST(ReadUnitFile, MarksABrokenSectionHeaderFatal) {
  auto f = ReadUnitFile("[Service\nUser=decnet\n", kService);
  ASSERT_FALSE(f.problems.empty());
  EXPECT_TRUE(f.problems.front().fatal);
}

TEST(ReadUnitFile, ReportsNulBomIncludeAndMissingEquals) {
  EXPECT_TRUE(HasProblem(ReadUnitFile(std::string("[Service]\0User=decnet\n", 22), kService),
                         "unit-syntax"));
  EXPECT_TRUE(HasProblem(ReadUnitFile("\xEF\xBB\xBF[Service]\n", kService), "unit-syntax"));
  EXPECT_TRUE(HasProblem(ReadUnitFile("[Service]\n.include /x\n", kService), "unit-include"));
  EXPECT_TRUE(
      HasProblem(ReadUnitFile("[Service]\nProtectSystem strict\n", kService), "unit-syntax"));
  EXPECT_TRUE(HasProblem(ReadUnitFile("[Service]\nA=\x01\n", kService), "unit-syntax"));
  EXPECT_TRUE(HasProblem(ReadUnitFile("[Service]\nA=\xff\n", kService), "unit-syntax"));
}

TEST(ReadUnitFile, ReadsALoneCrAsALineEnd) {
  auto f = ReadUnitFile("[Service]\rUser=decnet\rUser=root", kService);
  EXPECT_EQ(Keys(f), (Lines{"Service.User=decnet", "Service.User=root"}));
}

TEST(EffectiveValue, LastAssignmentWinsAndEmptyResets) {
  auto f = ReadUnitFile("[Service]\nUser=decnet\nUser=root\nGroup=a\nGroup=\n", kService);
  EXPECT_EQ(EffectiveValue(f, "Service", "User"), "root");
  EXPECT_EQ(EffectiveValue(f, "Service", "Group"), std::nullopt);
  EXPECT_EQ(EffectiveValue(f, "Service", "Missing"), std::nullopt);
  EXPECT_EQ(EffectiveValue(f, "Unit", "User"), std::nullopt);
}

TEST(EffectiveAssignments, KeepsOnlyThoseAfterTheLastReset) {
  auto f = ReadUnitFile("[Service]\nA=1\nA=\nA=2\nA=3\n", kService);
  auto in_force = EffectiveAssignments(f, "Service", "A");
  ASSERT_EQ(in_force.size(), 2u);
  EXPECT_EQ(in_force[0].value, "2");
  EXPECT_EQ(in_force[1].line, 5);
}

TEST(ParseSystemdBool, AcceptsSystemdsSpellings) {
  EXPECT_EQ(ParseSystemdBool("YES"), true);
  EXPECT_EQ(ParseSystemdBool("on"), true);
  EXPECT_EQ(ParseSystemdBool("0"), false);
  EXPECT_EQ(ParseSystemdBool("nope"), std::nullopt);
}

}  // namespace
}  // namespace decnet::helper
