// The inventory readers: ours, DECNET's host list with its pins, and --host selection.
#include "fleet/inventory.h"

#include <gtest/gtest.h>

#include <string>

namespace decnet::fleet {
namespace {

const std::string kFp(64, 'a');
const std::string kFp2(64, 'b');

std::string Host(const std::string& name, const std::string& fp = std::string(64, 'a')) {
  return R"({"name":")" + name + R"(","address":"10.0.0.1","port":8766,"fingerprint":")" + fp +
         R"("})";
}

TEST(AnInventory, ReadsEveryHostInOrder) {
  auto inv = ParseInventory(R"({"hosts":[)" + Host("w1") + "," +
                            R"({"name":"w2","address":"fd00::2","port":9000,"fingerprint":")" +
                            kFp2 + R"("}]})");
  ASSERT_TRUE(inv) << inv.error().message;
  ASSERT_EQ(inv->size(), 2u);
  EXPECT_EQ((*inv)[0].name, "w1");
  EXPECT_EQ((*inv)[0].address, "10.0.0.1");
  EXPECT_EQ((*inv)[0].port, 8766);
  EXPECT_EQ((*inv)[0].fingerprint, kFp);
  EXPECT_EQ((*inv)[1].address, "fd00::2");
  EXPECT_EQ((*inv)[1].port, 9000);
}

// A text one of the readers must refuse, and the rule it must name.
struct BadText {
  const char* label;
  std::string text;
  const char* rule;
};

// A row's label as a test name: anything but letters and digits becomes '_'.
std::string LabelOf(const ::testing::TestParamInfo<BadText>& info) {
  std::string n = info.param.label;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

class AnInventoryRefuses : public ::testing::TestWithParam<BadText> {};

TEST_P(AnInventoryRefuses, NamingTheRule) {
  auto inv = ParseInventory(GetParam().text);
  ASSERT_FALSE(inv) << GetParam().label;
  EXPECT_EQ(inv.error().rule, GetParam().rule) << inv.error().message;
}

const std::string kNoPort = R"({"name":"w1","address":"10.0.0.1","fingerprint":")" + kFp + "\"}";

INSTANTIATE_TEST_SUITE_P(
    Table, AnInventoryRefuses,
    ::testing::Values(
        BadText{"not json", "{", "inventory-json"}, BadText{"an array", "[]", "inventory-json"},
        BadText{"no hosts key", "{}", "inventory-json"},
        BadText{"hosts not an array", R"({"hosts":{}})", "inventory-json"},
        BadText{"no host", R"({"hosts":[]})", "inventory-empty"},
        BadText{"unknown top key", R"({"hosts":[)" + Host("w1") + R"(],"x":1})",
                "inventory-unknown-key"},
        BadText{"duplicate top key", R"({"hosts":[],"hosts":[]})", "inventory-json"},
        BadText{"host not an object", R"({"hosts":[1]})", "inventory-json"},
        BadText{"unknown host key",
                R"({"hosts":[{"name":"w1","address":"a","port":1,"fingerprint":")" + kFp +
                    R"(","user":"root"}]})",
                "inventory-unknown-key"},
        BadText{"missing name",
                R"({"hosts":[{"address":"a","port":1,"fingerprint":")" + kFp + "\"}]}",
                "inventory-name"},
        BadText{"empty name", R"({"hosts":[)" + Host("") + "]}", "inventory-name"},
        BadText{"name with a slash", R"({"hosts":[)" + Host("w/1") + "]}", "inventory-name"},
        BadText{"name with a space", R"({"hosts":[)" + Host("w 1") + "]}", "inventory-name"},
        BadText{"name too long", R"({"hosts":[)" + Host(std::string(65, 'w')) + "]}",
                "inventory-name"},
        BadText{"missing address",
                R"({"hosts":[{"name":"w1","port":1,"fingerprint":")" + kFp + "\"}]}",
                "inventory-address"},
        BadText{
            "address with a slash",
            R"({"hosts":[{"name":"w1","address":"evil/x","port":1,"fingerprint":")" + kFp + "\"}]}",
            "inventory-address"},
        BadText{
            "address with an at sign",
            R"({"hosts":[{"name":"w1","address":"a@b","port":1,"fingerprint":")" + kFp + "\"}]}",
            "inventory-address"},
        BadText{"missing port", R"({"hosts":[)" + kNoPort + "]}", "inventory-port"},
        BadText{"port zero",
                R"({"hosts":[{"name":"w1","address":"a","port":0,"fingerprint":")" + kFp + "\"}]}",
                "inventory-port"},
        BadText{
            "port too large",
            R"({"hosts":[{"name":"w1","address":"a","port":65536,"fingerprint":")" + kFp + "\"}]}",
            "inventory-port"},
        BadText{
            "port as a string",
            R"({"hosts":[{"name":"w1","address":"a","port":"8766","fingerprint":")" + kFp + "\"}]}",
            "inventory-port"},
        BadText{"negative port",
                R"({"hosts":[{"name":"w1","address":"a","port":-1,"fingerprint":")" + kFp + "\"}]}",
                "inventory-port"},
        BadText{"missing fingerprint", R"({"hosts":[{"name":"w1","address":"a","port":1}]})",
                "inventory-fingerprint"},
        BadText{"fingerprint too short", R"({"hosts":[)" + Host("w1", std::string(63, 'a')) + "]}",
                "inventory-fingerprint"},
        BadText{"fingerprint too long", R"({"hosts":[)" + Host("w1", std::string(65, 'a')) + "]}",
                "inventory-fingerprint"},
        BadText{"upper-case fingerprint", R"({"hosts":[)" + Host("w1", std::string(64, 'A')) + "]}",
                "inventory-fingerprint"},
        BadText{"fingerprint with colons",
                R"({"hosts":[)" + Host("w1", "aa:" + std::string(62, 'a')) + "]}",
                "inventory-fingerprint"},
        BadText{"fingerprint not hex", R"({"hosts":[)" + Host("w1", std::string(64, 'g')) + "]}",
                "inventory-fingerprint"},
        BadText{"empty fingerprint", R"({"hosts":[)" + Host("w1", "") + "]}",
                "inventory-fingerprint"},
        BadText{"duplicate names", R"({"hosts":[)" + Host("w1") + "," + Host("w1", kFp2) + "]}",
                "inventory-duplicate"}),
    LabelOf);

TEST(AFingerprint, IsNormalisedFromDecnetsHexForms) {
  const std::string upper(64, 'A');
  EXPECT_EQ(NormaliseFingerprint(upper), std::string(64, 'a'));
  std::string colons;
  for (int i = 0; i < 32; ++i) colons += (i ? ":" : "") + std::string("Ab");
  EXPECT_EQ(NormaliseFingerprint(colons).size(), 64u);
  EXPECT_EQ(NormaliseFingerprint(std::string(62, 'a')), "");
  EXPECT_EQ(NormaliseFingerprint(":" + std::string(64, 'a')), "");
  EXPECT_EQ(NormaliseFingerprint("a:" + std::string(63, 'a')), "");
  EXPECT_EQ(NormaliseFingerprint(std::string(64, 'z')), "");
}

// DECNET's GET /swarm/hosts: SwarmHostView objects.
std::string DecnetHost(const std::string& name, const std::string& status,
                       const std::string& updater_fp) {
  return R"({"uuid":"uuid-)" + name + R"(","name":")" + name +
         R"(","address":"192.0.2.1","agent_port":8765,"status":")" + status +
         R"(","last_heartbeat":null,"client_cert_fingerprint":")" + std::string(64, 'c') +
         R"(","updater_cert_fingerprint":)" + updater_fp +
         R"(,"enrolled_at":"2024-05-01T10:00:00Z","notes":null,"use_ipvlan":false})";
}

TEST(DecnetsHostList, GivesTheUpdaterPortAndTheListedUpdaterFingerprint) {
  auto hosts = ParseDecnetHosts(
      "[" + DecnetHost("w1", "active", "\"" + std::string(64, 'D') + "\"") + "]", {}, 8766);
  ASSERT_TRUE(hosts) << hosts.error().message;
  ASSERT_EQ(hosts->targets.size(), 1u);
  EXPECT_EQ(hosts->targets[0].port, 8766);
  EXPECT_EQ(hosts->targets[0].address, "192.0.2.1");
  EXPECT_EQ(hosts->targets[0].fingerprint, std::string(64, 'd'));
  EXPECT_EQ(hosts->aliases.at("uuid-w1"), "w1");
}

TEST(DecnetsHostList, NeverUsesTheAgentsFingerprintAndRefusesAHostWithoutAPin) {
  auto hosts = ParseDecnetHosts("[" + DecnetHost("w1", "active", "null") + "]", {}, 8766);
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.error().rule, "inventory-fingerprint");
  EXPECT_NE(hosts.error().message.find("--pins"), std::string::npos);
}

TEST(DecnetsHostList, TakesAPinFromThePinsFile) {
  Pins pins{{"w1", kFp2}};
  auto hosts = ParseDecnetHosts("[" + DecnetHost("w1", "enrolled", "null") + "]", pins, 9999);
  ASSERT_TRUE(hosts) << hosts.error().message;
  EXPECT_EQ(hosts->targets[0].fingerprint, kFp2);
  EXPECT_EQ(hosts->targets[0].port, 9999);
}

TEST(DecnetsHostList, RefusesAPinThatDisagreesWithTheListedFingerprint) {
  Pins pins{{"w1", kFp2}};
  auto hosts =
      ParseDecnetHosts("[" + DecnetHost("w1", "active", "\"" + kFp + "\"") + "]", pins, 8766);
  ASSERT_FALSE(hosts);
  EXPECT_EQ(hosts.error().rule, "inventory-fingerprint");
}

TEST(DecnetsHostList, LeavesDecommissionedHostsOut) {
  auto hosts = ParseDecnetHosts("[" + DecnetHost("w1", "decommissioned", "null") + "," +
                                    DecnetHost("w2", "active", "\"" + kFp + "\"") + "]",
                                {}, 8766);
  ASSERT_TRUE(hosts) << hosts.error().message;
  ASSERT_EQ(hosts->targets.size(), 1u);
  EXPECT_EQ(hosts->targets[0].name, "w2");
}

class DecnetsHostListRefuses : public ::testing::TestWithParam<BadText> {};

TEST_P(DecnetsHostListRefuses, NamingTheRule) {
  auto hosts = ParseDecnetHosts(GetParam().text, {}, 8766);
  ASSERT_FALSE(hosts) << GetParam().label;
  EXPECT_EQ(hosts.error().rule, GetParam().rule) << hosts.error().message;
}

const std::string kQuotedFp = "\"" + std::string(64, 'a') + "\"";

INSTANTIATE_TEST_SUITE_P(
    Table, DecnetsHostListRefuses,
    ::testing::Values(
        BadText{"not json", "[", "inventory-json"}, BadText{"an object", "{}", "inventory-json"},
        BadText{"empty", "[]", "inventory-empty"},
        BadText{"only decommissioned", "[" + DecnetHost("w1", "decommissioned", kQuotedFp) + "]",
                "inventory-empty"},
        BadText{"a host not an object", "[1]", "inventory-json"},
        BadText{"no name",
                R"([{"address":"192.0.2.1","updater_cert_fingerprint":)" + kQuotedFp + "}]",
                "inventory-name"},
        BadText{"no address", R"([{"name":"w1","updater_cert_fingerprint":)" + kQuotedFp + "}]",
                "inventory-address"},
        BadText{"bad listed fingerprint", "[" + DecnetHost("w1", "active", "\"xyz\"") + "]",
                "inventory-fingerprint"},
        BadText{"listed fingerprint a number", "[" + DecnetHost("w1", "active", "7") + "]",
                "inventory-fingerprint"},
        BadText{"duplicate names",
                "[" + DecnetHost("w1", "active", kQuotedFp) + "," +
                    DecnetHost("w1", "active", kQuotedFp) + "]",
                "inventory-duplicate"}),
    LabelOf);

TEST(APinsFile, RefusesBadNamesAndFingerprints) {
  EXPECT_TRUE(ParsePins(R"({"w1":")" + kFp + "\"}"));
  EXPECT_EQ(ParsePins("[]").error().rule, "pins-json");
  EXPECT_EQ(ParsePins(R"({"w 1":")" + kFp + "\"}").error().rule, "pins-name");
  EXPECT_EQ(ParsePins(R"({"w1":"abc"})").error().rule, "pins-fingerprint");
  EXPECT_EQ(ParsePins(R"({"w1":1})").error().rule, "pins-fingerprint");
  EXPECT_EQ(ParsePins(R"({"w1":")" + kFp + R"(","w1":")" + kFp + "\"}").error().rule, "pins-json");
}

TEST(ASelection, KeepsTheInventoryOrderAndRefusesUnknownNames) {
  std::vector<Target> inv = {{"w1", "a", 1, kFp}, {"w2", "a", 1, kFp}, {"w3", "a", 1, kFp}};
  auto some = SelectTargets(inv, {"w3", "w1", "w3"}, false);
  ASSERT_TRUE(some);
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].name, "w1");
  EXPECT_EQ((*some)[1].name, "w3");
  EXPECT_EQ(SelectTargets(inv, {}, true)->size(), 3u);
  auto unknown = SelectTargets(inv, {"w9"}, false);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().rule, "inventory-unknown-host");
  auto alias = SelectTargets(inv, {"uuid-2"}, false, {{"uuid-2", "w2"}});
  ASSERT_TRUE(alias);
  EXPECT_EQ((*alias)[0].name, "w2");
}

}  // namespace
}  // namespace decnet::fleet
