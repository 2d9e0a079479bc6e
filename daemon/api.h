// The updater's HTTP API (DECNET's updater contract) on top of the transport seam
// (http_server.h): routing, authorisation, DECNET's form checks, one operation at a time off
// the I/O thread, the update deadline, and our additive endpoints (/metrics, /audit).
//
//   GET  /health       any CA-signed client  200 HealthJson (releases from a cached snapshot)
//   GET  /releases     master                200 {"releases":[...]}
//   POST /update       master                multipart: tarball, sha256, sha; ours before the
//                                            tarball: descriptor, signature (repeated),
//                                            downgrade (daemon/release_guard.h)
//   POST /update-self  master                as /update plus confirm_self=true
//   POST /rollback     master                no body
//   GET  /metrics      master                Prometheus text format 0.0.4
//   GET  /audit        master                200 {"entries":[...]} (last 100 audit lines)
//
// Order of decisions in OnHead, before any body byte is read: 404 unknown path, 405 wrong
// method, 403 {"detail":"master certificate required"} for a non-master on a master route,
// 503 {"detail":{"error":"an update is already running"}} while an operation runs (the busy
// flag is taken here, never queued).
//
// Operations run on one worker thread and return what happened (daemon/outcome.h), which
// daemon/api_answers.h alone turns into DECNET's statuses and bodies. The releases snapshot
// served by /health and /releases is taken at construction and after each operation, on the
// worker, so Operations::Releases() never runs beside another operation and /health never
// waits.
//
// No busy window: the busy flag is released, and the snapshot refreshed, before an operation's
// reply is handed to the transport, so a request the master sends as soon as it reads the
// answer is served as if the daemon were idle (the worker takes it once it has counted the
// last one). Old releases are deleted in the background by the pipeline's pruner, beside
// whatever runs next. Only update-self keeps the flag after its reply, until the restart of
// the daemon's own unit (which ends this process) has been asked for.
//
// Deadline: when an operation has not returned within `update_deadline`, a watchdog thread
// answers 500 {"detail":{"error":...,"stderr":"","rolled_back":false,"rule":"update-deadline"}}
// at the deadline. The operation is not interrupted: it runs to completion, keeps the busy
// flag until then (so a second update still gets 503), and its outcome lands in the audit
// log and in the next /releases snapshot. The same holds for a client that disconnects
// after its body was read: the transport drops the reply, the operation completes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/api_answers.h"
#include "daemon/audit_log.h"
#include "daemon/http_server.h"
#include "daemon/release_guard.h"
#include "daemon/spool.h"
#include "daemon/update_pipeline.h"
#include "proto/result.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

// What the API needs besides Operations. Borrowed pointers must outlive the API.
struct ApiOptions {
  std::string spool_dir;  // created 0700 when absent; opened once
  uint64_t max_upload_bytes = 1ull << 30;
  std::chrono::milliseconds update_deadline{150'000};
  // update-self: how long after the 200 was handed to the transport the restart hook runs.
  // The seam cannot say when a reply is flushed; 1 s on loopback or a LAN is ample for a
  // 50-byte answer, and a lost reply is tolerated by DECNET's master ("a dropped connection
  // right after is normal").
  std::chrono::milliseconds self_restart_delay{1000};
  std::string version;  // the daemon's, shown by /health
  // The running build (daemon/self_update.h FindRunningBuild), shown by /health as "build";
  // an empty version shows `version`.
  api::BuildIdentity build;
  std::string policy_digest;           // the helper policy's, shown by /health
  std::function<bool()> helper_alive;  // /health and decnet_updater_helper_up; empty: false
  // /audit, deadline records and /health's "last_result"; null: /audit answers 503 and
  // "last_result" is null.
  AuditLog* audit = nullptr;
  // Release authenticity and the version floor, checked at the head of each upload's tarball
  // and after it is spooled; /health shows the floor. Null (tests of other things): a form
  // with a descriptor, signatures or downgrade is refused ("signature-unverifiable").
  ReleaseGuard* guard = nullptr;
};

// Counters behind /metrics.
struct ApiCounters {
  std::map<std::pair<std::string, std::string>, uint64_t> results;  // (op, result) -> count
  double duration_sum_seconds = 0;
  uint64_t duration_count = 0;
};

class UpdaterApi final : public Application {
 public:
  // Opens (creating 0700) the spool directory, removes the named spool files a killed
  // daemon may have left there (see RemoveStaleSpoolFiles) and takes the first releases
  // snapshot. Fails (kFailed, rule "api-spool-dir") when the directory cannot be created,
  // opened or cleaned.
  [[nodiscard]] static Result<std::unique_ptr<UpdaterApi>> Create(Operations& ops,
                                                                  ApiOptions options);
  // Waits for a running operation to finish (it is never cut short), then joins the threads.
  ~UpdaterApi() override;
  UpdaterApi(const UpdaterApi&) = delete;
  UpdaterApi& operator=(const UpdaterApi&) = delete;

  Route OnHead(const RequestHead& head, const Peer& peer) override;

  // True while an operation holds the busy flag.
  bool busy() const { return busy_.load(); }
  // True while update-self's restart of this unit is under way: its build is committed, its
  // audit line written and its 200 handed out; what is left is systemd stopping this process.
  bool restarting() const { return restarting_.load(); }
  // The /metrics text.
  std::string MetricsText() const;

  // The kinds of operation.
  enum class Op { kUpdate, kUpdateSelf, kRollback };
  // One queued operation and its reply; defined in api.cc.
  struct Job;
  struct JobReply;

  // Used by the body consumers (api.cc): answer or schedule.
  void ReleaseBusy() { busy_.store(false); }
  void Submit(std::unique_ptr<Job> job);
  // Counts a refusal before any operation ran and records it in the audit log with its rule
  // and the trusted keys that had signed the release, if any.
  void Refuse(Op op, const Caller& caller, const Error& why,
              const std::vector<std::string>& signed_by = {});
  ReleaseGuard* guard() const { return options_.guard; }
  int spool_dir_fd() const { return spool_dir_fd_.get(); }
  uint64_t max_upload_bytes() const { return options_.max_upload_bytes; }

  // Test-only, like UpdatePipeline::SetStepHook: called with "uploading" after each chunk of
  // an update's body has gone into the form (on the I/O thread), and with "spooled" once the
  // upload's digest was verified, just before the job is handed to the worker. The crash
  // matrix ends the process there. Set it before the server starts; unset, nothing is called.
  using UploadHook = std::function<void(std::string_view)>;
  void SetUploadHook(UploadHook hook) { upload_hook_ = std::move(hook); }
  void UploadStep(std::string_view name) const {
    if (upload_hook_) upload_hook_(name);
  }

 private:
  UpdaterApi(Operations& ops, ApiOptions options, UniqueFd spool_dir);

  Response Health() const;
  Response Releases() const;
  Response Audit() const;
  Route StartOperation(Op op, const RequestHead& head, const Peer& peer);
  void RefreshSnapshot();
  void WorkerLoop();
  void WatchdogLoop();
  void RunJob(Job& job);
  void Count(Op op, unsigned status, std::chrono::steady_clock::duration took);
  void RecordInAudit(Op op, const Caller& caller, std::string result, const Error& why,
                     const std::vector<std::string>& signed_by = {}) const;

  Operations& ops_;
  ApiOptions options_;
  UniqueFd spool_dir_fd_;
  UploadHook upload_hook_;
  std::atomic<bool> busy_{false};
  std::atomic<bool> restarting_{false};

  mutable std::mutex snapshot_mu_;
  std::vector<nlohmann::json> releases_;

  mutable std::mutex metrics_mu_;
  ApiCounters counters_;

  // Worker and watchdog state, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Job> queued_;
  std::shared_ptr<JobReply> running_;  // the running job's reply, for the watchdog
  std::chrono::steady_clock::time_point running_deadline_;
  bool stopping_ = false;
  std::thread worker_;
  std::thread watchdog_;
};

}  // namespace decnet::daemon
