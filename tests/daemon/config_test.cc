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

TEST(ParseDaemonConfig, IsAirGappedByDefaultAndTakesAPackageIndexUrl) {
  EXPECT_EQ(DaemonConfig::Defaults().package_index, "");
  EXPECT_EQ(DaemonConfig::Defaults().links.front().target, ".venv/bin/decnet");
  auto c = ParseDaemonConfig(R"({"package_index":"http://10.0.0.5:3141/root/simple"})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->package_index, "http://10.0.0.5:3141/root/simple");
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
      {R"({"package_index":"ftp://mirror/simple"})", "config-value", "package_index"},
      {R"({"package_index":"http://"})", "config-value", "package_index"},
      {R"({"package_index":"https:///simple"})", "config-value", "package_index"},
      {R"({"package_index":"http://mirror/{version}"})", "config-value", "package_index"},
      {R"({"package_index":"http://mirror /simple"})", "config-value", "package_index"},
      {R"({"package_index":7})", "config-type", "package_index"},
  };
  for (const auto& row : rows) {
    auto c = ParseDaemonConfig(row.json);
    ASSERT_FALSE(c) << row.json;
    EXPECT_EQ(c.error().rule, row.rule) << row.json << ": " << c.error().message;
    EXPECT_NE(c.error().message.find(row.key), std::string::npos) << c.error().message;
  }
}

// --- the pending-connection caps (connections before a completed TLS handshake) ----------

TEST(ParseDaemonConfig, GivesThePendingCapsTheirDefaults) {
  auto c = ParseDaemonConfig("{}");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->max_pending_connections, 256);
  EXPECT_EQ(c->max_pending_per_source, 16);
}

struct PendingRow {
  const char* what;
  const char* json;
  int total;       // max_pending_connections read
  int per_source;  // max_pending_per_source read
};

TEST(ParseDaemonConfig, AcceptsPendingCapsWithinRangeAndPerSourceAtMostTheTotal) {
  const PendingRow rows[] = {
      {"both at their minimum", R"({"max_pending_connections":1,"max_pending_per_source":1})", 1,
       1},
      {"both at their maximum",
       R"({"max_pending_connections":65536,"max_pending_per_source":65536})", 65536, 65536},
      {"per source equal to the total",
       R"({"max_pending_connections":40,"max_pending_per_source":40})", 40, 40},
      {"per source below the total, keys in either order",
       R"({"max_pending_per_source":3,"max_pending_connections":7})", 7, 3},
      {"a larger total with the default per source", R"({"max_pending_connections":4096})", 4096,
       16},
      {"a total equal to the default per source", R"({"max_pending_connections":16})", 16, 16},
      {"a per source equal to the default total", R"({"max_pending_per_source":256})", 256, 256},
      {"a smaller per source with the default total", R"({"max_pending_per_source":2})", 256, 2},
      // An unset per-source cap follows a total below its default (16) down.
      {"a total below the default per source", R"({"max_pending_connections":15})", 15, 15},
      {"a total of one", R"({"max_pending_connections":1})", 1, 1},
  };
  for (const auto& row : rows) {
    auto c = ParseDaemonConfig(row.json);
    ASSERT_TRUE(c) << row.what << ": " << c.error().message;
    EXPECT_EQ(c->max_pending_connections, row.total) << row.what;
    EXPECT_EQ(c->max_pending_per_source, row.per_source) << row.what;
  }
}

TEST(ParseDaemonConfig, RefusesPendingCapsThatAreNotPositiveIntegersInRange) {
  for (const char* key : {"max_pending_connections", "max_pending_per_source"}) {
    const BadRow rows[] = {
        {"0", "config-value", key},
        {"-1", "config-value", key},
        {"-65536", "config-value", key},
        {"65537", "config-value", key},
        {"9223372036854775807", "config-value", key},
        {"9223372036854775808", "config-value", key},  // past int64_t: read as unsigned
        {"18446744073709551615", "config-value", key},
        {"18446744073709551616", "config-type", key},  // past uint64_t: read as a double
        {"1.5", "config-type", key},
        {"16.0", "config-type", key},
        {"1e3", "config-type", key},
        {R"("16")", "config-type", key},
        {"true", "config-type", key},
        {"null", "config-type", key},
        {"[16]", "config-type", key},
        {R"({"n":16})", "config-type", key},
    };
    for (const auto& row : rows) {
      const std::string json = std::string(R"({")") + key + R"(":)" + row.json + "}";
      auto c = ParseDaemonConfig(json);
      ASSERT_FALSE(c) << json;
      EXPECT_EQ(c.error().rule, row.rule) << json << ": " << c.error().message;
      EXPECT_NE(c.error().message.find(key), std::string::npos) << c.error().message;
    }
  }
}

TEST(ParseDaemonConfig, RefusesAPerSourcePendingCapOverTheTotal) {
  const BadRow rows[] = {
      {R"({"max_pending_connections":16,"max_pending_per_source":17})", "config-pending-per-source",
       "max_pending_per_source"},
      {R"({"max_pending_per_source":65536,"max_pending_connections":1})",
       "config-pending-per-source", "max_pending_per_source"},
      // A per-source cap written alone, against the default total (256).
      {R"({"max_pending_per_source":257})", "config-pending-per-source", "max_pending_per_source"},
  };
  for (const auto& row : rows) {
    auto c = ParseDaemonConfig(row.json);
    ASSERT_FALSE(c) << row.json;
    EXPECT_EQ(c.error().code, ErrorCode::kMalformed) << row.json;
    EXPECT_EQ(c.error().rule, row.rule) << row.json << ": " << c.error().message;
    EXPECT_NE(c.error().message.find(row.key), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("max_pending_connections"), std::string::npos)
        << c.error().message;
  }
}

// --- release authenticity and the version floor -------------------------------------------

TEST(ParseDaemonConfig, LeavesSignaturesOptionalAndDowngradesOffByDefault) {
  auto c = ParseDaemonConfig("{}");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->require_signature);
  EXPECT_EQ(c->trusted_keys_dir, "/etc/decnet-updater/trusted-keys");
  EXPECT_EQ(c->signature_threshold, 1);
  EXPECT_FALSE(c->allow_downgrade);
  EXPECT_EQ(c->trusted_keys_owner, 0u) << "the keys must be root's unless a test says otherwise";
}

TEST(ParseDaemonConfig, ReadsTheAuthenticityKeys) {
  auto c = ParseDaemonConfig(R"({"require_signature":true,"trusted_keys_dir":"/srv/keys",
      "signature_threshold":16,"allow_downgrade":true})");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->require_signature);
  EXPECT_EQ(c->trusted_keys_dir, "/srv/keys");
  EXPECT_EQ(c->signature_threshold, 16);
  EXPECT_TRUE(c->allow_downgrade);
}

TEST(ParseDaemonConfig, RefusesBadAuthenticityKeysNamingTheKey) {
  const struct {
    const char* json;
    const char* rule;
    const char* key;
  } rows[] = {
      {R"({"require_signature":"true"})", "config-type", "require_signature"},
      {R"({"require_signature":1})", "config-type", "require_signature"},
      {R"({"require_signature":null})", "config-type", "require_signature"},
      {R"({"allow_downgrade":"yes"})", "config-type", "allow_downgrade"},
      {R"({"allow_downgrade":0})", "config-type", "allow_downgrade"},
      {R"({"trusted_keys_dir":"keys"})", "config-value", "trusted_keys_dir"},
      {R"({"trusted_keys_dir":""})", "config-value", "trusted_keys_dir"},
      {R"({"trusted_keys_dir":"/etc/../keys"})", "config-value", "trusted_keys_dir"},
      {R"({"trusted_keys_dir":["/keys"]})", "config-type", "trusted_keys_dir"},
      {R"({"signature_threshold":0})", "config-value", "signature_threshold"},
      {R"({"signature_threshold":-1})", "config-value", "signature_threshold"},
      {R"({"signature_threshold":17})", "config-value", "signature_threshold"},
      {R"({"signature_threshold":1.5})", "config-type", "signature_threshold"},
      {R"({"signature_threshold":"2"})", "config-type", "signature_threshold"},
      {R"({"trusted_keys_owner":1000})", "config-unknown-key", "trusted_keys_owner"},
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
