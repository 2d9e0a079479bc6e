// Credentials from the unit root's account files, read strictly and without NSS.
#include "policy/unit_identity.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace decnet::helper {
namespace {

const char kPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "decnet:x:1000:1000:DECNET:/var/lib/decnet:/usr/sbin/nologin\n"
    "decnet:x:2000:2000:shadowed duplicate:/:/bin/sh\n"
    "svc:x:1500:1500::/:/usr/sbin/nologin\n";
const char kGroup[] =
    "root:x:0:\n"
    "adm:x:4:syslog,decnet\n"
    "decnet:x:1000:\n"
    "docker:x:999:svc\n"
    "keys:x:1002:\n";

TEST(ResolveUnitCredentials, GivesTheUidGroupMembershipsAndSupplementaryGroups) {
  std::string why;
  auto c = ResolveUnitCredentials(kPasswd, kGroup, "decnet", "decnet", {"keys"}, why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->uid, 1000u);  // the first entry of a name wins, as for the files module
  EXPECT_TRUE(c->InGroup(1000));
  EXPECT_TRUE(c->InGroup(4));  // member of adm in /etc/group
  EXPECT_TRUE(c->InGroup(1002));
  EXPECT_FALSE(c->InGroup(999));
  EXPECT_FALSE(c->InGroup(0));
}

TEST(ResolveUnitCredentials, UsesGroupNotThePasswdPrimaryGroup) {
  std::string why;
  auto c = ResolveUnitCredentials(kPasswd, kGroup, "svc", "decnet", {}, why);
  ASSERT_TRUE(c) << why;
  EXPECT_TRUE(c->InGroup(1000));
  EXPECT_FALSE(c->InGroup(1500));
  EXPECT_TRUE(c->InGroup(999));
}

struct BadRow {
  std::string passwd, group, user, grp;
  std::vector<std::string> supplementary;
  std::string why;  // the reason names this
};

TEST(ResolveUnitCredentials, RefusesWhatItCannotReadExactly) {
  const std::string g = kGroup;
  const std::string p = kPasswd;
  const std::vector<BadRow> rows = {
      {p, g, "", "decnet", {}, "no User="},
      {p, g, "decnet", "", {}, "no User="},
      {p, g, "nobody", "decnet", {}, "'nobody'"},
      {p, g, "decnet", "wheel", {}, "'wheel'"},
      {p, g, "decnet", "decnet", {"nope"}, "'nope'"},
      {p + "+::::::\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:1:1::/\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:1:1::/:/bin/sh:extra\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:-1:1::/:/bin/sh\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:01:1::/:/bin/sh\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:4294967295:1::/:/bin/sh\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + ":x:7:7::/:/bin/sh\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {p + "x:x:7:7:\x1b[2J:/:/bin/sh\n", g, "decnet", "decnet", {}, "passwd line 5"},
      {"# comment\n" + p, g, "decnet", "decnet", {}, "passwd line 1"},
      {p, g + "bad:x:abc:\n", "decnet", "decnet", {}, "group line 6"},
      {p, g + "bad:x:7\n", "decnet", "decnet", {}, "group line 6"},
      {p, g + "bad:x:7::\n", "decnet", "decnet", {}, "group line 6"},
      {std::string(kMaxAccountFile + 1, '\n'), g, "decnet", "decnet", {}, "too large"},
  };
  for (const BadRow& row : rows) {
    SCOPED_TRACE(row.why);
    std::string why;
    EXPECT_FALSE(
        ResolveUnitCredentials(row.passwd, row.group, row.user, row.grp, row.supplementary, why));
    EXPECT_NE(why.find(row.why), std::string::npos) << why;
  }
}

}  // namespace
}  // namespace decnet::helper
