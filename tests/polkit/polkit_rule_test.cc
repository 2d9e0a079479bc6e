// The polkit rule's renderer (polkit/polkit_rule.cc): the shipped file is its default output,
// every value that could inject JavaScript or widen the match is refused by its named rule,
// and the rendered unit pattern, read with ECMAScript semantics as polkitd reads it, matches
// exactly the helper policy's allow-listed service names.
#include "polkit/polkit_rule.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/unit_policy.h"
#include "proto/values.h"

namespace decnet::polkit {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string RenderOrDie(const PolkitRuleParams& params) {
  auto rendered = RenderPolkitRule(params);
  EXPECT_TRUE(rendered.has_value()) << rendered.error().rule << ": " << rendered.error().message;
  return rendered.value_or("");
}

// The regular-expression literal of `var allowed_units = /.../;` in a rendered rule.
std::string AllowedUnitsPattern(const std::string& rule) {
  const std::string open = "var allowed_units = /";
  const size_t begin = rule.find(open);
  if (begin == std::string::npos) return "";
  const size_t end = rule.find("/;\n", begin + open.size());
  if (end == std::string::npos) return "";
  return rule.substr(begin + open.size(), end - begin - open.size());
}

// Whether polkitd's `allowed_units.test(unit)` holds: JavaScript's RegExp without flags.
bool JsTest(const std::string& pattern, const std::string& unit) {
  return std::regex_search(unit, std::regex(pattern, std::regex::ECMAScript));
}

TEST(APolkitRule, RendersByDefaultExactlyTheCheckedInFile) {
  const std::filesystem::path shipped =
      std::filesystem::path(DECNET_SOURCE_DIR) / "polkit/50-decnet-updater.rules";
  const std::string expected = ReadFile(shipped);
  const std::string rendered = RenderOrDie(PolkitRuleParams{});
  ASSERT_FALSE(expected.empty()) << "cannot read " << shipped;
  if (rendered != expected) {
    const std::filesystem::path out =
        std::filesystem::path(DECNET_BINARY_DIR) / "50-decnet-updater.rules.rendered";
    std::ofstream(out, std::ios::binary) << rendered;
    ADD_FAILURE() << shipped << " differs from the renderer's default output; if the renderer is "
                  << "right, copy " << out << " over it";
  }
}

TEST(APolkitRule, NamesTheDefaultGroupPrefixSelfUnitAndUsersInItsScript) {
  const std::string rule = RenderOrDie(PolkitRuleParams{});
  EXPECT_NE(rule.find("    var admin_group = \"decnet-admin\";\n"), std::string::npos);
  EXPECT_NE(rule.find("    var self_unit = \"decnet-updater.service\";\n"), std::string::npos);
  EXPECT_NE(rule.find("    var never_users = [\"decnet-updater\", \"decnet\"];\n"),
            std::string::npos);
  EXPECT_EQ(AllowedUnitsPattern(rule), "^decnet-[a-z0-9][a-z0-9-]*\\.service$");
}

TEST(APolkitRule, AnswersOnlyManageUnitsForStartStopAndRestart) {
  const std::string rule = RenderOrDie(PolkitRuleParams{});
  EXPECT_NE(rule.find("if (action.id !== \"org.freedesktop.systemd1.manage-units\") return null;"),
            std::string::npos);
  EXPECT_NE(rule.find("if (verb !== \"start\" && verb !== \"stop\" && verb !== \"restart\") "
                      "return null;"),
            std::string::npos);
  // One YES, after every refusal; nothing else is answered.
  EXPECT_EQ(rule.find("polkit.Result.YES;"), rule.rfind("polkit.Result.YES;"));
  for (const char* other : {"Result.AUTH", "Result.NO", "manage-unit-files", "reload-daemon\""}) {
    EXPECT_EQ(rule.find(std::string("return ") + other), std::string::npos) << other;
  }
  const size_t yes = rule.find("return polkit.Result.YES;");
  for (const char* check : {"unit === self_unit", "never_users.indexOf(subject.user) >= 0",
                            "!subject.isInGroup(admin_group)", "!allowed_units.test(unit)"}) {
    const size_t at = rule.find(check);
    EXPECT_NE(at, std::string::npos) << check;
    EXPECT_LT(at, yes) << check << " must be checked before the answer";
  }
}

TEST(APolkitRule, LeavesNoPlaceholderUnfilled) {
  PolkitRuleParams params;
  params.admin_group = "ops";
  params.unit_prefix = "acme-svc-";
  params.self_unit = "acme-svc-updater.service";
  params.never_users = {"acme-updater", "acme", "_svc"};
  const std::string rule = RenderOrDie(params);
  EXPECT_EQ(rule.find('@'), std::string::npos);
  EXPECT_EQ(rule.find("decnet-admin"), std::string::npos);
  EXPECT_NE(rule.find("    var admin_group = \"ops\";\n"), std::string::npos);
  EXPECT_NE(rule.find("    var self_unit = \"acme-svc-updater.service\";\n"), std::string::npos);
  EXPECT_NE(rule.find("    var never_users = [\"acme-updater\", \"acme\", \"_svc\"];\n"),
            std::string::npos);
  EXPECT_EQ(AllowedUnitsPattern(rule), "^acme-svc-[a-z0-9][a-z0-9-]*\\.service$");
}

struct Refused {
  const char* what;
  std::function<void(PolkitRuleParams&)> change;
  const char* rule;
};

void SetGroup(PolkitRuleParams& p, std::string v) { p.admin_group = std::move(v); }

const std::vector<Refused>& RefusedValues() {
  static const std::vector<Refused> rows = {
      // The group: a POSIX-ish name, nothing that closes the string literal or the line.
      {"empty group", [](auto& p) { SetGroup(p, ""); }, "polkit-group-name"},
      {"upper-case group", [](auto& p) { SetGroup(p, "Decnet-admin"); }, "polkit-group-name"},
      {"group starting with a digit", [](auto& p) { SetGroup(p, "1admin"); }, "polkit-group-name"},
      {"group starting with a hyphen", [](auto& p) { SetGroup(p, "-admin"); }, "polkit-group-name"},
      {"group closing the string",
       [](auto& p) { SetGroup(p, "a\"; polkit.addRule(function(){return \"yes\"});//"); },
       "polkit-group-name"},
      {"group with a quote", [](auto& p) { SetGroup(p, "adm\"in"); }, "polkit-group-name"},
      {"group with an apostrophe", [](auto& p) { SetGroup(p, "adm'in"); }, "polkit-group-name"},
      {"group with a backslash", [](auto& p) { SetGroup(p, "admin\\"); }, "polkit-group-name"},
      {"group with a line break", [](auto& p) { SetGroup(p, "admin\nx"); }, "polkit-group-name"},
      {"group with a carriage return", [](auto& p) { SetGroup(p, "admin\r"); },
       "polkit-group-name"},
      {"group with a space", [](auto& p) { SetGroup(p, "decnet admin"); }, "polkit-group-name"},
      {"group with a NUL", [](auto& p) { SetGroup(p, std::string("adm\0in", 6)); },
       "polkit-group-name"},
      {"group with a slash", [](auto& p) { SetGroup(p, "admin/x"); }, "polkit-group-name"},
      {"group with a dot", [](auto& p) { SetGroup(p, "admin.x"); }, "polkit-group-name"},
      {"group with a star", [](auto& p) { SetGroup(p, "admin*"); }, "polkit-group-name"},
      {"group with a dollar", [](auto& p) { SetGroup(p, "admin$"); }, "polkit-group-name"},
      {"group with a U+2028", [](auto& p) { SetGroup(p, "admin\xe2\x80\xa8"); },
       "polkit-group-name"},
      {"group with a non-ASCII letter",
       [](auto& p) {
         SetGroup(p,
                  "\xc3\xa4"
                  "dmin");
       },
       "polkit-group-name"},
      {"group of 33 bytes", [](auto& p) { SetGroup(p, std::string(33, 'a')); },
       "polkit-group-name"},
      // The prefix: the helper policy's rule [a-z][a-z0-9-]*-, nothing a regex reads as more.
      {"empty prefix", [](auto& p) { p.unit_prefix = ""; }, "polkit-unit-prefix"},
      {"prefix of a hyphen alone", [](auto& p) { p.unit_prefix = "-"; }, "polkit-unit-prefix"},
      {"prefix without its hyphen", [](auto& p) { p.unit_prefix = "decnet"; },
       "polkit-unit-prefix"},
      {"upper-case prefix", [](auto& p) { p.unit_prefix = "Decnet-"; }, "polkit-unit-prefix"},
      {"prefix starting with a digit", [](auto& p) { p.unit_prefix = "1decnet-"; },
       "polkit-unit-prefix"},
      {"prefix starting with a hyphen", [](auto& p) { p.unit_prefix = "-decnet-"; },
       "polkit-unit-prefix"},
      {"prefix with a wildcard", [](auto& p) { p.unit_prefix = "decnet-.*-"; },
       "polkit-unit-prefix"},
      {"prefix of a wildcard", [](auto& p) { p.unit_prefix = ".*"; }, "polkit-unit-prefix"},
      {"prefix with an alternative", [](auto& p) { p.unit_prefix = "decnet|ssh-"; },
       "polkit-unit-prefix"},
      {"prefix with a bracket", [](auto& p) { p.unit_prefix = "decnet[a-z]-"; },
       "polkit-unit-prefix"},
      {"prefix with a group", [](auto& p) { p.unit_prefix = "(decnet)-"; }, "polkit-unit-prefix"},
      {"prefix with a dot", [](auto& p) { p.unit_prefix = "decnet.x-"; }, "polkit-unit-prefix"},
      {"prefix with a question mark", [](auto& p) { p.unit_prefix = "decnets?-"; },
       "polkit-unit-prefix"},
      {"prefix with a plus", [](auto& p) { p.unit_prefix = "decnet+-"; }, "polkit-unit-prefix"},
      {"prefix closing the regex", [](auto& p) { p.unit_prefix = "decnet/;x=/-"; },
       "polkit-unit-prefix"},
      {"prefix with a backslash", [](auto& p) { p.unit_prefix = "decnet\\-"; },
       "polkit-unit-prefix"},
      {"prefix with a quote", [](auto& p) { p.unit_prefix = "decnet\"-"; }, "polkit-unit-prefix"},
      {"prefix with a line break", [](auto& p) { p.unit_prefix = "decnet\n-"; },
       "polkit-unit-prefix"},
      {"prefix with a space", [](auto& p) { p.unit_prefix = "decnet -"; }, "polkit-unit-prefix"},
      {"prefix with an underscore", [](auto& p) { p.unit_prefix = "decnet_"; },
       "polkit-unit-prefix"},
      {"prefix with a caret", [](auto& p) { p.unit_prefix = "^decnet-"; }, "polkit-unit-prefix"},
      {"prefix with a dollar", [](auto& p) { p.unit_prefix = "decnet$-"; }, "polkit-unit-prefix"},
      {"prefix with invalid UTF-8", [](auto& p) { p.unit_prefix = "decnet\xff-"; },
       "polkit-unit-prefix"},
      // The updater's own unit: a unit name as the helper's policy takes one.
      {"empty self unit", [](auto& p) { p.self_unit = ""; }, "polkit-self-unit"},
      {"self unit without a suffix", [](auto& p) { p.self_unit = "decnet-updater"; },
       "polkit-self-unit"},
      {"self unit of another type", [](auto& p) { p.self_unit = "decnet-updater.socket"; },
       "polkit-self-unit"},
      {"self unit closing the string", [](auto& p) { p.self_unit = "a\";x=\"b.service"; },
       "polkit-self-unit"},
      {"self unit with a backslash", [](auto& p) { p.self_unit = "a\\x2d.service"; },
       "polkit-self-unit"},
      {"self unit with a slash", [](auto& p) { p.self_unit = "../decnet.service"; },
       "polkit-self-unit"},
      {"self unit that is a template", [](auto& p) { p.self_unit = "decnet-updater@.service"; },
       "polkit-self-unit"},
      {"self unit with a line break", [](auto& p) { p.self_unit = "decnet-updater.service\n"; },
       "polkit-self-unit"},
      {"self unit with a space", [](auto& p) { p.self_unit = "decnet updater.service"; },
       "polkit-self-unit"},
      // The users the rule never answers for.
      {"no never-users at all", [](auto& p) { p.never_users.clear(); }, "polkit-never-users"},
      {"65 never-users",
       [](auto& p) {
         p.never_users.clear();
         for (int i = 0; i < 65; ++i) p.never_users.push_back("u" + std::to_string(i));
       },
       "polkit-never-users"},
      {"an empty user",
       [](auto& p) {
         p.never_users = {"decnet-updater", ""};
       },
       "polkit-user-name"},
      {"an upper-case user",
       [](auto& p) {
         p.never_users = {"decnet-updater", "Decnet"};
       },
       "polkit-user-name"},
      {"a user closing the array",
       [](auto& p) { p.never_users = {"decnet\"]; never_users = [\"x"}; }, "polkit-user-name"},
      {"a user with a backslash", [](auto& p) { p.never_users = {"decnet\\"}; },
       "polkit-user-name"},
      {"a user with a line break", [](auto& p) { p.never_users = {"decnet\n"}; },
       "polkit-user-name"},
      {"a user with a space", [](auto& p) { p.never_users = {"decnet updater"}; },
       "polkit-user-name"},
      {"a user starting with a digit", [](auto& p) { p.never_users = {"0decnet"}; },
       "polkit-user-name"},
      {"a user of 33 bytes", [](auto& p) { p.never_users = {std::string(33, 'u')}; },
       "polkit-user-name"},
      {"a user with a dollar", [](auto& p) { p.never_users = {"machine$"}; }, "polkit-user-name"},
  };
  return rows;
}

TEST(APolkitRule, RefusesEveryValueThatCouldInjectScriptOrWidenTheMatch) {
  for (const Refused& row : RefusedValues()) {
    PolkitRuleParams params;
    row.change(params);
    const auto rendered = RenderPolkitRule(params);
    ASSERT_FALSE(rendered.has_value()) << row.what << " was rendered:\n" << *rendered;
    EXPECT_EQ(rendered.error().rule, row.rule) << row.what << ": " << rendered.error().message;
    EXPECT_EQ(rendered.error().code, ErrorCode::kMalformed) << row.what;
    EXPECT_FALSE(rendered.error().message.empty()) << row.what;
  }
}

TEST(APolkitRule, AcceptsTheValuesAnOperatorMayChoose) {
  const std::vector<PolkitRuleParams> accepted = {
      {"decnet-admin", "decnet-", "decnet-updater.service", {"decnet-updater", "decnet"}},
      {"wheel", "decnet-", "decnet-updater.service", {"decnet-updater"}},
      {"_ops", "d-", "d-updater.service", {"d"}},
      {"ops-team2", "acme-svc-", "acme-svc-updater.service", {"acme-updater", "acme"}},
      {std::string(32, 'g'), "a1-", "other.target", {std::string(32, 'u')}},
  };
  for (const PolkitRuleParams& params : accepted) {
    const auto rendered = RenderPolkitRule(params);
    EXPECT_TRUE(rendered.has_value())
        << params.admin_group << "/" << params.unit_prefix << ": " << rendered.error().message;
  }
}

struct UnitRow {
  const char* unit;
  bool matches;
};

// What the rendered pattern must say for the default prefix. Names the helper's policy allows
// match (the updater's own unit too: the script excludes it by a check of its own); others,
// however close, do not.
const std::vector<UnitRow>& DefaultPrefixUnits() {
  static const std::vector<UnitRow> rows = {
      {"decnet-agent.service", true},
      {"decnet-x.service", true},
      {"decnet-a-b-c.service", true},
      {"decnet-web-api-v2.service", true},
      {"decnet-0.service", true},
      {"decnet-a--b.service", true},
      {"decnet-a-.service", true},
      {"decnet-updater.service", true},
      {"ssh.service", false},
      {"decnet.service", false},
      {"decnet-.service", false},
      {"decnet--x.service", false},
      {"decnet-X.service", false},
      {"DECNET-x.service", false},
      {"decnet-x.SERVICE", false},
      {"decnet-x.timer", false},
      {"decnet-x.socket", false},
      {"decnet-x.target", false},
      {"decnet-x.path", false},
      {"decnet-x.service.d", false},
      {"decnet-x.serviceX", false},
      {"decnet-x.servic", false},
      {"decnet-abcxservice", false},
      {"decnet-x-service", false},
      {"xdecnet-x.service", false},
      {"ssh.service/decnet-x.service", false},
      {"decnet-x.service\n", false},
      {"decnet-x.service\nssh.service", false},
      {"ssh.service\ndecnet-x.service", false},
      {" decnet-x.service", false},
      {"decnet-x.service ", false},
      {"decnet-x@1.service", false},
      {"decnet-x@.service", false},
      {"decnet-x_y.service", false},
      {"decnet-x.y.service", false},
      {"decnet-x:y.service", false},
      {"decnet-\\x2d.service", false},
      {"decnet_x.service", false},
      {"", false},
  };
  return rows;
}

TEST(APolkitRule, MatchesExactlyTheAllowListedServiceNames) {
  const std::string pattern = AllowedUnitsPattern(RenderOrDie(PolkitRuleParams{}));
  ASSERT_FALSE(pattern.empty());
  for (const UnitRow& row : DefaultPrefixUnits()) {
    EXPECT_EQ(JsTest(pattern, row.unit), row.matches) << "'" << row.unit << "'";
  }
}

TEST(APolkitRule, AgreesWithTheHelperPolicyOnEveryParsableServiceName) {
  const std::string pattern = AllowedUnitsPattern(RenderOrDie(PolkitRuleParams{}));
  helper::Policy policy;
  policy.extra_units.clear();  // listed extras are the helper's, never the rule's
  int compared = 0;
  for (const UnitRow& row : DefaultPrefixUnits()) {
    const auto name = UnitName::Parse(row.unit);
    if (!name || !name->is_service()) continue;
    const bool helper_allows =
        helper::CheckUnitName(policy, *name, helper::UnitUse::kRestart).has_value();
    EXPECT_EQ(JsTest(pattern, row.unit), helper_allows) << row.unit;
    ++compared;
  }
  EXPECT_GE(compared, 15);
}

TEST(APolkitRule, MatchesTheUnitsOfAnotherPrefixOnly) {
  PolkitRuleParams params;
  params.unit_prefix = "acme-svc-";
  const std::string pattern = AllowedUnitsPattern(RenderOrDie(params));
  const std::vector<UnitRow> rows = {
      {"acme-svc-web.service", true},    {"acme-svc-a-b-c.service", true},
      {"decnet-x.service", false},       {"acme-svc-.service", false},
      {"acme-svcx-web.service", false},  {"acme-web.service", false},
      {"acme-svc-web.timer", false},     {"xacme-svc-web.service", false},
      {"acme-svc-web.service\n", false}, {"acme-svc-Web.service", false},
  };
  for (const UnitRow& row : rows) {
    EXPECT_EQ(JsTest(pattern, row.unit), row.matches) << "'" << row.unit << "'";
  }
}

}  // namespace
}  // namespace decnet::polkit
