// What an operation of the update pipeline did, in the pipeline's own terms. The pipeline and
// update-self return these; daemon/api_answers.h alone turns them into DECNET's HTTP statuses
// and bodies, so no status code lives beside the steps that decide what happened.
//
// Each operation has its own closed set of outcomes (a std::variant), so a mapping that forgets
// one does not compile:
//
//   UpdateOutcome      Updated | RolledBack | Rejected | Refused | Failed
//   RollbackOutcome    Restored | NoPrevious | Failed
//   SelfUpdateOutcome  SelfQueued | Refused | Failed
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "proto/result.h"
#include "proto/updater_api.h"

namespace decnet::daemon {
namespace outcome {

// POST /update: the release is active, every step did what it should and it passed its
// health gate. `release` is its row in the store (nullopt only if the store lost it).
struct Updated {
  std::optional<api::Release> release;
  std::string probe;  // the agent's health answer
};

// POST /update: the new release failed a step or its gate after `current` moved; the release
// active before it, its units and links are back and proved healthy again. `cause.rule` names
// the step or check that failed; `stderr_text` carries both probes and what the steps reported.
struct RolledBack {
  Error cause;
  std::string stderr_text;
};

// POST /rollback: the previous release is active again and passed its health gate.
struct Restored {
  std::optional<api::Release> release;
  std::string probe;
};

// POST /rollback with no previous release to go back to. Nothing changed.
struct NoPrevious {};

// POST /update-self: the build is installed and committed; the restart of the updater's unit
// runs once the reply is out.
struct SelfQueued {};

// The upload is not a release at all (its digest names no release id, the archive is empty):
// the client's mistake. Nothing changed.
struct Rejected {
  Error why;
  std::string stderr_text;
};

// A rule refused the release or the request before anything was switched (a release of the
// wrong kind, update-self unavailable or refused by its checks). Nothing changed.
struct Refused {
  Error why;
  std::string stderr_text;
};

// A step failed. Before `current` moved: nothing changed. After it: the operation went back
// to what was active but could not prove that healthy, or could not go back at all; `why`
// says which.
struct Failed {
  Error why;
  std::string stderr_text;
};

}  // namespace outcome

using UpdateOutcome = std::variant<outcome::Updated, outcome::RolledBack, outcome::Rejected,
                                   outcome::Refused, outcome::Failed>;
using RollbackOutcome = std::variant<outcome::Restored, outcome::NoPrevious, outcome::Failed>;
using SelfUpdateOutcome = std::variant<outcome::SelfQueued, outcome::Refused, outcome::Failed>;

// The three sets are distinct types, so each has its own mapping to an answer.
static_assert(!std::is_same_v<UpdateOutcome, RollbackOutcome> &&
              !std::is_same_v<UpdateOutcome, SelfUpdateOutcome> &&
              !std::is_same_v<RollbackOutcome, SelfUpdateOutcome>);

}  // namespace decnet::daemon
