// decnet-updaterd's start-up checks: arguments, never root, fd 3 must be the helper's pair.
#include "daemon/daemon_main.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace decnet::daemon {
namespace {

Result<DaemonArgs> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "decnet-updaterd");
  return ParseDaemonArgs(static_cast<int>(args.size()), args.data());
}

TEST(DaemonArgsParse, DefaultsToTheEtcConfig) {
  auto args = Parse({});
  ASSERT_TRUE(args.has_value());
  EXPECT_EQ(args->config_path, "/etc/decnet-updater/daemon.json");
}

TEST(DaemonArgsParse, TakesConfigInBothSpellings) {
  EXPECT_EQ(Parse({"--config", "/x.json"})->config_path, "/x.json");
  EXPECT_EQ(Parse({"--config=/y.json"})->config_path, "/y.json");
}

TEST(DaemonArgsParse, RefusesAnythingElse) {
  const std::vector<std::vector<const char*>> bad = {
      {"--config"}, {"--config="}, {"--config", ""}, {"--verbose"}, {"x"},
      {"--config", "/a", "--config", "/b"}, {"-c", "/a"}};
  for (const auto& args : bad) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.has_value()) << args.size();
    EXPECT_EQ(parsed.error().rule, "daemon-args");
  }
}

TEST(AHelperPairCheck, AcceptsASeqpacketSocketAndMarksItCloseOnExec) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
  ASSERT_TRUE(CheckHelperPair(pair[0]).has_value());
  EXPECT_TRUE(::fcntl(pair[0], F_GETFD) & FD_CLOEXEC);
  ::close(pair[0]);
  ::close(pair[1]);
}

TEST(AHelperPairCheck, RefusesAStreamSocketAFileAndAClosedFd) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  int file = ::open("/dev/null", O_RDONLY);
  for (int fd : {pair[0], file, 1000}) {
    auto checked = CheckHelperPair(fd);
    ASSERT_FALSE(checked.has_value()) << fd;
    EXPECT_EQ(checked.error().rule, "daemon-no-helper");
    EXPECT_NE(checked.error().message.find("must be started by decnet-update-helper"),
              std::string::npos);
  }
  ::close(pair[0]);
  ::close(pair[1]);
  ::close(file);
}

struct Ran {
  int exit_code = -1;
  std::string out;
};

Ran RunDaemonBinary(const std::string& prefix) {
  std::string cmd = prefix + std::string(DECNET_BINARY_DIR) + "/daemon/decnet-updaterd 2>&1 3<&-";
  Ran ran;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return ran;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) ran.out.append(buf, n);
  int status = ::pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

TEST(TheDaemonBinary, RefusesRootThenAnFd3ThatIsNotTheHelpersPair) {
  if (::geteuid() == 0) {
    Ran root = RunDaemonBinary("");
    EXPECT_EQ(root.exit_code, 1);
    EXPECT_NE(root.out.find("refuses to run as root"), std::string::npos) << root.out;
  }
  Ran unprivileged = RunDaemonBinary(
      ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "");
  EXPECT_EQ(unprivileged.exit_code, 1);
  EXPECT_NE(unprivileged.out.find("must be started by decnet-update-helper"), std::string::npos)
      << unprivileged.out;
}

}  // namespace
}  // namespace decnet::daemon
