// The policy file: defaults, strict parsing, ownership of the file, canonical digest.
#include "policy/policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/unit_test_support.h"

namespace decnet::helper {
namespace {

using namespace testing_support;

TEST(PolicyDefaults, GrantDecnetsCapabilityUnitsAndItsLink) {
  const Policy p = Policy::Defaults();
  for (const char* unit : {"decnet-agent.service", "decnet-sniffer.service"}) {
    ASSERT_EQ(p.allowances.count(unit), 1u) << unit;
    EXPECT_EQ(p.allowances.at(unit).capabilities,
              (std::set<std::string>{"CAP_NET_ADMIN", "CAP_NET_RAW"}));
    EXPECT_TRUE(p.allowances.at(unit).supplementary_groups.empty());
    EXPECT_FALSE(p.allowances.at(unit).may_drop_no_new_privileges);
  }
  EXPECT_EQ(p.allowances.size(), 2u);
  ASSERT_EQ(p.links.size(), 1u);
  EXPECT_EQ(p.links[0].name, "decnet");
  EXPECT_EQ(p.links[0].target_prefix, "/opt/decnet/current");
  EXPECT_TRUE(p.output_dirs.empty());
  // The updater's own directories and keys are reserved and protected out of the box.
  EXPECT_EQ(p.reserved_directory_names.count("decnet-updater"), 1u);
  EXPECT_EQ(p.reserved_directory_names.count("decnet-update-helper"), 1u);
  for (const char* path : {"/etc/decnet-updater", "/etc/decnet/updater", "/var/lib/decnet-updater",
                           "/var/lib/decnet-update-helper", "/opt/decnet-updater"}) {
    EXPECT_NE(std::find(p.protected_paths.begin(), p.protected_paths.end(), path),
              p.protected_paths.end())
        << path;
  }
  // The stop cap lies well below the helper's own wait for a restart job.
  EXPECT_LT(p.max_stop_timeout_sec * 1000, p.restart_timeout_ms);
}

TEST(ParsePolicy, AcceptsAnEmptyObjectAsTheDefaults) {
  auto p = ParsePolicy("{}");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(PolicyToJson(*p), PolicyToJson(Policy::Defaults()));
}

TEST(ParsePolicy, ReadsEveryField) {
  auto p = ParsePolicy(R"({
    "unit_prefix": "worker-", "extra_units": ["worker.target"], "self_unit": "up.service",
    "adoptable_units": ["worker-a.service"], "unit_users": ["w"], "unit_groups": ["w"],
    "system_units": ["network.target"],
    "allowances": {"worker-a.service": {"capabilities": ["CAP_NET_RAW"],
                   "supplementary_groups": ["docker"], "may_drop_no_new_privileges": true}},
    "output_dirs": ["/var/log/w"], "environment_dirs": ["/etc/w"],
    "links": [{"name": "w", "target_prefix": "/opt/w/current"}],
    "daemon_user": "wu", "daemon_group": "wg", "daemon_binary": "/opt/w/bin/d",
    "daemon_args": ["--x"], "unit_dir": "/u", "link_dir": "/l", "state_dir": "/s",
    "unit_root": "/r", "restart_timeout_ms": 5, "hello_timeout_ms": 6,
    "reserved_directory_names": ["w-updater"], "protected_paths": ["/etc/w-keys"],
    "condition_dirs": ["/etc/w"], "max_start_timeout_sec": 20, "max_stop_timeout_sec": 10,
    "min_start_limit_interval_sec": 30, "max_start_limit_burst": 3, "max_limit_nofile": 1024,
    "max_limit_nproc": 64, "max_limit_core_bytes": 0, "max_tasks": 32,
    "max_memory_bytes": 1073741824})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->unit_prefix, "worker-");
  EXPECT_TRUE(p->allowances.at("worker-a.service").may_drop_no_new_privileges);
  EXPECT_EQ(p->links[0].target_prefix, "/opt/w/current");
  EXPECT_EQ(p->hello_timeout_ms, 6);
  EXPECT_EQ(p->reserved_directory_names, std::set<std::string>{"w-updater"});
  EXPECT_EQ(p->protected_paths, std::vector<std::string>{"/etc/w-keys"});
  EXPECT_EQ(p->condition_dirs, std::vector<std::string>{"/etc/w"});
  EXPECT_EQ(p->max_start_timeout_sec, 20);
  EXPECT_EQ(p->max_stop_timeout_sec, 10);
  EXPECT_EQ(p->min_start_limit_interval_sec, 30);
  EXPECT_EQ(p->max_start_limit_burst, 3);
  EXPECT_EQ(p->max_limit_nofile, 1024);
  EXPECT_EQ(p->max_limit_nproc, 64);
  EXPECT_EQ(p->max_limit_core_bytes, 0);
  EXPECT_EQ(p->max_tasks, 32);
  EXPECT_EQ(p->max_memory_bytes, 1LL << 30);
  // Round trip: the canonical JSON parses back to the same canonical JSON.
  auto again = ParsePolicy(PolicyToJson(*p));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(PolicyToJson(*again), PolicyToJson(*p));
  EXPECT_EQ(PolicyDigest(*again), PolicyDigest(*p));
}

struct BadRow {
  std::string json;
  std::string rule;
  std::string names;  // the message must name this
};

TEST(ParsePolicy, RefusesBadInputNamingTheKey) {
  const std::vector<BadRow> rows = {
      {"", "policy-json", ""},
      {"[]", "policy-json", ""},
      {"{", "policy-json", ""},
      {"{} {}", "policy-json", ""},
      {"{}\n\x01", "policy-json", "json-syntax"},
      {"\"{}\"", "policy-json", "json-not-object"},
      // Duplicate keys, as on the wire: refused at any depth, naming the strict reader's rule.
      {R"({"unit_users": ["decnet"], "unit_users": ["root"]})", "policy-json",
       "json-duplicate-key"},
      {R"({"unit_root": "/", "unit_root": "/"})", "policy-json", "\"unit_root\""},
      {R"({"allowances": {"decnet-a.service": {}, "decnet-a.service": {}}})", "policy-json",
       "json-duplicate-key"},
      {R"({"allowances": {"decnet-a.service": {"capabilities": [], "capabilities": ["CAP_SYS_ADMIN"]}}})",
       "policy-json", "json-duplicate-key"},
      {R"({"links": [{"name": "x", "name": "y", "target_prefix": "/opt"}]})", "policy-json",
       "json-duplicate-key"},
      // Deeper than any policy value needs.
      {R"({"allowances": {"decnet-a.service": {"capabilities": [["CAP_NET_RAW"]]}}})",
       "policy-json", "json-depth"},
      {R"({"unit_prefx": "decnet-"})", "policy-unknown-key", "unit_prefx"},
      {R"({"allowances": {"decnet-a.service": {"caps": []}}})", "policy-unknown-key", "caps"},
      {R"({"unit_prefix": 1})", "policy-type", "unit_prefix"},
      {R"({"unit_prefix": "decnet"})", "policy-value", "unit_prefix"},
      {R"({"unit_prefix": "Decnet-"})", "policy-value", "unit_prefix"},
      {R"({"unit_prefix": "-"})", "policy-value", "unit_prefix"},
      {R"({"unit_users": ["root"]})", "policy-value", "unit_users"},
      {R"({"unit_users": ["0"]})", "policy-value", "unit_users"},
      {R"({"unit_users": [""]})", "policy-value", "unit_users"},
      {R"({"unit_users": "decnet"})", "policy-type", "unit_users"},
      {R"({"unit_groups": ["root"]})", "policy-value", "unit_groups"},
      {R"({"unit_users": ["decnet-updater"]})", "policy-value", "unit_users"},
      {R"({"daemon_user": "decnet"})", "policy-value", "unit_users"},
      {R"({"daemon_user": "root"})", "policy-value", "daemon_user"},
      {R"({"daemon_group": "0"})", "policy-value", "daemon_group"},
      {R"({"allowances": {"decnet-a.service": {"capabilities": ["CAP_FOO"]}}})", "policy-value",
       "capabilities"},
      {R"({"allowances": {"decnet-a.service": {"capabilities": ["cap_net_raw"]}}})", "policy-value",
       "capabilities"},
      {R"({"allowances": {"decnet-a.service": {"supplementary_groups": ["root"]}}})",
       "policy-value", "supplementary_groups"},
      {R"({"allowances": {"decnet-a.service": {"may_drop_no_new_privileges": 1}}})", "policy-type",
       "may_drop"},
      {R"({"allowances": {"../x.service": {}}})", "policy-value", "allowances"},
      {R"({"allowances": []})", "policy-type", "allowances"},
      {R"({"extra_units": ["decnet@.service"]})", "policy-value", "extra_units"},
      {R"({"system_units": ["ssh"]})", "policy-value", "system_units"},
      {R"({"links": [{"name": "../x", "target_prefix": "/opt"}]})", "policy-value", "links"},
      {R"({"links": [{"name": "x", "target_prefix": "opt"}]})", "policy-value", "links"},
      {R"({"links": [{"name": "x", "target_prefix": "/opt", "extra": 1}]})", "policy-type",
       "links"},
      {R"({"unit_dir": "etc/systemd"})", "policy-value", "unit_dir"},
      {R"({"state_dir": "/var/../etc"})", "policy-value", "state_dir"},
      {R"({"output_dirs": ["relative"]})", "policy-value", "output_dirs"},
      {R"({"environment_dirs": ["/etc/"]})", "policy-value", "environment_dirs"},
      {R"({"restart_timeout_ms": 0})", "policy-value", "restart_timeout_ms"},
      {R"({"hello_timeout_ms": "1"})", "policy-type", "hello_timeout_ms"},
      {R"({"daemon_args": ["a\nb"]})", "policy-value", "daemon_args"},
      {R"({"reserved_directory_names": ["a/b"]})", "policy-value", "reserved_directory_names"},
      {R"({"reserved_directory_names": ["Decnet"]})", "policy-value", "reserved_directory_names"},
      {R"({"reserved_directory_names": [".."]})", "policy-value", "reserved_directory_names"},
      {R"({"reserved_directory_names": [""]})", "policy-value", "reserved_directory_names"},
      {R"({"protected_paths": ["etc"]})", "policy-value", "protected_paths"},
      {R"({"protected_paths": "/etc"})", "policy-type", "protected_paths"},
      {R"({"condition_dirs": ["/etc/../root"]})", "policy-value", "condition_dirs"},
      {R"({"max_stop_timeout_sec": 0})", "policy-value", "max_stop_timeout_sec"},
      {R"({"max_stop_timeout_sec": 3601})", "policy-value", "max_stop_timeout_sec"},
      {R"({"max_stop_timeout_sec": 1.5})", "policy-type", "max_stop_timeout_sec"},
      {R"({"max_stop_timeout_sec": "60"})", "policy-type", "max_stop_timeout_sec"},
      {R"({"max_start_timeout_sec": -1})", "policy-value", "max_start_timeout_sec"},
      {R"({"min_start_limit_interval_sec": 0})", "policy-value", "min_start_limit_interval_sec"},
      {R"({"max_start_limit_burst": 0})", "policy-value", "max_start_limit_burst"},
      {R"({"max_limit_nofile": 0})", "policy-value", "max_limit_nofile"},
      {R"({"max_limit_nproc": 99999999999})", "policy-value", "max_limit_nproc"},
      {R"({"max_limit_core_bytes": -1})", "policy-value", "max_limit_core_bytes"},
      {R"({"max_tasks": true})", "policy-type", "max_tasks"},
      {R"({"max_memory_bytes": 1})", "policy-value", "max_memory_bytes"},
  };
  for (const BadRow& row : rows) {
    SCOPED_TRACE(row.json);
    auto p = ParsePolicy(row.json);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, ErrorCode::kMalformed);
    EXPECT_EQ(p.error().rule, row.rule) << p.error().message;
    EXPECT_NE(p.error().message.find(row.names), std::string::npos) << p.error().message;
  }
}

TEST(PolicyDigest, IsStableAndChangesWithThePolicy) {
  const Policy a = Policy::Defaults();
  Policy b = Policy::Defaults();
  EXPECT_EQ(PolicyDigest(a), PolicyDigest(b));
  EXPECT_EQ(PolicyDigest(a).size(), 64u);
  b.unit_users.insert("other");
  EXPECT_NE(PolicyDigest(a), PolicyDigest(b));
}

TEST(PolicyToJson, HoldsEveryFieldInSortedOrder) {
  const std::string j = PolicyToJson(Policy::Defaults());
  for (const char* key : {"adoptable_units",
                          "allowances",
                          "daemon_args",
                          "daemon_binary",
                          "daemon_group",
                          "daemon_user",
                          "environment_dirs",
                          "extra_units",
                          "hello_timeout_ms",
                          "link_dir",
                          "links",
                          "output_dirs",
                          "restart_timeout_ms",
                          "self_unit",
                          "state_dir",
                          "system_units",
                          "unit_dir",
                          "unit_groups",
                          "unit_prefix",
                          "unit_root",
                          "unit_users",
                          "reserved_directory_names",
                          "protected_paths",
                          "condition_dirs",
                          "max_start_timeout_sec",
                          "max_stop_timeout_sec",
                          "min_start_limit_interval_sec",
                          "max_start_limit_burst",
                          "max_limit_nofile",
                          "max_limit_nproc",
                          "max_limit_core_bytes",
                          "max_tasks",
                          "max_memory_bytes"}) {
    EXPECT_NE(j.find(std::string("\"") + key + "\""), std::string::npos) << key;
  }
  EXPECT_LT(j.find("\"adoptable_units\""), j.find("\"unit_users\""));
}

class APolicyFile : public ::testing::Test {
 protected:
  std::string Write(const std::string& text, mode_t mode = 0644, uid_t uid = 0) {
    const std::string path = tree_.Path("/helper.json");
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    EXPECT_EQ(chown(path.c_str(), uid, 0), 0);
    return path;
  }
  TempTree tree_;
};

TEST_F(APolicyFile, MissingMeansDefaults) {
  auto p = LoadPolicyFile(tree_.Path("/none.json"));
  ASSERT_TRUE(p);
  EXPECT_EQ(PolicyDigest(*p), PolicyDigest(Policy::Defaults()));
}

TEST_F(APolicyFile, LoadsARootOwnedFile) {
  auto p = LoadPolicyFile(Write(R"({"unit_users": ["decnet", "w"]})"));
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->unit_users.count("w"), 1u);
}

TEST_F(APolicyFile, RefusesAFileNotOwnedByRoot) {
  auto p = LoadPolicyFile(Write("{}", 0644, kOtherUid));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kDenied);
  EXPECT_EQ(p.error().rule, "policy-file-owner");
}

TEST_F(APolicyFile, RefusesGroupOrOtherWritableFiles) {
  for (mode_t mode : {0664, 0646, 0666}) {
    auto p = LoadPolicyFile(Write("{}", mode));
    ASSERT_FALSE(p) << mode;
    EXPECT_EQ(p.error().rule, "policy-file-owner");
  }
}

TEST_F(APolicyFile, RefusesASymlinkAndADirectory) {
  const std::string real = Write("{}");
  tree_.Link(real, "/link.json");
  auto p = LoadPolicyFile(tree_.Path("/link.json"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().rule, "policy-file-owner");
  tree_.Dir("/dir.json");
  auto d = LoadPolicyFile(tree_.Path("/dir.json"));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().rule, "policy-file-owner");
}

TEST_F(APolicyFile, PassesParseErrorsThrough) {
  auto p = LoadPolicyFile(Write(R"({"bogus": 1})"));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().rule, "policy-unknown-key");
}

}  // namespace
}  // namespace decnet::helper
