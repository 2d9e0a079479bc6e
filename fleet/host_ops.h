// What the rollout does to one host, over pinned connections: update (and update-self), the
// dry run, the status query and rollback. Each returns the host's outcome, never throws, and
// reports its phases to a ProgressSink.
#pragma once

#include <chrono>
#include <optional>

#include "fleet/release_file.h"
#include "fleet/rollout_plan.h"
#include "fleet/worker_client.h"

namespace decnet::fleet {

struct PushSettings {
  const ClientTls* tls = nullptr;
  Timeouts timeouts;
  const ReleaseFile* release = nullptr;       // what /update gets
  const ReleaseFile* self_release = nullptr;  // what /update-self gets, when --include-self
  bool allow_downgrade = false;
  std::chrono::milliseconds self_timeout{60'000};
  std::chrono::milliseconds self_poll{500};
};

// The form fields of an upload, in the order the worker wants them: confirm_self (update-self
// only, first), sha256, sha (the descriptor's commit, else its version, when known),
// descriptor, one signature per line, downgrade ("true" when asked); the tarball follows.
UploadForm MakeUploadForm(const ReleaseFile& release, bool self, bool allow_downgrade);

// POST /update with the release; 200 is ok, 409 kRolledBack, any other answer kRefused;
// transport failures as ClassifyTransport. Then, when settings.self_release is set and the
// update succeeded, update-self: ok only when the worker queued it (200) or dropped the
// connection after the whole body was sent, AND within self_timeout a pinned /health answers
// from the new build: its "build" names the build's release id (the first 16 hex digits of its
// digest) and version. Anything else is kSelfFailed (rule "self-timeout" when the build never
// answered, the worker's rule when it refused the build).
HostOutcome UpdateHost(const Target& target, const PushSettings& settings, ProgressSink& progress);

// GET /health and /releases; writes nothing. ok when both answer 200; details name the
// active and previous releases, the target, whether it would change, the units the release
// ships against those /releases lists for the active release ("added", "removed", "kept" by
// name; null when it lists none; a release without etc/systemd/system/ changes none), the
// version floor and what would refuse the push.
HostOutcome DryRunHost(const Target& target, const PushSettings& settings, ProgressSink& progress);

// GET /health and /releases: reachability, the updater's version and build ({"version","id"},
// null when /health shows none), active and previous release, the worker's last result when
// it shows one ({"op","result","rule","version","at"}, each a string or null; null when it
// shows none), its version floor and whether it requires signatures.
HostOutcome StatusHost(const Target& target, const PushSettings& settings, ProgressSink& progress);

// POST /rollback: 200 ok; 404 (nothing to roll back to) and any other answer kRefused.
HostOutcome RollbackHost(const Target& target, const PushSettings& settings,
                         ProgressSink& progress);

// The failure class of a transport error's rule.
FailureKind ClassifyTransport(const Error& error);

// The cause and rule a worker's failure body gives (FailureJson or DetailJson shapes);
// the body itself, made printable and cut short, when it is not JSON.
struct WorkerFailure {
  std::string cause;
  std::string rule;
  bool rolled_back = false;
};
WorkerFailure ReadFailureBody(int status, const std::string& body);

}  // namespace decnet::fleet
