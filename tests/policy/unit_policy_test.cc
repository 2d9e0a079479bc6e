// The unit policy over the fixture corpus, over hostile content built in code, and the
// root-only path check over real directory trees.
#include "policy/unit_policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <string>

#include "proto/helper_protocol.h"
#include "tests/support/unit_test_support.h"

namespace decnet::helper {
namespace {

using namespace testing_support;

std::string Show(const std::vector<UnitRefusal>& refusals) {
  std::string out;
  for (const auto& r : refusals)
    out += std::to_string(r.line) + " " + r.rule + ": " + r.message + "\n";
  return out;
}

bool HasRule(const std::vector<UnitRefusal>& refusals, std::string_view rule) {
  return std::any_of(refusals.begin(), refusals.end(),
                     [&](const UnitRefusal& r) { return r.rule == rule; });
}

std::vector<UnitRefusal> Check(const Policy& policy, const std::string& unit,
                               std::string_view content, const PathChainCheck& check) {
  auto name = UnitName::Parse(unit);
  EXPECT_TRUE(name) << unit;
  return CheckUnitContent(policy, *name, content, check);
}

PathChainCheck NoPathTrouble() {
  return [](std::string_view) { return std::string(); };
}

class AUnitPolicyOverFixtures : public ::testing::Test {
 protected:
  void SetUp() override { BuildFixtureRoot(tree_); }
  TempTree tree_;
  Policy policy_ = FixturePolicy();
};

TEST_F(AUnitPolicyOverFixtures, AcceptsDecnetsUnitsInHardenedForm) {
  const auto fixtures = LoadUnitFixtures(false);
  EXPECT_GE(fixtures.size(), 6u);
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.file);
    auto refusals = Check(policy_, f.unit_name, f.content, RootOnlyPathCheck(tree_.root()));
    EXPECT_TRUE(refusals.empty()) << Show(refusals);
  }
}

TEST_F(AUnitPolicyOverFixtures, RefusesEachRefusedFixtureWithTheRuleInItsName) {
  const auto fixtures = LoadUnitFixtures(true);
  std::set<std::string> rules;
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.file);
    auto refusals = Check(policy_, f.unit_name, f.content, RootOnlyPathCheck(tree_.root()));
    EXPECT_TRUE(HasRule(refusals, f.expected_rule)) << Show(refusals);
    rules.insert(f.expected_rule);
  }
  EXPECT_GE(fixtures.size(), 30u);
  EXPECT_GE(rules.size(), 25u);
}

const char kGood[] =
    "[Service]\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/opt/decnet/x\n";

TEST(AUnitPolicy, AcceptsAMinimalService) {
  EXPECT_TRUE(Check(Policy::Defaults(), "decnet-x.service", kGood, NoPathTrouble()).empty());
}

TEST(AUnitPolicy, ReadsANulAsALineEndAndRefusesIt) {
  const std::string content = std::string(kGood) + std::string("Environment=A=1\0User=root\n", 26);
  auto refusals = Check(Policy::Defaults(), "decnet-x.service", content, NoPathTrouble());
  EXPECT_TRUE(HasRule(refusals, "unit-user-root")) << Show(refusals);
  EXPECT_TRUE(HasRule(refusals, "unit-syntax")) << Show(refusals);
}

TEST(AUnitPolicy, SeesADirectiveAfterALoneCr) {
  const std::string content = std::string(kGood) + "Environment=A=1\rExecStartPre=+/bin/sh\n";
  auto refusals = Check(Policy::Defaults(), "decnet-x.service", content, NoPathTrouble());
  EXPECT_TRUE(HasRule(refusals, "unit-exec-privileged")) << Show(refusals);
}

TEST(AUnitPolicy, AppliesTheSizeCapAtItsBoundary) {
  std::string at_cap = kGood;
  at_cap += "#" + std::string(proto::kMaxUnitContent - at_cap.size() - 2, 'x') + "\n";
  ASSERT_EQ(at_cap.size(), proto::kMaxUnitContent);
  EXPECT_TRUE(Check(Policy::Defaults(), "decnet-x.service", at_cap, NoPathTrouble()).empty());
  auto refusals = Check(Policy::Defaults(), "decnet-x.service", at_cap + "\n", NoPathTrouble());
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].rule, "unit-size-cap");
}

TEST(AUnitPolicy, ReportsTheLineOfEachRefusal) {
  auto refusals = Check(Policy::Defaults(), "decnet-x.service",
                        std::string(kGood) + "\nSupplementaryGroups=docker\n", NoPathTrouble());
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].line, 7);
  EXPECT_NE(refusals[0].message.find("docker"), std::string::npos);
}

TEST(AUnitPolicy, HonoursAPerUnitAllowance) {
  Policy policy = Policy::Defaults();
  policy.allowances["decnet-x.service"] = {{"CAP_NET_BIND_SERVICE"}, {"docker"}, true};
  const std::string content =
      "[Service]\nUser=decnet\nGroup=decnet\nNoNewPrivileges=no\nSupplementaryGroups=docker\n"
      "AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
      "ExecStart=/opt/decnet/x\n";
  auto refusals = Check(policy, "decnet-x.service", content, NoPathTrouble());
  EXPECT_TRUE(refusals.empty()) << Show(refusals);
  auto without_bounding =
      Check(policy, "decnet-x.service",
            content.substr(0, content.find("CapabilityBoundingSet")) + "ExecStart=/opt/decnet/x\n",
            NoPathTrouble());
  EXPECT_TRUE(HasRule(without_bounding, "unit-capability-bounding")) << Show(without_bounding);
}

TEST(AUnitPolicy, RefusesUserAndExecSectionsInATarget) {
  auto refusals = Check(Policy::Defaults(), "decnet.target", kGood, NoPathTrouble());
  EXPECT_TRUE(HasRule(refusals, "unit-section")) << Show(refusals);
}

TEST(AUnitPolicy, PassesRootOpenedPathsToThePathCheck) {
  Policy policy = Policy::Defaults();
  policy.output_dirs = {"/var/log/decnet"};
  std::vector<std::string> asked;
  PathChainCheck record = [&asked](std::string_view p) {
    asked.emplace_back(p);
    return std::string("planted");
  };
  auto refusals = Check(policy, "decnet-x.service",
                        std::string(kGood) +
                            "StandardOutput=append:/var/log/decnet/a.log\n"
                            "EnvironmentFile=-/etc/decnet/a.env\n",
                        record);
  EXPECT_EQ(asked, (std::vector<std::string>{"/var/log/decnet/a.log", "/etc/decnet/a.env"}));
  EXPECT_EQ(refusals.size(), 2u) << Show(refusals);
}

TEST(DirectiveTable, ListsEachKeyOnceWithItsCheck) {
  std::set<std::string> seen;
  bool user_checked = false;
  for (const auto& row : DirectiveTable()) {
    EXPECT_TRUE(seen.insert(row.section + "." + row.key).second) << row.key;
    if (row.key == "User") user_checked = row.check == "user-allowlist";
  }
  EXPECT_TRUE(user_checked);
  EXPECT_GE(seen.size(), 100u);
}

// --- RootOnlyPathCheck over real trees -----------------------------------------------------

class ARootOnlyPathCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.Dir("/etc/decnet");
    tree_.File("/etc/decnet/a.env");
  }
  std::string Judge(const std::string& path) { return RootOnlyPathCheck(tree_.root())(path); }
  TempTree tree_;
};

TEST_F(ARootOnlyPathCheck, AcceptsARootOwnedChain) { EXPECT_EQ(Judge("/etc/decnet/a.env"), ""); }

TEST_F(ARootOnlyPathCheck, AcceptsAMissingFinalFileInARootOwnedDirectory) {
  EXPECT_EQ(Judge("/etc/decnet/new.log"), "");
}

TEST_F(ARootOnlyPathCheck, RefusesAMissingDirectory) { EXPECT_NE(Judge("/etc/nothere/a.env"), ""); }

TEST_F(ARootOnlyPathCheck, RefusesADirectoryOwnedByAnotherUser) {
  tree_.Dir("/var/log/decnet", 0755, kOtherUid);
  EXPECT_NE(Judge("/var/log/decnet/agent.log").find("not owned by root"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAGroupWritableDirectory) {
  tree_.Dir("/var/log/grp", 0775);
  EXPECT_NE(Judge("/var/log/grp/a.log").find("writable"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAnOtherWritableStickyDirectory) {
  tree_.Dir("/var/tmp", 01777);
  EXPECT_NE(Judge("/var/tmp/a.log"), "");
}

TEST_F(ARootOnlyPathCheck, RefusesAnUpperDirectoryOwnedByAnotherUser) {
  tree_.Dir("/srv", 0755, kOtherUid);
  tree_.Dir("/srv/logs");
  EXPECT_NE(Judge("/srv/logs/a.log"), "");
}

TEST_F(ARootOnlyPathCheck, RefusesASymlinkedDirectory) {
  tree_.Link("/etc", "/etc/alias");
  EXPECT_NE(Judge("/etc/alias/decnet/a.env").find("symbolic link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesASymlinkedFinalFile) {
  tree_.Link("/etc/shadow", "/etc/decnet/out.log");
  EXPECT_NE(Judge("/etc/decnet/out.log").find("symbolic link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAFinalFileOwnedByAnotherUser) {
  tree_.File("/etc/decnet/b.env", 0644, kOtherUid);
  EXPECT_NE(Judge("/etc/decnet/b.env"), "");
}

TEST_F(ARootOnlyPathCheck, RefusesAFifoAndAHardLink) {
  ASSERT_EQ(mkfifo(tree_.Path("/etc/decnet/fifo").c_str(), 0600), 0);
  EXPECT_NE(Judge("/etc/decnet/fifo").find("regular"), std::string::npos);
  ASSERT_EQ(link(tree_.Path("/etc/decnet/a.env").c_str(), tree_.Path("/etc/decnet/h").c_str()), 0);
  EXPECT_NE(Judge("/etc/decnet/h").find("hard link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesRelativeAndDotDotPaths) {
  EXPECT_NE(Judge("etc/decnet/a.env"), "");
  EXPECT_NE(Judge("/etc/decnet/../decnet/a.env"), "");
  EXPECT_NE(Judge("/etc//decnet/a.env"), "");
}

TEST_F(ARootOnlyPathCheck, RefusesARootItselfWritableByOthers) {
  chmod(tree_.root().c_str(), 0777);
  EXPECT_NE(Judge("/etc/decnet/a.env"), "");
}

TEST_F(ARootOnlyPathCheck, WorksWithoutCapabilitiesBecauseItOnlyStatsOPathFds) {
  // Mode 0 directories cannot be listed or searched by a capless process, but O_PATH walks
  // need search permission only on the directories, which root keeps through ownership here.
  tree_.Dir("/etc/decnet", 0700);
  EXPECT_EQ(Judge("/etc/decnet/a.env"), "");
}

}  // namespace
}  // namespace decnet::helper
