// Routing and the operation worker. The body consumers and DECNET's form answers are in
// api_upload.cc; /metrics and /audit in api_metrics.cc.
#include "daemon/api.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "daemon/api_internal.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

enum class Access { kAnyClient, kMaster };
enum class Endpoint { kHealth, kReleases, kUpdate, kUpdateSelf, kRollback, kMetrics, kAudit };

struct RouteRow {
  std::string_view path;
  std::string_view verb;
  Access access;
  Endpoint endpoint;
};

// The whole HTTP surface. DECNET's five endpoints, then ours.
constexpr RouteRow kRoutes[] = {
    {"/health", "GET", Access::kAnyClient, Endpoint::kHealth},
    {"/releases", "GET", Access::kMaster, Endpoint::kReleases},
    {"/update", "POST", Access::kMaster, Endpoint::kUpdate},
    {"/update-self", "POST", Access::kMaster, Endpoint::kUpdateSelf},
    {"/rollback", "POST", Access::kMaster, Endpoint::kRollback},
    {"/metrics", "GET", Access::kMaster, Endpoint::kMetrics},
    {"/audit", "GET", Access::kMaster, Endpoint::kAudit},
};

// The upload form's bounds: DECNET's four fields plus ours (descriptor, downgrade and up to
// 16 signatures, the one repeatable field; the form caps each, daemon/upload_form.h).
MultipartLimits FormLimits() {
  MultipartLimits limits;
  limits.max_parts = 4 + 2 + kMaxSignatureFields;
  limits.repeatable_fields = {"signature"};
  return limits;
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

Response JsonResponse(unsigned status, const json& body) {
  return Response{status, "application/json",
                  body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

const char* OpName(UpdaterApi::Op op) {
  switch (op) {
    case UpdaterApi::Op::kUpdate:
      return "update";
    case UpdaterApi::Op::kUpdateSelf:
      return "update-self";
    case UpdaterApi::Op::kRollback:
      return "rollback";
  }
  return "?";
}

Result<std::unique_ptr<UpdaterApi>> UpdaterApi::Create(Operations& ops, ApiOptions options) {
  if (::mkdir(options.spool_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Fail(ErrorCode::kFailed, "api-spool-dir",
                options.spool_dir + ": mkdir: " + std::strerror(errno));
  int fd = ::open(options.spool_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return Fail(ErrorCode::kFailed, "api-spool-dir",
                options.spool_dir + ": open: " + std::strerror(errno));
  UniqueFd dir(fd);
  // Nothing uploads yet: any spool file still named here is a killed daemon's.
  if (Result<size_t> cleaned = RemoveStaleSpoolFiles(dir.get()); !cleaned)
    return Fail(ErrorCode::kFailed, "api-spool-dir",
                options.spool_dir + ": " + cleaned.error().message);
  return std::unique_ptr<UpdaterApi>(new UpdaterApi(ops, std::move(options), std::move(dir)));
}

UpdaterApi::UpdaterApi(Operations& ops, ApiOptions options, UniqueFd spool_dir)
    : ops_(ops), options_(std::move(options)), spool_dir_fd_(std::move(spool_dir)) {
  RefreshSnapshot();  // before the threads: nothing else calls Operations yet
  worker_ = std::thread([this] { WorkerLoop(); });
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

UpdaterApi::~UpdaterApi() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
  watchdog_.join();
}

Route UpdaterApi::OnHead(const RequestHead& head, const Peer& peer) {
  std::string_view path = PathOf(head.target);
  const RouteRow* row = nullptr;
  bool path_known = false;
  for (const RouteRow& r : kRoutes) {
    if (r.path != path) continue;
    path_known = true;
    if (r.verb == head.verb) row = &r;
  }
  if (!path_known) return JsonResponse(404, api::DetailJson("Not Found"));
  if (row == nullptr) return JsonResponse(405, api::DetailJson("Method Not Allowed"));
  // SECURITY: decided from the verified certificate before any body byte is read.
  if (row->access == Access::kMaster && !peer.master)
    return JsonResponse(403, api::DetailJson(api::kMasterRequired));
  switch (row->endpoint) {
    // SECURITY: any CA-signed client (a worker's own certificate too) learns only that the
    // updater is alive; the releases, their digests, the version, the policy digest and the
    // last operation are the master's to read.
    case Endpoint::kHealth:
      if (!peer.master) return JsonResponse(200, json{{"status", "ok"}, {"role", "updater"}});
      return Health();
    case Endpoint::kReleases:
      return Releases();
    case Endpoint::kMetrics:
      return Response{200, kMetricsContentType, MetricsText()};
    case Endpoint::kAudit:
      return Audit();
    case Endpoint::kUpdate:
      return StartOperation(Op::kUpdate, head, peer);
    case Endpoint::kUpdateSelf:
      return StartOperation(Op::kUpdateSelf, head, peer);
    case Endpoint::kRollback:
      return StartOperation(Op::kRollback, head, peer);
  }
  return JsonResponse(404, api::DetailJson("Not Found"));
}

Response UpdaterApi::Health() const {
  bool alive = options_.helper_alive ? options_.helper_alive() : false;
  api::ReleaseChecks checks;
  if (options_.guard != nullptr) {
    checks.service_floor = options_.guard->floor().Get(ReleaseKind::kService);
    checks.updater_floor = options_.guard->floor().Get(ReleaseKind::kUpdater);
    checks.require_signature = options_.guard->require_signature();
  }
  std::optional<api::LastResult> last;
  if (options_.audit != nullptr) {
    if (auto op = options_.audit->LastOperation())
      last = api::LastResult{op->op, op->result, op->rule, op->version, op->at};
  }
  json body = api::HealthJson({}, options_.version, alive, options_.policy_digest, checks,
                              options_.build, last);
  {
    std::lock_guard lock(snapshot_mu_);
    body["releases"] = releases_;
  }
  return JsonResponse(200, body);
}

Response UpdaterApi::Releases() const {
  std::lock_guard lock(snapshot_mu_);
  return JsonResponse(200, json{{"releases", releases_}});
}

Route UpdaterApi::StartOperation(Op op, const RequestHead& head, const Peer& peer) {
  Caller caller{peer.fingerprint, peer.cn};
  std::optional<MultipartReader> reader;
  if (op != Op::kRollback) {
    // A body that cannot be a form is refused before the busy flag is taken.
    auto created = MultipartReader::Create(head.Find("Content-Type").value_or(""), FormLimits());
    if (!created) {
      Refuse(op, caller, created.error());
      return FormErrorResponse(created.error());
    }
    reader.emplace(std::move(*created));
  }
  if (busy_.exchange(true)) {
    Refuse(op, caller, Error{ErrorCode::kFailed, "update-busy", "an update is already running"});
    return JsonResponse(
        503, api::FailureJson("an update is already running", "", std::nullopt, "update-busy"));
  }
  if (op == Op::kRollback) return MakeRollbackConsumer(*this, std::move(caller));
  return MakeFormConsumer(*this, op, std::move(caller), std::move(*reader));
}

void UpdaterApi::RefreshSnapshot() {
  std::vector<json> releases = ops_.Releases();
  std::lock_guard lock(snapshot_mu_);
  releases_ = std::move(releases);
}

void UpdaterApi::Submit(std::unique_ptr<Job> job) {
  {
    std::lock_guard lock(mu_);
    queued_ = std::move(job);  // empty: the busy flag admits one job at a time
  }
  cv_.notify_all();
}

void UpdaterApi::WorkerLoop() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || queued_ != nullptr; });
      if (!queued_) return;  // a queued job still runs when stopping: it holds a reply
      job = std::move(queued_);
      running_ = job->reply;
      running_deadline_ = Clock::now() + options_.update_deadline;
    }
    cv_.notify_all();
    RunJob(*job);
  }
}

void UpdaterApi::RunJob(Job& job) {
  Clock::time_point start = Clock::now();
  std::function<void()> after_reply;
  ApiAnswer answer;
  std::optional<VerifiedTarball> tarball;
  if (job.upload)
    tarball = VerifiedTarball{job.upload->tarball.fd.get(), job.upload->tarball.size,
                              job.upload->sha256, job.upload->sha, job.claim};
  switch (job.op) {
    case Op::kUpdate:
      answer = AnswerFor(ops_.Update(job.caller, *tarball));
      break;
    case Op::kUpdateSelf:
      answer = AnswerFor(ops_.UpdateSelf(job.caller, *tarball, &after_reply));
      break;
    case Op::kRollback:
      answer = AnswerFor(ops_.Rollback(job.caller));
      break;
  }
  job.upload.reset();  // closes the spool file: its space is freed now
  RefreshSnapshot();   // a GET /releases right after the answer sees its outcome
  Count(job.op, answer.status, Clock::now() - start);
  {
    std::lock_guard lock(mu_);
    running_.reset();
  }
  cv_.notify_all();
  // The operation is over: the next one may start as soon as the master has read this answer
  // (it is queued until this job returns). update-self stays busy until the restart it
  // queued, so that no update starts only to be killed by it.
  if (!after_reply) busy_.store(false);
  job.reply->Send(JsonResponse(answer.status, answer.body));
  if (after_reply) {
    // The seam has no "flushed" signal: give the transport time to write the 200 before the
    // helper restarts this unit (see ApiOptions::self_restart_delay).
    std::this_thread::sleep_for(options_.self_restart_delay);
    restarting_.store(true);
    after_reply();
    restarting_.store(false);
    busy_.store(false);
  }
}

void UpdaterApi::WatchdogLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || running_ != nullptr; });
    if (!running_) return;
    std::shared_ptr<JobReply> reply = running_;
    if (cv_.wait_until(lock, running_deadline_, [&] { return running_ != reply; })) continue;
    lock.unlock();
    if (reply->Send(JsonResponse(500, DeadlineBody(options_.update_deadline)))) {
      // Best effort: the operation records its own outcome when it ends.
      RecordInAudit(reply->op, reply->caller, "deadline",
                    Error{ErrorCode::kTimeout, "update-deadline",
                          "answered 500 at the deadline; the operation continues"});
    }
    lock.lock();
    cv_.wait(lock, [&] { return running_ != reply; });
  }
}

void UpdaterApi::RecordInAudit(Op op, const Caller& caller, std::string result, const Error& why,
                               const std::vector<std::string>& signed_by) const {
  if (options_.audit == nullptr) return;
  AuditEntry entry;
  entry.op = OpName(op);
  entry.client_fingerprint = caller.fingerprint;
  entry.client_cn = caller.cn;
  entry.result = std::move(result);
  entry.rule = why.rule;
  entry.error = why.message;
  entry.signed_by = signed_by;
  (void)options_.audit->Append(entry);  // the reply is not held back by a full disk
}

}  // namespace decnet::daemon
