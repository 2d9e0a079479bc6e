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
#include <cerrno>
#include <chrono>
#include <condition_variable>
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
#include "tests/support/wait.h"

extern char** environ;

namespace decnet::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

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

// `busctl monitor` on the container's bus (one JSON message per line). A thread collects what
// it prints, so the test waits for what the monitor saw rather than for time to pass.
class BusMonitor {
 public:
  BusMonitor(const std::string& address, const fs::path& dir) : address_(address), dir_(dir) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return;
    }
    const std::string addr = "--address=" + address;
    const char* argv[] = {"busctl", addr.c_str(), "monitor", "--json=short", nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (posix_spawnp(&pid_, "busctl", &actions, nullptr, const_cast<char**>(argv), environ) != 0)
      pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    thread_ = std::thread([this, out = out[0], err = err[0]] { Collect(out, err); });
  }
  ~BusMonitor() { Stop(); }
  // Waits until busctl says it is monitoring; false if it ended or never said so.
  bool WaitReady() {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, kHangBound, [&] { return Monitoring() || ended_; });
    return Monitoring();
  }
  // Makes one last call through the bus (GetUnit of a unit no one has), waits until the
  // monitor shows it (the bus hands a monitor its messages in the order it routed them, so
  // everything earlier has been printed by then), stops busctl, and returns every message.
  std::vector<json> Stop() {
    if (pid_ > 0) {
      (void)RunToLog({"busctl", "--address=" + address_, "call", "org.freedesktop.systemd1",
                      "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "GetUnit",
                      "s", kLastCall},
                     dir_ / "monitor-last-call.log");
      {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, kHangBound,
                     [&] { return out_.find(kLastCall) != std::string::npos || ended_; });
      }
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (thread_.joinable()) thread_.join();
    std::vector<json> messages;
    std::istringstream in(out_);
    for (std::string line; std::getline(in, line);) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) messages.push_back(std::move(j));
    }
    return messages;
  }
  std::string Errors() {
    std::lock_guard lock(mutex_);
    return err_;
  }

 private:
  static constexpr const char* kLastCall = "decnet-monitor-last-call.service";

  bool Monitoring() const { return err_.find("Monitoring") != std::string::npos; }

  // Reads busctl's stdout and stderr until both end (busctl exited).
  void Collect(int out, int err) {
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    int open = 2;
    while (open > 0) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (pollfd& p : fds) {
        if (p.fd < 0 || p.revents == 0) continue;
        char buf[65536];
        const ssize_t n = ::read(p.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mutex_);
        if (n <= 0) {
          ::close(p.fd);
          p.fd = -1;
          --open;
        } else {
          (p.fd == out ? out_ : err_).append(buf, static_cast<size_t>(n));
        }
        cv_.notify_all();
      }
    }
    for (pollfd& p : fds)
      if (p.fd >= 0) ::close(p.fd);
    std::lock_guard lock(mutex_);
    ended_ = true;
    cv_.notify_all();
  }

  std::string address_;
  fs::path dir_;
  pid_t pid_ = -1;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string out_, err_;  // under mutex_
  bool ended_ = false;     // under mutex_
};

TEST_F(AHelperOnARealSystemd, RefusesUnitsOutsideTheAllowListBeforeReachingDBus) {
  const std::string invocation = Property("systemd-journald.service", kUnit, "InvocationID");
  const std::string entered = Property("systemd-journald.service", kUnit, "ActiveEnterTimestamp");
  const std::string restarts = Property("systemd-journald.service", kService, "NRestarts");
  BusMonitor monitor(testbed().bus_address(), testbed().workdir());
  ASSERT_TRUE(monitor.WaitReady()) << "busctl monitor did not start: " << monitor.Errors();

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

// An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET. The kernel queues each
// datagram when it is sent, in order, so once the sender has exited everything it said can be
// read at once.
class NotifyListener {
 public:
  explicit NotifyListener(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifyListener() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  // Every datagram queued so far, in the order they were sent.
  std::vector<std::string> Drain() {
    std::vector<std::string> received;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      received.emplace_back(buf, static_cast<size_t>(n));
    return received;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  bool ok_ = false;
};

TEST_F(AHelperOnARealSystemd, ReportsReadyOnlyAfterTheDaemonsHello) {
  NotifyListener listener(testbed().workdir() / "notify");
  ASSERT_TRUE(listener.ok()) << "cannot bind the notify socket";
  HelperRun run =
      RunScript("hello\n", {{"NOTIFY_SOCKET", (testbed().workdir() / "notify").string()}});
  ASSERT_EQ(run.replies.size(), 1u) << Describe(run);
  EXPECT_EQ(Str(Reply(run, 0), "result"), "ok") << run.replies[0];

  // The helper has exited: all it sent is queued, in order. Its serve loop publishes
  // STATUS=await-hello before it reads any frame, and one datagram per answered frame after;
  // the first frame is the hello.
  const std::vector<std::string> datagrams = listener.Drain();
  std::ostringstream seen;
  for (const auto& d : datagrams) seen << "  " << d << "\n";
  size_t awaiting = datagrams.size(), ready = datagrams.size();
  for (size_t i = 0; i < datagrams.size(); ++i) {
    if (awaiting == datagrams.size() &&
        datagrams[i].find("STATUS=await-hello") != std::string::npos)
      awaiting = i;
    if (ready == datagrams.size() && datagrams[i].find("READY=1") != std::string::npos) ready = i;
  }
  // The channel worked before the hello, so the absence of READY=1 until then was the
  // helper's choice, not a deaf socket.
  ASSERT_LT(awaiting, datagrams.size()) << "no STATUS=await-hello; datagrams:\n" << seen.str();
  ASSERT_LT(ready, datagrams.size()) << "no READY=1 arrived; datagrams:\n" << seen.str();
  EXPECT_EQ(ready, awaiting + 1) << "READY=1 must answer the hello, the first frame; datagrams:\n"
                                 << seen.str();
  EXPECT_NE(datagrams[ready].find("STATUS=serving"), std::string::npos)
      << "READY=1 sent before the session left await-hello; datagrams:\n"
      << seen.str();
  ExpectRecordLists({{"hello", "ok"}});
}

}  // namespace
}  // namespace decnet::test
