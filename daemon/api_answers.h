// The one place where what an operation did becomes DECNET's HTTP answer: each outcome of the
// update pipeline and of update-self (daemon/outcome.h) gets the status code and body shape that
// DECNET's master code expects (its updater client's classification of an update, its
// RollbackResponse, its update-self handler):
//
//   POST /update       Updated     200 {"status":"updated","release":R,"probe":str}
//                      RolledBack  409 {"detail":{"error","stderr","rolled_back":true,"rule"}}
//                      Rejected    400 {"detail":{"error","stderr","rolled_back":false,"rule"}}
//                      Refused     500 as Rejected
//                      Failed      500 as Rejected
//   POST /rollback     Restored    200 {"status":"rolled_back","release":R,"probe":str}
//                      NoPrevious  404 {"detail":"no previous release to roll back to"}
//                      Failed      500 {"detail":{"error","stderr","rule"}}
//   POST /update-self  SelfQueued  200 {"status":"self_update_queued","via":"systemd"}
//                      Refused     500 {"detail":{"error","stderr","rule"}}
//                      Failed      500 as Refused
//
// A release R that the store no longer lists is shown as {}. "rule" is left out when empty.
// Every failure body also has "error" and "stderr" at its top, where DECNET's dashboard reads
// them (tests/daemon/decnet_master_models.py restates how its master reads each answer).
#pragma once

#include <nlohmann/json.hpp>

#include "daemon/outcome.h"

namespace decnet::daemon {

// An HTTP answer in DECNET's shapes: its status code and JSON body.
struct ApiAnswer {
  unsigned status = 500;
  nlohmann::json body;

  ApiAnswer() = default;
  ApiAnswer(unsigned s, nlohmann::json b) : status(s), body(std::move(b)) {}
  // Implicit on purpose: an outcome read where an answer is expected (a test, the API) is
  // read through the table above and nowhere else.
  ApiAnswer(const UpdateOutcome& o);      // NOLINT(google-explicit-constructor)
  ApiAnswer(const RollbackOutcome& o);    // NOLINT(google-explicit-constructor)
  ApiAnswer(const SelfUpdateOutcome& o);  // NOLINT(google-explicit-constructor)
};

// The answers of the table above. Never fail.
ApiAnswer AnswerFor(const UpdateOutcome& o);
ApiAnswer AnswerFor(const RollbackOutcome& o);
ApiAnswer AnswerFor(const SelfUpdateOutcome& o);

}  // namespace decnet::daemon
