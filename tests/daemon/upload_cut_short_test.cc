// An upload cut short by the client, not by the daemon (the daemon's own crashes, at every
// named point, are the crash matrix: tests/integration/crash_e2e_test.cc): curl pushes a
// release over mTLS to the real HttpServer and UpdaterApi, wired to the real UpdatePipeline and
// the helper's real serve loop (systemd mocked), and is killed mid-body; the spool file is
// closed and gone, nothing reached the pipeline, and the next update runs at once. Also: a
// named spool file a killed daemon left is removed when the daemon starts.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "helper/serve.h"
#include "proto/sha256.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_pki.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

extern char** environ;

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::_;
using ::testing::Return;
using namespace std::chrono_literals;

std::string UnitFile(const std::string& what) {
  return "[Unit]\nDescription=" + what +
         "\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
         "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";
}

struct Ran {
  int exit_code = -1;
  std::string out;
};

Ran Shell(const std::string& command) {
  Ran ran;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return ran;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) ran.out.append(buf, n);
  int status = ::pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// Incompressible bytes in v2: far more than the spool gathers before its first write
// (kSpoolWriteBatch) plus what loopback socket buffers hold, so a kill once bytes are on disk
// lands mid-body.
constexpr size_t kNoiseBytes = 24 << 20;

// The largest file this process holds open beneath `dir` (the spool: an O_TMPFILE file reads
// back as "dir/#123 (deleted)"), or -1 when it holds none.
long long SpoolBytesHeld(const std::string& dir) {
  long long held = -1;
  const std::string prefix = dir + "/";
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    std::string target = fs::read_symlink(e.path(), ec).string();
    if (ec || !target.starts_with(prefix)) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) held = std::max<long long>(held, st.st_size);
  }
  return held;
}

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// One run of the unit: the helper's serve loop and the daemon's pipeline in one process, the
// store opened as found (no start-up recovery).
using HostUnit = test::ServedStack<test::HealthyGate>;
const test::StackOptions kHostUnit{.client = "crash-upload", .recover = test::Recover::kNo};

using test::Tarball;

class AnUploadCutShort : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = dirs_.root() + "/opt/decnet";
    spool_ = dirs_.root() + "/daemon-state/spool";
    fs::create_directories(install_);
    fs::create_directories(dirs_.root() + "/daemon-state");
    config_.install_dir = install_;
    config_.units = {"decnet-agent.service"};
    config_.links = {{"decnet", "bin/decnet"}};
    dirs_.policy().links = {{"decnet", install_ + "/current"}};
  }

  // A release: its version file, link target and units, plus `noise` incompressible bytes so
  // that its upload takes many reads.
  Tarball Pack(const std::string& version, const std::map<std::string, std::string>& units,
               size_t noise = 0) {
    std::string tree = dirs_.root() + "/tree-" + version;
    fs::create_directories(tree + "/bin");
    std::ofstream(tree + "/VERSION") << version;
    std::ofstream(tree + "/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    if (!units.empty()) fs::create_directories(tree + "/etc/systemd/system");
    for (const auto& [n, c] : units) std::ofstream(tree + "/etc/systemd/system/" + n) << c;
    if (noise > 0) {
      std::mt19937_64 rng(42);
      std::string bytes(noise, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      std::ofstream(tree + "/noise.bin", std::ios::binary) << bytes;
    }
    return test::PackTree(tree);
  }

  void InstallV1() {
    HostUnit first;
    ASSERT_NO_FATAL_FAILURE(first.Open(dirs_, config_, kHostUnit));
    Tarball v1 = Pack("v1", v1_units_);
    int fd = ::open(v1.path.c_str(), O_RDONLY | O_CLOEXEC);
    UpdateOutcome a =
        first.pipeline->Update({"fp", "decnet-master"}, {fd, v1.size, v1.sha256, std::nullopt});
    ::close(fd);
    ASSERT_TRUE(std::holds_alternative<outcome::Updated>(a)) << "v1 was not installed";
  }

  // The API's options (its spool is spool_), uploads up to 64 MiB.
  ApiOptions Options() const {
    ApiOptions options = test::TestApiOptions(dirs_);
    options.max_upload_bytes = 64 << 20;
    return options;
  }

  // curl's arguments for DECNET's push of `t` (-F tarball=@... -F sha256=...).
  std::vector<std::string> CurlArgs(const Tarball& t, std::uint16_t port) const {
    return {"curl",
            "-sS",
            "--max-time",
            "120",
            "--cacert",
            pki_.ca_file,
            "--cert",
            pki_.master.cert,
            "--key",
            pki_.master.key,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-F",
            "tarball=@" + t.path,
            "--form-string",
            "sha256=" + t.sha256,
            "https://127.0.0.1:" + std::to_string(port) + "/update"};
  }
  // Pushes `t` and returns the status code curl saw last ("000": no answer at all).
  std::string Push(const Tarball& t, std::uint16_t port) const {
    std::string cmd;
    for (const std::string& arg : CurlArgs(t, port)) cmd += "'" + arg + "' ";
    return Shell(cmd + "2>/dev/null").out;
  }

  std::string ActiveVersion() const {
    std::ifstream in(install_ + "/current/VERSION");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // The host is on v1, complete, units and link as v1 ships them, and `failed` never got a
  // release directory.
  void ExpectOnV1(HostUnit& unit, const Tarball& failed) {
    EXPECT_FALSE(unit.store->Pending().has_value());
    ASSERT_TRUE(unit.store->Active().has_value());
    EXPECT_TRUE(unit.store->IsComplete(*unit.store->Active()));
    EXPECT_EQ(ActiveVersion(), "v1");
    std::set<std::string> units;
    for (const std::string& name : Entries(dirs_.units()))
      if (!name.starts_with(".")) units.insert(name);
    EXPECT_EQ(units, std::set<std::string>{"decnet-agent.service"});
    std::ifstream in(dirs_.units() + "/decnet-agent.service");
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), UnitFile("agent v1"));
    EXPECT_EQ(fs::read_symlink(dirs_.root() + "/bin/decnet").string(),
              install_ + "/current/bin/decnet");
    for (const auto& e : fs::directory_iterator(install_ + "/releases")) {
      auto id = ReleaseId::Parse(e.path().filename().string());
      ASSERT_TRUE(id) << e.path();
      EXPECT_TRUE(unit.store->IsComplete(*id)) << "incomplete release left: " << e.path();
    }
    EXPECT_FALSE(fs::exists(install_ + "/releases/" + failed.sha256.substr(0, 16)))
        << "nothing may be extracted from an upload that never reached the pipeline";
  }

  test::TestDirs dirs_;
  std::string install_, spool_;
  DaemonConfig config_;
  const test::UpdaterPki pki_;
  const std::map<std::string, std::string> v1_units_ = {
      {"decnet-agent.service", UnitFile("agent v1")}};
  const std::map<std::string, std::string> v2_units_ = {
      {"decnet-agent.service", UnitFile("agent v2")},
      {"decnet-extra.service", UnitFile("extra v2")}};
};

// The client, not the daemon, goes away mid-body (killed while the tarball streams into the
// spool): the spool file is closed and gone, nothing reached the pipeline, and the next
// update runs at once.
TEST_F(AnUploadCutShort, ByAClientKilledMidBodyLeavesNothingInTheSpoolAndTheNextUpdateProceeds) {
  ASSERT_NO_FATAL_FAILURE(InstallV1());
  Tarball v2 = Pack("v2", v2_units_, kNoiseBytes);
  HostUnit unit;
  ASSERT_NO_FATAL_FAILURE(unit.Open(dirs_, config_, kHostUnit));
  std::atomic<int> pipeline_steps{0};
  unit.pipeline->SetStepHook([&](std::string_view) { ++pipeline_steps; });

  std::promise<pid_t> curl_pid;
  std::shared_future<pid_t> curl = curl_pid.get_future().share();
  std::atomic<bool> killed{false};
  std::atomic<long long> spooled_when_killed{-1};
  const std::string spool = spool_;
  test::ServedFront front;
  ASSERT_NO_FATAL_FAILURE(
      front.Start(*unit.pipeline, Options(), pki_, [&, spool](std::string_view step) {
        if (step != "uploading" || killed.load()) return;
        long long held = SpoolBytesHeld(spool);
        if (held <= 0) return;   // no tarball bytes on disk yet
        pid_t pid = curl.get();  // set as soon as posix_spawn returns
        if (pid <= 0 || killed.exchange(true)) return;
        spooled_when_killed = held;
        ::kill(pid, SIGKILL);
      }));

  std::vector<std::string> args = CurlArgs(v2, front.port);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int spawned = ::posix_spawnp(&pid, "curl", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  curl_pid.set_value(spawned == 0 ? pid : -1);
  ASSERT_EQ(spawned, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(killed.load()) << "curl ended before its body was streaming";
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_GT(spooled_when_killed.load(), 0);
  EXPECT_LT(spooled_when_killed.load(), static_cast<long long>(v2.size)) << "not mid-body";

  // The server notices the reset on its next read and abandons the body: no timing is
  // asserted, the bound only keeps a broken build from hanging.
  for (int i = 0; i < 6000 && (front.api->busy() || SpoolBytesHeld(spool_) >= 0); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(front.api->busy());
  EXPECT_EQ(SpoolBytesHeld(spool_), -1) << "the spool file is still open";
  EXPECT_TRUE(Entries(spool_).empty());
  EXPECT_EQ(pipeline_steps.load(), 0);
  ExpectOnV1(unit, v2);

  EXPECT_EQ(Push(v2, front.port), "200");
  EXPECT_EQ(ActiveVersion(), "v2");
  EXPECT_GT(pipeline_steps.load(), 0);
  EXPECT_EQ(SpoolBytesHeld(spool_), -1);
  EXPECT_TRUE(Entries(spool_).empty());
}

// Where the filesystem has no O_TMPFILE the spool names its file for an instant before
// unlinking it; a daemon killed in that instant leaves the name. The next start removes it,
// and nothing else.
TEST_F(AnUploadCutShort, LeftAsANamedSpoolFileIsRemovedWhenTheDaemonStarts) {
  fs::create_directories(spool_);
  std::ofstream(spool_ + "/.decnet-spool-00112233445566778899aabb") << std::string(4096, 'x');
  std::ofstream(spool_ + "/.decnet-spool-ffeeddccbbaa998877665544") << "partial";
  std::ofstream(spool_ + "/not-a-spool-file") << "kept";
  fs::create_directories(spool_ + "/.decnet-spool-directory");
  HostUnit unit;
  ASSERT_NO_FATAL_FAILURE(unit.Open(dirs_, config_, kHostUnit));
  test::ServedFront front;
  ASSERT_NO_FATAL_FAILURE(front.Start(*unit.pipeline, Options(), pki_));
  EXPECT_EQ(Entries(spool_),
            (std::set<std::string>{"not-a-spool-file", ".decnet-spool-directory"}));
}

}  // namespace
}  // namespace decnet::daemon
