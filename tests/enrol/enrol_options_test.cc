// decnet-updater-enrol's command line: what it accepts, and a table of what it refuses with
// the rule each refusal names.
#include "enrol/enrol_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/param_name.h"

namespace decnet::enrol {
namespace {

TEST(EnrolArguments, DefaultToKeepingWhatIsInPlaceAndChangingNothingElse) {
  auto o = ParseEnrolArgs({});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->tls, TlsSource::kKeep);
  EXPECT_FALSE(o->install_dir || o->updater_dir || o->state_dir || o->user || o->group ||
               o->units_user || o->units_group || o->listen_address || o->admin_group);
  EXPECT_EQ(o->root, "/");
  EXPECT_EQ(o->dry_run, DryRun::kNo);
  EXPECT_TRUE(o->reload);
}

TEST(EnrolArguments, ReadEveryOption) {
  auto o = ParseEnrolArgs(
      {"--create",      "--ca-cert",     "/r/ca.crt",   "--ca-key",      "/r/ca.key",
       "--name",        "w1.example",    "--address",   "192.0.2.5",     "--address",
       "2001:db8::5",   "--days",        "30",          "--master-pin",  std::string(64, 'A'),
       "--master-cn",   "boss",          "--rotate",    "--install-dir", "/srv/d",
       "--updater-dir", "/srv/u",        "--state-dir", "/srv/s",        "--user",
       "upd",           "--group",       "updg",        "--units-user",  "svc",
       "--units-group", "svcg",          "--listen",    "[::1]:9000",    "--master-address",
       "192.0.2.0/24",  "--admin-group", "ops",         "--root",        "/tmp/r",
       "--dry-run",     "--no-reload"});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->tls, TlsSource::kCreate);
  EXPECT_EQ(o->ca_cert, "/r/ca.crt");
  EXPECT_EQ(o->names, std::vector<std::string>{"w1.example"});
  EXPECT_EQ(o->addresses, (std::vector<std::string>{"192.0.2.5", "2001:db8::5"}));
  EXPECT_EQ(o->days, 30);
  EXPECT_EQ(o->master_pins, std::vector<std::string>{std::string(64, 'a')}) << "normalised";
  EXPECT_EQ(o->master_cn, "boss");
  EXPECT_TRUE(o->rotate);
  EXPECT_EQ(o->install_dir, "/srv/d");
  EXPECT_EQ(o->updater_dir, "/srv/u");
  EXPECT_EQ(o->state_dir, "/srv/s");
  EXPECT_EQ(o->user, "upd");
  EXPECT_EQ(o->group, "updg");
  EXPECT_EQ(o->units_user, "svc");
  EXPECT_EQ(o->units_group, "svcg");
  EXPECT_EQ(o->listen_address, "::1");
  EXPECT_EQ(o->port, 9000);
  EXPECT_EQ(o->master_addresses, std::vector<std::string>{"192.0.2.0/24"});
  EXPECT_EQ(o->admin_group, "ops");
  EXPECT_EQ(o->root, "/tmp/r");
  EXPECT_EQ(o->dry_run, DryRun::kYes);
  EXPECT_FALSE(o->reload);
}

TEST(EnrolArguments, AcceptAPinWithColonsAndAnIpv4Listener) {
  std::string colons;
  for (int i = 0; i < 32; ++i) colons += std::string(i ? ":" : "") + "Ab";
  auto o = ParseEnrolArgs({"--master-pin", colons, "--listen", "0.0.0.0:8766", "--from", "/x"});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->master_pins.front(), [] {
    std::string s;
    for (int i = 0; i < 32; ++i) s += "ab";
    return s;
  }());
  EXPECT_EQ(o->listen_address, "0.0.0.0");
  EXPECT_EQ(o->tls, TlsSource::kFrom);
}

struct Refused {
  const char* what;
  std::vector<std::string> args;
  const char* rule;
};

void PrintTo(const Refused& row, std::ostream* os) { *os << row.what; }

class EnrolArgumentsRefuse : public ::testing::TestWithParam<Refused> {};

TEST_P(EnrolArgumentsRefuse, WithTheRuleThatNamesTheMistake) {
  auto o = ParseEnrolArgs(GetParam().args);
  ASSERT_FALSE(o) << "accepted";
  EXPECT_EQ(o.error().rule, GetParam().rule) << o.error().message;
}

const std::string kPin(64, 'a');

INSTANTIATE_TEST_SUITE_P(
    Table, EnrolArgumentsRefuse,
    ::testing::Values(
        Refused{"an unknown option", {"--frobnicate"}, "enrol-usage"},
        Refused{"a missing value", {"--install-dir"}, "enrol-usage"},
        Refused{"help", {"--help"}, "enrol-usage"},
        Refused{"create and from", {"--create", "--from", "/x"}, "enrol-tls-source"},
        Refused{"a CA cert without its key", {"--create", "--ca-cert", "/c"}, "enrol-tls-source"},
        Refused{"a CA key without its cert", {"--create", "--ca-key", "/k"}, "enrol-tls-source"},
        Refused{"a CA without create", {"--ca-cert", "/c", "--ca-key", "/k"}, "enrol-tls-source"},
        Refused{"a relative install dir", {"--install-dir", "opt/decnet"}, "enrol-path"},
        Refused{"an install dir with dot dot", {"--install-dir", "/opt/../etc"}, "enrol-path"},
        Refused{"a trailing slash", {"--state-dir", "/var/lib/x/"}, "enrol-path"},
        Refused{"an empty updater dir", {"--updater-dir", ""}, "enrol-path"},
        Refused{"a relative from dir", {"--from", "bundle"}, "enrol-path"},
        Refused{"a relative master cert", {"--master-cert", "m.crt"}, "enrol-path"},
        Refused{"a relative root", {"--root", "tmp"}, "enrol-path"},
        Refused{"user root", {"--user", "root"}, "enrol-account-name"},
        Refused{"units user root", {"--units-user", "root"}, "enrol-account-name"},
        Refused{"group root", {"--group", "root"}, "enrol-account-name"},
        Refused{"a user with upper case", {"--user", "Decnet"}, "enrol-account-name"},
        Refused{"a user starting with a digit", {"--user", "1decnet"}, "enrol-account-name"},
        Refused{"a user with a colon", {"--units-user", "a:b"}, "enrol-account-name"},
        Refused{"an over long group", {"--group", std::string(33, 'g')}, "enrol-account-name"},
        Refused{"an empty admin group", {"--admin-group", ""}, "enrol-account-name"},
        Refused{"an admin group with a quote", {"--admin-group", "ops\"+"}, "enrol-account-name"},
        Refused{"listen without a port", {"--listen", "0.0.0.0"}, "enrol-listen"},
        Refused{"listen on port zero", {"--listen", "0.0.0.0:0"}, "enrol-listen"},
        Refused{"listen on port 65536", {"--listen", "0.0.0.0:65536"}, "enrol-listen"},
        Refused{"listen on a host name", {"--listen", "localhost:8766"}, "enrol-listen"},
        Refused{"listen on bare IPv6", {"--listen", "::1:8766"}, "enrol-listen"},
        Refused{"listen on bracketed IPv4", {"--listen", "[127.0.0.1]:8766"}, "enrol-listen"},
        Refused{"listen with a letter port", {"--listen", "0.0.0.0:80a"}, "enrol-listen"},
        Refused{"an address that is a name", {"--address", "worker1"}, "enrol-address"},
        Refused{"an address with a prefix", {"--address", "192.0.2.1/24"}, "enrol-address"},
        Refused{"a master address that is any", {"--master-address", "any"}, "enrol-address"},
        Refused{"a master prefix too wide", {"--master-address", "192.0.2.0/33"}, "enrol-address"},
        Refused{"a master prefix empty", {"--master-address", "192.0.2.0/"}, "enrol-address"},
        Refused{"a master address with a newline",
                {"--master-address", "192.0.2.1\nExecStartPre=/bin/sh"},
                "enrol-address"},
        Refused{"a name with upper case", {"--name", "Worker"}, "enrol-name"},
        Refused{"a name with a space", {"--name", "a b"}, "enrol-name"},
        Refused{"a name ending in a dot", {"--name", "w1."}, "enrol-name"},
        Refused{"a name with an empty label", {"--name", "a..b"}, "enrol-name"},
        Refused{"a name with a leading hyphen", {"--name", "-w"}, "enrol-name"},
        Refused{"a short pin", {"--master-pin", std::string(63, 'a')}, "enrol-master-pin"},
        Refused{"a long pin", {"--master-pin", kPin + "a"}, "enrol-master-pin"},
        Refused{
            "a pin that is not hex", {"--master-pin", std::string(64, 'g')}, "enrol-master-pin"},
        Refused{"an empty master cn", {"--master-cn", ""}, "enrol-master-cn"},
        Refused{"zero days", {"--days", "0"}, "enrol-days"},
        Refused{"too many days", {"--days", "3651"}, "enrol-days"},
        Refused{"negative days", {"--days", "-1"}, "enrol-days"}),
    [](const auto& info) { return decnet::test::CamelName(info.param.what); });

}  // namespace
}  // namespace decnet::enrol
