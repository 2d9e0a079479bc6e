#include "proto/values.h"

#include <gtest/gtest.h>

#include <vector>

namespace decnet {
namespace {

TEST(UnitNameParse, AcceptsServicesAndTargets) {
  for (const char* ok : {"decnet-agent.service", "decnet.target", "decnet-fleet-heavy.service",
                         "a.service", "x_y:z.service"}) {
    auto n = UnitName::Parse(ok);
    ASSERT_TRUE(n) << ok << ": " << n.error().message;
    EXPECT_EQ(n->str(), ok);
  }
  EXPECT_EQ(UnitName::Parse("decnet-agent.service")->stem(), "decnet-agent");
  EXPECT_TRUE(UnitName::Parse("decnet-agent.service")->is_service());
  EXPECT_FALSE(UnitName::Parse("decnet.target")->is_service());
}

struct BadName {
  std::string text;
  std::string rule;
};

TEST(UnitNameParse, RefusesEachMalformedNameWithItsRule) {
  const BadName rows[] = {
      {"", "unit-name-suffix"},
      {".service", "unit-name-length"},
      {"decnet-agent", "unit-name-suffix"},
      {"decnet-agent.socket", "unit-name-suffix"},
      {"decnet-agent.service.d/x.conf", "unit-name-suffix"},
      {"../decnet-agent.service", "unit-name-charset"},
      {"decnet-../x.service", "unit-name-charset"},
      {"/etc/systemd/system/decnet-agent.service", "unit-name-charset"},
      {"decnet-agent@.service", "unit-name-charset"},
      {"decnet-agent@x.service", "unit-name-charset"},
      {"decnet\\x2dagent.service", "unit-name-charset"},
      {"decnet-%i.service", "unit-name-charset"},
      {std::string("decnet\0agent.service", 20), "unit-name-charset"},
      {"decnet agent.service", "unit-name-charset"},
      {"-decnet.service", "unit-name-charset"},
      {std::string(201, 'a') + ".service", "unit-name-length"},
      {"decnet-agent.service\n", "unit-name-suffix"},
  };
  for (const auto& row : rows) {
    auto n = UnitName::Parse(row.text);
    ASSERT_FALSE(n) << row.text;
    EXPECT_EQ(n.error().code, ErrorCode::kMalformed) << row.text;
    EXPECT_EQ(n.error().rule, row.rule) << row.text;
  }
}

TEST(LinkNameParse, AcceptsOneComponentAndRefusesTheRest) {
  EXPECT_TRUE(LinkName::Parse("decnet"));
  EXPECT_TRUE(LinkName::Parse("decnet-rollout_2.py"));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", ".hidden", "-x", "a/b", "/decnet", "dec net",
                                std::string(65, 'a'), std::string("a\0b", 3)}) {
    EXPECT_FALSE(LinkName::Parse(bad)) << bad;
  }
}

TEST(AbsPathParse, AcceptsNormalisedAbsolutePaths) {
  EXPECT_TRUE(AbsPath::Parse("/"));
  EXPECT_TRUE(AbsPath::Parse("/opt/decnet/current/venv/bin/decnet"));
  for (const std::string& bad : std::vector<std::string>{
           "", "relative/path", "/opt/", "/opt//decnet", "/opt/./x", "/opt/../etc", "/opt/dec net",
           "/opt/x\n", std::string(1100, '/')}) {
    auto p = AbsPath::Parse(bad);
    EXPECT_FALSE(p) << bad;
    if (!p) {
      EXPECT_EQ(p.error().code, ErrorCode::kMalformed);
    }
  }
}

TEST(AbsPathIsBeneath, ComparesWholeComponents) {
  auto prefix = *AbsPath::Parse("/opt/decnet");
  EXPECT_TRUE(AbsPath::Parse("/opt/decnet")->IsBeneath(prefix));
  EXPECT_TRUE(AbsPath::Parse("/opt/decnet/current/bin")->IsBeneath(prefix));
  EXPECT_FALSE(AbsPath::Parse("/opt/decnet-evil/bin")->IsBeneath(prefix));
  EXPECT_FALSE(AbsPath::Parse("/opt")->IsBeneath(prefix));
  EXPECT_TRUE(AbsPath::Parse("/anything")->IsBeneath(*AbsPath::Parse("/")));
}

}  // namespace
}  // namespace decnet
