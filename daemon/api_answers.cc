// DECNET's statuses and bodies for every outcome. The pipeline decides what happened; only
// this file decides how DECNET's master is told.
#include "daemon/api_answers.h"

#include <optional>

namespace decnet::daemon {
namespace {

using nlohmann::json;

// DECNET's HTTP statuses, named once.
constexpr unsigned kOk = 200;
constexpr unsigned kBadRequest = 400;
constexpr unsigned kNotFound = 404;
constexpr unsigned kConflict = 409;
constexpr unsigned kServerError = 500;

constexpr char kNoPreviousText[] = "no previous release to roll back to";

// The failure shape; `rolled_back` is DECNET's field of /update answers only.
ApiAnswer FailureAnswer(unsigned status, const Error& e, const std::string& stderr_text,
                        std::optional<bool> rolled_back) {
  return {status, api::FailureJson(e.message, stderr_text, rolled_back, e.rule)};
}

json ReleaseOrEmpty(const std::optional<api::Release>& r) {
  return r ? api::ReleaseJson(*r) : json::object();
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

ApiAnswer AnswerFor(const UpdateOutcome& o) {
  return std::visit(Overloaded{
                        [](const outcome::Updated& u) -> ApiAnswer {
                          return {kOk,
                                  {{"status", "updated"},
                                   {"release", ReleaseOrEmpty(u.release)},
                                   {"probe", u.probe}}};
                        },
                        [](const outcome::RolledBack& r) {
                          return FailureAnswer(kConflict, r.cause, r.stderr_text, true);
                        },
                        [](const outcome::Rejected& r) {
                          return FailureAnswer(kBadRequest, r.why, r.stderr_text, false);
                        },
                        [](const outcome::Refused& r) {
                          return FailureAnswer(kServerError, r.why, r.stderr_text, false);
                        },
                        [](const outcome::Failed& f) {
                          return FailureAnswer(kServerError, f.why, f.stderr_text, false);
                        },
                    },
                    o);
}

ApiAnswer AnswerFor(const RollbackOutcome& o) {
  return std::visit(Overloaded{
                        [](const outcome::Restored& r) -> ApiAnswer {
                          return {kOk,
                                  {{"status", "rolled_back"},
                                   {"release", ReleaseOrEmpty(r.release)},
                                   {"probe", r.probe}}};
                        },
                        [](const outcome::NoPrevious&) -> ApiAnswer {
                          return {kNotFound, api::DetailJson(kNoPreviousText)};
                        },
                        [](const outcome::Failed& f) {
                          return FailureAnswer(kServerError, f.why, f.stderr_text, std::nullopt);
                        },
                    },
                    o);
}

ApiAnswer AnswerFor(const SelfUpdateOutcome& o) {
  return std::visit(Overloaded{
                        [](const outcome::SelfQueued&) -> ApiAnswer {
                          return {kOk, api::SelfUpdateQueuedJson()};
                        },
                        [](const outcome::Refused& r) {
                          return FailureAnswer(kServerError, r.why, r.stderr_text, std::nullopt);
                        },
                        [](const outcome::Failed& f) {
                          return FailureAnswer(kServerError, f.why, f.stderr_text, std::nullopt);
                        },
                    },
                    o);
}

ApiAnswer::ApiAnswer(const UpdateOutcome& o) : ApiAnswer(AnswerFor(o)) {}
ApiAnswer::ApiAnswer(const RollbackOutcome& o) : ApiAnswer(AnswerFor(o)) {}
ApiAnswer::ApiAnswer(const SelfUpdateOutcome& o) : ApiAnswer(AnswerFor(o)) {}

}  // namespace decnet::daemon
