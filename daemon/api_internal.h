// Shared between api.cc, api_upload.cc and api_metrics.cc; not part of the API's interface.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "daemon/api.h"
#include "daemon/multipart.h"
#include "daemon/upload_form.h"

namespace decnet::daemon {

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// A job's reply: sent once, by the worker when the operation returns or by the watchdog at
// the deadline, whichever comes first.
struct UpdaterApi::JobReply {
  JobReply(Reply r, Op o, Caller c) : reply(std::move(r)), op(o), caller(std::move(c)) {}
  // Sends `response` unless a reply was already sent; true when this call sent it.
  bool Send(Response response) {
    if (sent.exchange(true)) return false;
    reply(std::move(response));
    return true;
  }
  Reply reply;
  Op op;
  Caller caller;
  std::atomic<bool> sent{false};
};

struct UpdaterApi::Job {
  Op op = Op::kUpdate;
  Caller caller;
  std::optional<VerifiedUpload> upload;  // none for a rollback
  ReleaseClaim claim;                    // what the head of the upload admitted
  std::shared_ptr<JobReply> reply;
};

Response JsonResponse(unsigned status, const nlohmann::json& body);
const char* OpName(UpdaterApi::Op op);

// The answer to a refused form, in DECNET's shapes: 400 {"detail":"sha256 of the tarball is
// required"}; 422 FastAPI's missing-field list for the tarball; 413 over the upload cap;
// 500 when the spool failed; 400 {"detail":{"error","stderr","rolled_back":false,"rule"}}
// for everything else (malformed form, malformed or mismatching digest, confirm_self).
Response FormErrorResponse(const Error& error);

// 500's body when an operation outlives the deadline.
nlohmann::json DeadlineBody(std::chrono::milliseconds deadline);

// Body consumers. Each owns the busy flag taken in OnHead and hands it on with the job, or
// releases it when the request ends without one.
std::unique_ptr<BodyConsumer> MakeFormConsumer(UpdaterApi& api, UpdaterApi::Op op, Caller caller,
                                               MultipartReader reader);
std::unique_ptr<BodyConsumer> MakeRollbackConsumer(UpdaterApi& api, Caller caller);

}  // namespace decnet::daemon
