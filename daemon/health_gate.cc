// The health gate: settle, then probe. DECNET takes any single 200 from the agent right
// after the restart (DECNET's defect 10, docs/decnet-compat.md); a unit that crash-loops, or an
// old agent still answering, would pass. So the gate first watches every restarted unit
// for the settle window (still active, no new restart), then probes, optionally checking
// the version the agent reports.
#include "daemon/health_gate.h"

#include <algorithm>
#include <thread>

#include "proto/json_strict.h"

namespace decnet::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kSettlePoll{250};

GateVerdict Unhealthy(std::string rule, std::string detail, std::string probe = "") {
  return GateVerdict{false, std::move(probe), std::move(detail), std::move(rule)};
}

GateVerdict DeadlineVerdict(std::string during, std::string probe = "") {
  return Unhealthy("gate-deadline", "the update's deadline ran out " + std::move(during),
                   std::move(probe));
}

std::string Attempt(int n, int of) {
  return "attempt " + std::to_string(n) + " of " + std::to_string(of);
}

class RealHealthGate : public HealthGate {
 public:
  RealHealthGate(const DaemonConfig& config, HelperClient& helper)
      : probe_(config.probe), settle_(config.settle_ms), helper_(helper) {}

  GateVerdict Check(const std::map<UnitName, uint32_t>& restarts_before,
                    const std::string& expected_version, Clock::time_point deadline) override {
    if (auto failed = Settle(restarts_before, deadline)) return *failed;
    return Probe(expected_version, deadline);
  }

 private:
  // One look at every unit: the first that is not active, or has restarted, fails.
  std::optional<GateVerdict> LookOnce(const std::map<UnitName, uint32_t>& restarts_before) {
    for (const auto& [unit, before] : restarts_before) {
      auto state = helper_.UnitStatus(unit);
      if (!state) {
        return Unhealthy("gate-unit-inactive",
                         "cannot read the state of " + unit.str() + ": " + state.error().message);
      }
      if (state->active_state != "active") {
        return Unhealthy("gate-unit-inactive", unit.str() + " is " + state->active_state + "/" +
                                                   state->sub_state + " during the settle window");
      }
      if (state->n_restarts != before) {
        uint32_t more = state->n_restarts - before;
        return Unhealthy("gate-unit-restarted", unit.str() + " restarted " + std::to_string(more) +
                                                    (more == 1 ? " time" : " times") +
                                                    " during the settle window");
      }
    }
    return std::nullopt;
  }

  // Polls every unit until the settle window has passed; a crash-looping unit shows
  // either as not active or as a grown NRestarts, whichever the poll catches.
  std::optional<GateVerdict> Settle(const std::map<UnitName, uint32_t>& restarts_before,
                                    Clock::time_point deadline) {
    if (restarts_before.empty()) return std::nullopt;
    const auto settled_at = Clock::now() + settle_;
    for (;;) {
      if (auto failed = LookOnce(restarts_before)) return failed;
      const auto now = Clock::now();
      if (now >= settled_at) return std::nullopt;
      if (now >= deadline) return DeadlineVerdict("before the units had settled");
      std::this_thread::sleep_until(std::min({now + kSettlePoll, settled_at, deadline}));
    }
  }

  // Up to `attempts` probes, `interval_ms` apart, each bounded by `timeout_ms` and by the
  // deadline. A wrong version is retried like any failure: an old agent may still hold the
  // port for a moment after the restart.
  GateVerdict Probe(const std::string& expected_version, Clock::time_point deadline) {
    const int attempts = std::max(probe_.attempts, 1);
    const milliseconds timeout(probe_.timeout_ms);
    std::string last;
    for (int n = 1;; ++n) {
      const auto left = std::chrono::floor<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return DeadlineVerdict("before " + Attempt(n, attempts), last);
      const bool cut_short = left < timeout;
      auto body = ProbeOnce(probe_, std::min(timeout, left));
      Error why;
      if (body && probe_.check_version) {
        if (auto version = CheckProbeVersion(*body, expected_version); !version) {
          why = version.error();
        }
      } else if (!body) {
        why = body.error();
      }
      if (why.rule.empty()) return GateVerdict{true, *body, Attempt(n, attempts) + ": healthy", ""};
      std::string detail = Attempt(n, attempts) + ": " + why.message;
      // An attempt the deadline cut short says less than the last answer before it.
      if (cut_short && why.code == ErrorCode::kTimeout)
        return DeadlineVerdict("at " + detail, last.empty() ? why.message : last);
      last = body ? *body : why.message;
      if (n >= attempts) {
        return Unhealthy(why.rule == "gate-version" ? "gate-version" : "gate-probe",
                         std::move(detail), std::move(last));
      }
      if (Clock::now() >= deadline) return DeadlineVerdict("after " + detail, last);
      std::this_thread::sleep_until(
          std::min(Clock::now() + milliseconds(probe_.interval_ms), deadline));
    }
  }

  ProbeConfig probe_;
  milliseconds settle_;
  HelperClient& helper_;
};

}  // namespace

Result<void> CheckProbeVersion(std::string_view body, const std::string& expected) {
  auto json = strict_json::ParseObject(body, 32);
  if (!json) {
    return Fail(ErrorCode::kFailed, "gate-version",
                "the agent's health body is not a JSON object (" + json.error().message + ")");
  }
  auto it = json->find("version");
  if (it == json->end() || !it->is_string()) {
    return Fail(ErrorCode::kFailed, "gate-version",
                "the agent's health body has no \"version\" string");
  }
  const auto& got = it->get_ref<const std::string&>();
  if (got != expected) {
    constexpr size_t kShown = 128;  // the body is the agent's: bound what we repeat
    if (got.size() > kShown) {
      return Fail(ErrorCode::kFailed, "gate-version",
                  "the agent reports another version (" + std::to_string(got.size()) +
                      " bytes), expected \"" + expected + "\"");
    }
    return Fail(ErrorCode::kFailed, "gate-version",
                "the agent reports version \"" + got + "\", expected \"" + expected + "\"");
  }
  return {};
}

std::unique_ptr<HealthGate> MakeHealthGate(const DaemonConfig& config, HelperClient& helper) {
  return std::make_unique<RealHealthGate>(config, helper);
}

}  // namespace decnet::daemon
