// The configuration files the worker package ships (packaging/config/), read by the real
// parsers: each holds every key with its built-in default, so the file parses to exactly the
// defaults, and the comments that explain it are read as white space and nothing else: the
// readers still refuse duplicate keys, deep nesting and anything after the object, keep
// comment-like text inside strings, and the policy's digest is that of its effective policy.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "policy/policy.h"
#include "proto/json_strict.h"
#include "tests/support/daemon_config_json.h"

namespace decnet {
namespace {

using nlohmann::json;

const std::string kHelperFile = DECNET_SOURCE_DIR "/packaging/config/helper.json";
const std::string kDaemonFile = DECNET_SOURCE_DIR "/packaging/config/daemon.json";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::set<std::string> KeysOf(const json& object) {
  std::set<std::string> keys;
  for (const auto& [k, v] : object.items()) keys.insert(k);
  return keys;
}

// The shipped file's own keys (comments skipped by nlohmann, independently of our reader).
json ShippedKeys(const std::string& text) {
  return json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
}

TEST(TheShippedHelperPolicy, ParsesToExactlyTheBuiltInDefaults) {
  const std::string text = Slurp(kHelperFile);
  auto policy = helper::ParsePolicy(text);
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(helper::PolicyToJson(*policy), helper::PolicyToJson(helper::Policy::Defaults()));
  EXPECT_EQ(helper::PolicyDigest(*policy), helper::PolicyDigest(helper::Policy::Defaults()));
}

TEST(TheShippedHelperPolicy, ShowsEveryKeyOfThePolicy) {
  const json shipped = ShippedKeys(Slurp(kHelperFile));
  ASSERT_TRUE(shipped.is_object());
  EXPECT_EQ(KeysOf(shipped), KeysOf(json::parse(helper::PolicyToJson(helper::Policy::Defaults()))));
}

TEST(TheShippedHelperPolicy, IsExplainedByComments) {
  const std::string text = Slurp(kHelperFile);
  EXPECT_NE(text.find("// /etc/decnet-updater/helper.json"), std::string::npos);
  EXPECT_FALSE(strict_json::ParseObject(text).has_value()) << "no comment to skip";
}

TEST(TheShippedHelperPolicy, LoadsFromARootOwnedFileAsTheHelperReadsIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "the policy file must be owned by root";
  char dir[] = "/tmp/decnet-shipped-policy-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/helper.json";
  std::ofstream(path, std::ios::binary) << Slurp(kHelperFile);
  ::chmod(path.c_str(), 0644);
  auto policy = helper::LoadPolicyFile(path);
  ::unlink(path.c_str());
  ::rmdir(dir);
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(helper::PolicyDigest(*policy), helper::PolicyDigest(helper::Policy::Defaults()));
}

TEST(TheShippedDaemonConfiguration, ParsesToExactlyTheBuiltInDefaults) {
  auto config = daemon::ParseDaemonConfig(Slurp(kDaemonFile));
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(test::DaemonConfigFields(*config),
            test::DaemonConfigFields(daemon::DaemonConfig::Defaults()));
}

TEST(TheShippedDaemonConfiguration, ShowsEveryKeyOfTheConfiguration) {
  const json shipped = ShippedKeys(Slurp(kDaemonFile));
  ASSERT_TRUE(shipped.is_object());
  json fields = test::DaemonConfigFields(daemon::DaemonConfig::Defaults());
  fields.erase("trusted_keys_owner");  // not a configuration key
  EXPECT_EQ(KeysOf(shipped), KeysOf(fields));
  ASSERT_TRUE(shipped.contains("probe") && shipped["probe"].is_object());
  EXPECT_EQ(KeysOf(shipped["probe"]), KeysOf(fields["probe"]));
}

TEST(TheShippedDaemonConfiguration, LoadsFromAFileAsTheDaemonReadsIt) {
  auto config = daemon::LoadDaemonConfig(kDaemonFile);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(test::DaemonConfigFields(*config),
            test::DaemonConfigFields(daemon::DaemonConfig::Defaults()));
}

constexpr char kCommentedEmpty[] =
    "// a line comment before the object\n"
    "/* a block comment,\n   over two lines */\n"
    "{ // inside\n  /* and here */ }\n"
    "// after the object\n";

TEST(ACommentedFile, ParsesToTheDefaultsForBothReaders) {
  auto policy = helper::ParsePolicy(kCommentedEmpty);
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(helper::PolicyToJson(*policy), helper::PolicyToJson(helper::Policy::Defaults()));
  auto config = daemon::ParseDaemonConfig(kCommentedEmpty);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(test::DaemonConfigFields(*config),
            test::DaemonConfigFields(daemon::DaemonConfig::Defaults()));
}

TEST(ACommentedPolicy, HasTheDigestOfItsEffectivePolicyAlone) {
  const std::string plain = R"({"max_units":12,"unit_users":["decnet","svc"]})";
  const std::string commented =
      "// why twelve\n{\"max_units\": /* fewer */ 12,\n \"unit_users\": [\"decnet\", // ours\n "
      "\"svc\"]}\n";
  auto a = helper::ParsePolicy(plain);
  auto b = helper::ParsePolicy(commented);
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(helper::PolicyDigest(*a), helper::PolicyDigest(*b));
  EXPECT_NE(helper::PolicyDigest(*a), helper::PolicyDigest(helper::Policy::Defaults()));
}

TEST(ACommentedFile, KeepsCommentLikeTextInsideStrings) {
  auto policy = helper::ParsePolicy(R"({"daemon_args": ["--note=/*kept*/", "--url=http://x"]})");
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(policy->daemon_args, (std::vector<std::string>{"--note=/*kept*/", "--url=http://x"}));
  auto config = daemon::ParseDaemonConfig(R"({"install_command": ["/bin/x", "--a=//b"]})");
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->install_command, (std::vector<std::string>{"/bin/x", "--a=//b"}));
}

struct Refused {
  const char* what;
  const char* text;
};

// What each reader still refuses with comments allowed: its rule names the JSON structure.
const Refused kRefusedWithComments[] = {
    {"duplicate keys a comment apart", "{\"port\": 1, // again\n \"port\": 2}"},
    {"duplicate keys a block comment apart", "{\"port\": 1, /* x */ \"port\": 2}"},
    {"an unterminated block comment", "{\"port\": 1} /* never closed"},
    {"a comment that hides the closing brace", "{\"port\": 1 // }"},
    {"a value after the object, past a comment", "{} // done\n {}"},
    {"a bare word after a comment", "{} /* x */ trailing"},
    {"a single slash", "{} / x"},
    {"a hash comment", "# not JSON\n{}"},
    {"nesting deeper than four", "{\"a\": /* 2 */ {\"b\": [ // 3\n [ /* 4 */ [1]]]}}"},
    {"comments and nothing else", "// only a comment\n"},
    {"an array at the top", "/* c */ []"},
};

TEST(ACommentedFile, IsStillRefusedForEverythingElseByThePolicyReader) {
  for (const Refused& r : kRefusedWithComments) {
    auto policy = helper::ParsePolicy(r.text);
    ASSERT_FALSE(policy) << r.what;
    EXPECT_EQ(policy.error().rule, "policy-json") << r.what << ": " << policy.error().message;
  }
}

TEST(ACommentedFile, IsStillRefusedForEverythingElseByTheDaemonReader) {
  for (const Refused& r : kRefusedWithComments) {
    auto config = daemon::ParseDaemonConfig(r.text);
    ASSERT_FALSE(config) << r.what;
    EXPECT_EQ(config.error().rule, "config-json") << r.what << ": " << config.error().message;
  }
}

TEST(ACommentedFile, KeepsUnknownKeysAndBadValuesRefused) {
  auto policy = helper::ParsePolicy("// c\n{\"no_such_key\": 1}");
  ASSERT_FALSE(policy);
  EXPECT_EQ(policy.error().rule, "policy-unknown-key");
  auto config = daemon::ParseDaemonConfig("{\"port\": /* too high */ 70000}");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().rule, "config-value");
}

TEST(TheWireReader, StillRefusesComments) {
  for (const char* text : {"{/* c */}", "{} // c", "// c\n{}"}) {
    auto parsed = strict_json::ParseObject(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().rule, "json-syntax") << text;
    EXPECT_TRUE(strict_json::ParseObject(text, 4, strict_json::Comments::kIgnored)) << text;
  }
}

}  // namespace
}  // namespace decnet
