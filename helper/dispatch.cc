#include "helper/dispatch.h"

#include "helper/handlers.h"

namespace decnet::helper {
namespace {

using proto::RequestType;

// Adapts a typed handler to the table's uniform signature. The decoder guarantees the
// variant holds the alternative matching the row's type.
template <typename Req, Result<proto::ReplyBody> (*Fn)(Session&, const Req&)>
Result<proto::ReplyBody> Typed(Session& s, const proto::RequestBody& body) {
  return Fn(s, std::get<Req>(body));
}

constexpr DispatchRow kTable[] = {
    {RequestType::kHello, Phase::kAwaitHello, true, Typed<proto::HelloRequest, HandleHello>,
     "protocol version overlap"},
    {RequestType::kWriteUnit, Phase::kServing, false,
     Typed<proto::WriteUnitRequest, HandleWriteUnit>,
     "name allow-list, not the updater's unit, unit policy, size cap, unit-count cap, file is "
     "the helper's",
     Effect::kChangesState},
    {RequestType::kRemoveUnit, Phase::kServing, false,
     Typed<proto::RemoveUnitRequest, HandleRemoveUnit>,
     "name allow-list, not the updater's unit, file is the helper's; stops the unit first",
     Effect::kChangesState},
    {RequestType::kDaemonReload, Phase::kServing, false,
     Typed<proto::DaemonReloadRequest, HandleDaemonReload>,
     "after the reload: systemd's loaded view of every unit the helper wrote and of the "
     "updater's own unit (unit-loaded-*)",
     Effect::kChangesState},
    {RequestType::kRestartUnit, Phase::kServing, false,
     Typed<proto::RestartUnitRequest, HandleRestartUnit>,
     "name allow-list (updater's unit included); systemd's loaded view: the helper's own "
     "fragment, operator drop-ins only, effective settings within policy (unit-loaded-*); "
     "waits for the job",
     Effect::kChangesState},
    {RequestType::kUnitStatus, Phase::kServing, false,
     Typed<proto::UnitStatusRequest, HandleUnitStatus>, "name allow-list"},
    {RequestType::kRepointLink, Phase::kServing, false,
     Typed<proto::RepointLinkRequest, HandleRepointLink>,
     "link allow-list, target resolved beneath its prefix's descriptor without a symlink, "
     "entry is a symlink",
     Effect::kChangesState},
};

}  // namespace

std::string_view PhaseName(Phase phase) {
  return phase == Phase::kAwaitHello ? "await-hello" : "serving";
}

std::span<const DispatchRow> DispatchTable() { return kTable; }

std::string SubjectOf(const proto::RequestBody& body) {
  return std::visit(
      [](const auto& r) -> std::string {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, proto::HelloRequest>) {
          return r.client;
        } else if constexpr (std::is_same_v<T, proto::DaemonReloadRequest>) {
          return "";
        } else {
          return r.name.str();
        }
      },
      body);
}

tl::expected<Dispatched, proto::ProtocolViolation> Dispatch(Session& session,
                                                            std::string_view frame,
                                                            const AdmitChange& admit_change) {
  auto request = proto::DecodeRequest(frame);
  if (!request) return tl::make_unexpected(request.error());
  const DispatchRow* row = nullptr;
  for (const auto& r : kTable) {
    if (r.type == request->type) row = &r;
  }
  std::string type_name(proto::RequestTypeName(request->type));
  // SECURITY: phase and once-only are enforced here, for every request, before any handler.
  if (row == nullptr || row->phase != session.phase) {
    return tl::make_unexpected(proto::ProtocolViolation{
        "request-out-of-phase",
        type_name + " is not answered in phase " + std::string(PhaseName(session.phase))});
  }
  if (row->once && session.done_once.contains(row->type)) {
    return tl::make_unexpected(
        proto::ProtocolViolation{"request-repeated", type_name + " may be sent only once"});
  }
  Dispatched out{std::move(*request), proto::ReplyBody{}, false, row->effect};
  Result<void> admitted = {};
  // SECURITY: a change is made only while its never-rotated record has room for it.
  if (row->effect == Effect::kChangesState && admit_change) admitted = admit_change();
  if (!out.request.body) {
    out.reply = tl::make_unexpected(out.request.body.error());
  } else if (!admitted) {
    out.reply = tl::make_unexpected(admitted.error());
  } else {
    out.reply = row->handler(session, *out.request.body);
  }
  if (row->once) session.done_once.insert(row->type);
  if (row->type == RequestType::kHello) {
    if (out.reply) {
      session.phase = Phase::kServing;
    } else {
      out.end_session = true;
    }
  }
  return out;
}

}  // namespace decnet::helper
