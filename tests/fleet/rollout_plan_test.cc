// The rolling plan against a fake worker transport: a runner that records which hosts it was
// asked to touch, when, and fails the ones it is told to.
#include "fleet/rollout_plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

namespace decnet::fleet {
namespace {

std::vector<Target> Fleet(int n) {
  std::vector<Target> out;
  for (int i = 1; i <= n; ++i)
    out.push_back(
        {"w" + std::to_string(i), "10.0.0." + std::to_string(i), 8766, std::string(64, 'a')});
  return out;
}

class FakeWorkers {
 public:
  std::set<std::string> failing;
  std::chrono::milliseconds work{5};
  std::function<void(const std::string&)> on_start;

  HostRunner Runner() {
    return [this](const Target& t, ProgressSink& p) {
      {
        std::lock_guard lock(mu_);
        started_.push_back(t.name);
        ++in_flight_;
        peak_ = std::max(peak_, in_flight_);
      }
      if (on_start) on_start(t.name);
      p.Phase(t.name, "upload");
      std::this_thread::sleep_for(work);
      HostOutcome o;
      o.result = failing.contains(t.name) ? HostResult::kFailed : HostResult::kOk;
      if (o.result == HostResult::kFailed) {
        o.failure = FailureKind::kRolledBack;
        o.cause = "unhealthy";
      }
      std::lock_guard lock(mu_);
      --in_flight_;
      return o;
    };
  }
  std::vector<std::string> started() {
    std::lock_guard lock(mu_);
    return started_;
  }
  int peak() {
    std::lock_guard lock(mu_);
    return peak_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> started_;
  int in_flight_ = 0;
  int peak_ = 0;
};

std::vector<std::string> Names(const PlanReport& r, HostResult which) {
  std::vector<std::string> out;
  for (const auto& h : r.hosts)
    if (h.result == which) out.push_back(h.name);
  return out;
}

// Every host the plan skipped gives `why` in its cause.
void ExpectEverySkippedHostSays(const PlanReport& r, const std::string& why) {
  for (const auto& h : r.hosts) {
    if (h.result == HostResult::kSkipped) {
      EXPECT_NE(h.cause.find(why), std::string::npos) << h.name;
    }
  }
}

TEST(ARollout, UpdatesEveryHostWithTheCanaryFirstAndAloneWhenAllSucceed) {
  FakeWorkers workers;
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanOptions options;
  options.canary = "w4";
  options.batch = 2;
  options.max_parallel = 2;
  PlanReport r = RunPlan(Fleet(7), options, workers.Runner(), progress, stop);
  EXPECT_EQ(Names(r, HostResult::kOk).size(), 7u);
  EXPECT_FALSE(r.halted_by);
  EXPECT_FALSE(r.interrupted);
  ASSERT_FALSE(workers.started().empty());
  EXPECT_EQ(workers.started().front(), "w4");
  EXPECT_EQ(r.hosts.front().name, "w4");
}

TEST(ARollout, TouchesNothingElseWhenTheCanaryFails) {
  FakeWorkers workers;
  workers.failing = {"w1"};
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanReport r = RunPlan(Fleet(6), PlanOptions{}, workers.Runner(), progress, stop);
  EXPECT_EQ(workers.started(), std::vector<std::string>{"w1"});
  EXPECT_EQ(r.halted_by, "w1");
  EXPECT_EQ(Names(r, HostResult::kFailed), std::vector<std::string>{"w1"});
  EXPECT_EQ(Names(r, HostResult::kSkipped).size(), 5u);
  ExpectEverySkippedHostSays(r, "halted at w1");
}

TEST(ARollout, SkipsLaterBatchesAfterAFailureInTheSecondBatch) {
  FakeWorkers workers;
  workers.failing = {"w5"};  // canary w1, batch 1 = w2 w3, batch 2 = w4 w5, batch 3 = w6 w7
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanOptions options;
  options.batch = 2;
  options.max_parallel = 2;
  PlanReport r = RunPlan(Fleet(7), options, workers.Runner(), progress, stop);
  EXPECT_EQ(r.halted_by, "w5");
  auto started = workers.started();
  std::sort(started.begin(), started.end());
  EXPECT_EQ(started, (std::vector<std::string>{"w1", "w2", "w3", "w4", "w5"}));
  EXPECT_EQ(Names(r, HostResult::kSkipped), (std::vector<std::string>{"w6", "w7"}));
}

TEST(ARollout, StartsNoHostOfTheSameBatchAfterAFailure) {
  FakeWorkers workers;
  workers.failing = {"w2"};
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanOptions options;
  options.batch = 10;
  options.max_parallel = 1;  // one at a time inside the batch
  PlanReport r = RunPlan(Fleet(6), options, workers.Runner(), progress, stop);
  EXPECT_EQ(workers.started(), (std::vector<std::string>{"w1", "w2"}));
  EXPECT_EQ(Names(r, HostResult::kSkipped).size(), 4u);
}

TEST(ARollout, NeverHasMoreHostsInFlightThanMaxParallel) {
  FakeWorkers workers;
  workers.work = std::chrono::milliseconds(30);
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanOptions options;
  options.batch = 8;
  options.max_parallel = 3;
  PlanReport r = RunPlan(Fleet(17), options, workers.Runner(), progress, stop);
  EXPECT_EQ(Names(r, HostResult::kOk).size(), 17u);
  EXPECT_EQ(workers.peak(), 3);
}

TEST(ARollout, LetsHostsInFlightFinishAndSkipsTheRestOnASignal) {
  FakeWorkers workers;
  workers.work = std::chrono::milliseconds(50);
  std::atomic<bool> stop{false};
  workers.on_start = [&](const std::string& name) {
    if (name == "w3") stop.store(true);  // SIGTERM arrives while w2..w4 are in flight
  };
  NullProgress progress;
  PlanOptions options;
  options.batch = 3;
  options.max_parallel = 3;
  PlanReport r = RunPlan(Fleet(9), options, workers.Runner(), progress, stop);
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(r.halted_by);
  // Every host started finished ok; no host was started after the stop.
  const auto ok = Names(r, HostResult::kOk);
  for (const auto& name : workers.started())
    EXPECT_NE(std::find(ok.begin(), ok.end(), name), ok.end()) << name;
  EXPECT_LE(workers.started().size(), 4u);
  EXPECT_GE(Names(r, HostResult::kSkipped).size(), 5u);
  ExpectEverySkippedHostSays(r, "interrupted");
}

TEST(AStatusPlan, ReachesEveryHostDespiteFailures) {
  FakeWorkers workers;
  workers.failing = {"w1", "w3"};
  NullProgress progress;
  std::atomic<bool> stop{false};
  PlanOptions options;
  options.use_canary = false;
  options.halt_on_failure = false;
  PlanReport r = RunPlan(Fleet(5), options, workers.Runner(), progress, stop);
  EXPECT_EQ(workers.started().size(), 5u);
  EXPECT_EQ(Names(r, HostResult::kFailed).size(), 2u);
  EXPECT_FALSE(r.halted_by);
}

TEST(ARollout, ReportsARunnerThatClaimsSkippedAsFailed) {
  NullProgress progress;
  std::atomic<bool> stop{false};
  HostRunner runner = [](const Target&, ProgressSink&) { return HostOutcome{}; };
  PlanReport r = RunPlan(Fleet(2), PlanOptions{}, runner, progress, stop);
  EXPECT_EQ(r.hosts[0].result, HostResult::kFailed);
  EXPECT_EQ(r.halted_by, "w1");
}

}  // namespace
}  // namespace decnet::fleet
