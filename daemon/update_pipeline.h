// The update pipeline: spool+verify -> extract and install in place ->
// validate units with the helper's policy -> flip `current` -> helper: write/remove units,
// daemon-reload, repoint links -> restart units in order -> health gate -> commit, or roll
// back the release, its units and its links. Each operation returns what happened (an outcome,
// daemon/outcome.h); the API turns it into DECNET's status and JSON (daemon/api_answers.h).
// One operation at a time: the caller (the API) refuses a second one while one runs.
// Old releases are pruned without holding anyone up: at the end of each operation their
// records go and their directories are moved aside (one rename each); a background pruner
// (daemon/release_pruner.h) deletes them beside whatever runs next.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/audit_log.h"
#include "daemon/config.h"
#include "daemon/health_gate.h"
#include "daemon/helper_client.h"
#include "daemon/outcome.h"
#include "daemon/release_guard.h"
#include "daemon/release_pruner.h"
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
  // What the checks at the head of the upload admitted (daemon/release_guard.h): the
  // descriptor, the keys that signed it and the downgrade asked for. Empty for DECNET's push.
  ReleaseClaim claim{};
};

// What the API asks of the update side; the pipeline implements it, API tests fake it.
// Calls come one at a time, from a worker thread (never the I/O thread).
class Operations {
 public:
  virtual ~Operations() = default;
  // POST /update with a verified tarball: updated, rolled back (with the failed step's rule),
  // rejected, refused or failed.
  virtual UpdateOutcome Update(const Caller& caller, const VerifiedTarball& tarball) = 0;
  // POST /update-self with a verified tarball (confirm_self already checked): queued (the
  // restart follows once `after_reply` runs), refused or failed.
  virtual SelfUpdateOutcome UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                                       std::function<void()>* after_reply) = 0;
  // POST /rollback: restored, no previous release, or failed.
  virtual RollbackOutcome Rollback(const Caller& caller) = 0;
  // The releases in DECNET's order (active, previous, then the others kept).
  virtual std::vector<nlohmann::json> Releases() = 0;
};

// What POST /update-self installs into: the daemon's own release store (config.updater_dir,
// opened at start-up by OpenUpdaterStore, daemon/self_update.h).
struct SelfUpdateTarget {
  ReleaseStore* store = nullptr;  // null: update-self is refused with `unavailable_why`
  std::string unavailable_why = "no store for the daemon's own builds is configured";
  uint64_t helper_protocol = 0;                     // the protocol the installed helper speaks
  std::string arch;                                 // uname -m of this host
  std::chrono::milliseconds smoke_timeout{10'000};  // `decnet-updaterd --version` of the build
};

class UpdatePipeline : public Operations {
 public:
  UpdatePipeline(const DaemonConfig& config, const helper::Policy& policy, ReleaseStore& store,
                 HelperClient& helper, HealthGate& gate, AuditLog& audit);

  // Every step is checked: a unit that cannot be written or removed, a daemon-reload that
  // fails, a link that cannot be repointed (its target missing included) or a required unit
  // that does not restart fails the update after `current` moved, which is then rolled back
  // (release, units, links) and answered RolledBack with that step's rule; the audit line
  // names the rule too. Ends by pruning the store to keep_releases (see above).
  UpdateOutcome Update(const Caller& caller, const VerifiedTarball& tarball) override;
  SelfUpdateOutcome UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                               std::function<void()>* after_reply) override;
  // Ends by pruning, as Update.
  RollbackOutcome Rollback(const Caller& caller) override;
  std::vector<nlohmann::json> Releases() override;
  // Blocks until the background pruner has deleted everything pruned so far (tests; the
  // pruner's destructor also finishes the directory it is deleting). Returns its last error.
  Result<void> WaitForPruning() { return pruner_.WaitIdle(); }
  // Test-only: called by the pruner's thread with "deleting" and "deleted" around each pruned
  // directory it removes. Set before the first operation.
  void SetPruneHook(ReleasePruner::Hook hook) { pruner_.SetHook(std::move(hook)); }
  // At start-up, once the store has recovered: makes units and links match the active
  // release (removing units only other kept releases ship), restarting the services when
  // `reverted` (recovery undid an interrupted update) or when anything had to change.
  // Returns false (with an audit entry) when it could not. Also sets the pruner to delete what
  // an interrupted prune left behind.
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

  // Enables the checks after extraction and the never-older floor (before the API serves):
  // the manifest against the upload's descriptor ("descriptor-manifest-mismatch"), the
  // release's version against the floor of its kind (version-* rules, also for a re-push of
  // a kept release; a redeploy of the active release is not a change and passes), the floor
  // raised when a release is activated, and a rollback below the floor noted in the audit
  // log. Unset (tests of other things), none of this runs. `guard` must outlive the pipeline.
  void SetReleaseGuard(ReleaseGuard* guard) { guard_ = guard; }

 private:
  UpdateOutcome RunUpdate(pipeline::Attempt& a, const VerifiedTarball& tarball);
  UpdateOutcome Activate(pipeline::Attempt& a);
  RollbackOutcome RunRollback(pipeline::Attempt& a);
  // Prunes the store beyond keep_releases, deferring the deletion to the pruner.
  void PruneStore();
  std::optional<api::Release> ReleaseRow(const ReleaseId& id) const;
  // The release's row with the units it ships (units_of_), the cache kept to the stored ids.
  api::Release ReleaseView(const ReleaseEntry& entry) const;
  enum class Restart { kAlways, kIfChanged };
  // `written` (when set) collects the units this call wrote; `removable` (when set) limits
  // the removal of the other releases' units to those names (a rollback removes only what
  // the failed attempt wrote, never a unit it was refused).
  Result<void> ApplyRelease(const ReleaseId& id, const std::vector<ReleaseId>& others,
                            std::map<UnitName, uint32_t>* restarts, std::string* stderr_text,
                            Restart restart = Restart::kAlways,
                            std::set<UnitName>* written = nullptr,
                            const std::set<UnitName>* removable = nullptr);
  void Step(std::string_view name) const;
  // With a guard: a kept service release's recorded `version` against the upload's
  // descriptor and, unless `id` is the active release, against the floor.
  struct RecordedVersion {
    const ReleaseVersion& version;
    bool declared;  // by the release's manifest
  };
  Result<void> CheckRelease(const VerifiedTarball& tarball, const RecordedVersion& version,
                            const ReleaseId& id) const;
  // With a guard: a rollback's audit line says when it went below the service floor.
  void NoteBelowFloor(pipeline::Attempt& a) const;

  const DaemonConfig& config_;
  const helper::Policy& policy_;
  ReleaseStore& store_;
  HelperClient& helper_;
  HealthGate& gate_;
  AuditLog& audit_;
  StepHook step_;
  SelfUpdateTarget self_;
  ReleaseGuard* guard_ = nullptr;
  // The unit names each stored release ships (nullopt: no etc/systemd/system/), read once per
  // release id: a complete release's tree never changes. Only the operation worker (and the
  // API's first snapshot, before it starts) lists releases, so no lock.
  mutable std::map<std::string, std::optional<std::vector<std::string>>> units_of_;
  ReleasePruner pruner_;  // last: its thread stops before the rest goes
};

}  // namespace decnet::daemon
