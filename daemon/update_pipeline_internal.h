// Parts the update pipeline's translation units share (update_pipeline.cc, self_update.cc).
// Internal to the daemon: not an interface.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "daemon/audit_log.h"
#include "daemon/update_pipeline.h"
#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet::daemon::pipeline {

using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t);

// The manifest at the release's root, or nullopt for a tree without one (a DECNET push).
// Refuses a manifest that is not a small regular file ("manifest-file", "manifest-size") and
// whatever ParseReleaseManifest refuses.
Result<std::optional<ReleaseManifest>> ReadManifest(int release_dir_fd);

// One operation in flight: what it is about and what it has measured, for the answer and
// the audit line.
struct Attempt {
  Clock::time_point start = Clock::now();
  Clock::time_point deadline;
  AuditEntry audit;
  std::optional<ReleaseId> id;
  std::string version;
  bool version_declared = false;  // by the release's manifest (else the sha field or digest)
  std::optional<ReleaseId> from;
  std::string stderr_text;
  bool fresh = false;  // this attempt installed the release (not a re-push of a kept one)

  Attempt(std::string op, const Caller& caller, std::chrono::milliseconds budget);
  // Completes the audit line (result, rule, error, total time), appends it, and passes the
  // outcome through.
  template <class Outcome>
  Outcome Finish(AuditLog& log, Outcome outcome, std::string result, const Error* e) {
    Record(log, std::move(result), e);
    return outcome;
  }
  void Record(AuditLog& log, std::string result, const Error* e);
};

}  // namespace decnet::daemon::pipeline
