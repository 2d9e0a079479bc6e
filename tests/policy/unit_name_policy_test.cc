// Unit names through both gates, as the helper applies them: UnitName::Parse (malformed) and
// then CheckUnitName (denied).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/unit_policy.h"

namespace decnet::helper {
namespace {

enum class Outcome { kOk, kMalformed, kDenied };

struct NameRow {
  std::string text;
  Outcome write;    // under UnitUse::kWrite
  Outcome restart;  // under UnitUse::kRestart
};

Outcome Judge(const Policy& policy, std::string_view text, UnitUse use) {
  auto name = UnitName::Parse(text);
  if (!name) return Outcome::kMalformed;
  auto ok = CheckUnitName(policy, *name, use);
  if (ok) return Outcome::kOk;
  EXPECT_EQ(ok.error().code, ErrorCode::kDenied);
  return Outcome::kDenied;
}

constexpr Outcome kOk = Outcome::kOk, kMal = Outcome::kMalformed, kDen = Outcome::kDenied;

std::vector<NameRow> Rows() {
  return {
      // accepted
      {"decnet-agent.service", kOk, kOk},
      {"decnet-sniffer.service", kOk, kOk},
      {"decnet-a.service", kOk, kOk},
      {"decnet-0.service", kOk, kOk},
      {"decnet-web-ui-2.service", kOk, kOk},
      {"decnet.target", kOk, kOk},
      {"decnet-updater.service", kDen, kOk},  // the updater's own unit: restart only
      // refused: malformed
      {"", kMal, kMal},
      {"decnet-agent", kMal, kMal},
      {"decnet-agent.socket", kMal, kMal},
      {"decnet-agent.timer", kMal, kMal},
      {"decnet-agent.mount", kMal, kMal},
      {"decnet-agent.service.d/override.conf", kMal, kMal},
      {"decnet-agent.service.d", kMal, kMal},
      {"decnet-agent.service.wants", kMal, kMal},
      {"../decnet-agent.service", kMal, kMal},
      {"decnet-../x.service", kMal, kMal},
      {"decnet-agent/../../etc/passwd.service", kMal, kMal},
      {"/etc/systemd/system/decnet-agent.service", kMal, kMal},
      {"/decnet-agent.service", kMal, kMal},
      {"decnet-agent@.service", kMal, kMal},
      {"decnet-agent@1.service", kMal, kMal},
      {"decnet-agent@x.y.service", kMal, kMal},
      {std::string("decnet-agent\0.service", 21), kMal, kMal},
      {std::string("decnet-agent.service\0", 21), kMal, kMal},
      {"decnet-agent\n.service", kMal, kMal},
      {"decnet agent.service", kMal, kMal},
      {"decnet-%i.service", kMal, kMal},
      {"decnet-\\x2d.service", kMal, kMal},
      {".service", kMal, kMal},
      {".decnet-agent.service", kMal, kMal},
      {"-decnet-agent.service", kMal, kMal},
      {"decnet-" + std::string(200, 'a') + ".service", kMal, kMal},
      {"decnet-agent.service ", kMal, kMal},
      {"decnet-agent.SERVICE", kMal, kMal},
      {"decnet-a\xc3\xa9.service", kMal, kMal},
      {"decnet-agent.service.service/x", kMal, kMal},
      // refused: parse, but outside the allow-list
      {"decnet-.service", kDen, kDen},
      {"decnet--x.service", kDen, kDen},
      {"decnet-_x.service", kDen, kDen},
      {"decnet-Agent.service", kDen, kDen},
      {"DECNET-agent.service", kDen, kDen},
      {"decnet-agent.x.service", kDen, kDen},
      {"decnet-agent_x.service", kDen, kDen},
      {"decnet-agent:x.service", kDen, kDen},
      {"decnet.service", kDen, kDen},
      {"decnetagent.service", kDen, kDen},
      {"xdecnet-agent.service", kDen, kDen},
      {"ssh.service", kDen, kDen},
      {"sshd.service", kDen, kDen},
      {"systemd-journald.service", kDen, kDen},
      {"docker.service", kDen, kDen},
      {"network.target", kDen, kDen},
      {"multi-user.target", kDen, kDen},
      {"poweroff.target", kDen, kDen},
      {"reboot.target", kDen, kDen},
      {"decnet-agent.target", kDen, kDen},
      {"decnet-x.target", kDen, kDen},
      {"decnet-" + std::string(190, 'a') + ".service", kOk, kOk},
  };
}

TEST(UnitNamePolicy, JudgesEveryRowOfTheTable) {
  const Policy policy = Policy::Defaults();
  int refused = 0;
  for (const NameRow& row : Rows()) {
    SCOPED_TRACE("name: \"" + row.text + "\"");
    EXPECT_EQ(Judge(policy, row.text, UnitUse::kWrite), row.write);
    EXPECT_EQ(Judge(policy, row.text, UnitUse::kRestart), row.restart);
    if (row.write != kOk) ++refused;
  }
  EXPECT_GE(refused, 40);
}

TEST(UnitNamePolicy, NamesTheRuleThatRefused) {
  const Policy policy = Policy::Defaults();
  auto self = UnitName::Parse("decnet-updater.service");
  ASSERT_TRUE(self);
  EXPECT_EQ(CheckUnitName(policy, *self, UnitUse::kWrite).error().rule, "unit-self");
  auto ssh = UnitName::Parse("ssh.service");
  ASSERT_TRUE(ssh);
  EXPECT_EQ(CheckUnitName(policy, *ssh, UnitUse::kRestart).error().rule, "unit-name-allowlist");
}

TEST(UnitNamePolicy, FollowsAConfiguredPrefix) {
  Policy policy = Policy::Defaults();
  policy.unit_prefix = "worker-";
  policy.extra_units = {"worker.target"};
  EXPECT_EQ(Judge(policy, "worker-a.service", UnitUse::kWrite), kOk);
  EXPECT_EQ(Judge(policy, "worker.target", UnitUse::kWrite), kOk);
  EXPECT_EQ(Judge(policy, "decnet-agent.service", UnitUse::kWrite), kDen);
  EXPECT_EQ(Judge(policy, "decnet.target", UnitUse::kWrite), kDen);
}

}  // namespace
}  // namespace decnet::helper
