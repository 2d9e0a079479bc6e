// decnet-updaterd's start-up checks: arguments, never root, fd 3 must be the helper's pair.
#include "daemon/daemon_main.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
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
      {"--config"},  {"--config="}, {"--config", ""},
      {"--verbose"}, {"x"},         {"--config", "/a", "--config", "/b"},
      {"-c", "/a"}};
  for (const auto& args : bad) {
    auto parsed = Parse(args);
    ASSERT_FALSE(parsed.has_value()) << args.size();
    EXPECT_EQ(parsed.error().rule, "daemon-args");
  }
}

TEST(DaemonArgsParse, TakesVersionAloneAndAnInstallBuildBesideAConfig) {
  EXPECT_TRUE(Parse({"--version"})->version_only);
  auto install = Parse({"--install-build", "/t.tar.gz", "--config=/c.json"});
  ASSERT_TRUE(install) << install.error().message;
  EXPECT_EQ(install->install_build, "/t.tar.gz");
  EXPECT_EQ(install->config_path, "/c.json");
  EXPECT_FALSE(install->version_only);
  for (const auto& bad :
       std::vector<std::vector<const char*>>{{"--version", "--config", "/c"},
                                             {"--install-build"},
                                             {"--install-build="},
                                             {"--install-build", "/a", "--install-build", "/b"}}) {
    auto parsed = Parse(bad);
    ASSERT_FALSE(parsed.has_value()) << bad[0];
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

// The first build of a host, installed by the decnet-updater user with update-self's checks.
TEST(TheDaemonBinary, InstallsItsOwnFirstBuildAsTheUnprivilegedUserWithUpdateSelfsChecks) {
  ASSERT_EQ(::geteuid(), 0u) << "runs the binary as another user through setpriv";
  const passwd* user = ::getpwnam("decnet-updater");
  ASSERT_NE(user, nullptr) << "scripts/setup.sh creates the decnet-updater user";
  char tmpl[] = "/tmp/decnet-install-build.XXXXXX";
  const std::filesystem::path root = ::mkdtemp(tmpl);
  ::chmod(root.c_str(), 0755);
  const auto store = root / "updater";
  std::filesystem::create_directories(store);
  ASSERT_EQ(::chown(store.c_str(), user->pw_uid, user->pw_gid), 0);
  std::ofstream(root / "daemon.json") << "{\"updater_dir\":\"" << store.string() << "\"}";
  auto pack = [&](const std::string& name, bool manifest) {
    const auto tree = root / name;
    std::filesystem::create_directories(tree / "bin");
    std::filesystem::copy_file(std::string(DECNET_BINARY_DIR) + "/daemon/decnet-updaterd",
                               tree / "bin/decnet-updaterd");
    if (manifest) {
      struct utsname u {};
      ::uname(&u);
      std::ofstream(tree / ".decnet-release.json")
          << "{\"format\":1,\"version\":\"1.2.3\",\"kind\":\"updater\",\"arch\":\"" << u.machine
          << "\",\"helper_protocol\":1}";
    }
    const std::string tarball = (root / (name + ".tar.gz")).string();
    EXPECT_EQ(
        std::system(("tar -C " + tree.string() + " -czf " + tarball + " . && chmod 0644 " + tarball)
                        .c_str()),
        0);
    return tarball;
  };
  const std::string as_user =
      "setpriv --reuid=decnet-updater --regid=decnet-updater "
      "--clear-groups ";
  auto install = [&](const std::string& tarball) {
    std::string cmd = as_user + std::string(DECNET_BINARY_DIR) + "/daemon/decnet-updaterd " +
                      "--config " + (root / "daemon.json").string() + " --install-build " +
                      tarball + " 2>&1";
    Ran ran;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    char buf[1024];
    for (size_t n; pipe && (n = fread(buf, 1, sizeof buf, pipe)) > 0;) ran.out.append(buf, n);
    const int status = pipe ? ::pclose(pipe) : -1;
    ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return ran;
  };

  // As root it refuses before reading anything: the store must stay the daemon's.
  const std::string tarball = pack("build-as-root", true);
  FILE* as_root =
      ::popen((std::string(DECNET_BINARY_DIR) + "/daemon/decnet-updaterd --config " +
               (root / "daemon.json").string() + " --install-build " + tarball + " 2>&1")
                  .c_str(),
              "r");
  std::string root_out;
  char chunk[512];
  for (size_t n; as_root && (n = fread(chunk, 1, sizeof chunk, as_root)) > 0;)
    root_out.append(chunk, n);
  const int root_status = as_root ? ::pclose(as_root) : -1;
  EXPECT_TRUE(WIFEXITED(root_status) && WEXITSTATUS(root_status) == 1) << root_out;
  EXPECT_NE(root_out.find("daemon-root"), std::string::npos) << root_out;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(store / "current")));

  Ran decnet_tree = install(pack("python-tree", false));
  EXPECT_EQ(decnet_tree.exit_code, 1);
  EXPECT_NE(decnet_tree.out.find("update-self-manifest"), std::string::npos) << decnet_tree.out;
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(store / "current")));

  Ran build = install(pack("build", true));
  EXPECT_EQ(build.exit_code, 0) << build.out;
  EXPECT_NE(build.out.find("version 1.2.3"), std::string::npos) << build.out;
  const auto binary = store / "current/bin/decnet-updaterd";
  struct stat st {};
  ASSERT_EQ(::stat(binary.c_str(), &st), 0) << build.out;
  EXPECT_EQ(st.st_uid, user->pw_uid) << "the daemon owns its own builds";
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace decnet::daemon
