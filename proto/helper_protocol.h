// The helper protocol: every request the root helper answers and every reply it gives.
// This header is the whole privileged surface (docs/protocol.md). Adding a request is a
// design change, reviewed as such.
//
// A frame is one JSON object: {"v":1,"id":N,"type":"...", ...fields}. Decoding is strict:
// unknown, duplicate or missing keys, wrong JSON types, a non-object, trailing bytes, or an
// unknown type are protocol violations (fatal to the session). Field *values* that do not
// parse as their type (a bad unit name, say) are not violations: the request decodes with
// a kMalformed error in its body and gets a typed reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "proto/result.h"
#include "proto/values.h"

namespace decnet::proto {

// Version of the envelope and of the request set. `hello` negotiates it.
inline constexpr int kProtocolVersion = 1;
// Largest unit file a write_unit may carry (bytes of content).
inline constexpr size_t kMaxUnitContent = 32 * 1024;
// Largest `client` string in hello.
inline constexpr size_t kMaxClientName = 64;

// Request types, with explicit values; names on the wire are the snake_case forms.
enum class RequestType : uint8_t {
  kHello = 1,
  kWriteUnit = 2,
  kRemoveUnit = 3,
  kDaemonReload = 4,
  kRestartUnit = 5,
  kUnitStatus = 6,
  kRepointLink = 7,
};
inline constexpr RequestType kAllRequestTypes[] = {
    RequestType::kHello,        RequestType::kWriteUnit,   RequestType::kRemoveUnit,
    RequestType::kDaemonReload, RequestType::kRestartUnit, RequestType::kUnitStatus,
    RequestType::kRepointLink};

std::string_view RequestTypeName(RequestType t);
std::optional<RequestType> RequestTypeFromName(std::string_view name);

// --- requests -------------------------------------------------------------------------

struct HelloRequest {
  int min_version = kProtocolVersion;  // oldest protocol the client speaks
  int max_version = kProtocolVersion;  // newest protocol the client speaks
  std::string client;                  // free-form name and version, printable ASCII
};
struct WriteUnitRequest {
  UnitName name;
  std::string content;  // at most kMaxUnitContent bytes
};
struct RemoveUnitRequest {
  UnitName name;
};
struct DaemonReloadRequest {};
struct RestartUnitRequest {
  UnitName name;
};
struct UnitStatusRequest {
  UnitName name;
};
struct RepointLinkRequest {
  LinkName name;
  AbsPath target;
};

using RequestBody =
    std::variant<HelloRequest, WriteUnitRequest, RemoveUnitRequest, DaemonReloadRequest,
                 RestartUnitRequest, UnitStatusRequest, RepointLinkRequest>;

// A decoded request: its id and type always; its body, or the kMalformed error that its
// values produced.
struct Request {
  uint64_t id = 0;
  RequestType type = RequestType::kHello;
  Result<RequestBody> body;
};

// A structural failure of a frame: fatal to the session. `rule` is stable (e.g.
// "json-unknown-key"), `message` has the details.
struct ProtocolViolation {
  std::string rule;
  std::string message;
};

[[nodiscard]] tl::expected<Request, ProtocolViolation> DecodeRequest(std::string_view frame);
std::string EncodeRequest(uint64_t id, const RequestBody& body);
RequestType TypeOf(const RequestBody& body);

// --- replies --------------------------------------------------------------------------

struct UnitState {
  std::string load_state;    // "loaded", "not-found", ...
  std::string active_state;  // "active", "failed", ...
  std::string sub_state;     // "running", "dead", ...
  uint32_t main_pid = 0;
  uint32_t n_restarts = 0;
  bool operator==(const UnitState&) const = default;
};

struct HelloReply {
  int version = kProtocolVersion;
  std::string helper_version;
  std::string policy_digest;  // hex SHA-256 of the helper's effective policy
};
struct WriteUnitReply {
  bool changed = false;  // false when the file already held exactly this content
};
struct RemoveUnitReply {
  bool removed = false;  // false when there was no file to remove
};
struct DaemonReloadReply {};
struct RestartUnitReply {
  std::string job_result;  // systemd's JobRemoved result: "done", "failed", "timeout", ...
  UnitState unit;          // the unit's state after the job
};
struct UnitStatusReply {
  UnitState unit;
};
struct RepointLinkReply {
  bool changed = false;  // false when the link already pointed at the target
};

using ReplyBody = std::variant<HelloReply, WriteUnitReply, RemoveUnitReply, DaemonReloadReply,
                               RestartUnitReply, UnitStatusReply, RepointLinkReply>;

struct Reply {
  uint64_t id = 0;
  Result<ReplyBody> body;  // an error reply carries code, rule and message
};

// Encodes a reply: {"v":1,"id":N,"result":"ok",...fields} or
// {"v":1,"id":N,"result":"denied","rule":"...","message":"..."}.
std::string EncodeReply(uint64_t id, const Result<ReplyBody>& body);
// Decodes a reply to a request of type `expected`, as strictly as requests are decoded.
[[nodiscard]] tl::expected<Reply, ProtocolViolation> DecodeReply(std::string_view frame,
                                                                 RequestType expected);

}  // namespace decnet::proto
