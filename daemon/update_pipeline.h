// The update pipeline: spool+verify -> extract and install in place ->
// validate units with the helper's policy -> flip `current` -> helper: write/remove units,
// daemon-reload, repoint links -> restart units in order -> health gate -> commit, or roll
// back the release, its units and its links. Every answer is DECNET's status and JSON.
// One operation at a time: the caller (the API) refuses a second one with 503.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/audit_log.h"
#include "daemon/config.h"
#include "daemon/health_gate.h"
#include "daemon/helper_client.h"
#include "daemon/release_store.h"
#include "policy/policy.h"

namespace decnet::daemon {

namespace pipeline {
struct Attempt;
}

// Who asked, from the client certificate.
struct Caller {
  std::string fingerprint;
  std::string cn;
};

// A verified upload: the spooled tarball (read from offset 0) and the form's fields.
struct VerifiedTarball {
  int fd = -1;  // borrowed; the caller closes it after the call
  uint64_t size = 0;
  std::string sha256;
  std::optional<std::string> sha;
};

// An HTTP answer in DECNET's shapes.
struct ApiAnswer {
  unsigned status = 500;
  nlohmann::json body;
};

// What the API asks of the update side; the pipeline implements it, API tests fake it.
// Calls come one at a time, from a worker thread (never the I/O thread).
class Operations {
 public:
  virtual ~Operations() = default;
  // POST /update with a verified tarball: 200 updated, 409 rolled back, 500 failed.
  virtual ApiAnswer Update(const Caller& caller, const VerifiedTarball& tarball) = 0;
  // POST /update-self with a verified tarball (confirm_self already checked): 200 queued
  // (the restart follows once `after_reply` runs), 400/500 refused.
  virtual ApiAnswer UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                               std::function<void()>* after_reply) = 0;
  // POST /rollback: 200 rolled back, 404 no previous release, 500 failed.
  virtual ApiAnswer Rollback(const Caller& caller) = 0;
  // The releases in DECNET's order (active, previous, then the others kept).
  virtual std::vector<nlohmann::json> Releases() = 0;
  // Runs after each operation's reply was handed to the transport, still one at a time:
  // work the caller need not wait for, such as deleting old releases.
  virtual void AfterReply() {}
};

// What POST /update-self installs into: the daemon's own release store (config.updater_dir,
// opened at start-up by OpenUpdaterStore, daemon/self_update.h).
struct SelfUpdateTarget {
  ReleaseStore* store = nullptr;  // null: update-self is refused with `unavailable_why`
  std::string unavailable_why = "no store for the daemon's own builds is configured";
  uint64_t helper_protocol = 0;   // the protocol the installed helper speaks
  std::string arch;               // uname -m of this host
  std::chrono::milliseconds smoke_timeout{10'000};  // `decnet-updaterd --version` of the build
};

class UpdatePipeline : public Operations {
 public:
  UpdatePipeline(const DaemonConfig& config, const helper::Policy& policy, ReleaseStore& store,
                 HelperClient& helper, HealthGate& gate, AuditLog& audit);

  ApiAnswer Update(const Caller& caller, const VerifiedTarball& tarball) override;
  ApiAnswer UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                       std::function<void()>* after_reply) override;
  ApiAnswer Rollback(const Caller& caller) override;
  std::vector<nlohmann::json> Releases() override;
  // Prunes the store to keep_releases (deleting a large tree can take seconds on a
  // discard-mounted disk: the master is not kept waiting for it).
  void AfterReply() override;
  // At start-up, once the store has recovered: makes units and links match the active
  // release (removing units only other kept releases ship), restarting the services when
  // `reverted` (recovery undid an interrupted update) or when anything had to change.
  // Returns false (with an audit entry) when it could not.
  bool Reconcile(const std::string& why, bool reverted);

  // Test-only: called with the name of each step ("extracting", "extracted", "installing",
  // "installed", "complete", "flipped", "unit-written" (after each unit), "reloaded",
  // "restarted", "committed", "rolling-back", "reverted"); the crash matrix ends the process
  // there.
  // update-self adds "self-extracting", "self-extracted", "self-complete", "self-flipped".
  using StepHook = std::function<void(std::string_view)>;
  void SetStepHook(StepHook hook) { step_ = std::move(hook); }

  // Enables update-self (before the API serves).
  void SetSelfUpdate(SelfUpdateTarget target) { self_ = std::move(target); }

 private:
  ApiAnswer Activate(pipeline::Attempt& a);
  enum class Restart { kAlways, kIfChanged };
  Result<void> ApplyRelease(const ReleaseId& id, const std::vector<ReleaseId>& others,
                            std::map<UnitName, uint32_t>* restarts, std::string* stderr_text,
                            Restart restart = Restart::kAlways);
  void Step(std::string_view name) const;

  const DaemonConfig& config_;
  const helper::Policy& policy_;
  ReleaseStore& store_;
  HelperClient& helper_;
  HealthGate& gate_;
  AuditLog& audit_;
  StepHook step_;
  SelfUpdateTarget self_;
};

}  // namespace decnet::daemon
