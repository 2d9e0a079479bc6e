#include "daemon/update_pipeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "daemon/extract.h"
#include "daemon/install_command.h"
#include "daemon/release_install.h"
#include "daemon/release_units.h"
#include "daemon/update_pipeline_internal.h"
#include "proto/release_manifest.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

using pipeline::Attempt;
using pipeline::Clock;
using pipeline::MsSince;
using pipeline::ReadManifest;

namespace {

std::string SlotName(ReleaseSlot slot) {
  switch (slot) {
    case ReleaseSlot::kActive:
      return "active";
    case ReleaseSlot::kPrevious:
      return "prev";
    case ReleaseSlot::kOther:
      return "kept";
  }
  return "kept";
}

// A refusal of the release by its authenticity or the floor: the client's to fix, nothing
// changed (answered as Rejected).
bool IsReleaseRefusal(const Error& e) {
  return e.rule.starts_with("descriptor-") || e.rule.starts_with("version-");
}

// The release switched away from, as a list for ApplyRelease.
std::vector<ReleaseId> Others(const std::optional<ReleaseId>& from) {
  return from ? std::vector<ReleaseId>{*from} : std::vector<ReleaseId>{};
}

}  // namespace

namespace pipeline {

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

Result<std::optional<ReleaseManifest>> ReadManifest(int release_dir_fd) {
  const std::string name(kReleaseManifestName);
  int fd = ::openat(release_dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<ReleaseManifest>();
    return Fail(ErrorCode::kDenied, "manifest-file", "the release manifest cannot be opened");
  }
  struct stat st {};
  std::string bytes;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size <= static_cast<off_t>(kMaxReleaseManifestBytes);
  if (ok) {
    bytes.resize(static_cast<size_t>(st.st_size));
    ok = ::pread(fd, bytes.data(), bytes.size(), 0) == st.st_size;
  }
  ::close(fd);
  if (!ok)
    return Fail(ErrorCode::kDenied, "manifest-size",
                "the release manifest is not a small regular file");
  auto manifest = ParseReleaseManifest(bytes);
  if (!manifest) return tl::make_unexpected(manifest.error());
  return std::optional<ReleaseManifest>(std::move(*manifest));
}

Attempt::Attempt(std::string op, const Caller& caller, std::chrono::milliseconds budget)
    : deadline(start + budget) {
  audit.op = std::move(op);
  audit.client_fingerprint = caller.fingerprint;
  audit.client_cn = caller.cn;
}

void Attempt::Record(AuditLog& log, std::string result, const Error* e) {
  audit.result = std::move(result);
  if (e) {
    audit.rule = e->rule;
    audit.error = e->message;
  }
  audit.durations_ms.emplace_back("total", MsSince(start));
  (void)log.Append(audit);
}

}  // namespace pipeline

UpdatePipeline::UpdatePipeline(const DaemonConfig& config, const helper::Policy& policy,
                               ReleaseStore& store, HelperClient& helper, HealthGate& gate,
                               AuditLog& audit)
    : config_(config),
      policy_(policy),
      store_(store),
      helper_(helper),
      gate_(gate),
      audit_(audit),
      pruner_(store.root_fd()) {}

void UpdatePipeline::Step(std::string_view name) const {
  if (step_) step_(name);
}

api::Release UpdatePipeline::ReleaseView(const ReleaseEntry& e) const {
  api::Release r;
  r.slot = SlotName(e.slot);
  r.sha = e.record.sha;
  r.installed_at = e.record.installed_at;
  r.id = e.id.str();
  r.sha256 = e.record.sha256;
  r.version = e.record.version.str();
  r.size = e.record.size;
  r.state = e.record.state == ReleaseState::kFailed ? "failed" : "ready";
  auto cached = units_of_.find(r.id);
  if (cached == units_of_.end()) {
    const int fd = ::open((store_.root() + "/releases/" + r.id).c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return r;  // units null, not cached: the next listing tries again
    auto units = ReadReleaseUnits(fd);
    ::close(fd);
    if (!units) return r;
    std::optional<std::vector<std::string>> names;
    if (*units) {
      names.emplace();
      for (const auto& u : **units) names->push_back(u.name.str());
    }
    cached = units_of_.emplace(r.id, std::move(names)).first;
  }
  r.units = cached->second;
  return r;
}

std::vector<nlohmann::json> UpdatePipeline::Releases() {
  std::vector<nlohmann::json> out;
  std::set<std::string> listed;
  for (const auto& e : store_.Releases()) {
    listed.insert(e.id.str());
    out.push_back(api::ReleaseJson(ReleaseView(e)));
  }
  std::erase_if(units_of_, [&](const auto& entry) { return !listed.contains(entry.first); });
  return out;
}

std::optional<api::Release> UpdatePipeline::ReleaseRow(const ReleaseId& id) const {
  for (const auto& e : store_.Releases()) {
    if (e.id == id) return ReleaseView(e);
  }
  return std::nullopt;
}

void UpdatePipeline::PruneStore() {
  // Housekeeping, not a step of the operation: a failure leaves an extra release or an
  // unrecorded directory, which the next prune or Recover() deletes.
  auto pruned = store_.Prune(PruneDeletion::kDeferred);
  if (pruned && !pruned->empty()) pruner_.Wake();
}

// Writes the units of `to`, removes those `others` installed that `to` lacks, reloads once if
// anything changed, repoints the links and restarts the configured units in order. The
// restarted units and their restart counts go to `restarts` for the health gate. Every helper
// call is checked: the first that fails ends it with that call's error (and rule), for the
// caller to roll back. Only the optional units' restarts are best effort (DECNET's contract:
// a unit not installed is skipped, one that does not restart is reported in `report`).
Result<void> UpdatePipeline::ApplyRelease(const ReleaseId& to, const std::vector<ReleaseId>& others,
                                          std::map<UnitName, uint32_t>* restarts,
                                          std::string* report, Restart restart,
                                          std::set<UnitName>* written,
                                          const std::set<UnitName>* removable) {
  auto dir_of = [&](const ReleaseId& id) {
    return ::open((store_.root() + "/releases/" + id.str()).c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  };
  int to_fd = dir_of(to);
  if (to_fd < 0)
    return Fail(ErrorCode::kFailed, "release-missing", "release " + to.str() + " is gone");
  auto units = ReadReleaseUnits(to_fd);
  ::close(to_fd);
  if (!units) return tl::make_unexpected(units.error());
  // Units the other releases ship: whichever of them `to` lacks must not stay installed.
  std::vector<ReleaseUnit> old_units;
  for (const auto& other : others) {
    if (other == to) continue;
    int other_fd = dir_of(other);
    if (other_fd < 0) continue;  // pruned: whatever it shipped was removed back then
    auto read = ReadReleaseUnits(other_fd);
    ::close(other_fd);
    if (!read) return tl::make_unexpected(read.error());
    if (*read) old_units.insert(old_units.end(), (*read)->begin(), (*read)->end());
  }
  bool changed = false;
  if (*units) {
    std::set<UnitName> keep;
    for (const auto& u : **units) {
      auto w = helper_.WriteUnit(u.name, u.content);
      if (!w) return tl::make_unexpected(w.error());
      changed |= w->changed;
      keep.insert(u.name);
      if (written != nullptr) written->insert(u.name);
      Step("unit-written");
    }
    for (const auto& u : old_units) {
      if (keep.contains(u.name)) continue;
      if (removable != nullptr && !removable->contains(u.name)) continue;
      keep.insert(u.name);  // once, even when several releases ship it
      auto r = helper_.RemoveUnit(u.name);
      if (!r) return tl::make_unexpected(r.error());
      changed |= r->removed;
    }
  }
  if (changed) {
    if (auto ok = helper_.DaemonReload(); !ok) return tl::make_unexpected(ok.error());
    Step("reloaded");
  }
  for (const auto& link : config_.links) {
    auto name = LinkName::Parse(link.name);
    auto target = AbsPath::Parse(config_.install_dir + "/current/" + link.target);
    if (!name || !target) return Fail(ErrorCode::kFailed, "config-value", "bad link " + link.name);
    // A target missing from the release ("link-target-missing") fails like any other refusal:
    // the release would run without what the link promises.
    auto r = helper_.RepointLink(*name, *target);
    if (!r) {
      Error e = r.error();
      e.message = "link " + link.name + " -> current/" + link.target + ": " + e.message;
      return tl::make_unexpected(e);
    }
    changed |= r->changed;
  }
  if (restart == Restart::kIfChanged && !changed) return {};
  for (size_t i = 0; i < config_.units.size(); ++i) {
    auto unit = UnitName::Parse(config_.units[i]);
    if (!unit) return Fail(ErrorCode::kFailed, "config-value", "bad unit " + config_.units[i]);
    const bool required = i == 0;
    if (!required) {
      auto st = helper_.UnitStatus(*unit);
      if (st && st->load_state == "not-found") continue;  // e.g. no forwarder installed
    }
    auto r = helper_.RestartUnit(*unit);
    if (r && r->job_result == "done") {
      (*restarts)[*unit] = r->unit.n_restarts;
      continue;
    }
    std::string why = r ? "job " + r->job_result + ", " + r->unit.active_state : r.error().message;
    if (required) return Fail(ErrorCode::kFailed, "unit-restart-failed", unit->str() + ": " + why);
    *report += unit->str() + " (best effort) did not restart: " + why + "\n";
  }
  Step("restarted");
  return {};
}

UpdateOutcome UpdatePipeline::Update(const Caller& caller, const VerifiedTarball& tarball) {
  Attempt a("update", caller, std::chrono::milliseconds(config_.update_deadline_ms));
  UpdateOutcome out = RunUpdate(a, tarball);
  PruneStore();
  return out;
}

UpdateOutcome UpdatePipeline::RunUpdate(Attempt& a, const VerifiedTarball& tarball) {
  a.audit.sha256 = tarball.sha256;
  a.audit.signed_by = tarball.claim.signed_by;
  auto finish = [&](auto outcome, std::string result, const Error* e) -> UpdateOutcome {
    return a.Finish(audit_, std::move(outcome), std::move(result), e);
  };
  auto id = ReleaseId::FromSha256Hex(tarball.sha256);
  if (!id) return finish(outcome::Rejected{id.error(), ""}, "refused", &id.error());
  a.id = *id;
  a.audit.release = id->str();
  if (store_.IsComplete(*id)) {
    auto record = store_.Find(*id);
    if (!record || record->kind != ReleaseKind::kService) {
      Error e{ErrorCode::kDenied, "manifest-kind",
              "release " + id->str() + " is not a service release"};
      return finish(outcome::Refused{e, ""}, "refused", &e);
    }
    a.version = record->version.str();
    // A kept release's version was declared by its manifest unless it is what a tree without
    // one gets: its `sha` field or its digest.
    a.version_declared = a.version != record->sha256 && a.version != record->sha;
    a.audit.version = a.version;
    // A kept release made active again is held to the same checks as a fresh one; the active
    // one redeployed changes nothing and is not.
    if (auto ok = CheckRelease(tarball, {record->version, a.version_declared}, *id); !ok)
      return finish(outcome::Rejected{ok.error(), ""}, "refused", &ok.error());
    return Activate(a);  // re-push: redeploy (active) or re-activate (kept), no extraction
  }
  auto fail_install = [&](const Error& e, std::string stderr_text) {
    (void)store_.RemoveIncomplete();
    // An empty tarball, a release its descriptor or the floor refuses: the client's error,
    // not the host's.
    if (e.rule == "archive-empty" || IsReleaseRefusal(e))
      return finish(outcome::Rejected{e, std::move(stderr_text)}, "refused", &e);
    return finish(outcome::Failed{e, std::move(stderr_text)}, "failed", &e);
  };
  auto dir = store_.BeginRelease(*id);
  if (!dir) return fail_install(dir.error(), "");
  auto t = Clock::now();
  Step("extracting");
  ExtractLimits limits;
  auto stats = ExtractRelease(tarball.fd, dir->get(), limits);
  a.audit.durations_ms.emplace_back("extract", MsSince(t));
  if (!stats) return fail_install(stats.error(), "");
  Step("extracted");
  auto manifest = ReadManifest(dir->get());
  if (!manifest) return fail_install(manifest.error(), "");
  if (*manifest && (*manifest)->kind != ReleaseKind::kService) {
    return fail_install(Error{ErrorCode::kDenied, "manifest-kind",
                              "an updater build goes to /update-self, not /update"},
                        "");
  }
  auto version = *manifest ? Result<ReleaseVersion>((*manifest)->version)
                           : VersionWithoutManifest(tarball.sha, tarball.sha256);
  if (!version) return fail_install(version.error(), "");
  a.version = version->str();
  a.version_declared = manifest->has_value();
  a.audit.version = a.version;
  if (guard_ != nullptr) {
    // SECURITY: what was signed must be what was extracted, and never older than the floor.
    if (auto ok = ReleaseGuard::CheckManifest(tarball.claim, *manifest); !ok)
      return fail_install(ok.error(), "");
    if (auto ok = guard_->CheckVersion(ReleaseKind::kService, {a.version, a.version_declared},
                                       tarball.claim.downgrade);
        !ok)
      return fail_install(ok.error(), "");
  }
  auto units = ReadReleaseUnits(dir->get());
  if (!units) return fail_install(units.error(), "");
  if (*units) {
    if (auto ok = CheckReleaseUnits(policy_, **units); !ok) return fail_install(ok.error(), "");
  }
  if (PlanReleaseInstall(config_, dir->get()) != InstallKind::kNone) {
    t = Clock::now();
    InstallVars vars{store_.root() + "/releases/" + id->str(), id->str(), a.version,
                     tarball.sha256};
    Step("installing");
    auto out = InstallRelease(config_, store_.root(), vars, dir->get());
    a.audit.durations_ms.emplace_back("install", MsSince(t));
    if (!out) {
      // The installer's output travels as DECNET's `stderr`; the error keeps the summary.
      Error e = out.error();
      std::string output;
      constexpr std::string_view kOutput = "; output:\n";
      if (auto at = e.message.find(kOutput); at != std::string::npos) {
        output = e.message.substr(at + kOutput.size());
        e.message.resize(at);
      }
      return fail_install(e, output.empty() ? e.message : output);
    }
    Step("installed");
  }
  ReleaseRecord record{tarball.sha256,
                       tarball.sha,
                       *version,
                       ReleaseKind::kService,
                       tarball.size,
                       "",
                       ReleaseState::kReady,
                       0};
  if (auto ok = store_.MarkComplete(*id, record); !ok) return fail_install(ok.error(), "");
  a.fresh = true;
  Step("complete");
  return Activate(a);
}

// Flips to a.id, applies it, gates it; commits, or reverts to what was active and proves
// that healthy again.
UpdateOutcome UpdatePipeline::Activate(Attempt& a) {
  auto finish = [&](auto outcome, std::string result, const Error* e) -> UpdateOutcome {
    return a.Finish(audit_, std::move(outcome), std::move(result),
                    e != nullptr && !e->rule.empty() ? e : nullptr);
  };
  a.from = store_.Active();
  const bool redeploy = a.from && *a.from == *a.id;
  if (auto ok = store_.Activate(*a.id); !ok) {
    // Never activated (the journal could not be written: a full disk): a release this
    // attempt installed is not kept, so the store lists only what it could run.
    if (a.fresh) (void)store_.Discard(*a.id);
    return finish(outcome::Failed{ok.error(), ""}, "failed", &ok.error());
  }
  Step("flipped");
  std::map<UnitName, uint32_t> restarts;
  std::set<UnitName> written;  // what a rollback has to take away again
  auto t = Clock::now();
  auto applied =
      ApplyRelease(*a.id, Others(a.from), &restarts, &a.stderr_text, Restart::kAlways, &written);
  a.audit.durations_ms.emplace_back("apply", MsSince(t));
  GateVerdict verdict;
  if (applied) {
    t = Clock::now();
    // The first gate may use a little over half of what is left; the rest is the rollback's.
    auto budget = (a.deadline - Clock::now()) * 11 / 20;
    verdict = gate_.Check(restarts, a.version, Clock::now() + budget);
    a.audit.durations_ms.emplace_back("gate", MsSince(t));
  } else {
    verdict = GateVerdict{false, "", applied.error().message, applied.error().rule};
  }
  bool unrecorded = false;
  if (verdict.healthy && !redeploy) {
    if (auto ok = store_.Commit(); !ok) {
      unrecorded = true;
      // The verdict could not be journalled (a full disk): a restart would revert the change,
      // so it is reverted now, like a failed gate.
      verdict = GateVerdict{false, verdict.probe, ok.error().message, ok.error().rule};
    }
  }
  if (verdict.healthy) {
    Step("committed");
    if (guard_ != nullptr) {
      if (auto raised =
              guard_->floor().Raise(ReleaseKind::kService, {a.version, a.version_declared});
          !raised)
        a.audit.note = "version floor not persisted: " + raised.error().message;
    }
    return finish(outcome::Updated{ReleaseRow(*a.id), verdict.probe}, "updated", nullptr);
  }
  const std::string cause = verdict.rule + ": " + verdict.detail;
  a.audit.rollback_cause = cause;
  if (redeploy) {
    Error e{ErrorCode::kFailed, verdict.rule,
            "redeploy of the active release failed: " + verdict.detail};
    return finish(outcome::Failed{e, verdict.probe + "\n" + a.stderr_text}, "failed", &e);
  }
  Step("rolling-back");
  if (auto ok = store_.Revert(RevertMark::kRecordFailed, cause); !ok) {
    // `current` could not be flipped back: the new release stays where it is.
    if (store_.Pending()) {
      return finish(outcome::Failed{ok.error(), verdict.probe}, "failed", &ok.error());
    }
    // Flipped back, but state.json not rewritten (a full disk): the rollback goes on.
    a.stderr_text += "state.json not rewritten: " + ok.error().message + "\n";
  }
  Step("reverted");
  std::map<UnitName, uint32_t> old_restarts;
  std::string old_probe;
  bool old_healthy = true;
  if (a.from) {
    // The old release is held to the same gate, its own version included.
    std::string old_version;
    if (auto record = store_.Find(*a.from)) old_version = record->version.str();
    auto reapplied = ApplyRelease(*a.from, {*a.id}, &old_restarts, &a.stderr_text, Restart::kAlways,
                                  nullptr, &written);
    GateVerdict again =
        reapplied ? gate_.Check(old_restarts, old_version, a.deadline - std::chrono::seconds(2))
                  : GateVerdict{false, "", reapplied.error().message, reapplied.error().rule};
    old_healthy = again.healthy;
    old_probe = again.healthy ? again.probe : again.rule + ": " + again.detail + " " + again.probe;
  }
  std::string both =
      "new release: " + verdict.probe + "\nold release: " + old_probe + "\n" + a.stderr_text;
  Error e{ErrorCode::kFailed, verdict.rule,
          (unrecorded ? "the new release passed its health gate but its commit was not recorded ("
                      : "the new release failed its health gate (") +
              verdict.detail + ")"};
  if (!old_healthy) {
    e.message += "; the rollback did not prove healthy either";
    return finish(outcome::Failed{e, both}, "failed", &e);
  }
  return finish(outcome::RolledBack{e, both}, "rolled_back", &e);
}

RollbackOutcome UpdatePipeline::Rollback(const Caller& caller) {
  Attempt a("rollback", caller, std::chrono::milliseconds(config_.update_deadline_ms));
  RollbackOutcome out = RunRollback(a);
  PruneStore();
  return out;
}

RollbackOutcome UpdatePipeline::RunRollback(Attempt& a) {
  auto finish = [&](auto outcome, std::string result, const Error* e) -> RollbackOutcome {
    return a.Finish(audit_, std::move(outcome), std::move(result), e);
  };
  auto previous = store_.Previous();
  auto active = store_.Active();
  if (!previous || !active) {
    Error e{ErrorCode::kNotFound, "rollback-no-previous", "there is no previous release"};
    return finish(outcome::NoPrevious{}, "refused", &e);
  }
  a.audit.release = previous->str();
  if (auto record = store_.Find(*previous)) a.audit.version = record->version.str();
  if (auto ok = store_.Rollback(); !ok)
    return finish(outcome::Failed{ok.error(), ""}, "failed", &ok.error());
  Step("flipped");
  std::map<UnitName, uint32_t> restarts;
  std::set<UnitName> written;
  auto applied =
      ApplyRelease(*previous, {*active}, &restarts, &a.stderr_text, Restart::kAlways, &written);
  GateVerdict verdict =
      applied ? gate_.Check(restarts, a.audit.version, a.start + (a.deadline - a.start) * 11 / 20)
              : GateVerdict{false, "", applied.error().message, applied.error().rule};
  if (verdict.healthy) {
    if (auto ok = store_.Commit(); ok) {
      NoteBelowFloor(a);
      return finish(outcome::Restored{ReleaseRow(*previous), verdict.probe}, "rolled_back",
                    nullptr);
    } else {
      verdict = GateVerdict{false, verdict.probe, ok.error().message, ok.error().rule};
    }
  }
  // The older release did not prove healthy: go back to what was active, and say so when
  // even that did not work.
  Error e{ErrorCode::kFailed, verdict.rule.empty() ? "store-io" : verdict.rule,
          "the previous release failed its health gate (" + verdict.detail +
              "); staying on the active one"};
  if (auto reverted = store_.Revert(RevertMark::kKeepState, e.message); !reverted)
    a.stderr_text += "returning to the active release: [" + reverted.error().rule + "] " +
                     reverted.error().message + "\n";
  std::map<UnitName, uint32_t> again;
  if (auto reapplied = ApplyRelease(*active, {*previous}, &again, &a.stderr_text, Restart::kAlways,
                                    nullptr, &written);
      !reapplied)
    a.stderr_text += "units and links of the active release not restored: [" +
                     reapplied.error().rule + "] " + reapplied.error().message + "\n";
  return finish(outcome::Failed{e, verdict.probe + "\n" + a.stderr_text}, "failed", &e);
}

Result<void> UpdatePipeline::CheckRelease(const VerifiedTarball& tarball,
                                          const RecordedVersion& version,
                                          const ReleaseId& id) const {
  if (guard_ == nullptr) return {};
  if (auto ok = ReleaseGuard::CheckRecorded(tarball.claim, ReleaseKind::kService, version.version);
      !ok)
    return ok;
  if (auto active = store_.Active(); active && *active == id) return {};
  return guard_->CheckVersion(ReleaseKind::kService, {version.version.str(), version.declared},
                              tarball.claim.downgrade);
}

void UpdatePipeline::NoteBelowFloor(Attempt& a) const {
  if (guard_ == nullptr) return;
  auto floor = guard_->floor().Get(ReleaseKind::kService);
  if (!floor) return;
  auto order = CompareVersions(a.audit.version, *floor);
  if (order && *order >= 0) return;
  a.audit.note = "rolled back below the version floor " + *floor + " to " + a.audit.version +
                 ": a rollback to the kept previous release is allowed and leaves the floor";
}

bool UpdatePipeline::Reconcile(const std::string& why, bool reverted) {
  pruner_.Wake();  // whatever a prune interrupted by a crash left beneath pruned/
  AuditEntry entry;
  entry.op = "recovery";
  entry.error = why;
  auto active = store_.Active();
  if (!active) {
    entry.result = "nothing-active";
    (void)audit_.Append(entry);
    return true;
  }
  entry.release = active->str();
  std::map<UnitName, uint32_t> restarts;
  std::string report;
  // Every other release kept in the store, failed ones included: whatever a crash left
  // installed for one of them and the active release lacks is removed.
  std::vector<ReleaseId> others;
  for (const auto& e : store_.Releases()) others.push_back(e.id);
  // Services restart when an interrupted update was reverted (they may run the other
  // release's code) or when anything had to be put back; a clean restart of the daemon
  // itself leaves them running.
  auto ok = ApplyRelease(*active, others, &restarts, &report,
                         reverted ? Restart::kAlways : Restart::kIfChanged);
  entry.result = ok ? "reconciled" : "failed";
  if (!ok) {
    entry.rule = ok.error().rule;
    entry.error = why + "; " + ok.error().message;
  }
  (void)audit_.Append(entry);
  return bool(ok);
}

}  // namespace decnet::daemon
