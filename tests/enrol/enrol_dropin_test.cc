// The drop-in an enrolment writes, judged by systemd's own offline tools together with the
// shipped unit: `systemd-analyze verify` reads it (a misspelt key in it is reported, so the
// check sees the drop-in) and has nothing to say about it, and a drop-in for a moved layout
// leaves the unit's `security --offline=true` exposure at the shipped 2.0 or less.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "enrol/enrol_configs.h"
#include "enrol/enrol_plan.h"
#include "tests/support/shell.h"

namespace decnet::enrol {
namespace {

namespace fs = std::filesystem;
using decnet::test::CommandRun;
using decnet::test::RunCommand;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A unit directory holding the shipped unit (its ExecStart pointed at /bin/true, which exists
// on a build host) and DIR/decnet-updater.service.d/50-enrol.conf.
class AUnitWithTheEnrolmentDropIn : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand("systemd-analyze --version").status != 0) GTEST_SKIP() << "no systemd-analyze";
    std::string tmpl = (fs::temp_directory_path() / "decnet-enrol-unit-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::string unit = Slurp(fs::path(DECNET_SOURCE_DIR) / "systemd/decnet-updater.service");
    const std::string exec = "ExecStart=/usr/libexec/decnet-updater/decnet-update-helper";
    ASSERT_NE(unit.find(exec), std::string::npos);
    unit.replace(unit.find(exec), exec.size(), "ExecStart=/bin/true");
    std::ofstream(dir_ / "decnet-updater.service") << unit;
    fs::create_directories(dir_ / "decnet-updater.service.d");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void WriteDropIn(const std::string& text) {
    std::ofstream(dir_ / "decnet-updater.service.d/50-enrol.conf") << text;
  }
  std::string Analyze(const std::string& verb) const {
    return "SYSTEMD_UNIT_PATH='" + dir_.string() + ":' systemd-analyze " + verb + " '" +
           (dir_ / "decnet-updater.service").string() + "'";
  }

  // The drop-in for a moved layout and a remote master, as the enrolment renders it.
  static std::string MovedLayoutDropIn(std::vector<std::string> addresses) {
    auto options = ParseEnrolArgs({"--install-dir", "/srv/decnet", "--updater-dir",
                                   "/srv/decnet-updater", "--state-dir", "/srv/decnet-state"});
    EXPECT_TRUE(options);
    auto configs = MergeConfigs(*options, "", "", {});
    EXPECT_TRUE(configs) << configs.error().message;
    return RenderDropIn(ExtraWritablePaths(*configs), addresses);
  }

  fs::path dir_;
};

TEST_F(AUnitWithTheEnrolmentDropIn, IsCleanUnderSystemdAnalyzeVerify) {
  WriteDropIn(MovedLayoutDropIn({"192.0.2.10", "2001:db8::/64"}));
  const CommandRun run = RunCommand(Analyze("verify --man=no"));
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, "") << "systemd-analyze verify reported findings";
}

TEST_F(AUnitWithTheEnrolmentDropIn, IsReadByTheVerifyCheck) {
  // The control for the check above: the drop-in is loaded, so a misspelt key in it shows.
  WriteDropIn(Replace(MovedLayoutDropIn({"192.0.2.10"}), "ReadWritePaths=", "ReadWritePathz="));
  const CommandRun run = RunCommand(Analyze("verify --man=no"));
  EXPECT_NE(run.output.find("ReadWritePathz"), std::string::npos) << run.output;
}

TEST_F(AUnitWithTheEnrolmentDropIn, KeepsTheExposureOfTheShippedUnitForAMovedLayout) {
  WriteDropIn(MovedLayoutDropIn({}));
  const CommandRun run = RunCommand(Analyze("security --offline=true --no-pager"));
  static const std::regex kOverall(R"(Overall exposure level for [^:]+: ([0-9]+\.[0-9]+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(run.output, m, kOverall)) << run.output;
  EXPECT_LE(std::stod(m[1].str()), 2.0) << run.output;
}

}  // namespace
}  // namespace decnet::enrol
