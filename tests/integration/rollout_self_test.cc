// decnet-rollout push --include-self against a real worker: the real decnet-rollout binary, as
// an operator runs it, with an inventory naming the worker by address, port and pinned
// certificate, pushes a release of the suite and then a build of the updater to the real
// decnet-updaterd (running from its own store, started by the real decnet-update-helper) on a
// real systemd. systemd's restart of the updater's unit is played by stopping and starting the
// helper, as in the end-to-end update-self tests.
//
// Judged twice: by decnet-rollout's exit code and JSON report, and independently by the
// worker's store, the build its daemon runs (/proc/PID/exe), its /health and the agent itself.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/updater_e2e_fixture.h"

#ifndef DECNET_ROLLOUT_BINARY
#error "DECNET_ROLLOUT_BINARY must name decnet-rollout"
#endif

namespace decnet::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kRolloutBound = 240s;

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

ReleaseSpec Spec(std::string version) {
  ReleaseSpec spec;
  spec.version = std::move(version);
  return spec;
}

// A decnet-rollout run in the background: its pid, and where its output goes.
struct Rollout {
  pid_t pid = -1;
  fs::path out, err;
  int exit_code = -1;  // after Wait(): the exit status, -1 when it did not exit normally
  json report;         // after Wait(): stdout parsed (--json -), null when not JSON
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + "\n--- stdout ---\n" + hostproc::ReadText(out) +
           "\n--- stderr ---\n" + hostproc::ReadText(err);
  }
};

class ARolloutUpdatingItself : public AnUpdaterOnARealSystemd {
 protected:
  bool DaemonFromItsStore() const override { return true; }

  // The inventory an operator writes: the worker by address, port and the SHA-256 of its
  // updater's DER certificate.
  fs::path WriteInventory() const {
    const fs::path dir = root() / "rollout";
    fs::create_directories(dir);
    const json inventory = {
        {"hosts", json::array({{{"name", "w1"},
                                {"address", "127.0.0.1"},
                                {"port", worker().daemon_port()},
                                {"fingerprint", worker().updater_fingerprint()}}})}};
    const fs::path path = dir / "inventory.json";
    std::ofstream(path) << inventory.dump(2) << "\n";
    return path;
  }

  // decnet-rollout push --include-self BUILD --json - RELEASE, with the master's certificate.
  Rollout StartPush(const BuiltRelease& build, const BuiltRelease& release, int self_timeout_s) {
    Rollout r;
    const fs::path dir = root() / "rollout";
    r.out = dir / ("out." + std::to_string(++runs_));
    r.err = dir / ("err." + std::to_string(runs_));
    const fs::path pki = worker().pki_dir();
    r.pid = hostproc::Spawn(
        {DECNET_ROLLOUT_BINARY, "push", "--inventory", WriteInventory().string(), "--all", "--cert",
         (pki / "master.crt").string(), "--key", (pki / "master.key").string(), "--include-self",
         build.tarball.string(), "--self-timeout", std::to_string(self_timeout_s), "--json", "-",
         release.tarball.string()},
        {}, r.out, r.err);
    EXPECT_GT(r.pid, 0) << "decnet-rollout did not start";
    return r;
  }

  void Wait(Rollout& r) {
    if (r.pid <= 0) return;
    auto status = hostproc::WaitFor(r.pid, kRolloutBound);
    if (!status) {
      ::kill(r.pid, SIGKILL);
      hostproc::WaitFor(r.pid, 5s);
      ADD_FAILURE() << "decnet-rollout did not end within the bound\n" << r.Describe();
    } else if (WIFEXITED(*status)) {
      r.exit_code = WEXITSTATUS(*status);
    }
    r.pid = -1;
    r.report = json::parse(hostproc::ReadText(r.out), nullptr, false);
    if (r.report.is_discarded()) r.report = nullptr;
  }

  // Waits until the worker has queued the update-self (its audit line), while decnet-rollout
  // still runs; false (and a test failure) otherwise.
  bool AwaitSelfQueued(Rollout& r) {
    const auto deadline = std::chrono::steady_clock::now() + kRolloutBound;
    while (std::chrono::steady_clock::now() < deadline) {
      for (const json& e : AuditLog())
        if (Str(e, "op") == "update-self" && Str(e, "result") == "queued") return true;
      if (hostproc::WaitFor(r.pid, 0ms)) {
        r.pid = -1;
        ADD_FAILURE() << "decnet-rollout ended before the update-self was queued\n" << r.Describe();
        return false;
      }
      std::this_thread::sleep_for(200ms);
    }
    ADD_FAILURE() << "the update-self was never queued\n" << r.Describe();
    return false;
  }

  // The only host of the report.
  static json Host(const Rollout& r) {
    if (!r.report.is_object() || !r.report.contains("hosts") || r.report["hosts"].size() != 1)
      return nullptr;
    return r.report["hosts"][0];
  }

  int runs_ = 0;
};

TEST_F(ARolloutUpdatingItself, UpdatesTheServiceThenTheUpdaterAndSeesTheNewBuildAnswer) {
  const std::string first = RunningDaemonBuild();
  ASSERT_EQ(first.size(), 16u) << "the daemon runs from its store: " << first;
  const BuiltRelease v1 = Install(Spec("1.0.0"));
  ASSERT_FALSE(HasFailure());
  const BuiltRelease v2 = BuildRelease(Spec("2.0.0"));
  // The same daemon binary as the running build, under another version: only the build's
  // identity tells the two apart.
  const BuiltRelease build = BuildUpdaterBuild("2.0.0");
  ASSERT_NE(build.id(), first);

  Rollout r = StartPush(build, v2, 120);
  ASSERT_TRUE(AwaitSelfQueued(r));
  // systemd restarts the unit: the helper starts updater/current, the new build.
  RestartHelper();
  Wait(r);

  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  const json host = Host(r);
  ASSERT_TRUE(host.is_object()) << r.Describe();
  EXPECT_EQ(Str(host, "result"), "ok") << host.dump(2);
  EXPECT_EQ(Str(host["release"], "version"), "2.0.0") << host.dump(2);
  EXPECT_EQ(Str(host["self"], "result"), "ok") << host.dump(2);
  EXPECT_EQ(Str(host["self"], "id"), build.id()) << host.dump(2);
  EXPECT_EQ(Str(r.report, "result"), "ok") << r.Describe();

  // Independently: the store, the running build, its /health, the agent.
  EXPECT_EQ(CurrentRelease(), v2.id());
  EXPECT_NE(CurrentRelease(), v1.id());
  EXPECT_EQ(RunningDaemonBuild(), build.id()) << Logs();
  const HttpReply health = Get("/health");
  ASSERT_EQ(health.status, 200) << health.Describe();
  EXPECT_EQ(Str(health.json["build"], "id"), build.id()) << health.Describe();
  EXPECT_EQ(Str(health.json["build"], "version"), "2.0.0") << health.Describe();
  const HttpReply agent = AgentHealth();
  EXPECT_EQ(agent.status, 200) << agent.Describe();
  EXPECT_EQ(Str(agent.json, "version"), "2.0.0") << agent.Describe();
}

TEST_F(ARolloutUpdatingItself, FailsTheHostWhenTheNewBuildCannotStartAfterTheServiceUpdated) {
  const std::string first = RunningDaemonBuild();
  ASSERT_EQ(first.size(), 16u) << "the daemon runs from its store: " << first;
  Install(Spec("1.0.0"));
  ASSERT_FALSE(HasFailure());
  const BuiltRelease v2 = BuildRelease(Spec("2.0.0"));
  const BuiltRelease broken = BuildUpdaterBuild("3.0.0", /*broken=*/true);

  Rollout r = StartPush(broken, v2, 40);
  ASSERT_TRUE(AwaitSelfQueued(r));
  // systemd restarts the unit: the fresh build exits before its hello and the helper fails;
  // the next start returns to the last proven build.
  StopUpdater();
  const auto failed = StartHelperExpectingExit();
  ASSERT_TRUE(failed.has_value()) << "the helper did not end\n" << Logs();
  RestartHelper();
  Wait(r);

  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  const json host = Host(r);
  ASSERT_TRUE(host.is_object()) << r.Describe();
  EXPECT_EQ(Str(host, "result"), "failed") << host.dump(2);
  EXPECT_EQ(Str(host, "failure"), "self-failed") << host.dump(2);
  EXPECT_EQ(Str(host, "rule"), "self-timeout") << host.dump(2);
  EXPECT_NE(Str(host, "cause").find(broken.id()), std::string::npos)
      << "the cause names the build: " << host.dump(2);
  EXPECT_EQ(Str(host["self"], "result"), "failed") << host.dump(2);
  EXPECT_EQ(Str(host["release"], "version"), "2.0.0") << "the service update succeeded";

  EXPECT_EQ(CurrentRelease(), v2.id());
  EXPECT_EQ(RunningDaemonBuild(), first) << Logs();
  const HttpReply health = Get("/health");
  ASSERT_EQ(health.status, 200) << health.Describe();
  EXPECT_EQ(Str(health.json["build"], "id"), first) << health.Describe();
  const HttpReply agent = AgentHealth();
  EXPECT_EQ(Str(agent.json, "version"), "2.0.0") << agent.Describe();
}

}  // namespace
}  // namespace decnet::test
