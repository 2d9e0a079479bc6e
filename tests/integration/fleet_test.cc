// A fleet on one machine (fleet_net.h): five workers, each the real helper forking the real
// daemon beside a real systemd container, in a network namespace of its own; the master's
// side runs in a hub namespace and reaches each worker by its address only. The suite shares
// one fleet (booting five containers is most of its cost); each test uses versions newer than
// any before it (workers never go back below their floor) and puts back what it changed.
//
// Every rollout is judged twice: by decnet-rollout's exit code and JSON report, and
// independently on each worker: the store's `current` link, the release directory it names,
// the agent's own /health inside the worker's namespace, the unit's state in the container's
// systemd, and the daemon's audit log.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/fleet_net.h"
#include "tests/integration/worker_host.h"

#ifndef DECNET_ROLLOUT_BINARY
#error "DECNET_ROLLOUT_BINARY must name decnet-rollout"
#endif

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kWorkers = 5;
constexpr auto kRolloutTimeout = 180s;

// What a worker holds, as seen on its disk (never through the code under test).
struct Snapshot {
  std::string current;
  std::vector<std::string> stored;
  size_t audit_lines = 0;
  bool operator==(const Snapshot&) const = default;
};

std::string Describe(const Snapshot& s) {
  std::string out = "current=" + s.current + " stored=[";
  for (const auto& r : s.stored) out += r + " ";
  return out + "] audit_lines=" + std::to_string(s.audit_lines);
}

Snapshot Take(const WorkerHost& w) {
  return {w.CurrentRelease(), w.StoredReleases(), w.AuditLog().size()};
}

std::string Name(int n) { return "w" + std::to_string(n); }

// A release whose agent also takes this host's flags for its version.
ReleaseSpec Spec(const std::string& version) {
  ReleaseSpec spec;
  spec.version = version;
  spec.host_flags = true;
  return spec;
}

// The report's entry for host `name` (an empty object when absent).
json HostEntry(const json& report, const std::string& name) {
  if (!report.is_object() || !report.contains("hosts") || !report["hosts"].is_array())
    return json::object();
  for (const auto& h : report["hosts"])
    if (h.is_object() && h.value("name", "") == name) return h;
  return json::object();
}

class AFleetOnOneMachine : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = Fleet::Start(Fleet::Options{.hosts = kWorkers});
    if (!started) {
      start_error_ = new std::string(started.error());
      return;
    }
    fleet_ = started->release();
    // Every worker starts from one release, pushed with curl from the hub to its address.
    const ReleaseSpec spec = Spec(NextVersion());
    baseline_ = new BuiltRelease(fleet_->BuildRelease(spec));
    std::vector<std::thread> pushes;
    replies_ = new std::vector<HttpReply>(kWorkers);
    for (int n = 1; n <= kWorkers; ++n)
      pushes.emplace_back([n] { (*replies_)[n - 1] = fleet_->worker(n).Push(*baseline_); });
    for (auto& t : pushes) t.join();
  }

  static void TearDownTestSuite() {
    if (fleet_ != nullptr) {
      if (auto done = fleet_->Shutdown(); !done) ADD_FAILURE() << done.error();
      delete fleet_;
      fleet_ = nullptr;
    }
    delete baseline_;
    delete replies_;
    delete start_error_;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, nullptr) << "the fleet did not start: " << *start_error_;
    ASSERT_NE(fleet_, nullptr);
  }

  void TearDown() override {
    if (!HasFailure() || fleet_ == nullptr) return;
    for (int n = 1; n <= kWorkers; ++n)
      std::cerr << "--- helper and daemon log of " << Name(n) << " ---\n"
                << fleet_->worker(n).Logs() << "--- end ---\n";
  }

  static std::string NextVersion() { return "1." + std::to_string(++versions_) + ".0"; }

  static WorkerHost& W(int n) { return fleet_->worker(n); }

  // decnet-rollout ARGS... (--inventory, --cert, --key, --ca, --json added) run in the hub.
  struct Rollout {
    CommandResult run;
    json report;
    std::string Describe() const { return run.Describe() + "\n--- report ---\n" + report.dump(2); }
  };
  static std::vector<std::string> RolloutArgs(const std::vector<std::string>& args,
                                              const fs::path& inventory, const fs::path& report) {
    std::vector<std::string> argv = {DECNET_ROLLOUT_BINARY};
    argv.insert(argv.end(), args.begin(), args.end() - 1);  // the tarball goes last
    argv.insert(argv.end(), {"--inventory", inventory.string(), "--cert",
                             fleet_->master_cert().string(), "--key", fleet_->master_key().string(),
                             "--ca", fleet_->ca_file().string(), "--json", report.string()});
    argv.push_back(args.back());
    return argv;
  }
  static json ReadReport(const fs::path& path) {
    json j = json::parse(hostproc::ReadText(path), nullptr, false);
    return j.is_object() ? j : json::object();
  }
  Rollout Run(const std::vector<std::string>& args, const fs::path& inventory) {
    const fs::path report = fleet_->dir() / ("report-" + std::to_string(++runs_) + ".json");
    Rollout r;
    r.run = fleet_->RunInHub(RolloutArgs(args, inventory, report), kRolloutTimeout);
    r.report = ReadReport(report);
    return r;
  }
  fs::path Inventory() { return fleet_->WriteInventory("inventory.json"); }

  // Worker N runs `release` right now: its link, the release directory's manifest, the
  // agent's own /health in N's namespace and the unit's state in N's systemd.
  void ExpectRuns(int n, const std::string& release_id, const std::string& version) {
    WorkerHost& w = W(n);
    EXPECT_EQ(w.CurrentRelease(), release_id) << Name(n);
    const fs::path manifest = w.install_dir() / "releases" / release_id / ".decnet-release.json";
    const json m = json::parse(hostproc::ReadText(manifest), nullptr, false);
    EXPECT_TRUE(m.is_object() && m.value("version", "") == version)
        << Name(n) << ": " << manifest << " is not the complete release " << version;
    EXPECT_TRUE(fs::exists(w.install_dir() / "releases" / release_id / "bin/decnet-test-agent"))
        << Name(n);
    const HttpReply health = w.AgentHealth();
    EXPECT_EQ(health.status, 200) << Name(n) << ": " << health.Describe();
    EXPECT_EQ(health.json.is_object() ? health.json.value("version", "") : "", version)
        << Name(n) << ": " << health.Describe();
    auto state = w.testbed().UnitProperty(WorkerHost::kAgent, "org.freedesktop.systemd1.Unit",
                                          "ActiveState");
    EXPECT_EQ(state ? *state : state.error(), "active") << Name(n);
  }

  // The version of the release a worker's link names (from the release's own manifest).
  static std::string VersionOf(int n, const std::string& release_id) {
    const json m = json::parse(
        hostproc::ReadText(W(n).install_dir() / "releases" / release_id / ".decnet-release.json"),
        nullptr, false);
    return m.is_object() ? m.value("version", "") : "";
  }

  static Fleet* fleet_;
  static BuiltRelease* baseline_;
  static std::vector<HttpReply>* replies_;
  static std::string* start_error_;
  static int versions_;
  static int runs_;
};

Fleet* AFleetOnOneMachine::fleet_ = nullptr;
BuiltRelease* AFleetOnOneMachine::baseline_ = nullptr;
std::vector<HttpReply>* AFleetOnOneMachine::replies_ = nullptr;
std::string* AFleetOnOneMachine::start_error_ = nullptr;
int AFleetOnOneMachine::versions_ = 0;
int AFleetOnOneMachine::runs_ = 0;

// Puts a worker's link back up when the test ends, whatever happened.
class LinkDown {
 public:
  LinkDown(FleetNetwork& net, int n) : net_(net), n_(n) {
    auto down = net_.SetLink(n_, false);
    EXPECT_TRUE(down) << (down ? "" : down.error());
  }
  ~LinkDown() {
    auto up = net_.SetLink(n_, true);
    EXPECT_TRUE(up) << (up ? "" : up.error());
  }

 private:
  FleetNetwork& net_;
  int n_;
};

// The harness itself, with curl: each worker took the baseline pushed from the hub to its own
// address, its daemon runs in its own network namespace, and its agent answers there.
TEST_F(AFleetOnOneMachine, TakesAPushOnEachWorkersOwnAddressFromTheHub) {
  for (int n = 1; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    EXPECT_EQ((*replies_)[n - 1].status, 200) << (*replies_)[n - 1].Describe();
    ExpectRuns(n, baseline_->id(), baseline_->version);
    // The daemon is in the worker's namespace, not the host's nor another worker's.
    struct stat daemon_ns {
    }, worker_ns{};
    const pid_t daemon = W(n).DaemonPid();
    ASSERT_GT(daemon, 0);
    ASSERT_EQ(::stat(("/proc/" + std::to_string(daemon) + "/ns/net").c_str(), &daemon_ns), 0);
    ASSERT_EQ(::stat(("/run/netns/" + fleet_->net().worker_netns(n)).c_str(), &worker_ns), 0);
    EXPECT_EQ(daemon_ns.st_ino, worker_ns.st_ino);
    // Its updater answers on its address from the hub, with the fleet's master certificate.
    const HttpReply health = W(n).Get("/health");
    EXPECT_EQ(health.status, 200) << health.Describe();
  }
}

TEST_F(AFleetOnOneMachine, RollsAReleaseOutToEveryWorker) {
  const BuiltRelease next = fleet_->BuildRelease(Spec(NextVersion()));
  const Rollout r =
      Run({"push", "--all", "--max-parallel", "5", next.tarball.string()}, Inventory());
  EXPECT_EQ(r.run.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.report.value("result", ""), "ok") << r.Describe();
  for (int n = 1; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    ExpectRuns(n, next.id(), next.version);
    EXPECT_EQ(HostEntry(r.report, Name(n)).value("result", ""), "ok") << r.Describe();
  }
}

TEST_F(AFleetOnOneMachine, HaltsAtAWorkerWhoseReleaseFailsItsHealthGate) {
  std::map<int, Snapshot> before;
  for (int n = 1; n <= kWorkers; ++n) before[n] = Take(W(n));
  const std::string version = NextVersion();
  // The same tarball everywhere; on w3 alone its agent answers 503.
  W(3).SetAgentFlags(version, {"--unhealthy"});
  const BuiltRelease next = fleet_->BuildRelease(Spec(version));
  const Rollout r = Run(
      {"push", "--all", "--batch", "1", "--max-parallel", "1", next.tarball.string()}, Inventory());
  W(3).SetAgentFlags(version, {});

  EXPECT_EQ(r.run.exit_code, 1) << r.Describe();
  EXPECT_EQ(r.report.value("halted_by", json()).is_string()
                ? r.report["halted_by"].get<std::string>()
                : "",
            "w3")
      << r.Describe();
  const json w3 = HostEntry(r.report, "w3");
  EXPECT_EQ(w3.value("result", ""), "failed") << r.Describe();
  EXPECT_EQ(w3.value("failure", json()), "rolled-back") << r.Describe();
  EXPECT_FALSE(w3.value("cause", json()).is_null()) << r.Describe();
  // Before it: updated. It: back on what it ran, having tried (its audit log says so).
  for (int n : {1, 2}) ExpectRuns(n, next.id(), version);
  ExpectRuns(3, before[3].current, VersionOf(3, before[3].current));
  EXPECT_GT(W(3).AuditLog().size(), before[3].audit_lines);
  // After it: untouched, and reported skipped.
  for (int n : {4, 5}) {
    SCOPED_TRACE(Name(n));
    EXPECT_EQ(Take(W(n)), before[n]) << Describe(Take(W(n))) << " vs " << Describe(before[n]);
    EXPECT_EQ(HostEntry(r.report, Name(n)).value("result", ""), "skipped") << r.Describe();
  }
}

TEST_F(AFleetOnOneMachine, HaltsAtAnUnreachableWorker) {
  std::map<int, Snapshot> before;
  for (int n = 1; n <= kWorkers; ++n) before[n] = Take(W(n));
  const BuiltRelease next = fleet_->BuildRelease(Spec(NextVersion()));
  Rollout r;
  {
    LinkDown down(fleet_->net(), 2);
    r = Run({"push", "--all", "--batch", "1", "--max-parallel", "1", "--timeout", "5",
             next.tarball.string()},
            Inventory());
  }
  EXPECT_EQ(r.run.exit_code, 1) << r.Describe();
  const json w2 = HostEntry(r.report, "w2");
  EXPECT_EQ(w2.value("result", ""), "failed") << r.Describe();
  const json failure = w2.value("failure", json());
  EXPECT_TRUE(failure == "unreachable" || failure == "timeout") << r.Describe();
  ExpectRuns(1, next.id(), next.version);
  for (int n = 2; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    EXPECT_EQ(Take(W(n)), before[n]) << Describe(Take(W(n))) << " vs " << Describe(before[n]);
    if (n > 2) {
      EXPECT_EQ(HostEntry(r.report, Name(n)).value("result", ""), "skipped");
    }
  }
}

TEST_F(AFleetOnOneMachine, ChangesNothingOnADryRun) {
  std::map<int, Snapshot> before;
  for (int n = 1; n <= kWorkers; ++n) before[n] = Take(W(n));
  const BuiltRelease next = fleet_->BuildRelease(Spec(NextVersion()));
  const Rollout r = Run({"push", "--all", "--dry-run", next.tarball.string()}, Inventory());
  EXPECT_EQ(r.run.exit_code, 0) << r.Describe();
  for (int n = 1; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    EXPECT_EQ(Take(W(n)), before[n]) << Describe(Take(W(n))) << " vs " << Describe(before[n]);
    const json host = HostEntry(r.report, Name(n));
    EXPECT_EQ(host.value("result", ""), "ok") << r.Describe();
    EXPECT_EQ(host.value("bytes_sent", -1), 0) << r.Describe();
    EXPECT_EQ(host.value("/details/target/version"_json_pointer, ""), next.version) << r.Describe();
    EXPECT_EQ(host.value("/details/would_change"_json_pointer, false), true) << r.Describe();
  }
}

TEST_F(AFleetOnOneMachine, RefusesAWrongPinnedFingerprintBeforeAnyUpload) {
  std::map<int, Snapshot> before;
  for (int n = 1; n <= kWorkers; ++n) before[n] = Take(W(n));
  // w1 pinned to w2's certificate: a genuine certificate of the fleet's CA, not w1's.
  const fs::path inventory =
      fleet_->WriteInventory("wrong-pin.json", {{"w1", W(2).updater_fingerprint()}});
  const BuiltRelease next = fleet_->BuildRelease(Spec(NextVersion()));
  const Rollout r = Run({"push", "--all", next.tarball.string()}, inventory);
  EXPECT_EQ(r.run.exit_code, 1) << r.Describe();
  const json w1 = HostEntry(r.report, "w1");
  EXPECT_EQ(w1.value("result", ""), "failed") << r.Describe();
  EXPECT_EQ(w1.value("failure", json()), "pin-mismatch") << r.Describe();
  EXPECT_EQ(w1.value("bytes_sent", -1), 0) << r.Describe();
  // No worker saw an upload: no audit line, nothing stored, no link moved.
  for (int n = 1; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    EXPECT_EQ(Take(W(n)), before[n]) << Describe(Take(W(n))) << " vs " << Describe(before[n]);
    if (n > 1) {
      EXPECT_EQ(HostEntry(r.report, Name(n)).value("result", ""), "skipped");
    }
  }
}

TEST_F(AFleetOnOneMachine, LeavesNoWorkerBetweenTwoReleasesWhenStoppedBySigterm) {
  std::map<int, Snapshot> before;
  for (int n = 1; n <= kWorkers; ++n) before[n] = Take(W(n));
  const BuiltRelease next = fleet_->BuildRelease(Spec(NextVersion()));
  const fs::path report = fleet_->dir() / "report-sigterm.json";
  const pid_t pid = fleet_->SpawnInHub(
      RolloutArgs({"push", "--all", "--batch", "1", "--max-parallel", "1", next.tarball.string()},
                  Inventory(), report),
      "sigterm");
  ASSERT_GT(pid, 0);
  // One host at a time, each taking the daemon's settle and gate (over a second): SIGTERM as
  // soon as the first has finished, while the second is in flight.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (W(1).AuditLog().size() == before[1].audit_lines &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_GT(W(1).AuditLog().size(), before[1].audit_lines) << "w1 was never updated";
  ::kill(pid, SIGTERM);
  Rollout r;
  r.run = fleet_->WaitInHub(pid, "sigterm", kRolloutTimeout);
  r.report = ReadReport(report);

  EXPECT_EQ(r.run.signal, 0) << "decnet-rollout died of its signal: " << r.Describe();
  EXPECT_EQ(r.run.exit_code, 1) << r.Describe();
  EXPECT_EQ(r.report.value("interrupted", false), true) << r.Describe();
  int skipped = 0;
  for (int n = 1; n <= kWorkers; ++n) {
    SCOPED_TRACE(Name(n));
    const json host = HostEntry(r.report, Name(n));
    const std::string result = host.value("result", "");
    if (result == "ok") {
      ExpectRuns(n, next.id(), next.version);
    } else {
      // Never half-way: on its old release, complete, and nothing else moved.
      EXPECT_EQ(result, "skipped") << r.Describe();
      ++skipped;
      EXPECT_EQ(Take(W(n)), before[n]) << Describe(Take(W(n))) << " vs " << Describe(before[n]);
      ExpectRuns(n, before[n].current, VersionOf(n, before[n].current));
    }
  }
  EXPECT_EQ(HostEntry(r.report, "w1").value("result", ""), "ok") << r.Describe();
  EXPECT_GE(skipped, 1) << "SIGTERM came too late to leave any host unstarted: " << r.Describe();
}

}  // namespace
}  // namespace decnet::test
