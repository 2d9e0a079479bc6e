// The daemon's side of the helper protocol: one method per request, named to pair with the
// helper's handlers (HelperClient::RestartUnit <-> HandleRestartUnit). Calls are serialised
// (one outstanding request at a time, as the protocol requires) and safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

#include "proto/helper_protocol.h"
#include "proto/result.h"

namespace decnet::daemon {

class HelperClient {
 public:
  // Takes ownership of `fd`, the daemon's end of the pair (fd 3 in production).
  // `reply_timeout` bounds every wait for a reply; it must exceed the helper's own restart
  // timeout.
  HelperClient(int fd, std::chrono::milliseconds reply_timeout);
  ~HelperClient();
  HelperClient(const HelperClient&) = delete;
  HelperClient& operator=(const HelperClient&) = delete;

  // Each returns the helper's typed reply, or its typed error (kDenied with the rule, ...).
  // A transport or protocol failure is kFailed with rule "helper-unavailable" or
  // "helper-protocol"; after one, every further call fails the same way (the pair is
  // poisoned: the helper ends the session on any violation anyway).
  [[nodiscard]] Result<proto::HelloReply> Hello(const std::string& client);
  [[nodiscard]] Result<proto::WriteUnitReply> WriteUnit(const UnitName& name, std::string content);
  [[nodiscard]] Result<proto::RemoveUnitReply> RemoveUnit(const UnitName& name);
  [[nodiscard]] Result<void> DaemonReload();
  [[nodiscard]] Result<proto::RestartUnitReply> RestartUnit(const UnitName& name);
  [[nodiscard]] Result<proto::UnitState> UnitStatus(const UnitName& name);
  [[nodiscard]] Result<proto::RepointLinkReply> RepointLink(const LinkName& name,
                                                            const AbsPath& target);

  // True until a transport or protocol failure. Never blocks (an atomic read), so /health
  // may ask while a long helper call is under way.
  bool healthy() const { return !poisoned_.load(); }

 private:
  template <typename Reply>
  Result<Reply> Call(proto::RequestBody body);

  mutable std::mutex mu_;
  int fd_;
  std::chrono::milliseconds reply_timeout_;
  uint64_t next_id_ = 1;
  std::atomic<bool> poisoned_{false};
};

}  // namespace decnet::daemon
