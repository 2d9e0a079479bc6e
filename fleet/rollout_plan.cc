#include "fleet/rollout_plan.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace decnet::fleet {

std::string_view HostResultName(HostResult r) {
  switch (r) {
    case HostResult::kOk:
      return "ok";
    case HostResult::kFailed:
      return "failed";
    case HostResult::kSkipped:
      return "skipped";
  }
  return "failed";
}

std::string_view FailureKindName(FailureKind k) {
  switch (k) {
    case FailureKind::kNone:
      return "none";
    case FailureKind::kUnreachable:
      return "unreachable";
    case FailureKind::kPinMismatch:
      return "pin-mismatch";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kRefused:
      return "refused";
    case FailureKind::kRolledBack:
      return "rolled-back";
    case FailureKind::kSelfFailed:
      return "self-failed";
    case FailureKind::kProtocol:
      return "protocol";
    case FailureKind::kLocal:
      return "local";
  }
  return "protocol";
}

namespace {

// The targets in run order: the canary first.
std::vector<Target> Ordered(const std::vector<Target>& targets, const PlanOptions& options) {
  std::vector<Target> out = targets;
  if (!options.use_canary || out.empty() || !options.canary) return out;
  auto it = std::find_if(out.begin(), out.end(),
                         [&](const Target& t) { return t.name == *options.canary; });
  if (it != out.end()) std::rotate(out.begin(), it, it + 1);
  return out;
}

HostOutcome Skipped(const Target& t, std::string cause) {
  HostOutcome o;
  o.name = t.name;
  o.address = t.address;
  o.port = t.port;
  o.result = HostResult::kSkipped;
  o.cause = std::move(cause);
  o.phase = "pending";
  return o;
}

}  // namespace

PlanReport RunPlan(const std::vector<Target>& targets, const PlanOptions& options,
                   const HostRunner& runner, ProgressSink& progress,
                   const std::atomic<bool>& stop) {
  const std::vector<Target> order = Ordered(targets, options);
  const std::size_t max_parallel = std::max<std::size_t>(options.max_parallel, 1);
  const std::size_t batch = std::max<std::size_t>(options.batch, 1);

  // Waves: the canary alone, then batches of the rest; the next wave starts only when the
  // whole previous one succeeded.
  std::vector<std::pair<std::size_t, std::size_t>> waves;  // [begin, end)
  std::size_t begin = 0;
  if (options.use_canary && !order.empty()) waves.emplace_back(0, begin = 1);
  for (; begin < order.size(); begin += batch)
    waves.emplace_back(begin, std::min(order.size(), begin + batch));

  PlanReport report;
  report.hosts.resize(order.size());
  std::vector<bool> started(order.size(), false);
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0;
  bool failed = false;

  for (const auto& [wave_begin, wave_end] : waves) {
    std::vector<std::thread> threads;
    for (std::size_t i = wave_begin; i < wave_end; ++i) {
      std::unique_lock lock(mu);
      // Wait for a free slot; look at the stop flag often, since a signal handler cannot
      // notify a condition variable.
      while (in_flight >= max_parallel && !(failed && options.halt_on_failure))
        cv.wait_for(lock, std::chrono::milliseconds(50));
      if ((failed && options.halt_on_failure) || stop.load()) break;
      started[i] = true;
      ++in_flight;
      threads.emplace_back([&, i] {
        HostOutcome o = runner(order[i], progress);
        o.name = order[i].name;
        o.address = order[i].address;
        o.port = order[i].port;
        if (o.result == HostResult::kSkipped) o.result = HostResult::kFailed;
        progress.Finished(o);
        std::lock_guard inner(mu);
        if (o.result == HostResult::kFailed && !failed) {
          failed = true;
          if (options.halt_on_failure) report.halted_by = o.name;
        }
        report.hosts[i] = std::move(o);
        --in_flight;
        cv.notify_all();
      });
    }
    for (auto& t : threads) t.join();
    if ((failed && options.halt_on_failure) || stop.load()) break;
  }

  for (std::size_t i = 0; i < order.size(); ++i) {
    if (started[i]) continue;
    if (report.halted_by)
      report.hosts[i] =
          Skipped(order[i], "not started: the rollout halted at " + *report.halted_by);
    else {
      report.hosts[i] = Skipped(order[i], "not started: interrupted by a signal");
      report.interrupted = true;
    }
  }
  return report;
}

}  // namespace decnet::fleet
