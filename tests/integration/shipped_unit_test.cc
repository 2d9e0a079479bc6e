// The shipped unit file, systemd/decnet-updater.service, as systemd's own tools judge it
// without a running systemd: `systemd-analyze security --offline=true` must rate it 2.0 or
// less, and `systemd-analyze verify` must have nothing to say about it. Each hardening setting
// the score depends on is taken out in turn to show that the check notices.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/shell.h"

#ifndef DECNET_HELPER_BINARY
#error "DECNET_HELPER_BINARY must name the built helper"
#endif

namespace {

namespace fs = std::filesystem;
using decnet::test::CommandRun;
using decnet::test::Quote;
using decnet::test::ReadFile;
using decnet::test::RunCommand;

constexpr double kMaxExposure = 2.0;
constexpr char kShippedExecStart[] =
    "ExecStart=/usr/libexec/decnet-updater/decnet-update-helper --config "
    "/etc/decnet-updater/helper.json";

std::string ShippedUnit() {
  return ReadFile(fs::path(DECNET_SOURCE_DIR) / "systemd/decnet-updater.service");
}

// A directory of its own for the unit files one test writes; removed afterwards.
class UnitDir {
 public:
  UnitDir() {
    std::string tmpl = (fs::temp_directory_path() / "decnet-shipped-unit-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~UnitDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  // Writes `content` as NAME (a unit named like the shipped one, so drop-in lookups match).
  fs::path Write(const std::string& content, const std::string& name = "decnet-updater.service") {
    const fs::path file = path_ / name;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    return file;
  }
  bool ok() const { return !path_.empty(); }

 private:
  fs::path path_;
};

// The overall exposure systemd-analyze gives FILE, or nullopt (with the output in `why`) when
// the line is not there.
std::optional<double> Exposure(const fs::path& file, std::string* why) {
  const CommandRun run =
      RunCommand("systemd-analyze security --offline=true --no-pager " + Quote(file.string()));
  static const std::regex kOverall(R"(Overall exposure level for [^:]+: ([0-9]+\.[0-9]+))");
  std::smatch m;
  if (!std::regex_search(run.output, m, kOverall)) {
    *why = "exit " + std::to_string(run.status) + ", output:\n" + run.output;
    return std::nullopt;
  }
  *why = run.output;
  return std::stod(m[1].str());
}

// The unit with every line that starts with one of `prefixes` removed.
std::string Without(const std::string& unit, const std::vector<std::string>& prefixes) {
  std::istringstream in(unit);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    bool drop = false;
    for (const std::string& p : prefixes) drop = drop || line.rfind(p, 0) == 0;
    if (!drop) out += line + "\n";
  }
  return out;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The shipped unit whose ExecStart names the built helper: verify checks that the command
// exists and is executable, and the installed path does not exist on a build host.
std::string WithBuiltHelper(const std::string& unit) {
  return Replace(unit, "ExecStart=/usr/libexec/decnet-updater/decnet-update-helper",
                 std::string("ExecStart=") + DECNET_HELPER_BINARY);
}

TEST(TheShippedUnit, StartsTheInstalledHelperWithTheInstalledPolicy) {
  EXPECT_NE(ShippedUnit().find(std::string(kShippedExecStart) + "\n"), std::string::npos)
      << "the install rules and the docs name this command line";
}

TEST(TheShippedUnit, ScoresAnExposureOfAtMostTwoOffline) {
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string unit = ShippedUnit();
  ASSERT_FALSE(unit.empty()) << "cannot read systemd/decnet-updater.service";
  std::string why;
  const auto exposure = Exposure(dir.Write(unit), &why);
  ASSERT_TRUE(exposure.has_value()) << "no overall exposure in systemd-analyze's output: " << why;
  EXPECT_LE(*exposure, kMaxExposure) << why;
}

TEST(TheShippedUnit, PassesSystemdAnalyzesThresholdOfTwo) {
  // systemd-analyze's own comparison (in tenths), independent of the parsing above.
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  const CommandRun run =
      RunCommand("systemd-analyze security --offline=true --threshold=20 --no-pager " +
                 Quote(dir.Write(ShippedUnit()).string()));
  EXPECT_EQ(run.status, 0) << run.output;
}

TEST(TheShippedUnit, IsCleanUnderSystemdAnalyzeVerify) {
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  const fs::path file = dir.Write(WithBuiltHelper(ShippedUnit()));
  // --man=no: the man page named by Documentation= is installed by the package, not here.
  const CommandRun run = RunCommand("systemd-analyze verify --man=no " + Quote(file.string()));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, "") << "systemd-analyze verify reported findings";
}

TEST(TheShippedUnitsVerifyCheck, NoticesAnUnknownSetting) {
  // The control for the check above: a misspelt key is only a warning (exit 0), so the
  // check must read the output, and it does.
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string unit =
      Replace(WithBuiltHelper(ShippedUnit()), "PrivateMounts=yes", "PrivateMountz=yes");
  const CommandRun run =
      RunCommand("systemd-analyze verify --man=no " + Quote(dir.Write(unit).string()));
  EXPECT_NE(run.output.find("PrivateMountz"), std::string::npos) << run.output;
}

TEST(TheShippedUnitsVerifyCheck, NoticesAMissingExecutable) {
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  const CommandRun run =
      RunCommand("systemd-analyze verify --man=no " + Quote(dir.Write(ShippedUnit()).string()));
  EXPECT_NE(run.status, 0) << "the shipped ExecStart path should not exist on a build host";
}

// One hardening setting taken out (or widened): the exposure must rise above 2.0, so the
// score check fails whenever one of them is lost. (ProcSubset=, UMask= and
// MemoryDenyWriteExecute= weigh too little to cross 2.0 alone.)
struct Loosening {
  const char* name;
  std::vector<std::string> drop_lines;  // line prefixes removed
  std::string from, to;                 // or one replacement
};

void PrintTo(const Loosening& l, std::ostream* os) { *os << l.name; }

class TheShippedUnitsScore : public ::testing::TestWithParam<Loosening> {};

TEST_P(TheShippedUnitsScore, RisesAboveTwoWhenASettingIsLost) {
  const Loosening& l = GetParam();
  const std::string shipped = ShippedUnit();
  std::string unit = Without(shipped, l.drop_lines);
  if (!l.from.empty()) {
    ASSERT_NE(unit.find(l.from), std::string::npos) << "the shipped unit lacks " << l.from;
    unit = Replace(unit, l.from, l.to);
  }
  ASSERT_NE(unit, shipped) << "the shipped unit has no line to loosen for " << l.name;
  UnitDir dir;
  ASSERT_TRUE(dir.ok());
  std::string why;
  const auto exposure = Exposure(dir.Write(unit), &why);
  ASSERT_TRUE(exposure.has_value()) << why;
  EXPECT_GT(*exposure, kMaxExposure) << why;
}

INSTANTIATE_TEST_SUITE_P(
    Settings, TheShippedUnitsScore,
    ::testing::Values(
        Loosening{"SystemCallFilter", {"SystemCallFilter=", "SystemCallErrorNumber="}, "", ""},
        Loosening{"ResourcesFilter", {"SystemCallFilter=~@resources"}, "", ""},
        Loosening{"IPAddressDeny", {"IPAddressDeny=", "IPAddressAllow="}, "", ""},
        Loosening{"IPAddressAllowAny", {}, "IPAddressAllow=localhost", "IPAddressAllow=any"},
        Loosening{"PrivateMounts", {"PrivateMounts="}, "", ""},
        Loosening{"ProtectClock", {"ProtectClock="}, "", ""},
        Loosening{"DacOverride", {}, "CAP_SETPCAP\n", "CAP_SETPCAP CAP_DAC_OVERRIDE\n"},
        Loosening{"CapabilityBoundingSet", {"CapabilityBoundingSet="}, "", ""},
        Loosening{"ProtectSystem", {"ProtectSystem="}, "", ""},
        Loosening{"ProtectHome", {"ProtectHome="}, "", ""},
        Loosening{"PrivateDevices", {"PrivateDevices=", "DevicePolicy="}, "", ""},
        Loosening{"RestrictAddressFamilies", {"RestrictAddressFamilies="}, "", ""},
        Loosening{"RestrictNamespaces", {"RestrictNamespaces="}, "", ""},
        Loosening{"NoNewPrivileges", {"NoNewPrivileges="}, "", ""},
        Loosening{"ProtectKernelTunables", {"ProtectKernelTunables="}, "", ""}),
    [](const ::testing::TestParamInfo<Loosening>& info) { return std::string(info.param.name); });

}  // namespace
