// The real decnet-update-helper binary, confined as in service, against a real systemd (PID 1
// of a throw-away container, tests/integration/testbed.h), driven by the stand-in daemon
// (tests/tools/helper_client.cc) through tests/helper/helper_harness.h. What the helper
// replies is checked, and then checked again independently: unit state read over the
// container's bus by the testbed, files in the unit directory, a bus monitor, the sd_notify
// datagrams, and the helper's own record in its state directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/helper/helper_harness.h"
#include "tests/integration/helper_testbed.h"
#include "tests/integration/testbed.h"

extern char** environ;

namespace decnet::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr auto kRunTimeout = 60s;
constexpr char kService[] = "org.freedesktop.systemd1.Service";
constexpr char kUnit[] = "org.freedesktop.systemd1.Unit";

// A hardened unit the policy accepts: Type=exec, so a failed exec fails the job.
std::string HardenedUnit(std::string_view exec_start) {
  return "[Unit]\nDescription=DECNET integration test unit\n\n[Service]\nType=exec\n"
         "User=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=" +
         std::string(exec_start) + "\n";
}

// Reply `i` as JSON; a test failure (and null) when it is missing or not JSON.
json Reply(const HelperRun& run, size_t i) {
  if (i >= run.replies.size()) {
    ADD_FAILURE() << "no reply #" << i << "\n" << Describe(run);
    return nullptr;
  }
  json j = json::parse(run.replies[i], nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << "reply #" << i << " is not a JSON object: " << run.replies[i];
    return nullptr;
  }
  return j;
}

int64_t MainPid(const json& reply) {
  if (!reply.is_object() || !reply.contains("unit") || !reply["unit"].contains("main_pid"))
    return -1;
  return reply["unit"]["main_pid"].get<int64_t>();
}

class AHelperOnARealSystemd : public TestbedTest {
 protected:
  void SetUp() override {
    TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    harness_ =
        std::make_unique<HelperHarness>(testbed().bus_address(), testbed().unit_dir().string());
    // Paths in unit files mean what they mean inside the container.
    harness_->policy().unit_root = testbed().rootfs().string();
  }
  void TearDown() override {
    harness_.reset();
    TestbedTest::TearDown();
  }

  // Runs the helper with the client reading `script`; the client closes its end when the
  // script ends, so the helper must exit cleanly.
  HelperRun RunScript(const std::string& script,
                      const std::map<std::string, std::string>& env = {}) {
    HelperRun run = harness_->Run(script, kRunTimeout, env);
    EXPECT_TRUE(run.ExitedCleanly()) << Describe(run);
    // SIGSYS would mean a system call missing from helper/seccomp_table.cc.
    EXPECT_FALSE(WIFSIGNALED(run.wait_status) && WTERMSIG(run.wait_status) == SIGSYS)
        << "the helper was killed by SIGSYS (a system call missing from its seccomp table)\n"
        << Describe(run);
    return run;
  }

  std::string Payload(const std::string& name, const std::string& content) {
    return harness_->Payload(name, content);
  }

  // The helper's own record: one JSON object per line, {"ts","pid","id","type",...}.
  std::vector<json> Record() {
    std::vector<json> entries;
    std::istringstream in(Slurp(fs::path(harness_->policy().state_dir) / "requests.jsonl"));
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      EXPECT_FALSE(j.is_discarded()) << "record line is not JSON: " << line;
      if (!j.is_discarded()) entries.push_back(std::move(j));
    }
    return entries;
  }

  // The record lists exactly these requests, in order, with these results.
  void ExpectRecordLists(const std::vector<std::pair<std::string, std::string>>& expected) {
    const auto entries = Record();
    std::vector<std::pair<std::string, std::string>> seen;
    for (const json& e : entries) seen.emplace_back(Str(e, "type"), Str(e, "result"));
    EXPECT_EQ(seen, expected) << "requests.jsonl:\n"
                              << Slurp(fs::path(harness_->policy().state_dir) / "requests.jsonl");
  }

  std::string Property(std::string_view unit, std::string_view interface,
                       std::string_view property) {
    auto value = testbed().UnitProperty(unit, interface, property);
    EXPECT_TRUE(value) << unit << " " << property << ": " << (value ? "" : value.error());
    return value ? *value : "";
  }

  std::unique_ptr<HelperHarness> harness_;
};

TEST_F(AHelperOnARealSystemd, InstallsReloadsAndRestartsAHardenedUnit) {
  const std::string content = HardenedUnit("/bin/sleep infinity");
  const std::string payload = Payload("demo.service", content);
  HelperRun run = RunScript("hello\nwrite_unit decnet-demo.service " + payload +
                            "\ndaemon_reload\nrestart_unit decnet-demo.service\n"
                            "unit_status decnet-demo.service\n");
  ASSERT_EQ(run.replies.size(), 5u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 0), "result"), "ok");
  const json written = Reply(run, 1);
  EXPECT_EQ(Str(written, "result"), "ok") << run.replies[1];
  EXPECT_EQ(written.value("changed", false), true) << run.replies[1];
  EXPECT_EQ(Str(Reply(run, 2), "result"), "ok") << run.replies[2];

  const json restarted = Reply(run, 3);
  EXPECT_EQ(Str(restarted, "result"), "ok") << run.replies[3];
  EXPECT_EQ(Str(restarted, "job_result"), "done") << run.replies[3];
  EXPECT_EQ(Str(restarted["unit"], "active_state"), "active") << run.replies[3];
  EXPECT_GT(MainPid(restarted), 0) << run.replies[3];

  const json status = Reply(run, 4);
  EXPECT_EQ(Str(status["unit"], "load_state"), "loaded") << run.replies[4];
  EXPECT_EQ(Str(status["unit"], "active_state"), "active") << run.replies[4];
  EXPECT_EQ(Str(status["unit"], "sub_state"), "running") << run.replies[4];
  EXPECT_EQ(MainPid(status), MainPid(restarted)) << run.replies[4];

  // Independently: the file on disk, and systemd's own view over the bus.
  EXPECT_EQ(Slurp(testbed().unit_dir() / "decnet-demo.service"), content);
  EXPECT_EQ(Property("decnet-demo.service", kUnit, "ActiveState"), "active");
  EXPECT_EQ(Property("decnet-demo.service", kService, "MainPID"),
            std::to_string(MainPid(restarted)));
  ExpectRecordLists({{"hello", "ok"},
                     {"write_unit", "ok"},
                     {"daemon_reload", "ok"},
                     {"restart_unit", "ok"},
                     {"unit_status", "ok"}});
}

TEST_F(AHelperOnARealSystemd, ReportsAFailedJobForAUnitWhoseCommandFails) {
  const std::string payload = Payload("broken.service", HardenedUnit("/nonexistent"));
  HelperRun run = RunScript("hello\nwrite_unit decnet-broken.service " + payload +
                            "\ndaemon_reload\nrestart_unit decnet-broken.service\n");
  ASSERT_EQ(run.replies.size(), 4u) << Describe(run);
  const json restarted = Reply(run, 3);
  // A failed job is an ok reply whose job_result says so (docs/protocol.md).
  EXPECT_EQ(Str(restarted, "result"), "ok") << run.replies[3];
  EXPECT_EQ(Str(restarted, "job_result"), "failed") << run.replies[3];
  EXPECT_EQ(Str(restarted["unit"], "active_state"), "failed") << run.replies[3];
  EXPECT_EQ(Property("decnet-broken.service", kUnit, "ActiveState"), "failed");
  ExpectRecordLists(
      {{"hello", "ok"}, {"write_unit", "ok"}, {"daemon_reload", "ok"}, {"restart_unit", "ok"}});
}

TEST_F(AHelperOnARealSystemd, StopsAUnitBeforeRemovingItsFile) {
  const std::string payload = Payload("demo.service", HardenedUnit("/bin/sleep infinity"));
  HelperRun run = RunScript("hello\nwrite_unit decnet-demo.service " + payload +
                            "\ndaemon_reload\nrestart_unit decnet-demo.service\n"
                            "remove_unit decnet-demo.service\n");
  ASSERT_EQ(run.replies.size(), 5u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 3), "job_result"), "done") << run.replies[3];
  const json removed = Reply(run, 4);
  EXPECT_EQ(Str(removed, "result"), "ok") << run.replies[4];
  EXPECT_EQ(removed.value("removed", false), true) << run.replies[4];
  EXPECT_FALSE(fs::exists(testbed().unit_dir() / "decnet-demo.service"));
  // No reload happened after the removal: systemd keeps running a unit whose file is gone,
  // so an inactive unit here means the helper stopped it.
  EXPECT_EQ(Property("decnet-demo.service", kUnit, "ActiveState"), "inactive");
  EXPECT_EQ(Property("decnet-demo.service", kService, "MainPID"), "0");
  ExpectRecordLists({{"hello", "ok"},
                     {"write_unit", "ok"},
                     {"daemon_reload", "ok"},
                     {"restart_unit", "ok"},
                     {"remove_unit", "ok"}});
}

TEST_F(AHelperOnARealSystemd, LeavesAUnitFileItDidNotWriteAlone) {
  const std::string foreign = HardenedUnit("/bin/sleep infinity");
  ASSERT_TRUE(testbed().WriteUnit("decnet-foreign.service", foreign));
  const std::string payload = Payload("other.service", HardenedUnit("/bin/sleep 1000"));
  HelperRun run = RunScript("hello\nwrite_unit decnet-foreign.service " + payload +
                            "\nremove_unit decnet-foreign.service\ndaemon_reload\n"
                            "restart_unit decnet-foreign.service\n");
  ASSERT_EQ(run.replies.size(), 5u) << Describe(run);
  for (size_t i : {1u, 2u}) {
    const json refused = Reply(run, i);
    EXPECT_EQ(Str(refused, "result"), "denied") << run.replies[i];
    EXPECT_EQ(Str(refused, "rule"), "unit-not-ours") << run.replies[i];
  }
  EXPECT_EQ(Slurp(testbed().unit_dir() / "decnet-foreign.service"), foreign);
  // systemd still loads and runs it: the helper may restart an allowed name it did not write.
  EXPECT_EQ(Str(Reply(run, 4), "job_result"), "done") << run.replies[4];
  EXPECT_EQ(Property("decnet-foreign.service", kUnit, "LoadState"), "loaded");
  EXPECT_EQ(Property("decnet-foreign.service", kUnit, "ActiveState"), "active");
  ExpectRecordLists({{"hello", "ok"},
                     {"write_unit", "denied"},
                     {"remove_unit", "denied"},
                     {"daemon_reload", "ok"},
                     {"restart_unit", "ok"}});
}

// `busctl monitor` on the container's bus, writing one JSON message per line to a file.
class BusMonitor {
 public:
  BusMonitor(const std::string& address, const fs::path& dir)
      : out_(dir / "monitor.jsonl"), err_(dir / "monitor.err") {
    const std::string addr = "--address=" + address;
    const char* argv[] = {"busctl", addr.c_str(), "monitor", "--json=short", nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (posix_spawnp(&pid_, "busctl", &actions, nullptr, const_cast<char**>(argv), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~BusMonitor() { Stop(); }
  // Waits (bounded) until busctl says it is monitoring.
  bool WaitReady(std::chrono::milliseconds timeout) {
    for (auto end = Clock::now() + timeout; Clock::now() < end; std::this_thread::sleep_for(20ms)) {
      if (Slurp(err_).find("Monitoring") != std::string::npos) return true;
    }
    return false;
  }
  // Stops busctl; returns every message it saw.
  std::vector<json> Stop() {
    if (pid_ > 0) {
      std::this_thread::sleep_for(200ms);  // let the last messages reach the file
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    std::vector<json> messages;
    std::istringstream in(Slurp(out_));
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) messages.push_back(std::move(j));
    }
    return messages;
  }
  std::string Errors() const { return Slurp(err_); }

 private:
  fs::path out_, err_;
  pid_t pid_ = -1;
};

TEST_F(AHelperOnARealSystemd, RefusesUnitsOutsideTheAllowListBeforeReachingDBus) {
  const std::string invocation = Property("systemd-journald.service", kUnit, "InvocationID");
  const std::string entered = Property("systemd-journald.service", kUnit, "ActiveEnterTimestamp");
  const std::string restarts = Property("systemd-journald.service", kService, "NRestarts");
  BusMonitor monitor(testbed().bus_address(), testbed().workdir());
  ASSERT_TRUE(monitor.WaitReady(5s)) << "busctl monitor did not start: " << monitor.Errors();

  // The last request is a positive control: an allowed name does reach the bus, and the
  // monitor sees it.
  HelperRun run = RunScript(
      "hello\nrestart_unit systemd-journald.service\nrestart_unit ssh.service\n"
      "unit_status systemd-journald.service\nunit_status decnet-control.service\n");
  const std::vector<json> messages = monitor.Stop();
  ASSERT_EQ(run.replies.size(), 5u) << Describe(run);
  for (size_t i : {1u, 2u, 3u}) {
    const json refused = Reply(run, i);
    EXPECT_EQ(Str(refused, "result"), "denied") << run.replies[i];
    EXPECT_EQ(Str(refused, "rule"), "unit-name-allowlist") << run.replies[i];
  }
  EXPECT_EQ(Str(Reply(run, 4)["unit"], "load_state"), "not-found") << run.replies[4];

  // The helper's connection is the one that asked about the control unit.
  std::string helper_sender;
  for (const json& m : messages) {
    if (Str(m, "type") == "method_call" &&
        m.dump().find("decnet-control.service") != std::string::npos) {
      helper_sender = Str(m, "sender");
    }
  }
  ASSERT_FALSE(helper_sender.empty()) << "the monitor did not see the allowed unit_status ("
                                      << messages.size() << " messages): it would prove nothing";
  for (const json& m : messages) {
    if (Str(m, "type") != "method_call" || Str(m, "sender") != helper_sender) continue;
    const std::string text = m.dump();
    EXPECT_NE(Str(m, "member"), "RestartUnit") << "a restart reached systemd: " << text;
    EXPECT_EQ(text.find("journald"), std::string::npos) << "journald was asked about: " << text;
    EXPECT_EQ(text.find("ssh"), std::string::npos) << "ssh was asked about: " << text;
  }
  // And systemd's own account: journald was not restarted.
  EXPECT_EQ(Property("systemd-journald.service", kUnit, "InvocationID"), invocation);
  EXPECT_EQ(Property("systemd-journald.service", kUnit, "ActiveEnterTimestamp"), entered);
  EXPECT_EQ(Property("systemd-journald.service", kService, "NRestarts"), restarts);
  ExpectRecordLists({{"hello", "ok"},
                     {"restart_unit", "denied"},
                     {"restart_unit", "denied"},
                     {"unit_status", "denied"},
                     {"unit_status", "ok"}});
}

// An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET; a thread timestamps
// every datagram.
class NotifyListener {
 public:
  struct Datagram {
    Clock::time_point at;
    std::string text;
  };
  explicit NotifyListener(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (ok_) thread_ = std::thread([this] { Loop(); });
  }
  ~NotifyListener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  std::vector<Datagram> Received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      std::lock_guard lock(mutex_);
      received_.push_back({Clock::now(), std::string(buf, static_cast<size_t>(n))});
    }
  }

  fs::path path_;
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Datagram> received_;
};

TEST_F(AHelperOnARealSystemd, ReportsReadyOnlyAfterTheDaemonsHello) {
  NotifyListener listener(testbed().workdir() / "notify");
  ASSERT_TRUE(listener.ok()) << "cannot bind the notify socket";
  constexpr auto kBeforeHello = 1500ms;
  const auto started = Clock::now();
  // The client is spawned after `started` and sleeps before its hello, so a READY=1 before
  // started + kBeforeHello came before the hello.
  HelperRun run = RunScript("sleep 1500\nhello\nsleep 300\n",
                            {{"NOTIFY_SOCKET", (testbed().workdir() / "notify").string()}});
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(run.replies.size(), 1u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 0), "result"), "ok") << run.replies[0];

  const auto datagrams = listener.Received();
  std::ostringstream seen;
  for (const auto& d : datagrams) {
    seen << "  +" << std::chrono::duration_cast<std::chrono::milliseconds>(d.at - started).count()
         << " ms: " << d.text << "\n";
  }
  const Clock::time_point* ready = nullptr;
  const Clock::time_point* status_before = nullptr;
  for (const auto& d : datagrams) {
    const bool is_ready = d.text.find("READY=1") != std::string::npos;
    if (is_ready && ready == nullptr) ready = &d.at;
    if (!is_ready && ready == nullptr && d.text.find("STATUS=") != std::string::npos)
      status_before = &d.at;
  }
  ASSERT_NE(ready, nullptr) << "no READY=1 arrived; datagrams:\n" << seen.str();
  EXPECT_GE(*ready - started, kBeforeHello) << "READY=1 before the hello; datagrams:\n"
                                            << seen.str();
  // The channel worked before the hello (the helper published STATUS= at start-up), so the
  // absence of READY=1 until then was the helper's choice, not a deaf socket.
  ASSERT_NE(status_before, nullptr) << "no STATUS= before READY=1; datagrams:\n" << seen.str();
  EXPECT_LT(*status_before - started, kBeforeHello) << "datagrams:\n" << seen.str();
  ExpectRecordLists({{"hello", "ok"}});
}

}  // namespace
}  // namespace decnet::test
