#include "daemon/helper_client.h"

#include <unistd.h>

#include "proto/framing.h"

namespace decnet::daemon {

HelperClient::HelperClient(int fd, std::chrono::milliseconds reply_timeout)
    : fd_(fd), reply_timeout_(reply_timeout) {}

HelperClient::~HelperClient() {
  if (fd_ >= 0) ::close(fd_);
}

template <typename Reply>
Result<Reply> HelperClient::Call(proto::RequestBody body) {
  std::lock_guard lock(mu_);
  if (poisoned_) {
    return Fail(ErrorCode::kFailed, "helper-unavailable", "the helper connection has failed");
  }
  const proto::RequestType type = proto::TypeOf(body);
  const uint64_t id = next_id_++;
  if (auto sent = SendFrame(fd_, proto::EncodeRequest(id, body)); !sent) {
    poisoned_ = true;
    return Fail(ErrorCode::kFailed, "helper-unavailable",
                "sending to the helper: " + std::string(FrameErrorRule(sent.error())));
  }
  auto frame = RecvFrame(fd_, static_cast<int>(reply_timeout_.count()));
  if (!frame) {
    poisoned_ = true;
    return Fail(ErrorCode::kFailed, "helper-unavailable",
                "waiting for the helper: " + std::string(FrameErrorRule(frame.error())));
  }
  auto reply = proto::DecodeReply(*frame, type);
  if (!reply || reply->id != id) {
    poisoned_ = true;
    return Fail(ErrorCode::kFailed, "helper-protocol",
                reply ? "reply id does not match the request" : reply.error().message);
  }
  if (!reply->body) return tl::make_unexpected(reply->body.error());
  if (const auto* typed = std::get_if<Reply>(&*reply->body)) return *typed;
  poisoned_ = true;
  return Fail(ErrorCode::kFailed, "helper-protocol", "reply of the wrong type");
}

Result<proto::HelloReply> HelperClient::Hello(const std::string& client) {
  return Call<proto::HelloReply>(
      proto::HelloRequest{proto::kProtocolVersion, proto::kProtocolVersion, client});
}

Result<proto::WriteUnitReply> HelperClient::WriteUnit(const UnitName& name, std::string content) {
  return Call<proto::WriteUnitReply>(proto::WriteUnitRequest{name, std::move(content)});
}

Result<proto::RemoveUnitReply> HelperClient::RemoveUnit(const UnitName& name) {
  return Call<proto::RemoveUnitReply>(proto::RemoveUnitRequest{name});
}

Result<void> HelperClient::DaemonReload() {
  auto r = Call<proto::DaemonReloadReply>(proto::DaemonReloadRequest{});
  if (!r) return tl::make_unexpected(r.error());
  return {};
}

Result<proto::RestartUnitReply> HelperClient::RestartUnit(const UnitName& name) {
  return Call<proto::RestartUnitReply>(proto::RestartUnitRequest{name});
}

Result<proto::UnitState> HelperClient::UnitStatus(const UnitName& name) {
  auto r = Call<proto::UnitStatusReply>(proto::UnitStatusRequest{name});
  if (!r) return tl::make_unexpected(r.error());
  return r->unit;
}

Result<proto::RepointLinkReply> HelperClient::RepointLink(const LinkName& name,
                                                          const AbsPath& target) {
  return Call<proto::RepointLinkReply>(proto::RepointLinkRequest{name, target});
}

}  // namespace decnet::daemon
