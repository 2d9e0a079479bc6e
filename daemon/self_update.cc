#include "daemon/self_update.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "daemon/extract.h"
#include "daemon/install_command.h"
#include "daemon/update_pipeline.h"
#include "daemon/update_pipeline_internal.h"

namespace decnet::daemon {

using pipeline::Attempt;
using pipeline::MsSince;

namespace {

constexpr char kDaemonBinary[] = "bin/decnet-updaterd";

Error Refusal(std::string rule, std::string message) {
  return Error{ErrorCode::kDenied, std::move(rule), std::move(message)};
}

// bin/decnet-updaterd inside the release: a regular file, executable by its owner, reached
// without following a symlink.
Result<void> CheckDaemonBinary(int release_dir_fd) {
  const int bin = ::openat(release_dir_fd, "bin", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  const bool ok = bin >= 0 && ::fstatat(bin, "decnet-updaterd", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                  S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR) != 0;
  if (bin >= 0) ::close(bin);
  if (!ok)
    return tl::make_unexpected(
        Refusal("update-self-binary",
                std::string("the build has no regular, executable ") + kDaemonBinary));
  return {};
}

}  // namespace

api::BuildIdentity FindRunningBuild(const std::string& exe, const ReleaseStore* store,
                                    const std::string& compiled_version) {
  api::BuildIdentity out{compiled_version, std::nullopt};
  if (store == nullptr || exe.empty()) return out;
  // /proc/self/exe is resolved; the store's root may be named through a link.
  char* resolved = ::realpath((store->root() + "/releases").c_str(), nullptr);
  if (resolved == nullptr) return out;
  const std::string releases = std::string(resolved) + "/";
  std::free(resolved);
  if (!exe.starts_with(releases)) return out;
  const std::string rest = exe.substr(releases.size());
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return out;
  auto id = ReleaseId::Parse(rest.substr(0, slash));
  if (!id) return out;
  out.id = id->str();
  if (auto record = store->Find(*id); record && record->kind == ReleaseKind::kUpdater)
    out.version = record->version.str();
  return out;
}

std::string OwnExecutable() {
  std::string path(4096, '\0');
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size());
  if (n <= 0 || static_cast<size_t>(n) >= path.size()) return "";
  path.resize(static_cast<size_t>(n));
  return path;
}

std::string HostArch() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return u.machine;
}

Result<void> CheckUpdaterManifest(const std::optional<ReleaseManifest>& manifest,
                                  const std::string& arch, uint64_t helper_protocol) {
  if (!manifest)
    return tl::make_unexpected(Refusal(
        "update-self-manifest",
        "the tarball has no " + std::string(kReleaseManifestName) +
            ", so it is not a build of decnet-updaterd: a DECNET master's Python tree "
            "(pyproject.toml and decnet/) cannot replace this daemon, and goes to /update as a "
            "release of the suite. To update this daemon, send /update-self an updater build: "
            "the tarball the `updater-build` build target makes (scripts/pack-updater-build.sh), "
            "bin/decnet-updaterd with a " +
            std::string(kReleaseManifestName) +
            " of kind \"updater\" for this host's architecture and helper protocol"));
  if (manifest->kind != ReleaseKind::kUpdater)
    return tl::make_unexpected(Refusal(
        "update-self-kind", "the manifest's kind is \"" +
                                std::string(ReleaseKindName(manifest->kind)) +
                                "\": a release of the suite goes to /update, not /update-self"));
  if (!manifest->arch || *manifest->arch != arch)
    return tl::make_unexpected(Refusal(
        "update-self-arch", "the build is for " + manifest->arch.value_or("no architecture") +
                                "; this host is " + arch));
  if (manifest->helper_protocol != helper_protocol)
    return tl::make_unexpected(
        Refusal("update-self-helper-protocol",
                "the build speaks helper protocol " +
                    std::to_string(manifest->helper_protocol.value_or(0)) +
                    "; the installed helper speaks " + std::to_string(helper_protocol) +
                    " (the helper changes only through the OS package manager)"));
  return {};
}

Result<UpdaterStoreOpened> OpenUpdaterStore(const DaemonConfig& config, AuditLog& audit) {
  UpdaterStoreOpened out;
  struct stat st {};
  if (::stat(config.updater_dir.c_str(), &st) != 0) {
    out.note = "update-self unavailable: " + config.updater_dir + " does not exist";
    return out;
  }
  auto store = ReleaseStore::Open(config.updater_dir, static_cast<size_t>(config.keep_releases));
  if (!store) return tl::make_unexpected(store.error());
  // What start-up found of an earlier update-self: audited, and said in the note.
  auto found = [&](const ReleaseId& id, const char* result, const char* rule, std::string error,
                   bool rolled_back) {
    AuditEntry entry;
    entry.op = "update-self";
    entry.release = id.str();
    if (auto record = store->Find(id)) {
      entry.sha256 = record->sha256;
      entry.version = record->version.str();
    }
    entry.result = result;
    entry.rule = rule;
    entry.error = std::move(error);
    if (rolled_back) entry.rollback_cause = entry.error;
    (void)audit.Append(entry);
    out.note += (out.note.empty() ? "" : "; ") + std::string("update-self: ") + entry.error;
  };
  const std::string cause =
      "did not start: the helper returned to the previous build at start-up (see its log)";
  auto adopted = store->AdoptRevertedCurrent(cause);
  if (!adopted) return tl::make_unexpected(adopted.error());
  if (*adopted)
    found(**adopted, "reverted", "update-self-start-failed",
          "build " + (*adopted)->str() + " " + cause, true);
  // SECURITY: the helper started what `current` names; the store must agree with it.
  auto committed = store->CommitFlippedActivation();
  if (!committed) return tl::make_unexpected(committed.error());
  if (*committed)
    found(**committed, "committed", "update-self-interrupted",
          "build " + (*committed)->str() +
              " was switched to when the daemon stopped; it runs now and is kept, on the "
              "helper's probation",
          false);
  auto recovered = store->Recover();
  if (!recovered) return tl::make_unexpected(recovered.error());
  if (recovered->reverted)
    out.note += (out.note.empty() ? "" : "; ") + std::string("update-self: an interrupted ") +
                "install of build " + recovered->reverted->id.str() + " was reverted";
  out.store.emplace(std::move(*store));
  return out;
}

Result<InstalledBuild> InstallUpdaterBuild(ReleaseStore& store, const VerifiedTarball& tarball,
                                           const UpdaterBuildChecks& checks,
                                           const std::function<void(std::string_view)>& step) {
  auto at = [&](std::string_view name) {
    if (step) step(name);
  };
  auto id = ReleaseId::FromSha256Hex(tarball.sha256);
  if (!id) return tl::make_unexpected(id.error());
  InstalledBuild out{*id, "", {}};
  auto fail = [&](const Error& e) -> Result<InstalledBuild> {
    (void)store.RemoveIncomplete();
    return tl::make_unexpected(e);
  };
  if (store.IsComplete(*id)) {
    auto record = store.Find(*id);
    if (!record || record->kind != ReleaseKind::kUpdater)
      return fail(Refusal("update-self-kind", "release " + id->str() + " is not an updater build"));
    out.version = record->version.str();
    if (checks.admit) {
      const auto active = store.Active();
      if (auto ok = checks.admit(record->kind, record->version, active && *active == *id); !ok)
        return fail(ok.error());
    }
  } else {
    auto dir = store.BeginRelease(*id);
    if (!dir) return fail(dir.error());
    auto t = pipeline::Clock::now();
    at("self-extracting");
    auto stats = ExtractRelease(tarball.fd, dir->get(), ExtractLimits{});
    out.durations_ms.emplace_back("extract", MsSince(t));
    if (!stats) return fail(stats.error());
    at("self-extracted");
    auto manifest = pipeline::ReadManifest(dir->get());
    if (!manifest) return fail(manifest.error());
    if (auto ok = CheckUpdaterManifest(*manifest, checks.arch, checks.helper_protocol); !ok)
      return fail(ok.error());
    out.version = (*manifest)->version.str();
    if (checks.admit) {
      if (auto ok = checks.admit((*manifest)->kind, (*manifest)->version, false); !ok)
        return fail(ok.error());
    }
    if (auto ok = CheckDaemonBinary(dir->get()); !ok) return fail(ok.error());
    // The build must run on this host before anything points at it.
    InstallVars vars{store.root() + "/releases/" + id->str(), id->str(), out.version,
                     tarball.sha256};
    InstallCommandConfig smoke;
    smoke.argv = {vars.release_dir + "/" + kDaemonBinary, "--version"};
    smoke.timeout = checks.smoke_timeout;
    t = pipeline::Clock::now();
    auto ran = RunInstallCommand(smoke, vars, dir->get());
    out.durations_ms.emplace_back("smoke", MsSince(t));
    if (!ran)
      return fail(Refusal(
          "update-self-smoke",
          "the build's decnet-updaterd --version did not run here: " + ran.error().message));
    ReleaseRecord record{tarball.sha256, tarball.sha, (*manifest)->version, ReleaseKind::kUpdater,
                         tarball.size,   "",          ReleaseState::kReady, 0};
    if (auto ok = store.MarkComplete(*id, record); !ok) return fail(ok.error());
    at("self-complete");
  }
  if (auto ok = store.Activate(*id); !ok) return fail(ok.error());
  at("self-flipped");
  if (store.Pending()) {
    if (auto ok = store.Commit(); !ok) {
      (void)store.Revert(RevertMark::kKeepState, "");
      return fail(ok.error());
    }
  }
  (void)store.Prune();
  return out;
}

SelfUpdateOutcome UpdatePipeline::UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                                             std::function<void()>* after_reply) {
  Attempt a("update-self", caller, std::chrono::milliseconds(config_.update_deadline_ms));
  a.audit.sha256 = tarball.sha256;
  a.audit.signed_by = tarball.claim.signed_by;
  if (auto id = ReleaseId::FromSha256Hex(tarball.sha256)) a.audit.release = id->str();
  auto finish = [&](auto outcome, std::string result, const Error* e) -> SelfUpdateOutcome {
    return a.Finish(audit_, std::move(outcome), std::move(result), e);
  };
  if (self_.store == nullptr) {
    Error e = Refusal("update-self-unavailable", self_.unavailable_why);
    return finish(outcome::Refused{e, ""}, "refused", &e);
  }
  UpdaterBuildChecks checks{self_.helper_protocol, self_.arch, self_.smoke_timeout, nullptr};
  if (guard_ != nullptr) {
    checks.admit = [this, &tarball](ReleaseKind kind, const ReleaseVersion& version,
                                    bool active) -> Result<void> {
      // SECURITY: the build extracted must be the one signed, and never older than the floor.
      if (auto ok = ReleaseGuard::CheckRecorded(tarball.claim, kind, version); !ok) return ok;
      if (active) return {};
      return guard_->CheckVersion(ReleaseKind::kUpdater, {version.str(), true},
                                  tarball.claim.downgrade);  // an updater build has a manifest
    };
  }
  auto installed = InstallUpdaterBuild(*self_.store, tarball, checks,
                                       [this](std::string_view step) { Step(step); });
  if (!installed) {
    const Error& e = installed.error();
    if (e.code == ErrorCode::kDenied || e.code == ErrorCode::kMalformed)
      return finish(outcome::Refused{e, ""}, "refused", &e);
    return finish(outcome::Failed{e, ""}, "failed", &e);
  }
  a.audit.version = installed->version;
  for (auto& d : installed->durations_ms) a.audit.durations_ms.push_back(d);
  if (guard_ != nullptr) {
    if (auto raised = guard_->floor().Raise(ReleaseKind::kUpdater, {installed->version, true});
        !raised)
      a.audit.note = "version floor not persisted: " + raised.error().message;
  }
  auto unit = UnitName::Parse(policy_.self_unit);
  if (unit && after_reply != nullptr) {
    *after_reply = [this, name = *unit, caller, release = a.audit.release] {
      // The helper and this daemon end with the unit's stop; systemd starts the new build. The
      // helper answers job "stopping" once that stop reaches it (its job cannot finish while
      // it lives), or this daemon has already left on the same stop (UpdaterApi::restarting).
      // Reaching here after the reply, a refusal can only be recorded, never answered.
      auto restarted = helper_.RestartUnit(name);
      if (restarted) return;
      AuditEntry entry;
      entry.op = "update-self";
      entry.client_fingerprint = caller.fingerprint;
      entry.client_cn = caller.cn;
      entry.release = release;
      entry.result = "restart-failed";
      entry.rule = restarted.error().rule;
      entry.error = name.str() + ": " + restarted.error().message;
      (void)audit_.Append(entry);
    };
  }
  return finish(outcome::SelfQueued{}, "queued", nullptr);
}

}  // namespace decnet::daemon
