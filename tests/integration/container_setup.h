// What the tests that run the shipped unit in a throw-away container (testbed.h) make on the host
// before it boots, and how they reach it once it runs: files and directories with the owner and
// mode they have inside, the cached root filesystem, the host's copies of the libraries it
// lacks, the daemon's user in its passwd and group, the shipped unit and the built helper at
// their installed paths, commands run next to the container's systemd, and two fixtures that
// own the container (TestbedShellTest, FilesThenContainerTest).
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/testbed.h"
#include "tests/support/shell.h"

#ifndef DECNET_SOURCE_DIR
#error "DECNET_SOURCE_DIR must name the source tree"
#endif

namespace decnet::test {

// Where the package installs the unit file and the helper (the helper is the unit's ExecStart=).
inline constexpr char kShippedUnitPath[] = "/usr/lib/systemd/system/decnet-updater.service";
inline constexpr char kInstalledHelper[] = "/usr/libexec/decnet-updater/decnet-update-helper";

// The units' user (decnet) of the cached root filesystem, as the owner of files made for it.
inline constexpr uid_t kContainerDecnetUid = 990;

// An nspawn argument that gives the container what a host's systemd allows and nspawn's own
// filter refuses: the Landlock calls (without them the helper runs unconfined by Landlock,
// silently) and bpf(2) (without it the container's systemd cannot apply IPAddressDeny=).
inline constexpr char kHostSystemCallFilter[] =
    "--system-call-filter=landlock_create_ruleset landlock_add_rule landlock_restrict_self bpf";

// Writes `content` to `path` (replacing it), then gives it `mode` and the owner uid:gid (numbers:
// the container's names are not the host's). A test failure when the owner cannot be set.
inline void WriteFile(const std::filesystem::path& path, const std::string& content, mode_t mode,
                      uid_t uid = 0, gid_t gid = 0) {
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; }
  ::chmod(path.c_str(), mode);
  if (::chown(path.c_str(), uid, gid) != 0) ADD_FAILURE() << "chown " << path;
}

// Makes `path` and its missing parents, then gives `path` (not the parents) `mode` and the owner
// uid:gid. A test failure when the owner cannot be set.
inline void MakeDir(const std::filesystem::path& path, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
  std::filesystem::create_directories(path);
  ::chmod(path.c_str(), mode);
  if (::chown(path.c_str(), uid, gid) != 0) ADD_FAILURE() << "chown " << path;
}

// The Landlock ABI version this kernel offers; 0 when it has none.
inline int KernelLandlockAbi() {
  const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, 1U /* VERSION */);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

// The cached root filesystem the container will boot (scripts/testbed/rootfs.sh prints its path
// last). A test failure when that path has no etc/.
inline std::filesystem::path CachedRootfs() {
  const CommandRun printed =
      RunCommand("bash " DECNET_SOURCE_DIR "/scripts/testbed/rootfs.sh --print-path 2>/dev/null");
  std::string last = printed.output;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  const std::filesystem::path rootfs = last.substr(last.rfind('\n') + 1);
  EXPECT_TRUE(std::filesystem::is_directory(rootfs / "etc")) << "rootfs.sh: " << printed.output;
  return rootfs;
}

// The host's copies of the shared libraries the `binaries` need that `rootfs` lacks (the same
// Debian release), as nspawn arguments binding each read-only into the container's library
// directory, each once. Empty names are passed over; a test failure when ldd fails on one.
inline std::vector<std::string> MissingLibraryBinds(const std::vector<std::string>& binaries,
                                                    const std::filesystem::path& rootfs) {
  constexpr char kLibDir[] = "/usr/lib/x86_64-linux-gnu";
  std::vector<std::string> binds;
  std::set<std::string> seen;
  for (const std::string& binary : binaries) {
    if (binary.empty()) continue;
    const CommandRun ldd = RunCommand("ldd " + Quote(binary));
    EXPECT_EQ(ldd.status, 0) << binary << ": " << ldd.output;
    std::istringstream lines(ldd.output);
    for (std::string line; std::getline(lines, line);) {
      const size_t arrow = line.find("=> /");
      if (arrow == std::string::npos) continue;
      std::string path = line.substr(arrow + 3);
      path = path.substr(0, path.find(' '));
      const std::string soname = std::filesystem::path(path).filename().string();
      if (std::filesystem::exists(rootfs / "usr/lib/x86_64-linux-gnu" / soname)) continue;
      std::string bind =
          "--bind-ro=" + std::filesystem::canonical(path).string() + ":" + kLibDir + "/" + soname;
      if (seen.insert(bind).second) binds.push_back(std::move(bind));
    }
  }
  return binds;
}

// The daemon's user decnet-updater (uid:gid) and its group added to `rootfs`'s /etc/passwd and
// /etc/group, as systemd-sysusers adds them from the package's sysusers file: written to
// DIR/passwd and DIR/group and returned as nspawn arguments binding them over the container's
// (the cached root filesystem is never changed).
inline std::vector<std::string> DaemonUserBinds(const std::filesystem::path& rootfs,
                                                const std::filesystem::path& dir, uid_t uid,
                                                gid_t gid) {
  WriteFile(dir / "passwd",
            ReadFile(rootfs / "etc/passwd") + "decnet-updater:x:" + std::to_string(uid) + ":" +
                std::to_string(gid) +
                ":DECNET updater daemon:/var/lib/decnet-updater:/usr/sbin/nologin\n",
            0644);
  WriteFile(dir / "group",
            ReadFile(rootfs / "etc/group") + "decnet-updater:x:" + std::to_string(gid) + ":\n",
            0644);
  return {"--bind-ro=" + (dir / "passwd").string() + ":/etc/passwd",
          "--bind-ro=" + (dir / "group").string() + ":/etc/group"};
}

// nspawn arguments putting the shipped unit file (systemd/decnet-updater.service, no drop-in)
// and the built helper `helper_binary` where the package installs them.
inline std::vector<std::string> ShippedUnitBinds(const std::string& helper_binary) {
  return {
      "--bind-ro=" DECNET_SOURCE_DIR "/systemd/decnet-updater.service:" +
          std::string(kShippedUnitPath),
      "--bind-ro=" + helper_binary + ":" + kInstalledHelper,
  };
}

// The daemon `daemon_binary` packed with `version` into `out_dir` as the `updater-build` target
// packs it (scripts/pack-updater-build.sh); the script's run.
inline CommandRun PackUpdaterBuild(const std::string& daemon_binary, const std::string& version,
                                   const std::filesystem::path& out_dir) {
  return RunCommand("bash " DECNET_SOURCE_DIR "/scripts/pack-updater-build.sh --binary " +
                    Quote(daemon_binary) + " --version " + Quote(version) +
                    " --source-dir " DECNET_SOURCE_DIR " --out-dir " + Quote(out_dir.string()));
}

// The host pid of the container's PID 1 (the only child of nspawn, whose pid the testbed keeps
// in its work directory); 0 when it cannot be found.
inline pid_t ContainerInitPid(const Testbed& testbed) {
  const int nspawn = std::atoi(ReadFile(testbed.workdir() / "nspawn.pid").c_str());
  const std::string task = "/proc/" + std::to_string(nspawn) + "/task/" + std::to_string(nspawn);
  return std::atoi(ReadFile(task + "/children").c_str());
}

// `command` run by sh inside the container whose PID 1 is `init` (its mount, UTS, IPC and pid
// namespaces), as root, in a clean environment (this process's bus address is a host path):
// PATH, then `extra_env` (assignments such as "LANG=C.UTF-8"; "" for none).
inline CommandRun RunInContainer(pid_t init, const std::string& command,
                                 const std::string& extra_env = "") {
  return RunCommand("nsenter -t " + std::to_string(init) +
                    " -m -u -i -p -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin " +
                    (extra_env.empty() ? "" : extra_env + " ") + "sh -c " + Quote(command));
}

// A TestbedTest (one container per test, booted by the fixture) that also finds the
// container's PID 1 and runs commands next to its systemd. A fatal failure in SetUp when the
// PID 1 cannot be found.
class TestbedShellTest : public TestbedTest {
 protected:
  void SetUp() override {
    TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    init_pid_ = ContainerInitPid(testbed());
    ASSERT_GT(init_pid_, 0) << "cannot find the container's PID 1";
  }

  // RunInContainer in this test's container.
  CommandRun InContainer(const std::string& command) { return RunInContainer(init_pid_, command); }

  pid_t init_pid_ = -1;
};

// A fixture for tests that make a container's files before it boots: a work directory, then one
// container with its PID 1 found. TearDown prints UnitJournal() and the container's console when
// the test failed, stops the container (a test failure when it does not stop) and removes the
// work directory.
class FilesThenContainerTest : public ::testing::Test {
 protected:
  // Makes root_, a fresh TMPDIR/PREFIX-XXXXXX open to all (0755). A fatal failure otherwise.
  void MakeWorkDir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    ::chmod(root_.c_str(), 0755);
  }

  // Boots testbed_ with `options` and finds its PID 1. A fatal failure when either fails.
  void Boot(const Testbed::Options& options) {
    auto started = Testbed::Start(options);
    ASSERT_TRUE(started.has_value()) << started.error();
    testbed_ = std::move(*started);
    container_init_ = ContainerInitPid(*testbed_);
    ASSERT_GT(container_init_, 0) << "cannot find the container's PID 1";
  }

  void TearDown() override {
    if (testbed_) {
      if (HasFailure()) {
        std::cerr << "--- the unit's journal ---\n"
                  << UnitJournal() << "--- console ---\n"
                  << testbed_->ConsoleLog();
      }
      if (auto stopped = testbed_->Stop(); !stopped) ADD_FAILURE() << stopped.error();
      testbed_.reset();
    }
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }

  // What the test's unit wrote to the container's journal, printed when the test failed.
  virtual std::string UnitJournal() = 0;

  std::filesystem::path root_;
  std::unique_ptr<Testbed> testbed_;
  pid_t container_init_ = -1;
};

}  // namespace decnet::test
