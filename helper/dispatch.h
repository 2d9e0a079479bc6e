// The request table: the whole privileged surface in one place. Each row says which request
// the helper answers, in which phase, whether only once, and which handler does it.
// helperctl policy prints this table.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "helper/dirs.h"
#include "helper/record.h"
#include "helper/systemd_manager.h"
#include "policy/policy.h"
#include "proto/helper_protocol.h"

namespace decnet::helper {

enum class Phase {
  kAwaitHello,  // nothing but hello is answered
  kServing,     // after a successful hello
};
std::string_view PhaseName(Phase phase);

// Everything a handler may use. Handlers see the policy and the directory descriptors, and
// reach systemd only through the adapter.
struct Session {
  const Policy& policy;
  const HelperDirs& dirs;
  SystemdManager& systemd;
  UnitRecord& units;
  std::string policy_digest;
  Phase phase = Phase::kAwaitHello;
  std::set<proto::RequestType> done_once;
};

using Handler = Result<proto::ReplyBody> (*)(Session&, const proto::RequestBody&);

struct DispatchRow {
  proto::RequestType type;
  Phase phase;  // the only phase in which the request is answered
  bool once;    // answered at most once per session
  Handler handler;
  std::string_view checks;            // what the helper checks, in words (for helperctl policy)
  Effect effect = Effect::kReadOnly;  // kChangesState: admitted only while its record has room
};

// The table, in request-type order.
std::span<const DispatchRow> DispatchTable();

// The outcome of one frame that decoded.
struct Dispatched {
  proto::Request request;
  Result<proto::ReplyBody> reply;
  bool end_session = false;           // a refused hello: reply, then end
  Effect effect = Effect::kReadOnly;  // the row's: where the request is recorded
};

// Asked before a state-changing request is handled; an error refuses the request with it.
using AdmitChange = std::function<Result<void>()>;

// Decodes `frame` and runs it through the table. Protocol violations (undecodable frame,
// request out of phase, a once-only request repeated) come back as errors; the caller ends
// the session. Value failures come back as error replies in `reply`, as does a refusal by
// `admit_change` (when given) of a row whose effect is kChangesState.
[[nodiscard]] tl::expected<Dispatched, proto::ProtocolViolation> Dispatch(
    Session& session, std::string_view frame, const AdmitChange& admit_change = nullptr);

// The unit or link a request concerns, for logs ("" when none).
std::string SubjectOf(const proto::RequestBody& body);

}  // namespace decnet::helper
