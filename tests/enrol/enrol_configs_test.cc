// The files enrolment writes besides the TLS material, as pure functions: the merged
// configuration (accepted by the real parsers), the unit drop-in and the polkit rule.
#include "enrol/enrol_configs.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "polkit/polkit_rule.h"

namespace decnet::enrol {
namespace {

using nlohmann::json;

EnrolOptions Options(const std::vector<std::string>& args) {
  auto o = ParseEnrolArgs(args);
  if (!o) ADD_FAILURE() << o.error().message;
  return o.value_or(EnrolOptions{});
}

TEST(EnrolmentConfigs, AreEmptyObjectsForTheDefaultLayout) {
  auto c = MergeConfigs(Options({}), "", "", {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(json::parse(c->helper_json), json::object());
  EXPECT_EQ(json::parse(c->daemon_json), json::object());
  EXPECT_EQ(helper::PolicyToJson(c->policy), helper::PolicyToJson(helper::Policy::Defaults()));
}

TEST(EnrolmentConfigs, SetOnlyTheKeysANonDefaultLayoutNeeds) {
  auto c = MergeConfigs(
      Options({"--install-dir", "/srv/decnet", "--updater-dir", "/srv/decnet-updater",
               "--state-dir", "/srv/state", "--user", "upd", "--group", "updg", "--units-user",
               "svc", "--units-group", "svcg", "--listen", "127.0.0.1:9443"}),
      "", "", {std::string(64, 'b')});
  ASSERT_TRUE(c) << c.error().message;
  const json d = json::parse(c->daemon_json);
  EXPECT_EQ(d,
            json::parse(R"({"install_dir":"/srv/decnet","updater_dir":"/srv/decnet-updater/updater",
    "state_dir":"/srv/state","listen_address":"127.0.0.1","port":9443,
    "master_pins":[")" + std::string(64, 'b') +
                        R"("]})"));
  EXPECT_EQ(c->policy.daemon_user, "upd");
  EXPECT_EQ(c->policy.daemon_group, "updg");
  EXPECT_EQ(c->policy.unit_users, std::set<std::string>{"svc"});
  EXPECT_EQ(c->policy.unit_groups, std::set<std::string>{"svcg"});
  EXPECT_EQ(c->policy.daemon_store, "/srv/decnet-updater/updater");
  EXPECT_EQ(c->policy.daemon_binary, "/srv/decnet-updater/updater/current/bin/decnet-updaterd");
  ASSERT_EQ(c->policy.links.size(), 1u);
  EXPECT_EQ(c->policy.links[0].target_prefix, "/srv/decnet/current");
  for (const char* p : {"/srv/decnet-updater", "/srv/state", "/etc/decnet/updater"})
    EXPECT_NE(std::find(c->policy.protected_paths.begin(), c->policy.protected_paths.end(), p),
              c->policy.protected_paths.end())
        << p << " must stay out of the units' reach";
}

TEST(EnrolmentConfigs, KeepWhatTheOperatorWroteAndTheOptionsDoNotTouch) {
  const std::string daemon = R"({
    // the operator's own comment and keys
    "keep_releases": 5, "port": 9000, "probe": {"url": "https://127.0.0.1:9999/health"}})";
  auto c =
      MergeConfigs(Options({"--install-dir", "/srv/decnet"}), R"({"max_units": 10})", daemon, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->daemon.keep_releases, 5);
  EXPECT_EQ(c->daemon.port, 9000);
  EXPECT_EQ(c->daemon.probe.url, "https://127.0.0.1:9999/health");
  EXPECT_EQ(c->daemon.install_dir, "/srv/decnet");
  EXPECT_EQ(c->policy.max_units, 10);
}

TEST(EnrolmentConfigs, SetAKeyBackToItsDefaultWhenTheFileHasIt) {
  auto c = MergeConfigs(Options({"--install-dir", "/opt/decnet"}), "",
                        R"({"install_dir": "/srv/old"})", {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(json::parse(c->daemon_json), json::parse(R"({"install_dir":"/opt/decnet"})"));
}

struct BadMerge {
  const char* what;
  std::vector<std::string> args;
  std::string helper, daemon;
  const char* rule;
};

void PrintTo(const BadMerge& row, std::ostream* os) { *os << row.what; }

class EnrolmentConfigsRefuse : public ::testing::TestWithParam<BadMerge> {};

TEST_P(EnrolmentConfigsRefuse, WithTheParsersOwnRule) {
  const BadMerge& b = GetParam();
  auto c = MergeConfigs(Options(b.args), b.helper, b.daemon, {});
  ASSERT_FALSE(c) << "accepted";
  EXPECT_EQ(c.error().rule, b.rule) << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, EnrolmentConfigsRefuse,
    ::testing::Values(
        BadMerge{"units user is the daemon user",
                 {"--units-user", "decnet-updater"},
                 "",
                 "",
                 "policy-value"},
        BadMerge{"units group is the daemon group", {"--group", "decnet"}, "", "", "policy-value"},
        BadMerge{
            "an unknown daemon key in place", {}, "", R"({"colour": 1})", "config-unknown-key"},
        BadMerge{
            "an unknown policy key in place", {}, R"({"colour": 1})", "", "policy-unknown-key"},
        BadMerge{"a daemon file that is a list", {}, "", "[]", "enrol-config-existing"},
        BadMerge{"a policy file that is not JSON", {}, "{", "", "enrol-config-existing"},
        BadMerge{"a daemon value of the wrong type", {}, "", R"({"port": "80"})", "config-type"},
        BadMerge{"a per-source cap over the total",
                 {},
                 "",
                 R"({"max_pending_connections": 4, "max_pending_per_source": 8})",
                 "config-pending-per-source"}),
    [](const auto& info) {
      std::string n;
      for (char ch : std::string(info.param.what)) n += std::isalnum(ch) ? ch : '_';
      return n;
    });

TEST(TheEnrolmentDropIn, IsNotNeededForTheDefaultLayoutAndLoopbackOnly) {
  auto c = MergeConfigs(Options({}), "", "", {});
  ASSERT_TRUE(c);
  EXPECT_TRUE(ExtraWritablePaths(*c).empty());
  EXPECT_EQ(RenderDropIn(ExtraWritablePaths(*c), {}), "");
}

TEST(TheEnrolmentDropIn, OpensEachMovedDirectoryAndEachMasterAddress) {
  auto c = MergeConfigs(Options({"--install-dir", "/srv/decnet", "--updater-dir",
                                 "/srv/decnet-updater", "--state-dir", "/opt/decnet-updater/st"}),
                        "", "", {});
  ASSERT_TRUE(c) << c.error().message;
  const auto extra = ExtraWritablePaths(*c);
  EXPECT_EQ(extra, (std::vector<std::string>{"/srv/decnet", "/srv/decnet-updater"}))
      << "a directory beneath one the shipped unit opens needs no line";
  const std::string text = RenderDropIn(extra, {"192.0.2.10", "2001:db8::/64"});
  EXPECT_NE(text.find("[Service]\n"), std::string::npos);
  EXPECT_NE(text.find("\nReadWritePaths=/srv/decnet\n"), std::string::npos);
  EXPECT_NE(text.find("\nReadWritePaths=/srv/decnet-updater\n"), std::string::npos);
  EXPECT_NE(text.find("\nIPAddressAllow=192.0.2.10\n"), std::string::npos);
  EXPECT_EQ(DropInAddresses(text), (std::vector<std::string>{"192.0.2.10", "2001:db8::/64"}));
}

TEST(TheEnrolmentsPolkitRule, IsLeftToThePackageForTheShippedGroupAndUsers) {
  auto c = MergeConfigs(Options({"--admin-group", "decnet-admin"}), "", "", {});
  ASSERT_TRUE(c);
  auto rule = RenderRule(Options({"--admin-group", "decnet-admin"}), *c);
  ASSERT_TRUE(rule) << rule.error().message;
  EXPECT_FALSE(rule->has_value());
}

TEST(TheEnrolmentsPolkitRule, IsRenderedForAnotherGroupOrAnotherUser) {
  auto other_group = Options({"--admin-group", "ops"});
  auto c = MergeConfigs(other_group, "", "", {});
  ASSERT_TRUE(c);
  auto rule = RenderRule(other_group, *c);
  ASSERT_TRUE(rule && rule->has_value());
  polkit::PolkitRuleParams params;
  params.admin_group = "ops";
  EXPECT_EQ(**rule, *polkit::RenderPolkitRule(params));

  auto other_user = Options({"--units-user", "svc"});
  auto c2 = MergeConfigs(other_user, "", "", {});
  ASSERT_TRUE(c2);
  auto rule2 = RenderRule(other_user, *c2);
  ASSERT_TRUE(rule2 && rule2->has_value()) << "the new units' user must be excluded by name";
  EXPECT_NE((*rule2)->find("svc"), std::string::npos);
}

TEST(TheEnrolmentsPolkitRule, KeepsTheGroupOfTheRuleInPlaceWhenNotToldAnother) {
  auto c = MergeConfigs(Options({"--units-user", "svc"}), "", "", {});
  ASSERT_TRUE(c);
  polkit::PolkitRuleParams params;
  params.admin_group = "ops";
  const std::string in_place = *polkit::RenderPolkitRule(params);
  EXPECT_EQ(AdminGroup(Options({}), in_place), "ops");
  EXPECT_EQ(AdminGroup(Options({"--admin-group", "adm"}), in_place), "adm") << "told wins";
  EXPECT_EQ(AdminGroup(Options({}), ""), "decnet-admin");
  auto rule = RenderRule(Options({"--units-user", "svc"}), *c, in_place);
  ASSERT_TRUE(rule && rule->has_value());
  EXPECT_EQ(RuleAdminGroup(**rule), "ops");
}

TEST(TheGroupOfARule, IsReadFromARenderingOnly) {
  polkit::PolkitRuleParams params;
  params.admin_group = "adm";
  EXPECT_EQ(RuleAdminGroup(*polkit::RenderPolkitRule(params)), "adm");
  EXPECT_EQ(RuleAdminGroup(*polkit::RenderPolkitRule(polkit::PolkitRuleParams{})), "decnet-admin");
  struct Row {
    const char* why;
    std::string text;
  };
  for (const Row& row : std::vector<Row>{
           {"empty", ""},
           {"an operator's own rule", "polkit.addRule(function () { return null; });\n"},
           {"no closing quote", "x\n    var admin_group = \"ops\n"},
           {"a quote inside", "x\n    var admin_group = \"o\"ps\";\n"},
           {"root", "x\n    var admin_group = \"root\";\n"},
           {"an empty name", "x\n    var admin_group = \"\";\n"},
           {"an upper-case name", "x\n    var admin_group = \"Ops\";\n"},
           {"another indentation", "x\n  var admin_group = \"ops\";\n"},
           {"another variable", "x\n    var admin_groups = \"ops\";\n"},
       }) {
    EXPECT_EQ(RuleAdminGroup(row.text), std::nullopt) << row.why;
  }
}

}  // namespace
}  // namespace decnet::enrol
