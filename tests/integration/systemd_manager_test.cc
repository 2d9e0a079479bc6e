// The sdbus-c++ adapter (helper/systemd_manager.cc) against a real systemd: PID 1 of a
// throw-away container, over the container's real system bus (DBUS_SYSTEM_BUS_ADDRESS).
#include "helper/systemd_manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/testbed.h"
#include "tests/support/wait.h"

namespace decnet::helper {
namespace {

using namespace std::chrono_literals;

constexpr auto kJobTimeout = 20s;

UnitName Unit(std::string_view name) {
  auto parsed = UnitName::Parse(name);
  EXPECT_TRUE(parsed) << name << ": " << (parsed ? "" : parsed.error().message);
  return *parsed;
}

std::string Describe(const Error& e) {
  return std::string(ErrorCodeName(e.code)) + " [" + e.rule + "] " + e.message;
}

// Units run as the rootfs's unprivileged `decnet` user, as the policy would require.
std::string ExecUnit(std::string_view exec_start, std::string_view extra = "") {
  return "[Service]\nType=exec\nUser=decnet\nExecStart=" + std::string(exec_start) + "\n" +
         std::string(extra);
}

// systemd's PropertiesChanged signals for one unit, on a connection of the test's own that
// is subscribed to the manager: a wait returns when systemd says the unit changed.
class UnitSignals {
 public:
  UnitSignals(const std::string& address, std::string_view unit) {
    char* path = nullptr;
    const std::string unit_name(unit);
    ok_ = sd_bus_new(&bus_) >= 0 && sd_bus_set_address(bus_, address.c_str()) >= 0 &&
          sd_bus_set_bus_client(bus_, 1) >= 0 && sd_bus_start(bus_) >= 0 &&
          sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit_name.c_str(), &path) >= 0;
    if (!ok_) return;
    const std::string match =
        "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
        "path='" +
        std::string(path) + "'";
    free(path);
    // Synchronous: the match is in place when this returns, before the caller's first check.
    ok_ = sd_bus_add_match(bus_, nullptr, match.c_str(), nullptr, nullptr) >= 0;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    ok_ = ok_ && sd_bus_call_method(bus_, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                    "org.freedesktop.systemd1.Manager", "Subscribe", &error,
                                    nullptr, "") >= 0;
    sd_bus_error_free(&error);
  }
  ~UnitSignals() { sd_bus_flush_close_unref(bus_); }
  bool ok() const { return ok_; }

  // Checks `done` now and again after each signal about the unit; false after `bound`.
  template <typename F>
  bool WaitUntil(F done, std::chrono::milliseconds bound = test::kHangBound) {
    const auto end = std::chrono::steady_clock::now() + bound;
    for (;;) {
      if (done()) return true;
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return false;
      int r = 0;
      while ((r = sd_bus_process(bus_, nullptr)) > 0) {
      }
      if (r < 0) return done();
      if (done()) return true;
      const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
      if (sd_bus_wait(bus_, static_cast<uint64_t>(usec)) < 0) return done();
    }
  }

 private:
  sd_bus* bus_ = nullptr;
  bool ok_ = false;
};

class ASystemdManagerOnARealSystemd : public test::TestbedTest {
 protected:
  void SetUp() override {
    test::TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    auto connected = ConnectSystemd();
    ASSERT_TRUE(connected) << Describe(connected.error());
    manager_ = std::move(*connected);
  }
  void TearDown() override {
    manager_.reset();  // close our connection before the container goes away
    test::TestbedTest::TearDown();
  }
  // Writes units into the container's unit directory and reloads through the adapter.
  void Install(std::string_view name, const std::string& content) {
    ASSERT_TRUE(testbed().WriteUnit(name, content));
    auto reloaded = manager_->Reload();
    ASSERT_TRUE(reloaded) << Describe(reloaded.error());
  }

  std::unique_ptr<SystemdManager> manager_;
};

TEST_F(ASystemdManagerOnARealSystemd, RestartsAnInstalledUnitAndReportsItRunning) {
  Install("decnet-it-ok.service", ExecUnit("/bin/sleep 1000"));
  auto job = manager_->RestartUnit(Unit("decnet-it-ok.service"), kJobTimeout);
  ASSERT_TRUE(job) << Describe(job.error());
  EXPECT_EQ(job->result, "done");

  auto state = manager_->GetUnitState(Unit("decnet-it-ok.service"));
  ASSERT_TRUE(state) << Describe(state.error());
  EXPECT_EQ(state->load_state, "loaded");
  EXPECT_EQ(state->active_state, "active");
  EXPECT_EQ(state->sub_state, "running");
  EXPECT_GT(state->main_pid, 0u);
  EXPECT_EQ(state->n_restarts, 0u);
  // systemd's own view, read without the adapter.
  EXPECT_EQ(testbed()
                .UnitProperty("decnet-it-ok.service", "org.freedesktop.systemd1.Service", "MainPID")
                .value_or("?"),
            std::to_string(state->main_pid));
}

TEST_F(ASystemdManagerOnARealSystemd, ReportsAFailedJobWhenTheCommandDoesNotExist) {
  Install("decnet-it-noexec.service", ExecUnit("/nonexistent/decnet-agent"));
  auto job = manager_->RestartUnit(Unit("decnet-it-noexec.service"), kJobTimeout);
  ASSERT_TRUE(job) << Describe(job.error());
  EXPECT_EQ(job->result, "failed");

  auto state = manager_->GetUnitState(Unit("decnet-it-noexec.service"));
  ASSERT_TRUE(state) << Describe(state.error());
  EXPECT_EQ(state->active_state, "failed");
  EXPECT_EQ(state->main_pid, 0u);
}

TEST_F(ASystemdManagerOnARealSystemd, ReportsAnUnknownUnitAsNotFound) {
  auto state = manager_->GetUnitState(Unit("decnet-it-unknown.service"));
  ASSERT_TRUE(state) << Describe(state.error());
  EXPECT_EQ(state->load_state, "not-found");
  EXPECT_EQ(state->active_state, "inactive");
  EXPECT_EQ(state->main_pid, 0u);
}

TEST_F(ASystemdManagerOnARealSystemd, StopsARunningUnit) {
  Install("decnet-it-stop.service", ExecUnit("/bin/sleep 1000"));
  auto started = manager_->RestartUnit(Unit("decnet-it-stop.service"), kJobTimeout);
  ASSERT_TRUE(started) << Describe(started.error());
  ASSERT_EQ(started->result, "done");

  auto stopped = manager_->StopUnit(Unit("decnet-it-stop.service"), kJobTimeout);
  ASSERT_TRUE(stopped) << Describe(stopped.error());
  EXPECT_EQ(stopped->result, "done");
  auto state = manager_->GetUnitState(Unit("decnet-it-stop.service"));
  ASSERT_TRUE(state) << Describe(state.error());
  EXPECT_EQ(state->active_state, "inactive");
  EXPECT_EQ(state->main_pid, 0u);
}

TEST_F(ASystemdManagerOnARealSystemd, RefusesToStopAnUnknownUnitAsNotFound) {
  auto stopped = manager_->StopUnit(Unit("decnet-it-unknown.service"), kJobTimeout);
  ASSERT_FALSE(stopped) << "job result " << stopped->result;
  EXPECT_EQ(stopped.error().code, ErrorCode::kNotFound) << Describe(stopped.error());
}

TEST_F(ASystemdManagerOnARealSystemd, TimesOutARestartThatTakesLongerThanAllowed) {
  Install("decnet-it-slow.service", ExecUnit("/bin/sleep 1000", "ExecStartPre=/bin/sleep 30\n"));
  const auto before = std::chrono::steady_clock::now();
  auto job = manager_->RestartUnit(Unit("decnet-it-slow.service"), 1s);
  const auto waited = std::chrono::steady_clock::now() - before;
  ASSERT_FALSE(job) << "job result " << job->result;
  EXPECT_EQ(job.error().code, ErrorCode::kTimeout) << Describe(job.error());
  EXPECT_GE(waited, 1s) << "gave up before the time it was given";

  // The adapter stays usable after a timeout, and the job it gave up on is still there: the
  // call returned while ExecStartPre (30 s) still ran, not when the job ended.
  auto state = manager_->GetUnitState(Unit("decnet-it-slow.service"));
  ASSERT_TRUE(state) << Describe(state.error());
  EXPECT_EQ(state->active_state, "activating");
  auto stopped = manager_->StopUnit(Unit("decnet-it-slow.service"), kJobTimeout);
  ASSERT_TRUE(stopped) << Describe(stopped.error());
}

TEST_F(ASystemdManagerOnARealSystemd, CountsRestartsOfAUnitThatKeepsExiting) {
  Install("decnet-it-flap.service", ExecUnit("/bin/sleep 0.2",
                                             "Restart=always\nRestartSec=100ms\n"
                                             "[Unit]\nStartLimitIntervalSec=0\n"));
  auto job = manager_->RestartUnit(Unit("decnet-it-flap.service"), kJobTimeout);
  ASSERT_TRUE(job) << Describe(job.error());
  EXPECT_EQ(job->result, "done");

  // NRestarts is announced by PropertiesChanged; the adapter reads it after each signal.
  UnitSignals signals(testbed().bus_address(), "decnet-it-flap.service");
  ASSERT_TRUE(signals.ok()) << "cannot watch the unit's signals";
  uint32_t restarts = 0;
  std::string failed;
  EXPECT_TRUE(signals.WaitUntil([&] {
    auto state = manager_->GetUnitState(Unit("decnet-it-flap.service"));
    if (!state) failed = Describe(state.error());
    restarts = state ? state->n_restarts : 0;
    return !failed.empty() || restarts >= 2;
  }));
  EXPECT_EQ(failed, "");
  EXPECT_GE(restarts, 2u) << "NRestarts did not reach 2";
}

TEST_F(ASystemdManagerOnARealSystemd, ReloadsToPickUpAChangedUnitFile) {
  Install("decnet-it-reload.service", ExecUnit("/nonexistent/old"));
  Install("decnet-it-reload.service", ExecUnit("/bin/sleep 1000"));
  auto job = manager_->RestartUnit(Unit("decnet-it-reload.service"), kJobTimeout);
  ASSERT_TRUE(job) << Describe(job.error());
  EXPECT_EQ(job->result, "done");
  auto active = testbed().WaitForActiveState("decnet-it-reload.service", "active", 5s);
  EXPECT_TRUE(active) << active.error();
}

// A plain dbus-daemon without systemd on it: the helper must start there (tests use such
// buses) and fail only when it makes a systemd call.
class ASystemdManagerOnABusWithoutSystemd : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-plainbus-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string socket = (dir_ / "bus").string();
    // No service directories: nothing is bus-activated (the stock session configuration
    // would try to activate a systemd --user for org.freedesktop.systemd1).
    const std::string config = (dir_ / "bus.conf").string();
    {
      std::ofstream out(config);
      out << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
             " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
             "<busconfig><type>custom</type><listen>unix:path="
          << socket
          << "</listen><auth>EXTERNAL</auth><policy context=\"default\">"
             "<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>"
             "<allow own=\"*\"/></policy></busconfig>\n";
    }
    // Returns once dbus-daemon listens (it prints its address then).
    daemon_ = test::SpawnDbusDaemon({"--config-file=" + config}).pid;
    ASSERT_GT(daemon_, 0) << "dbus-daemon did not start";
    setenv("DBUS_SYSTEM_BUS_ADDRESS", ("unix:path=" + socket).c_str(), 1);
  }
  void TearDown() override {
    if (daemon_ > 0) {
      kill(daemon_, SIGTERM);
      waitpid(daemon_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  pid_t daemon_ = -1;
  std::filesystem::path dir_;
};

TEST_F(ASystemdManagerOnABusWithoutSystemd, ConnectsButFailsEachCallWithTheBusError) {
  auto connected = ConnectSystemd();
  ASSERT_TRUE(connected) << Describe(connected.error());
  auto& manager = **connected;

  auto reloaded = manager.Reload();
  ASSERT_FALSE(reloaded);
  EXPECT_EQ(reloaded.error().code, ErrorCode::kFailed);
  EXPECT_NE(reloaded.error().message.find("ServiceUnknown"), std::string::npos)
      << Describe(reloaded.error());

  auto restarted = manager.RestartUnit(Unit("decnet-agent.service"), 2s);
  ASSERT_FALSE(restarted);
  EXPECT_EQ(restarted.error().code, ErrorCode::kFailed) << Describe(restarted.error());

  auto state = manager.GetUnitState(Unit("decnet-agent.service"));
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().code, ErrorCode::kFailed) << Describe(state.error());
}

}  // namespace
}  // namespace decnet::helper
