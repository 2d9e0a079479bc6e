// The built-in Python installer on DECNET-like trees made at test time (a pyproject.toml with
// the setuptools backend, package `decnet`, console script `decnet` printing its version),
// with the system's Python, confined, and no package index unless a test serves one on
// loopback (python3 -m http.server over a simple-index directory of wheels built here).
#include "daemon/python_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.h"
#include "daemon/release_install.h"
#include "tests/support/python_index.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using decnet::test::BuildDependencyWheel;
using decnet::test::LocalIndex;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a shell command; returns its exit status and output.
std::pair<int, std::string> Shell(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>&1").c_str(), "r"), pclose);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  int status = pclose(pipe.release());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// A DECNET-like tree: package `decnet`, console script `decnet` printing "decnet VERSION".
void WriteDecnetTree(const std::string& dir, const std::string& version,
                     const std::vector<std::string>& deps) {
  fs::create_directories(dir + "/decnet");
  std::string dep_list;
  for (const auto& d : deps) dep_list += "\"" + d + "\", ";
  std::ofstream(dir + "/pyproject.toml")
      << "[build-system]\nrequires = [\"setuptools>=40.8.0\", \"wheel\"]\n"
      << "build-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"decnet\"\n"
      << "version = \"" << version << "\"\nrequires-python = \">=3.11\"\n"
      << "dependencies = [" << dep_list << "]\n\n[project.scripts]\n"
      << "decnet = \"decnet.cli:main\"\n\n[tool.setuptools]\npackages = [\"decnet\"]\n";
  std::ofstream(dir + "/decnet/__init__.py") << "__version__ = \"" << version << "\"\n";
  std::ofstream(dir + "/decnet/cli.py")
      << "import sys\nfrom decnet import __version__\n\n\ndef main():\n"
      << "    if sys.argv[1:] == [\"deps\"]:\n"
      << "        import importlib.metadata as m\n"
      << "        print(sorted(d.metadata['Name'] for d in m.distributions()))\n"
      << "        return\n    print(\"decnet\", __version__)\n";
}

// User and system CPU time of this process's reaped children.
double ChildCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

class APythonRelease : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "decnet-wheels-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    wheels_ = tmpl;
    for (const char* name : {"tinydep", "newdep"}) {
      BuildDependencyWheel(wheels_, name, wheels_ + "/dist");
    }
  }
  static void TearDownTestSuite() { fs::remove_all(wheels_); }

  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "decnet-pyenv-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    store_ = root_ + "/opt/decnet";
    fs::create_directories(store_ + "/releases");
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Wheel(const std::string& name) const {
    return wheels_ + "/dist/" + name + "-1.0-py3-none-any.whl";
  }

  std::string NewRelease(const std::string& id, const std::string& version,
                         const std::vector<std::string>& deps) {
    const std::string dir = store_ + "/releases/" + id;
    WriteDecnetTree(dir, version, deps);
    return dir;
  }

  Result<InstallOutput> Install(const std::string& dir, const std::string& index = "") {
    PythonEnvConfig config;
    config.wheelhouse = store_ + "/wheelhouse";
    config.package_index = index;
    config.timeout = std::chrono::seconds(300);
    const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    const std::string id = fs::path(dir).filename().string();
    auto out = InstallPythonRelease(config, InstallVars{dir, id, "v", ""}, fd);
    close(fd);
    return out;
  }

  std::set<std::string> Wheelhouse() const {
    std::set<std::string> names;
    if (!fs::exists(store_ + "/wheelhouse")) return names;
    for (const auto& e : fs::directory_iterator(store_ + "/wheelhouse")) {
      names.insert(e.path().filename().string());
    }
    return names;
  }

  static std::string wheels_;
  std::string root_;
  std::string store_;
};

std::string APythonRelease::wheels_;

TEST_F(APythonRelease, GetsItsOwnEnvironmentWhoseConsoleScriptRunsWithNoIndex) {
  const std::string dir = NewRelease("1111111111111111", "1.0.0", {});
  auto out = Install(dir);
  ASSERT_TRUE(out) << out.error().rule << ": " << out.error().message;
  auto [code, text] = Shell(dir + "/.venv/bin/decnet");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(text, "decnet 1.0.0\n");
  EXPECT_EQ(fs::read_symlink(dir + "/.venv/bin/python").string().find("python3"), 0u)
      << "made with the system Python";
  EXPECT_FALSE(fs::exists(dir + "/.decnet-build")) << "the build directory is removed";
  EXPECT_FALSE(fs::exists(dir + "/.decnet-tmp"));
}

TEST_F(APythonRelease, WithUnchangedDependenciesInstallsFromTheWheelhouseWithNoIndex) {
  LocalIndex index(root_ + "/index", {Wheel("tinydep")});
  const std::string first = NewRelease("2222222222222222", "1.0.0", {"tinydep>=1"});
  auto out = Install(first, index.url());
  ASSERT_TRUE(out) << out.error().rule << ": " << out.error().message;
  EXPECT_TRUE(Wheelhouse().contains("tinydep-1.0-py3-none-any.whl"));
  index.Stop();
  const std::string second = NewRelease("3333333333333333", "1.0.1", {"tinydep>=1"});
  const auto start = Clock::now();
  const double cpu_before = ChildCpuSeconds();
  auto again = Install(second);  // no index at all
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = ChildCpuSeconds() - cpu_before;
  ASSERT_TRUE(again) << again.error().rule << ": " << again.error().message;
  std::printf("no-change-deps update, no index: %.1f s (%.1f s of CPU)\n", seconds, cpu);
  RecordProperty("no_change_deps_update_seconds", std::to_string(seconds));
  EXPECT_EQ(Shell(second + "/.venv/bin/decnet").second, "decnet 1.0.1\n");
  EXPECT_NE(Shell(second + "/.venv/bin/decnet deps").second.find("tinydep"), std::string::npos);
  // Each release keeps its own: the first still runs its own code.
  EXPECT_EQ(Shell(first + "/.venv/bin/decnet").second, "decnet 1.0.0\n");
}

TEST_F(APythonRelease, MissingFromTheWheelhouseWithNoIndexFailsNamingTheRequirement) {
  const std::string dir = NewRelease("4444444444444444", "1.0.0", {"absentdep>=2"});
  const auto before = Wheelhouse();
  auto out = Install(dir);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-requirement-missing");
  EXPECT_NE(out.error().message.find("requires absentdep>=2"), std::string::npos)
      << out.error().message;
  EXPECT_NE(out.error().message.find("no package index is configured"), std::string::npos);
  EXPECT_NE(out.error().message.find("No matching distribution found for absentdep>=2"),
            std::string::npos)
      << "the output is returned";
  EXPECT_EQ(Wheelhouse(), before);
}

TEST_F(APythonRelease, ReachesAConfiguredIndexForANewRequirementAndKeepsIt) {
  LocalIndex index(root_ + "/index", {Wheel("newdep")});
  const std::string offline = NewRelease("5555555555555555", "2.0.0", {"newdep"});
  auto refused = Install(offline);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "install-requirement-missing");
  const std::string online = NewRelease("6666666666666666", "2.0.0", {"newdep"});
  auto out = Install(online, index.url());
  ASSERT_TRUE(out) << out.error().rule << ": " << out.error().message;
  EXPECT_EQ(Shell(online + "/.venv/bin/decnet").second, "decnet 2.0.0\n");
  EXPECT_TRUE(Wheelhouse().contains("newdep-1.0-py3-none-any.whl"));
  EXPECT_FALSE(Wheelhouse().contains("decnet-2.0.0-py3-none-any.whl"))
      << "the release's own wheel is not a dependency";
}

TEST_F(APythonRelease, MissingFromBothWheelhouseAndIndexFailsNamingBoth) {
  LocalIndex index(root_ + "/index", {Wheel("tinydep")});
  const std::string dir = NewRelease("7777777777777777", "1.0.0", {"ghostdep"});
  auto out = Install(dir, index.url());
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-requirement-missing");
  EXPECT_NE(out.error().message.find("requires ghostdep"), std::string::npos);
  EXPECT_NE(out.error().message.find("nor on the package index " + index.url()), std::string::npos)
      << out.error().message;
}

TEST_F(APythonRelease, ThatCannotBeBuiltFailsWithTheInstallersOutput) {
  const std::string dir = NewRelease("8888888888888888", "1.0.0", {});
  std::ofstream(dir + "/pyproject.toml", std::ios::app) << "[broken\n";
  auto out = Install(dir);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-failed");
  EXPECT_NE(out.error().message.find("TOMLDecodeError"), std::string::npos) << out.error().message;
}

TEST_F(APythonRelease, IsBoundedInTime) {
  const std::string dir = NewRelease("9999999999999999", "1.0.0", {});
  PythonEnvConfig config;
  config.wheelhouse = store_ + "/wheelhouse";
  config.timeout = std::chrono::milliseconds(300);
  config.kill_grace = std::chrono::milliseconds(100);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  auto out = InstallPythonRelease(config, InstallVars{dir, "9999999999999999", "v", ""}, fd);
  close(fd);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().rule, "install-timeout");
  EXPECT_EQ(out.error().code, ErrorCode::kTimeout);
}

// The default configuration installs a Python tree with the built-in installer, and nothing
// for a tree that is not one; a configured install command still takes precedence.
TEST_F(APythonRelease, IsInstalledByDefaultWhenNoInstallCommandIsConfigured) {
  DaemonConfig config;
  EXPECT_EQ(config.links.front().target, ".venv/bin/decnet");
  const std::string dir = NewRelease("aaaaaaaaaaaaaaaa", "3.0.0", {});
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_EQ(PlanReleaseInstall(config, fd), InstallKind::kPython);
  auto out = InstallRelease(config, store_, InstallVars{dir, "aaaaaaaaaaaaaaaa", "3.0.0", ""}, fd);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(Shell(dir + "/.venv/bin/decnet").second, "decnet 3.0.0\n");
  EXPECT_TRUE(fs::is_directory(WheelhouseDir(store_)));
  config.install_command = {"/bin/sh", "-c", "echo custom > built"};
  EXPECT_EQ(PlanReleaseInstall(config, fd), InstallKind::kCommand);
  ASSERT_TRUE(
      InstallRelease(config, store_, InstallVars{dir, "aaaaaaaaaaaaaaaa", "3.0.0", ""}, fd));
  EXPECT_EQ(Slurp(dir + "/built"), "custom\n");
  close(fd);
  const std::string plain = store_ + "/releases/bbbbbbbbbbbbbbbb";
  fs::create_directories(plain + "/bin");
  const int plain_fd = open(plain.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_EQ(PlanReleaseInstall(DaemonConfig{}, plain_fd), InstallKind::kNone);
  close(plain_fd);
}

TEST(PipOutput, NamesTheMissingRequirement) {
  struct Row {
    const char* output;
    const char* missing;
  };
  const Row kRows[] = {
      {"ERROR: Could not find a version that satisfies the requirement foo>=1 (from versions: "
       "none)\nERROR: No matching distribution found for foo>=1\n",
       "foo>=1"},
      {"ERROR: No matching distribution found for bar\r\n", "bar"},
      {"No matching distribution found for a\nNo matching distribution found for b\n", "b"},
      {"ERROR: No matching distribution found for setuptools>=68", "setuptools>=68"},
      {"", ""},
      {"ERROR: Could not build wheels for decnet\n", ""},
      {"No matching distribution found for \n", ""},
      {"no matching distribution found for lower\n", ""},
  };
  for (const Row& row : kRows) EXPECT_EQ(MissingRequirement(row.output), row.missing) << row.output;
}

TEST(APackageIndexUrl, GivesItsPortOrIsRefused) {
  EXPECT_EQ(PackageIndexPort("http://127.0.0.1:8080/simple").value_or(0), 8080);
  EXPECT_EQ(PackageIndexPort("https://pypi.example/simple").value_or(0), 443);
  EXPECT_EQ(PackageIndexPort("http://mirror.lan/simple/").value_or(0), 80);
  EXPECT_EQ(PackageIndexPort("http://[::1]/simple").value_or(0), 80);
  EXPECT_EQ(PackageIndexPort("http://[::1]:3141/root").value_or(0), 3141);
  for (const char* bad : {"", "ftp://host/simple", "http://", "http:///simple", "http://host:0/",
                          "http://host:70000/", "http://host:x/", "http://user:pw@host/",
                          "file:///srv/wheels", "host/simple"}) {
    EXPECT_FALSE(PackageIndexPort(bad)) << bad;
  }
}

}  // namespace
}  // namespace decnet::daemon
