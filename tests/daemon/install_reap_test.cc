// An install command's process group is gone when RunInstallCommand returns: the command and
// everything it started are killed and reaped, so not even a zombie is left behind. The test
// process is a child subreaper, as the daemon becomes one, so every orphan of the command is
// re-parented to it and would stay a zombie if nobody reaped it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/install_command.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

struct Proc {
  pid_t pid;
  char state;
};

// Every process (zombies included) whose process group is `pgid`.
std::vector<Proc> GroupMembers(pid_t pgid) {
  std::vector<Proc> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) continue;
    char state = line[paren + 2];
    int ppid = 0;
    int pgrp = 0;
    if (std::sscanf(line.c_str() + paren + 3, " %*c %d %d", &ppid, &pgrp) != 2) continue;
    if (pgrp == pgid) out.push_back({static_cast<pid_t>(std::stoi(name)), state});
  }
  return out;
}

std::string Describe(const std::vector<Proc>& procs) {
  std::string out;
  for (const auto& p : procs) out += std::to_string(p.pid) + "(" + p.state + ") ";
  return out;
}

class AnInstallCommandGroup : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    std::string tmpl = (fs::temp_directory_path() / "decnet-reap-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    dir_fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir_fd_, 0);
  }
  void TearDown() override {
    close(dir_fd_);
    fs::remove_all(dir_);
  }

  Result<InstallOutput> Run(const std::string& script, milliseconds timeout) {
    InstallCommandConfig config;
    config.argv = {"/bin/sh", "-c", script};
    config.timeout = timeout;
    config.kill_grace = milliseconds(200);
    return RunInstallCommand(config, InstallVars{dir_, "0123456789abcdef", "1", ""}, dir_fd_);
  }
  // The command's process group: the pid of the shell, which it wrote to group.pid.
  pid_t Group() {
    std::string text;
    std::ifstream(fs::path(dir_) / "group.pid") >> text;
    EXPECT_FALSE(text.empty());
    return text.empty() ? -1 : std::stoi(text);
  }

  std::string dir_;
  int dir_fd_ = -1;
};

TEST_F(AnInstallCommandGroup, LeavesNoZombieWhenAHangingCommandIsKilled) {
  // The shell waits on a child that ignores SIGTERM, which has a child of its own.
  auto out =
      Run("echo $$ > group.pid; (trap '' TERM; sleep 60 & sleep 60) & sleep 60", milliseconds(300));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-timeout");
  const pid_t group = Group();
  ASSERT_GT(group, 0);
  auto left = GroupMembers(group);
  EXPECT_TRUE(left.empty()) << "left behind: " << Describe(left);
}

TEST_F(AnInstallCommandGroup, LeavesNoZombieOfWhatASuccessfulCommandStarted) {
  auto out = Run("echo $$ > group.pid; sleep 60 & sh -c 'sleep 60' & exit 0", milliseconds(10'000));
  ASSERT_TRUE(out) << out.error().message;
  const pid_t group = Group();
  ASSERT_GT(group, 0);
  auto left = GroupMembers(group);
  EXPECT_TRUE(left.empty()) << "left behind: " << Describe(left);
}

TEST_F(AnInstallCommandGroup, LeavesNoZombieWhenTheCommandDiesAndItsChildrenLinger) {
  auto out =
      Run("echo $$ > group.pid; (trap '' TERM; sleep 60) & kill -KILL $$", milliseconds(10'000));
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-failed");
  const pid_t group = Group();
  ASSERT_GT(group, 0);
  auto left = GroupMembers(group);
  EXPECT_TRUE(left.empty()) << "left behind: " << Describe(left);
}

// The daemon is not a subreaper by itself: running a command makes it one, so that what the
// command leaves is re-parented to it (and reaped there) rather than to whatever init runs.
TEST(AnInstallCommandCaller, BecomesTheReaperOfWhatTheCommandLeaves) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int before = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &before, 0, 0, 0);
    InstallCommandConfig config;
    config.argv = {"/bin/true"};
    const int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    auto out = RunInstallCommand(config, InstallVars{"/", "0123456789abcdef", "1", ""}, dir);
    int after = -1;
    prctl(PR_GET_CHILD_SUBREAPER, &after, 0, 0, 0);
    _exit(before == 0 && out && after == 1 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "not a subreaper after running a command";
}

}  // namespace
}  // namespace decnet::daemon
