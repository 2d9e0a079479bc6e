// The unit policy over the fixture corpus, over hostile content built in code, and the
// root-only path check over real directory trees.
#include "policy/unit_policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include <array>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "policy/rules.h"
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
  return [](const OpenedFile&) { return std::optional<PathRefusal>(); };
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
  EXPECT_GE(fixtures.size(), 150u);
  EXPECT_GE(rules.size(), 45u);
}

TEST_F(AUnitPolicyOverFixtures, NamesOnlyRulesOfTheRuleTable) {
  for (bool refused : {true, false}) {
    for (const auto& f : LoadUnitFixtures(refused)) {
      SCOPED_TRACE(f.file);
      for (const auto& r :
           Check(policy_, f.unit_name, f.content, RootOnlyPathCheck(tree_.root()))) {
        EXPECT_NE(FindUnitPolicyRule(r.rule), nullptr) << r.rule;
      }
      if (refused) {
        EXPECT_NE(FindUnitPolicyRule(f.expected_rule), nullptr) << f.expected_rule;
      }
    }
  }
}

TEST_F(AUnitPolicyOverFixtures, HasARefusedFixtureForEveryContentRule) {
  std::set<std::string> named;
  for (const auto& f : LoadUnitFixtures(true)) named.insert(f.expected_rule);
  for (const PolicyRule& rule : UnitPolicyRules()) {
    // Name rules are checked on the unit's name, not its content (unit_name_policy_test).
    if (rule.id == "unit-name-allowlist" || rule.id == "unit-self") continue;
    EXPECT_EQ(named.count(std::string(rule.id)), 1u) << "no refused fixture for " << rule.id;
  }
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

TEST(AUnitPolicy, PassesRootOpenedPathsWithTheUnitsCredentialsToThePathCheck) {
  Policy policy = Policy::Defaults();
  policy.output_dirs = {"/var/log/decnet"};
  policy.allowances["decnet-x.service"].supplementary_groups = {"adm"};
  std::vector<OpenedFile> asked;
  PathChainCheck record = [&asked](const OpenedFile& f) {
    asked.push_back(f);
    return std::optional<PathRefusal>(PathRefusal{"unit-opened-file-access", "planted"});
  };
  auto refusals = Check(policy, "decnet-x.service",
                        "[Service]\nStandardOutput=append:/var/log/decnet/a.log\n"
                        "EnvironmentFile=-/etc/decnet/a.env\nUser=decnet\nGroup=decnet\n"
                        "SupplementaryGroups=adm\nNoNewPrivileges=yes\nExecStart=/opt/decnet/x\n",
                        record);
  ASSERT_EQ(asked.size(), 2u);
  EXPECT_EQ(asked[0].path, "/var/log/decnet/a.log");
  EXPECT_EQ(asked[0].access, OpenFor::kWrite);
  EXPECT_EQ(asked[1].path, "/etc/decnet/a.env");
  EXPECT_EQ(asked[1].access, OpenFor::kRead);
  // The credentials in force at the end, though User= comes after the lines that open files.
  EXPECT_EQ(asked[0].user, "decnet");
  EXPECT_EQ(asked[0].group, "decnet");
  EXPECT_EQ(asked[0].supplementary_groups, std::vector<std::string>{"adm"});
  EXPECT_EQ(refusals.size(), 2u) << Show(refusals);
  EXPECT_TRUE(HasRule(refusals, "unit-opened-file-access")) << Show(refusals);
}

TEST(AUnitPolicy, NeverAsksThePathCheckAboutProtectedPaths) {
  Policy policy = Policy::Defaults();
  int asked = 0;
  PathChainCheck count = [&asked](const OpenedFile&) {
    ++asked;
    return std::optional<PathRefusal>();
  };
  policy.environment_dirs = {"/"};
  for (const char* path : {"/etc/decnet/updater/updater.key", "/var/lib/decnet-update-helper/x",
                           "/opt/decnet-updater/updater/current/env", "/etc/decnet-updater/h.json",
                           "/var/lib/decnet-updater/state.json"}) {
    SCOPED_TRACE(path);
    auto refusals = Check(policy, "decnet-x.service",
                          std::string(kGood) + "EnvironmentFile=" + path + "\n", count);
    EXPECT_TRUE(HasRule(refusals, "unit-opened-file-protected")) << Show(refusals);
  }
  EXPECT_EQ(asked, 0);
  policy.state_dir = "/srv/helper";
  auto refusals = Check(policy, "decnet-x.service",
                        std::string(kGood) + "EnvironmentFile=/srv/helper/a\n", count);
  EXPECT_TRUE(HasRule(refusals, "unit-opened-file-protected")) << Show(refusals);
}

// --- rows built in code, by class --------------------------------------------------------

struct Row {
  std::string lines;  // appended to kGood (a [Service] section); "[Unit]" lines start one
  std::string rule;   // "" when accepted
};

void ExpectRows(const Policy& policy, const std::vector<Row>& rows) {
  for (const Row& row : rows) {
    SCOPED_TRACE(row.lines);
    auto refusals =
        Check(policy, "decnet-x.service", std::string(kGood) + row.lines, NoPathTrouble());
    if (row.rule.empty()) {
      EXPECT_TRUE(refusals.empty()) << Show(refusals);
    } else {
      EXPECT_TRUE(HasRule(refusals, row.rule)) << Show(refusals);
    }
  }
}

TEST(AUnitPolicy, KeepsDirectoryNamesToOneComponentOutsideTheUpdatersOwn) {
  ExpectRows(Policy::Defaults(),
             {{"StateDirectory=decnet-x\n", ""},
              {"StateDirectory=decnet\n", ""},
              {"StateDirectory=decnet-x decnet-x.old decnet-y.z\n", ""},
              {"StateDirectory=\n", ""},
              {"RuntimeDirectory=decnet-update\n", ""},
              {"StateDirectory=decnet-x/y\n", "unit-directory-name"},
              {"StateDirectory=decnet/x\n", "unit-directory-name"},
              {"StateDirectory=decnet-x/\n", "unit-directory-name"},
              {"StateDirectory=/var/lib/decnet-x\n", "unit-directory-name"},
              {"StateDirectory=decnet-x:decnet-y\n", "unit-directory-name"},
              {"StateDirectory=decnet-x:\n", "unit-directory-name"},
              {"LogsDirectory='decnet-x'\n", "unit-directory-name"},
              {"LogsDirectory=decnet-x\\x2f..\n", "unit-directory-name"},
              {"CacheDirectory=decnetx\n", "unit-directory-name"},
              {"CacheDirectory=..\n", "unit-directory-name"},
              {"CacheDirectory=decnet-ok decnet-Up\n", "unit-directory-name"},
              {"StateDirectory=decnet-%n\n", "unit-specifier"},
              {"StateDirectory=decnet-updater\n", "unit-directory-reserved"},
              {"StateDirectory=decnet-updater2\n", "unit-directory-reserved"},
              {"StateDirectory=decnet-update-helper\n", "unit-directory-reserved"},
              {"RuntimeDirectory=decnet-update-helper.tmp\n", "unit-directory-reserved"},
              {"ConfigurationDirectory=decnet-updater\n", "unit-directory-reserved"},
              {"StateDirectoryMode=0750\n", ""},
              {"StateDirectoryMode=750\n", ""},
              {"StateDirectoryMode=0775\n", ""},
              {"StateDirectoryMode=0777\n", "unit-directory-mode"},
              {"StateDirectoryMode=0757\n", "unit-directory-mode"},
              {"StateDirectoryMode=2750\n", "unit-directory-mode"},
              {"StateDirectoryMode=1700\n", "unit-directory-mode"},
              {"StateDirectoryMode=07500\n", "unit-directory-mode"},
              {"StateDirectoryMode=75\n", "unit-directory-mode"},
              {"StateDirectoryMode=0o750\n", "unit-directory-mode"},
              {"StateDirectoryMode=0758\n", "unit-directory-mode"}});
}

TEST(AUnitPolicy, ReservesTheNamesOfAnotherUpdatersDirectories) {
  Policy policy = Policy::Defaults();
  policy.reserved_directory_names = {};
  policy.daemon_user = "decnet-upd";  // so decnet-updater is reserved again
  policy.daemon_group = "decnet-grp";
  policy.state_dir = "/var/lib/decnet-hstate";
  policy.self_unit = "decnet-self.service";
  ExpectRows(policy, {{"StateDirectory=decnet-other\n", ""},
                      {"StateDirectory=decnet-updater\n", "unit-directory-reserved"},
                      {"StateDirectory=decnet-upd\n", "unit-directory-reserved"},
                      {"StateDirectory=decnet-grp.x\n", "unit-directory-reserved"},
                      {"StateDirectory=decnet-hstate\n", "unit-directory-reserved"},
                      {"LogsDirectory=decnet-self\n", "unit-directory-reserved"}});
}

TEST(AUnitPolicy, LetsOnlyAllowListedUnitsBeActedOnAndSystemUnitsBeWaitedFor) {
  ExpectRows(Policy::Defaults(),
             {{"[Unit]\nAfter=network-online.target docker.service decnet-a.service\n", ""},
              {"[Unit]\nWants=network-online.target\nRequires=docker.service\n", ""},
              {"[Unit]\nBindsTo=docker.service\nPartOf=decnet.target\n", ""},
              {"[Unit]\nRequisite=multi-user.target\nReloadPropagatedFrom=docker.service\n", ""},
              {"[Unit]\nBefore=decnet-a.service decnet.target\n", ""},
              {"[Unit]\nConflicts=decnet-a.service\nUpholds=decnet-b.service\n", ""},
              {"[Unit]\nOnFailure=decnet-a.service\nOnSuccess=decnet-b.service\n", ""},
              {"[Install]\nWantedBy=multi-user.target\nRequiredBy=decnet.target\n", ""},
              {"[Unit]\nAfter=ssh.service\n", "unit-dependency"},
              {"[Unit]\nAfter=decnet-updater.service\n", "unit-dependency"},
              {"[Unit]\nWants=poweroff.target\n", "unit-dependency"},
              {"[Install]\nWantedBy=sysinit.target\n", "unit-dependency"},
              {"[Unit]\nBefore=network.target\n", "unit-dependency-other"},
              {"[Unit]\nBefore=network-online.target\n", "unit-dependency-other"},
              {"[Unit]\nBefore=docker.service\n", "unit-dependency-other"},
              {"[Unit]\nBefore=decnet-updater.service\n", "unit-dependency-other"},
              {"[Unit]\nConflicts=docker.service\n", "unit-dependency-other"},
              {"[Unit]\nUpholds=multi-user.target\n", "unit-dependency-other"},
              {"[Unit]\nPropagatesReloadTo=docker.service\n", "unit-dependency-other"},
              {"[Unit]\nJoinsNamespaceOf=docker.service\n", "unit-dependency-other"},
              {"[Install]\nRequiredBy=multi-user.target\n", "unit-dependency-other"},
              {"[Install]\nAlso=docker.service\n", "unit-dependency-other"},
              {"[Unit]\nOnFailure=decnet.target\n", "unit-dependency-trigger"},
              {"[Unit]\nOnFailure=docker.service\n", "unit-dependency-trigger"},
              {"[Unit]\nOnSuccess=multi-user.target\n", "unit-dependency-trigger"},
              {"[Unit]\nOnFailure=decnet-a.service reboot.target\n", "unit-dependency-trigger"}});
}

TEST(AUnitPolicy, KeepsEveryUnitStoppableAndBounded) {
  ExpectRows(Policy::Defaults(),
             {{"KillMode=control-group\nKillMode=mixed\nKillMode=\n", ""},
              {"SendSIGKILL=yes\nFinalKillSignal=SIGKILL\nFinalKillSignal=9\n", ""},
              {"TimeoutStopSec=60\nTimeoutStartSec=1min\nTimeoutAbortSec=59s 999ms\n", ""},
              {"TimeoutSec=30s\nTimeoutStopSec=1.5s\nTimeoutStopSec=\n", ""},
              {"[Unit]\nStartLimitIntervalSec=10\nStartLimitBurst=10\n", ""},
              {"[Unit]\nRefuseManualStop=no\n", ""},
              {"Restart=always\n[Unit]\nStartLimitIntervalSec=5min\n", ""},
              {"LimitNOFILE=524288\nLimitNPROC=4096\nLimitCORE=1G\nTasksMax=4096\n", ""},
              {"MemoryMax=16G\nMemoryHigh=512M\nLimitNOFILE=1024:524288\n", ""},
              {"KillMode=none\n", "unit-kill-mode"},
              {"KillMode=process\n", "unit-kill-mode"},
              {"KillMode=Mixed\n", "unit-kill-mode"},
              {"SendSIGKILL=no\n", "unit-kill-signal"},
              {"SendSIGKILL=0\n", "unit-kill-signal"},
              {"SendSIGKILL=maybe\n", "unit-kill-signal"},
              {"FinalKillSignal=SIGTERM\n", "unit-kill-signal"},
              {"FinalKillSignal=RTMIN+1\n", "unit-kill-signal"},
              {"[Unit]\nRefuseManualStop=true\n", "unit-manual-stop"},
              {"[Unit]\nRefuseManualStop=perhaps\n", "unit-manual-stop"},
              {"TimeoutStopSec=infinity\n", "unit-timeout"},
              {"TimeoutStopSec= infinity \n", "unit-timeout"},
              {"TimeoutStopSec=0\n", "unit-timeout"},
              {"TimeoutStopSec=0s 0ms\n", "unit-timeout"},
              {"TimeoutStopSec=61\n", "unit-timeout"},
              {"TimeoutStopSec=1min 1s\n", "unit-timeout"},
              {"TimeoutStopSec=1h\n", "unit-timeout"},
              {"TimeoutStopSec=1M\n", "unit-timeout"},
              {"TimeoutStopSec=+30\n", "unit-timeout"},
              {"TimeoutStopSec=30x\n", "unit-timeout"},
              {"TimeoutStopSec=030\n", "unit-timeout"},
              {"TimeoutStopSec=99999999999999999999\n", "unit-timeout"},
              {"TimeoutAbortSec=infinity\n", "unit-timeout"},
              {"TimeoutStartSec=infinity\n", "unit-timeout"},
              {"TimeoutSec=infinity\n", "unit-timeout"},
              {"TimeoutSec=90\n", "unit-timeout"},
              {"[Unit]\nStartLimitIntervalSec=0\n", "unit-start-limit"},
              {"[Unit]\nStartLimitIntervalSec=infinity\n", "unit-start-limit"},
              {"[Unit]\nStartLimitIntervalSec=9s\n", "unit-start-limit"},
              {"[Unit]\nStartLimitIntervalSec=soon\n", "unit-start-limit"},
              {"[Unit]\nStartLimitBurst=0\n", "unit-start-limit"},
              {"[Unit]\nStartLimitBurst=11\n", "unit-start-limit"},
              {"[Unit]\nStartLimitBurst=0x5\n", "unit-start-limit"},
              {"[Unit]\nStartLimitBurst=infinity\n", "unit-start-limit"},
              {"LimitNOFILE=infinity\n", "unit-resource-limit"},
              {"LimitNOFILE=524289\n", "unit-resource-limit"},
              {"LimitNOFILE=1024:infinity\n", "unit-resource-limit"},
              {"LimitNOFILE=2048:1024\n", "unit-resource-limit"},
              {"LimitNOFILE=1:2:3\n", "unit-resource-limit"},
              {"LimitNOFILE=01024\n", "unit-resource-limit"},
              {"LimitNPROC=infinity\n", "unit-resource-limit"},
              {"LimitNPROC=4097\n", "unit-resource-limit"},
              {"LimitNPROC=1K\n", "unit-resource-limit"},
              {"LimitCORE=infinity\n", "unit-resource-limit"},
              {"LimitCORE=2G\n", "unit-resource-limit"},
              {"TasksMax=infinity\n", "unit-resource-limit"},
              {"TasksMax=50%\n", "unit-resource-limit"},
              {"TasksMax=0\n", "unit-resource-limit"},
              {"TasksMax=4097\n", "unit-resource-limit"},
              {"MemoryMax=infinity\n", "unit-resource-limit"},
              {"MemoryMax=17G\n", "unit-resource-limit"},
              {"MemoryMax=80%\n", "unit-resource-limit"},
              {"MemoryHigh=1G 1G\n", "unit-resource-limit"},
              {"LimitMEMLOCK=64K\n", "unit-directive-unknown"},
              {"LimitRTPRIO=99\n", "unit-directive-unknown"},
              {"LimitNICE=-20\n", "unit-directive-unknown"},
              {"LimitSTACK=infinity\n", "unit-directive-unknown"},
              {"LimitFSIZE=infinity\n", "unit-directive-unknown"}});
}

TEST(AUnitPolicy, AppliesTheCapsAnOperatorTightens) {
  Policy policy = Policy::Defaults();
  policy.max_stop_timeout_sec = 10;
  policy.max_start_timeout_sec = 20;
  policy.min_start_limit_interval_sec = 60;
  policy.max_start_limit_burst = 3;
  policy.max_limit_nofile = 1024;
  policy.max_limit_nproc = 64;
  policy.max_limit_core_bytes = 0;
  policy.max_tasks = 32;
  policy.max_memory_bytes = 256LL << 20;
  ExpectRows(policy, {{"TimeoutStopSec=10\nTimeoutStartSec=20\nTimeoutSec=10\n", ""},
                      {"TimeoutStopSec=11\n", "unit-timeout"},
                      {"TimeoutStartSec=21\n", "unit-timeout"},
                      {"TimeoutSec=15\n", "unit-timeout"},
                      {"[Unit]\nStartLimitIntervalSec=59\n", "unit-start-limit"},
                      {"[Unit]\nStartLimitBurst=4\n", "unit-start-limit"},
                      {"LimitNOFILE=1025\n", "unit-resource-limit"},
                      {"LimitNPROC=65\n", "unit-resource-limit"},
                      {"LimitCORE=0\n", ""},
                      {"LimitCORE=1\n", "unit-resource-limit"},
                      {"TasksMax=33\n", "unit-resource-limit"},
                      {"MemoryMax=256M\n", ""},
                      {"MemoryMax=257M\n", "unit-resource-limit"}});
}

TEST(AUnitPolicy, KeepsConditionsAndSyslogToTheUnitsOwnGround) {
  ExpectRows(Policy::Defaults(),
             {{"[Unit]\nConditionPathExists=/etc/decnet/agent.env\n", ""},
              {"[Unit]\nConditionPathExists=!/etc/decnet/off\n", ""},
              {"[Unit]\nConditionPathExists=|! /etc/decnet/off\n", ""},
              {"[Unit]\nConditionPathIsDirectory=/etc/decnet\n", ""},
              {"SyslogIdentifier=decnet-x\nSyslogIdentifier=decnet-agent-web\n", ""},
              {"SyslogFacility=daemon\nSyslogFacility=local7\nSyslogFacility=user\n", ""},
              {"[Unit]\nConditionPathExists=/etc/shadow\n", "unit-condition-path"},
              {"[Unit]\nConditionPathExists=!/root/.ssh/id_rsa\n", "unit-condition-path"},
              {"[Unit]\nConditionPathExists=/etc/decnetx/a\n", "unit-condition-path"},
              {"[Unit]\nConditionPathExists=/etc/decnet/../shadow\n", "unit-condition-path"},
              {"[Unit]\nConditionFileNotEmpty=/opt/decnet/current/x\n", "unit-condition-path"},
              {"[Unit]\nAssertPathExists=/var/lib/decnet-update-helper\n", "unit-condition-path"},
              {"[Unit]\nAssertPathExists=%h/x\n", "unit-specifier"},
              {"[Unit]\nConditionPathExists=||/etc/decnet/x\n", "unit-condition-path"},
              {"SyslogIdentifier=sshd\n", "unit-syslog-identifier"},
              {"SyslogIdentifier=decnet-updater\n", "unit-syslog-identifier"},
              {"SyslogIdentifier=decnet-update-helper\n", "unit-syslog-identifier"},
              {"SyslogIdentifier=decnet x\n", "unit-syslog-identifier"},
              {"SyslogIdentifier=decnet-x: fake\n", "unit-syslog-identifier"},
              {"SyslogFacility=auth\n", "unit-syslog-facility"},
              {"SyslogFacility=authpriv\n", "unit-syslog-facility"},
              {"SyslogFacility=kern\n", "unit-syslog-facility"},
              {"SyslogFacility=security\n", "unit-syslog-facility"},
              {"SyslogFacility=4\n", "unit-syslog-facility"},
              {"SyslogFacility=Daemon\n", "unit-syslog-facility"}});
}

TEST(UnitPolicyRules, AreSortedUniqueAndDescribed) {
  const auto& rules = UnitPolicyRules();
  ASSERT_GE(rules.size(), 45u);
  for (size_t i = 0; i < rules.size(); ++i) {
    SCOPED_TRACE(std::string(rules[i].id));
    EXPECT_TRUE(rules[i].id.starts_with("unit-"));
    EXPECT_FALSE(rules[i].defends.empty());
    EXPECT_FALSE(rules[i].summary.empty());
    if (i > 0) {
      EXPECT_LT(rules[i - 1].id, rules[i].id);
    }
    EXPECT_EQ(FindUnitPolicyRule(rules[i].id), &rules[i]);
  }
  EXPECT_EQ(FindUnitPolicyRule("unit-nothing"), nullptr);
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

// A unit root with the accounts decnet (kOtherUid, also in group adm) and decnet-updater, and
// a root-owned /etc/decnet/a.env everyone may read.
class ARootOnlyPathCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    chmod(tree_.root().c_str(), 0755);
    tree_.Dir("/etc");
    Accounts();
    tree_.Dir("/etc/decnet");
    tree_.File("/etc/decnet/a.env");
  }
  // (Re)writes /etc/passwd and /etc/group as root's 0644 files.
  void Accounts() {
    for (const char* f : {"/etc/passwd", "/etc/group", "/etc/group.real"}) {
      fs::remove(tree_.Path(f));
    }
    Write("/etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "decnet:x:1000:1000::/var/lib/decnet:/usr/sbin/nologin\n"
          "decnet-updater:x:1001:1001::/:/usr/sbin/nologin\n");
    Write("/etc/group", "root:x:0:\nadm:x:4:decnet,other\ndecnet:x:1000:\nkeys:x:1002:\n");
  }
  void Write(const std::string& rel, const std::string& text, mode_t mode = 0644) {
    std::ofstream(tree_.Path(rel), std::ios::trunc) << text;
    chmod(tree_.Path(rel).c_str(), mode);
  }
  void Group(const std::string& rel, gid_t gid) {
    ASSERT_EQ(lchown(tree_.Path(rel).c_str(), static_cast<uid_t>(-1), gid), 0);
  }
  // Sets a POSIX access ACL: entries (tag, perm, id) in the kernel's order.
  bool SetAcl(const std::string& rel, const std::vector<std::array<uint32_t, 3>>& entries) {
    std::string blob("\x02\x00\x00\x00", 4);
    for (const auto& [tag, perm, id] : entries) {
      const uint32_t words[2] = {tag | (perm << 16), id};
      blob.append(reinterpret_cast<const char*>(words), sizeof words);
    }
    return setxattr(tree_.Path(rel).c_str(), "system.posix_acl_access", blob.data(), blob.size(),
                    0) == 0;
  }
  std::optional<PathRefusal> Judge(const std::string& path, OpenFor access = OpenFor::kRead,
                                   const std::string& user = "decnet",
                                   std::vector<std::string> supplementary = {}) {
    OpenedFile f{path, access, user, "decnet", std::move(supplementary)};
    return RootOnlyPathCheck(tree_.root())(f);
  }
  // The rule of the refusal ("" when accepted), with its message for the trace.
  std::string RuleOf(const std::optional<PathRefusal>& r) {
    if (r) std::cerr << "  refusal: " << r->rule << ": " << r->message << "\n";
    return r ? r->rule : "";
  }
  static constexpr uint32_t kUserObj = 1, kUser = 2, kGroupObj = 4, kGroupTag = 8, kMask = 0x10,
                            kOther = 0x20, kNone = 0xFFFFFFFF;
  TempTree tree_;
};

TEST_F(ARootOnlyPathCheck, AcceptsARootOwnedChainToAFileTheUnitMayRead) {
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "");
}

TEST_F(ARootOnlyPathCheck, RefusesAMissingFinalFileThatRootWouldCreate) {
  const auto r = Judge("/etc/decnet/new.log", OpenFor::kWrite);
  EXPECT_EQ(RuleOf(r), "unit-opened-file-access");
  EXPECT_NE(r->message.find("does not exist"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAMissingDirectory) {
  EXPECT_EQ(RuleOf(Judge("/etc/nothere/a.env")), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, RefusesADirectoryOwnedByAnotherUser) {
  tree_.Dir("/var/log/decnet", 0755, kOtherUid);
  const auto r = Judge("/var/log/decnet/agent.log");
  EXPECT_EQ(RuleOf(r), "unit-root-opened-path");
  EXPECT_NE(r->message.find("not owned by root"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAGroupWritableDirectory) {
  tree_.Dir("/var/log/grp", 0775);
  EXPECT_EQ(RuleOf(Judge("/var/log/grp/a.log")), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, RefusesAnOtherWritableStickyDirectory) {
  tree_.Dir("/var/tmp", 01777);
  tree_.File("/var/tmp/a.log", 0666);
  EXPECT_EQ(RuleOf(Judge("/var/tmp/a.log", OpenFor::kWrite)), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, RefusesAnUpperDirectoryOwnedByAnotherUser) {
  tree_.Dir("/srv", 0755, kOtherUid);
  tree_.Dir("/srv/logs");
  EXPECT_EQ(RuleOf(Judge("/srv/logs/a.log")), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, RefusesASymlinkedDirectory) {
  tree_.Link("/etc", "/etc/alias");
  const auto r = Judge("/etc/alias/decnet/a.env");
  EXPECT_EQ(RuleOf(r), "unit-root-opened-path");
  EXPECT_NE(r->message.find("symbolic link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesASymlinkedFinalFile) {
  tree_.Link("/etc/shadow", "/etc/decnet/out.log");
  const auto r = Judge("/etc/decnet/out.log", OpenFor::kWrite);
  EXPECT_EQ(RuleOf(r), "unit-root-opened-path");
  EXPECT_NE(r->message.find("symbolic link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesAFifoAndAHardLink) {
  ASSERT_EQ(mkfifo(tree_.Path("/etc/decnet/fifo").c_str(), 0644), 0);
  EXPECT_NE(Judge("/etc/decnet/fifo")->message.find("regular"), std::string::npos);
  ASSERT_EQ(link(tree_.Path("/etc/decnet/a.env").c_str(), tree_.Path("/etc/decnet/h").c_str()), 0);
  EXPECT_NE(Judge("/etc/decnet/h")->message.find("hard link"), std::string::npos);
}

TEST_F(ARootOnlyPathCheck, RefusesRelativeAndDotDotPaths) {
  EXPECT_EQ(RuleOf(Judge("etc/decnet/a.env")), "unit-root-opened-path");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/../decnet/a.env")), "unit-root-opened-path");
  EXPECT_EQ(RuleOf(Judge("/etc//decnet/a.env")), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, RefusesARootItselfWritableByOthers) {
  chmod(tree_.root().c_str(), 0777);
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "unit-root-opened-path");
}

TEST_F(ARootOnlyPathCheck, JudgesTheFileByWhatTheUnitsOwnUserCouldOpen) {
  tree_.File("/etc/decnet/root-only.env", 0600);
  tree_.File("/etc/decnet/own.env", 0600, kOtherUid);
  tree_.File("/etc/decnet/own-write-only.log", 0200, kOtherUid);
  tree_.File("/etc/decnet/others.env", 0644, 1003);
  tree_.File("/etc/decnet/daemon.key", 0640);
  Group("/etc/decnet/daemon.key", kDaemonUid);
  tree_.File("/etc/decnet/adm.log", 0620);
  Group("/etc/decnet/adm.log", 4);
  tree_.File("/etc/decnet/keys.env", 0640);
  Group("/etc/decnet/keys.env", 1002);
  tree_.File("/etc/decnet/world.log", 0666);
  const std::vector<std::tuple<std::string, OpenFor, std::vector<std::string>, std::string>> rows =
      {{"/etc/decnet/a.env", OpenFor::kRead, {}, ""},
       {"/etc/decnet/a.env", OpenFor::kWrite, {}, "unit-opened-file-access"},
       {"/etc/decnet/root-only.env", OpenFor::kRead, {}, "unit-opened-file-access"},
       {"/etc/decnet/own.env", OpenFor::kRead, {}, ""},
       {"/etc/decnet/own.env", OpenFor::kWrite, {}, ""},
       {"/etc/decnet/own-write-only.log", OpenFor::kWrite, {}, ""},
       {"/etc/decnet/own-write-only.log", OpenFor::kRead, {}, "unit-opened-file-access"},
       {"/etc/decnet/others.env", OpenFor::kRead, {}, "unit-opened-file-access"},
       {"/etc/decnet/daemon.key", OpenFor::kRead, {}, "unit-opened-file-access"},
       // decnet is a member of adm in /etc/group: systemd's initgroups gives it that group.
       {"/etc/decnet/adm.log", OpenFor::kWrite, {}, ""},
       {"/etc/decnet/adm.log", OpenFor::kRead, {}, "unit-opened-file-access"},
       {"/etc/decnet/keys.env", OpenFor::kRead, {}, "unit-opened-file-access"},
       {"/etc/decnet/keys.env", OpenFor::kRead, {"keys"}, ""},
       {"/etc/decnet/world.log", OpenFor::kWrite, {}, ""}};
  for (const auto& [path, access, groups, rule] : rows) {
    SCOPED_TRACE(path + (access == OpenFor::kRead ? " read" : " write"));
    EXPECT_EQ(RuleOf(Judge(path, access, "decnet", groups)), rule);
  }
}

TEST_F(ARootOnlyPathCheck, RefusesADirectoryTheUnitCannotSearch) {
  // Root can walk a 0700 directory; the unit's user could not, so systemd must not open
  // what lies inside it for the unit.
  tree_.Dir("/etc/decnet", 0700);
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "unit-opened-file-access");
  tree_.Dir("/etc/decnet", 0750);
  Group("/etc/decnet", 1000);
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "");
}

TEST_F(ARootOnlyPathCheck, EvaluatesPosixAcls) {
  tree_.File("/etc/decnet/granted.env", 0640);
  tree_.File("/etc/decnet/denied.env", 0644);
  tree_.File("/etc/decnet/masked.env", 0600);
  tree_.File("/etc/decnet/group-acl.log", 0600);
  if (!SetAcl("/etc/decnet/granted.env", {{kUserObj, 6, kNone},
                                          {kUser, 4, 1000},
                                          {kGroupObj, 4, kNone},
                                          {kMask, 4, kNone},
                                          {kOther, 0, kNone}})) {
    GTEST_SKIP() << "no POSIX ACL support on this filesystem";
  }
  // A named-user entry with no rights beats the "other" bits that would allow reading.
  ASSERT_TRUE(SetAcl("/etc/decnet/denied.env", {{kUserObj, 6, kNone},
                                                {kUser, 0, 1000},
                                                {kGroupObj, 4, kNone},
                                                {kMask, 4, kNone},
                                                {kOther, 4, kNone}}));
  // The mask limits a named-user entry.
  ASSERT_TRUE(SetAcl("/etc/decnet/masked.env", {{kUserObj, 6, kNone},
                                                {kUser, 4, 1000},
                                                {kGroupObj, 0, kNone},
                                                {kMask, 0, kNone},
                                                {kOther, 0, kNone}}));
  // A named-group entry for a group the user holds through /etc/group.
  ASSERT_TRUE(SetAcl("/etc/decnet/group-acl.log", {{kUserObj, 6, kNone},
                                                   {kGroupObj, 0, kNone},
                                                   {kGroupTag, 2, 4},
                                                   {kMask, 6, kNone},
                                                   {kOther, 0, kNone}}));
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/granted.env")), "");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/denied.env")), "unit-opened-file-access");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/masked.env")), "unit-opened-file-access");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/group-acl.log", OpenFor::kWrite)), "");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/group-acl.log", OpenFor::kRead)), "unit-opened-file-access");
  // A directory ACL can take away the search right the mode bits give.
  ASSERT_TRUE(SetAcl("/etc/decnet", {{kUserObj, 7, kNone},
                                     {kUser, 0, 1000},
                                     {kGroupObj, 5, kNone},
                                     {kMask, 5, kNone},
                                     {kOther, 5, kNone}}));
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "unit-opened-file-access");
}

TEST_F(ARootOnlyPathCheck, RefusesWhenTheUnitsCredentialsCannotBeEstablished) {
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env", OpenFor::kRead, "nobody-here")),
            "unit-opened-file-access");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env", OpenFor::kRead, "")), "unit-opened-file-access");
  EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env", OpenFor::kRead, "decnet", {"nosuchgroup"})),
            "unit-opened-file-access");
  // Account files the check cannot trust: writable by others, a symlink, not root's.
  for (auto spoil : std::vector<std::function<void()>>{
           [&] { chmod(tree_.Path("/etc/passwd").c_str(), 0666); },
           [&] {
             fs::rename(tree_.Path("/etc/group"), tree_.Path("/etc/group.real"));
             tree_.Link(tree_.Path("/etc/group.real"), "/etc/group");
           },
           [&] { ASSERT_EQ(chown(tree_.Path("/etc/passwd").c_str(), kOtherUid, 0), 0); },
           [&] { Write("/etc/passwd", "decnet:x:1000:1000::/:/bin/sh\n+::::::\n"); },
           [&] { Write("/etc/group", "decnet:x:abc:\n"); }}) {
    Accounts();
    ASSERT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "");
    spoil();
    EXPECT_EQ(RuleOf(Judge("/etc/decnet/a.env")), "unit-opened-file-access");
  }
}

}  // namespace
}  // namespace decnet::helper
