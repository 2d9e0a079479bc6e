#include "daemon/config.h"

#include <gtest/gtest.h>

namespace decnet::daemon {
namespace {

TEST(ParseDaemonConfig, GivesDecnetsDefaultsForAnEmptyObject) {
  auto c = ParseDaemonConfig("{}");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->port, 8766);
  EXPECT_EQ(c->listen_address, "0.0.0.0");
  EXPECT_EQ(c->install_dir, "/opt/decnet");
  EXPECT_EQ(c->tls_ca, "/etc/decnet/updater/ca.crt");
  EXPECT_EQ(c->probe.url, "https://127.0.0.1:8765/health");
  EXPECT_EQ(c->probe.attempts, 10);
  EXPECT_EQ(c->probe.interval_ms, 1000);
  EXPECT_EQ(c->probe.timeout_ms, 3000);
  EXPECT_EQ(c->units.front(), "decnet-agent.service");
  EXPECT_EQ(c->units.size(), 5u);
  EXPECT_EQ(c->master_cn, "decnet-master");
  EXPECT_LT(c->update_deadline_ms, 180'000);
}

TEST(ParseDaemonConfig, ReadsEveryKindOfKey) {
  auto c = ParseDaemonConfig(R"({"port":9000,"install_dir":"/srv/decnet",
      "master_pins":["0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
      "units":["decnet-agent.service"],"links":[{"name":"decnet","target":"venv/bin/decnet"}],
      "install_command":["/usr/bin/python3","-m","venv","{release_dir}/venv"],
      "probe":{"attempts":3,"check_version":true,"url":"https://127.0.0.1:9999/health"}})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->port, 9000);
  EXPECT_EQ(c->install_dir, "/srv/decnet");
  EXPECT_EQ(c->master_pins.size(), 1u);
  EXPECT_EQ(c->probe.attempts, 3);
  EXPECT_TRUE(c->probe.check_version);
  EXPECT_EQ(c->install_command.size(), 4u);
}

struct BadRow {
  const char* json;
  const char* rule;
  const char* key;  // the error names this key
};

TEST(ParseDaemonConfig, RefusesBadInputNamingTheKey) {
  const BadRow rows[] = {
      {"[]", "config-json", ""},
      {"{", "config-json", ""},
      {R"({"port":1,"port":2})", "config-json", "port"},
      {R"({"prot":8766})", "config-unknown-key", "prot"},
      {R"({"port":"8766"})", "config-type", "port"},
      {R"({"port":0})", "config-value", "port"},
      {R"({"port":70000})", "config-value", "port"},
      {R"({"install_dir":"opt/decnet"})", "config-value", "install_dir"},
      {R"({"install_dir":"/opt/../etc"})", "config-value", "install_dir"},
      {R"({"master_pins":["ABC"]})", "config-value", "master_pins"},
      {R"({"master_pins":"x"})", "config-type", "master_pins"},
      {R"({"units":[]})", "config-value", "units"},
      {R"({"units":["ssh"]})", "config-value", "units"},
      {R"({"links":[{"name":"../x","target":"bin/x"}]})", "config-value", "links"},
      {R"({"links":[{"name":"x","target":"/etc/passwd"}]})", "config-value", "links"},
      {R"({"links":[{"name":"x","target":"../../etc"}]})", "config-value", "links"},
      {R"({"links":[{"name":"x"}]})", "config-type", "links"},
      {R"({"links":[7]})", "config-type", "links"},
      {R"({"probe":{"url":"http://127.0.0.1/health"}})", "config-value", "probe.url"},
      {R"({"probe":{"attempts":0}})", "config-value", "probe.attempts"},
      {R"({"probe":{"verbose":true}})", "config-unknown-key", "probe.verbose"},
      {R"({"keep_releases":1})", "config-value", "keep_releases"},
      {R"({"update_deadline_ms":10})", "config-value", "update_deadline_ms"},
      {R"({"install_command":[""]})", "config-value", "install_command"},
  };
  for (const auto& row : rows) {
    auto c = ParseDaemonConfig(row.json);
    ASSERT_FALSE(c) << row.json;
    EXPECT_EQ(c.error().rule, row.rule) << row.json << ": " << c.error().message;
    EXPECT_NE(c.error().message.find(row.key), std::string::npos) << c.error().message;
  }
}

TEST(LoadDaemonConfig, GivesTheDefaultsForAMissingFile) {
  auto c = LoadDaemonConfig("/nonexistent/decnet-updater.json");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->port, 8766);
}

}  // namespace
}  // namespace decnet::daemon
