#include "daemon/install_command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// True while `pid` runs (a zombie waiting for its reaper counts as dead).
bool IsAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

class AnInstallCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "decnet-install-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    dir_fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir_fd_, 0);
    vars_ = InstallVars{dir_, "0123456789abcdef", "1.2.3", std::string(64, 'a')};
  }
  void TearDown() override {
    close(dir_fd_);
    fs::remove_all(dir_);
  }

  InstallCommandConfig Shell(const std::string& script) {
    InstallCommandConfig config;
    config.argv = {"/bin/sh", "-c", script};
    config.timeout = milliseconds(10'000);
    config.kill_grace = milliseconds(200);
    return config;
  }

  Result<InstallOutput> Run(const InstallCommandConfig& config) {
    return RunInstallCommand(config, vars_, dir_fd_);
  }

  std::string dir_;
  int dir_fd_ = -1;
  InstallVars vars_;
};

TEST_F(AnInstallCommand, RunsInTheReleaseDirectoryWithPlaceholdersExpanded) {
  auto config = Shell("pwd; echo \"$1 $2 $3\"; touch built");
  config.argv.insert(config.argv.end(), {"sh", "{release_dir}/venv", "{version}", "{release_id}"});
  auto out = Run(config);
  ASSERT_TRUE(out) << out.error().message;
  std::string real_dir = fs::canonical(dir_).string();
  EXPECT_EQ(out->output, real_dir + "\n" + dir_ + "/venv 1.2.3 0123456789abcdef\n");
  EXPECT_FALSE(out->truncated);
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "built"));
}

TEST_F(AnInstallCommand, ReportsANonZeroExitWithItsStatusAndOutputTail) {
  auto out = Run(Shell("echo building; echo 'pip: no such package' >&2; exit 3"));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-failed");
  EXPECT_NE(out.error().message.find("status 3"), std::string::npos);
  EXPECT_NE(out.error().message.find("pip: no such package"), std::string::npos);
  EXPECT_NE(out.error().message.find("building"), std::string::npos);
}

TEST_F(AnInstallCommand, ReportsDeathBySignal) {
  auto out = Run(Shell("kill -SEGV $$"));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-failed");
  EXPECT_NE(out.error().message.find("signal 11"), std::string::npos);
}

TEST_F(AnInstallCommand, ReportsAProgramThatCannotStart) {
  InstallCommandConfig config;
  config.argv = {"/nonexistent/program"};
  auto out = Run(config);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-spawn");
}

TEST_F(AnInstallCommand, KillsTheWholeProcessGroupOnTimeout) {
  fs::path pid_file = fs::path(dir_) / "grandchild.pid";
  // The grandchild ignores SIGTERM, so only the group SIGKILL ends it.
  // "started" is printed once the grandchild has written its pid; "ended-by-itself" only if
  // the command outlived its 60 s sleep, i.e. was not cut off at the timeout.
  auto config = Shell(
      "mkfifo ready; (trap '' TERM; sh -c 'echo $$ > grandchild.pid; "
      "echo > ready; trap \"\" TERM; while :; do sleep 1; done' &); "
      "read line < ready; echo started; sleep 60; echo ended-by-itself");
  config.timeout = milliseconds(500);
  auto out = Run(config);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-timeout");
  EXPECT_EQ(out.error().code, ErrorCode::kTimeout);
  EXPECT_NE(out.error().message.find("started"), std::string::npos);
  EXPECT_EQ(out.error().message.find("ended-by-itself"), std::string::npos);
  std::string pid_text;
  std::ifstream(pid_file) >> pid_text;
  ASSERT_FALSE(pid_text.empty());
  pid_t grandchild = std::stoi(pid_text);
  EXPECT_TRUE(test::WaitForExit(grandchild)) << "grandchild " << grandchild << " survived";
  EXPECT_FALSE(IsAlive(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST_F(AnInstallCommand, KillsWhatASuccessfulCommandLeftRunning) {
  // The command exits once the background process has written its pid (the fifo says so).
  auto out =
      Run(Shell("mkfifo ready; sh -c 'echo $$ > bg.pid; echo > ready; exec sleep 60' & "
                "read line < ready; exit 0"));
  ASSERT_TRUE(out) << out.error().message;
  std::string pid_text;
  std::ifstream(fs::path(dir_) / "bg.pid") >> pid_text;
  ASSERT_FALSE(pid_text.empty());
  pid_t bg = std::stoi(pid_text);
  EXPECT_TRUE(test::WaitForExit(bg)) << "background process " << bg << " survived";
  EXPECT_FALSE(IsAlive(bg));
}

TEST_F(AnInstallCommand, KeepsOnlyTheTailOfAnOutputFlood) {
  auto config = Shell("head -c 20000000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END");
  config.output_cap = 64 * 1024;
  auto out = Run(config);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->truncated);
  EXPECT_LT(out->output.size(), 64 * 1024 + 100);
  EXPECT_NE(out->output.find("truncated"), std::string::npos);
  EXPECT_TRUE(out->output.ends_with("THE-END\n"));
}

TEST_F(AnInstallCommand, SeesOnlyTheSanitisedEnvironment) {
  setenv("DECNET_TEST_SECRET", "hunter2", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "hunter3", 1);
  auto config = Shell("env | sort");
  config.env = {{"PIP_INDEX_URL", "https://pypi.internal/{version}"}, {"LANG", "C"}};
  auto out = Run(config);
  unsetenv("DECNET_TEST_SECRET");
  unsetenv("AWS_SECRET_ACCESS_KEY");
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->output.find("hunter"), std::string::npos) << out->output;
  EXPECT_NE(out->output.find("PATH=/usr/bin:/bin\n"), std::string::npos);
  EXPECT_NE(out->output.find("HOME=" + dir_ + "\n"), std::string::npos);
  EXPECT_NE(out->output.find("LANG=C\n"), std::string::npos);
  EXPECT_NE(out->output.find("PIP_INDEX_URL=https://pypi.internal/1.2.3\n"), std::string::npos);
}

TEST_F(AnInstallCommand, InheritsNoFileDescriptorButStdio) {
  int leaked = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 3);
  auto out = Run(Shell("ls /proc/self/fd | sort -n | tr '\\n' ' '"));
  close(leaked);
  ASSERT_TRUE(out) << out.error().message;
  // 0, 1, 2 and the fd ls itself uses to read the directory.
  EXPECT_EQ(out->output, "0 1 2 3 ");
}

TEST_F(AnInstallCommand, ReadsNothingFromStdin) {
  auto out = Run(Shell("cat; echo done"));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->output, "done\n");
}

TEST(AnInstallCommandConfig, RefusesEachBadConfiguration) {
  struct Row {
    const char* name;
    InstallCommandConfig config;
  };
  auto with = [](std::vector<std::string> argv) {
    InstallCommandConfig c;
    c.argv = std::move(argv);
    return c;
  };
  InstallCommandConfig bad_env = with({"/bin/true"});
  bad_env.env = {{"1BAD", "x"}};
  InstallCommandConfig eq_env = with({"/bin/true"});
  eq_env.env = {{"A=B", "x"}};
  InstallCommandConfig placeholder_env = with({"/bin/true"});
  placeholder_env.env = {{"A", "{secret}"}};
  InstallCommandConfig zero_timeout = with({"/bin/true"});
  zero_timeout.timeout = milliseconds(0);
  InstallCommandConfig zero_cap = with({"/bin/true"});
  zero_cap.output_cap = 0;
  const Row kRows[] = {
      {"empty argv", with({})},
      {"relative program", with({"pip", "install"})},
      {"empty program", with({""})},
      {"unknown placeholder", with({"/bin/true", "{home}"})},
      {"unterminated placeholder", with({"/bin/true", "{release_dir"})},
      {"stray brace", with({"/bin/true", "a}"})},
      {"nul in argument", with({"/bin/true", std::string("a\0b", 3)})},
      {"bad env name", bad_env},
      {"env name with =", eq_env},
      {"env placeholder", placeholder_env},
      {"zero timeout", zero_timeout},
      {"zero cap", zero_cap},
  };
  for (const auto& row : kRows) {
    auto valid = ValidateInstallCommand(row.config);
    ASSERT_FALSE(valid) << row.name;
    EXPECT_EQ(valid.error().rule, "install-config") << row.name;
  }
  EXPECT_TRUE(ValidateInstallCommand(with({"/usr/bin/python3", "-m", "venv", "{release_dir}"})));
}

}  // namespace
}  // namespace decnet::daemon
