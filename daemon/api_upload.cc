// The bodies of POST /update, /update-self and /rollback: the form streamed into a spool
// file, DECNET's checks in DECNET's order once the body is complete, and the hand-over to
// the worker. The busy flag taken in OnHead travels with the consumer, then with the job.
#include <chrono>
#include <string>
#include <utility>

#include "daemon/api_internal.h"
#include "proto/release_auth.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

using nlohmann::json;
using Op = UpdaterApi::Op;

// The form's caps are the wire contract's.
static_assert(kMaxDescriptorField == kMaxReleaseDescriptorBytes);
static_assert(kMaxSignatureField == kMaxSignatureLineBytes);

Response FormErrorResponse(const Error& error) {
  if (error.rule == "sha256-required")
    return JsonResponse(400, api::DetailJson(api::kSha256Required));
  if (error.rule == "tarball-required") {
    // What DECNET's framework (FastAPI) answers for a missing form field.
    json missing = {{"type", "missing"},
                    {"loc", json::array({"body", "tarball"})},
                    {"msg", "Field required"},
                    {"input", nullptr}};
    return JsonResponse(422, json{{"detail", json::array({missing})}});
  }
  json body = api::FailureJson(error.message, "", false, error.rule);
  if (error.rule == "upload-too-large") return JsonResponse(413, body);
  if (error.rule.starts_with("spool-")) return JsonResponse(500, body);
  return JsonResponse(400, body);
}

json DeadlineBody(std::chrono::milliseconds deadline) {
  std::string seconds = std::to_string(deadline.count() / 1000.0);
  seconds.erase(seconds.find_last_not_of('0') + 1);
  if (seconds.ends_with('.')) seconds.pop_back();
  return api::FailureJson("the operation did not finish within the " + seconds +
                              " s deadline; it continues, and its outcome will be in "
                              "/releases and /audit",
                          "", false, "update-deadline");
}

namespace {

// Holds the busy flag until it is handed to a job or the request ends without one.
class BusyHold {
 public:
  explicit BusyHold(UpdaterApi& api) : api_(&api) {}
  ~BusyHold() { Release(); }
  BusyHold(const BusyHold&) = delete;
  BusyHold& operator=(const BusyHold&) = delete;
  void Release() {
    if (api_ != nullptr) std::exchange(api_, nullptr)->ReleaseBusy();
  }
  void HandOver() { api_ = nullptr; }  // the job's worker releases it

 private:
  UpdaterApi* api_;
};

class FormConsumer final : public BodyConsumer {
 public:
  FormConsumer(UpdaterApi& api, Op op, Caller caller, MultipartReader reader)
      : api_(api),
        busy_(api),
        op_(op),
        caller_(std::move(caller)),
        reader_(std::move(reader)),
        form_(api.spool_dir_fd(), api.max_upload_bytes()) {
    form_.SetTarballHook([this](const UploadedForm& fields) { return CheckHead(fields); });
  }

  ConsumeResult Consume(std::string_view chunk) override {
    Result<void> fed = reader_.Feed(chunk, form_);
    if (fed) {
      api_.UploadStep("uploading");
      return {};
    }
    api_.Refuse(op_, caller_, fed.error(), signed_by_);
    return tl::make_unexpected(FormErrorResponse(fed.error()));
  }

  void Finish(Reply reply) override {
    Result<VerifiedUpload> verified = Verify();
    if (!verified) {
      busy_.Release();  // first: a client that retries at once must not meet a 503
      api_.Refuse(op_, caller_, verified.error(), signed_by_);
      reply(FormErrorResponse(verified.error()));
      return;
    }
    auto job = std::make_unique<UpdaterApi::Job>();
    job->op = op_;
    job->caller = caller_;
    job->upload = std::move(*verified);
    job->claim = std::move(claim_);
    job->reply = std::make_shared<UpdaterApi::JobReply>(std::move(reply), op_, caller_);
    api_.UploadStep("spooled");
    busy_.HandOver();
    api_.Submit(std::move(job));
  }

  void Abandon(const Error&) override { busy_.Release(); }

 private:
  // DECNET's order: the form itself, confirm_self (update-self), then the tarball and digest.
  Result<VerifiedUpload> Verify() {
    if (Result<void> done = reader_.Finish(); !done) return tl::make_unexpected(done.error());
    Result<UploadedForm> form = form_.Finish();
    if (!form) return tl::make_unexpected(form.error());
    if (op_ == Op::kUpdateSelf) {
      if (Result<void> confirmed = VerifySelfConfirm(*form); !confirmed)
        return tl::make_unexpected(confirmed.error());
    }
    Result<VerifiedUpload> upload = VerifyUpload(std::move(*form));
    if (!upload) return upload;
    // SECURITY: the signed descriptor must name exactly the bytes that were spooled.
    if (Result<void> same =
            ReleaseGuard::CheckSpooled(claim_, upload->sha256, upload->tarball.size);
        !same)
      return tl::make_unexpected(same.error());
    return upload;
  }

  // Authenticity and the floor, when the tarball part begins (daemon/release_guard.h).
  Result<void> CheckHead(const UploadedForm& form) {
    ReleaseGuard* guard = api_.guard();
    if (guard == nullptr) {
      if (form.descriptor || !form.signatures.empty() || form.downgrade)
        return Fail(ErrorCode::kDenied, "signature-unverifiable",
                    "this updater runs without release checks and cannot honour descriptor, "
                    "signature or downgrade");
      return {};
    }
    const ReleaseKind kind = op_ == Op::kUpdateSelf ? ReleaseKind::kUpdater : ReleaseKind::kService;
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    Result<ReleaseClaim> claim = guard->CheckHead(
        kind, ReleaseFields{form.descriptor, form.signatures, form.downgrade}, now, &signed_by_);
    if (!claim) return tl::make_unexpected(claim.error());
    claim_ = std::move(*claim);
    return {};
  }

  UpdaterApi& api_;
  BusyHold busy_;
  Op op_;
  Caller caller_;
  MultipartReader reader_;
  UploadForm form_;
  ReleaseClaim claim_;                  // what CheckHead admitted
  std::vector<std::string> signed_by_;  // for the audit line, refused or not
};

// /rollback takes no body; one sent anyway is read and dropped (DECNET ignores it too).
class RollbackConsumer final : public BodyConsumer {
 public:
  RollbackConsumer(UpdaterApi& api, Caller caller)
      : api_(api), busy_(api), caller_(std::move(caller)) {}

  ConsumeResult Consume(std::string_view) override { return {}; }

  void Finish(Reply reply) override {
    auto job = std::make_unique<UpdaterApi::Job>();
    job->op = Op::kRollback;
    job->caller = caller_;
    job->reply = std::make_shared<UpdaterApi::JobReply>(std::move(reply), Op::kRollback, caller_);
    busy_.HandOver();
    api_.Submit(std::move(job));
  }

  void Abandon(const Error&) override { busy_.Release(); }

 private:
  UpdaterApi& api_;
  BusyHold busy_;
  Caller caller_;
};

}  // namespace

std::unique_ptr<BodyConsumer> MakeFormConsumer(UpdaterApi& api, Op op, Caller caller,
                                               MultipartReader reader) {
  return std::make_unique<FormConsumer>(api, op, std::move(caller), std::move(reader));
}

std::unique_ptr<BodyConsumer> MakeRollbackConsumer(UpdaterApi& api, Caller caller) {
  return std::make_unique<RollbackConsumer>(api, std::move(caller));
}

}  // namespace decnet::daemon
