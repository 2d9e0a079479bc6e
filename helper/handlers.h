// One handler per request type. Each re-checks everything the daemon sent (the daemon is
// untrusted), then acts. They return typed errors: kDenied with the refusing rule, kNotFound,
// kFailed with systemd's or the kernel's message, kTimeout.
#pragma once

#include "helper/dispatch.h"

namespace decnet::helper {

Result<proto::ReplyBody> HandleHello(Session& s, const proto::HelloRequest& r);
Result<proto::ReplyBody> HandleWriteUnit(Session& s, const proto::WriteUnitRequest& r);
Result<proto::ReplyBody> HandleRemoveUnit(Session& s, const proto::RemoveUnitRequest& r);
Result<proto::ReplyBody> HandleDaemonReload(Session& s, const proto::DaemonReloadRequest& r);
Result<proto::ReplyBody> HandleRestartUnit(Session& s, const proto::RestartUnitRequest& r);
Result<proto::ReplyBody> HandleUnitStatus(Session& s, const proto::UnitStatusRequest& r);
Result<proto::ReplyBody> HandleRepointLink(Session& s, const proto::RepointLinkRequest& r);

}  // namespace decnet::helper
