// update-self, the daemon's half. POST /update-self installs a build of
// decnet-updaterd into the daemon's own release store (config.updater_dir):
//
//   1. the verified tarball is extracted into releases/<id> exactly as a service release is;
//   2. its manifest must say kind "updater", this host's architecture and the helper protocol
//      the installed helper speaks; a tree without a manifest (such as a DECNET master's own
//      Python tree) or of another kind is refused, naming why ("update-self-manifest",
//      "update-self-kind", "update-self-arch", "update-self-helper-protocol");
//   3. bin/decnet-updaterd must be a regular executable file ("update-self-binary") that runs
//      here: `decnet-updaterd --version`, run like the install command, must exit 0 within
//      the smoke timeout ("update-self-smoke");
//   4. the release is completed, `current` flipped and the change committed;
//   5. the outcome is SelfQueued (answered 200 {"status":"self_update_queued","via":"systemd"}),
//      and once the reply is out the helper is asked to restart the updater's own unit (a
//      refusal then is recorded in the audit log, result "restart-failed").
//
// The helper starts the daemon from `current`; a fresh build that fails to start is flipped
// back by the helper at the next start (helper/self_update.h). OpenUpdaterStore, at the
// daemon's start-up, sees that flip and records it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/audit_log.h"
#include "daemon/config.h"
#include "daemon/release_store.h"
#include "daemon/update_pipeline.h"
#include "proto/result.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

// The build this process runs, for /health: when `exe` (the resolved path of the running
// executable, /proc/self/exe) lies beneath `store`'s releases/ directory, the release id of
// that directory and the version its record gives (its manifest's, recorded at install);
// otherwise, or with no store, `compiled_version` and no id. A directory the store does not
// record keeps its id and shows `compiled_version`. Never fails.
api::BuildIdentity FindRunningBuild(const std::string& exe, const ReleaseStore* store,
                                    const std::string& compiled_version);

// The resolved path of this process's executable ("" when /proc/self/exe cannot be read).
std::string OwnExecutable();

// This host's architecture as `uname -m` prints it.
std::string HostArch();

// Checks an updater build's manifest against this host and helper (rules above; nullopt is
// a tree without a manifest).
[[nodiscard]] Result<void> CheckUpdaterManifest(const std::optional<ReleaseManifest>& manifest,
                                                const std::string& arch, uint64_t helper_protocol);

// What an updater build must match on this host.
struct UpdaterBuildChecks {
  uint64_t helper_protocol = 0;
  std::string arch;
  std::chrono::milliseconds smoke_timeout{10'000};
  // When set, also called with the build's kind and version (from its manifest, or a kept
  // build's record) and whether it is the active build, before anything is flipped: the upload's
  // descriptor and the floor (UpdatePipeline's guard). A refusal ends the install with it.
  std::function<Result<void>(ReleaseKind kind, const ReleaseVersion& version, bool active)> admit{};
};

struct InstalledBuild {
  ReleaseId id;
  std::string version;
  std::vector<std::pair<std::string, int64_t>> durations_ms;  // "extract", "smoke"
};

// Steps 1-4 above on `store`: installs the build (or finds it complete), then activates and
// commits it. On any refusal or failure no incomplete build is left and `current` has not
// moved. `step` is the crash matrix's hook ("self-extracting", "self-extracted",
// "self-complete", "self-flipped").
[[nodiscard]] Result<InstalledBuild> InstallUpdaterBuild(
    ReleaseStore& store, const VerifiedTarball& tarball, const UpdaterBuildChecks& checks,
    const std::function<void(std::string_view)>& step = nullptr);

struct UpdaterStoreOpened {
  std::optional<ReleaseStore> store;  // nullopt: update-self unavailable
  std::string note;                   // for the log: why unavailable, or what recovery did
};

// At start-up, before hello: opens the store at config.updater_dir when that directory
// exists, adopts a revert the helper made at its start-up (the failed build recorded failed
// and an audit line "update-self"/"reverted"), then recovers it like the service store.
// A missing directory leaves update-self unavailable; a store that cannot be opened or
// recovered is an error.
[[nodiscard]] Result<UpdaterStoreOpened> OpenUpdaterStore(const DaemonConfig& config,
                                                          AuditLog& audit);

}  // namespace decnet::daemon
