// The rolling plan: a canary alone, then batches with a bound on hosts in flight, halting at
// the first failure. It knows no transport: each host is run by a caller-given function
// (the real worker client, or a fake in tests) that returns what happened to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/inventory.h"

namespace decnet::fleet {

enum class HostResult { kOk, kFailed, kSkipped };

// Why a host failed (kNone when it did not).
enum class FailureKind {
  kNone,
  kUnreachable,  // no TCP connection, or the handshake failed
  kPinMismatch,  // the updater's certificate is not the pinned one: nothing was sent
  kTimeout,      // a connect, handshake, write or read ran out of time
  kRefused,      // the worker answered a failure and did not roll back (or had nothing to)
  kRolledBack,   // the worker installed the release, found it unhealthy and rolled back
  kSelfFailed,   // update-self was refused, or the new build did not answer in time
  kProtocol,     // the answer was not the updater's
  kLocal,        // a problem on the master's side (an unreadable file)
};

std::string_view HostResultName(HostResult r);    // "ok", "failed", "skipped"
std::string_view FailureKindName(FailureKind k);  // "unreachable", "pin-mismatch", ...

// What happened to one host.
struct HostOutcome {
  std::string name;
  std::string address;
  std::uint16_t port = 0;
  HostResult result = HostResult::kSkipped;
  FailureKind failure = FailureKind::kNone;
  std::string cause;                 // one human sentence; empty when ok
  std::string rule;                  // the worker's or our rule naming the failure
  std::optional<int> http_status;    // the last answer's status, when one came
  std::string phase = "pending";     // the last phase reached
  std::uint64_t bytes_sent = 0;      // request body bytes written, every request summed
  nlohmann::json release = nullptr;  // the active release afterwards, as the worker shows it
  nlohmann::json self = nullptr;     // update-self: {"result":..,"cause":..} or null
  nlohmann::json details = nullptr;  // dry-run and status findings
  std::int64_t duration_ms = 0;
};

// Progress of hosts in flight, reported by host runners from their own threads.
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  // A host entered `phase` ("connect", "upload", "gate", "self", "done", ...).
  virtual void Phase(const std::string& host, std::string_view phase) = 0;
  // Body bytes sent of total in the current upload.
  virtual void Bytes(const std::string& host, std::uint64_t sent, std::uint64_t total) = 0;
  // A host finished.
  virtual void Finished(const HostOutcome& outcome) = 0;
};

class NullProgress final : public ProgressSink {
 public:
  void Phase(const std::string&, std::string_view) override {}
  void Bytes(const std::string&, std::uint64_t, std::uint64_t) override {}
  void Finished(const HostOutcome&) override {}
};

// Runs one host; must return (never throw) with result kOk or kFailed.
using HostRunner = std::function<HostOutcome(const Target&, ProgressSink&)>;

struct PlanOptions {
  std::optional<std::string> canary;  // a target's name; the first target when unset
  bool use_canary = true;             // false: no host runs alone first (status, dry-run)
  std::size_t batch = 5;              // hosts per batch after the canary, >= 1
  std::size_t max_parallel = 5;       // hosts in flight at once, >= 1
  bool halt_on_failure = true;        // false: every host runs (status, dry-run)
};

struct PlanReport {
  std::vector<HostOutcome> hosts;        // in the order they were (or would have been) run
  std::optional<std::string> halted_by;  // the first host that failed, when that halted it
  bool interrupted = false;              // `stop` was seen before every host had started
};

// Orders `targets` (the canary first, then the others in their order), runs them in batches
// with at most max_parallel in flight, never starting a host after a failure (when
// halt_on_failure) or after `stop` became true; hosts in flight always finish. Hosts never
// started are kSkipped with the reason in `cause`. A canary name not among the targets is
// the caller's to refuse (it is ignored here). batch and max_parallel of 0 count as 1.
PlanReport RunPlan(const std::vector<Target>& targets, const PlanOptions& options,
                   const HostRunner& runner, ProgressSink& progress, const std::atomic<bool>& stop);

}  // namespace decnet::fleet
