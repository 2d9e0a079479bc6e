#include "proto/helper_protocol.h"

#include <array>
#include <utility>

#include "proto/json_strict.h"

namespace decnet::proto {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<RequestType, std::string_view>, 7> kTypeNames = {{
    {RequestType::kHello, "hello"},
    {RequestType::kWriteUnit, "write_unit"},
    {RequestType::kRemoveUnit, "remove_unit"},
    {RequestType::kDaemonReload, "daemon_reload"},
    {RequestType::kRestartUnit, "restart_unit"},
    {RequestType::kUnitStatus, "unit_status"},
    {RequestType::kRepointLink, "repoint_link"},
}};

ProtocolViolation Violation(const strict_json::JsonError& e) { return {e.rule, e.message}; }

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

Result<RequestBody> ParseHello(std::optional<uint64_t> min, std::optional<uint64_t> max,
                               std::optional<std::string> client) {
  if (*min < 1 || *min > *max || *max > 1000) {
    return Fail(ErrorCode::kMalformed, "hello-version-range",
                "hello needs 1 <= min_version <= max_version <= 1000");
  }
  if (client->size() > kMaxClientName || !IsPrintableAscii(*client)) {
    return Fail(ErrorCode::kMalformed, "hello-client",
                "hello's client must be at most 64 printable ASCII characters");
  }
  return HelloRequest{static_cast<int>(*min), static_cast<int>(*max), std::move(*client)};
}

// Reads the type-specific fields. Structural problems are left in `obj` (Finish reports
// them); value problems come back as the body's error.
Result<RequestBody> ReadBody(RequestType type, strict_json::StrictObject& obj) {
  switch (type) {
    case RequestType::kHello: {
      auto min = obj.Uint("min_version");
      auto max = obj.Uint("max_version");
      auto client = obj.String("client");
      if (!min || !max || !client) return Fail(ErrorCode::kMalformed, "structure", "");
      return ParseHello(min, max, std::move(client));
    }
    case RequestType::kWriteUnit: {
      auto name = obj.String("name");
      auto content = obj.String("content");
      if (!name || !content) return Fail(ErrorCode::kMalformed, "structure", "");
      auto unit = UnitName::Parse(*name);
      if (!unit) return tl::make_unexpected(unit.error());
      return WriteUnitRequest{std::move(*unit), std::move(*content)};
    }
    case RequestType::kRemoveUnit:
    case RequestType::kRestartUnit:
    case RequestType::kUnitStatus: {
      auto name = obj.String("name");
      if (!name) return Fail(ErrorCode::kMalformed, "structure", "");
      auto unit = UnitName::Parse(*name);
      if (!unit) return tl::make_unexpected(unit.error());
      if (type == RequestType::kRemoveUnit) return RemoveUnitRequest{std::move(*unit)};
      if (type == RequestType::kRestartUnit) return RestartUnitRequest{std::move(*unit)};
      return UnitStatusRequest{std::move(*unit)};
    }
    case RequestType::kDaemonReload:
      return DaemonReloadRequest{};
    case RequestType::kRepointLink: {
      auto name = obj.String("name");
      auto target = obj.String("target");
      if (!name || !target) return Fail(ErrorCode::kMalformed, "structure", "");
      auto link = LinkName::Parse(*name);
      if (!link) return tl::make_unexpected(link.error());
      auto path = AbsPath::Parse(*target);
      if (!path) return tl::make_unexpected(path.error());
      return RepointLinkRequest{std::move(*link), std::move(*path)};
    }
  }
  return Fail(ErrorCode::kMalformed, "structure", "");
}

// The envelope shared by requests and replies: "v" must be kProtocolVersion, "id" an
// unsigned integer.
tl::expected<uint64_t, ProtocolViolation> ReadEnvelope(strict_json::StrictObject& obj) {
  auto v = obj.Uint("v");
  auto id = obj.Uint("id");
  if (v && *v != static_cast<uint64_t>(kProtocolVersion)) {
    return tl::make_unexpected(ProtocolViolation{
        "envelope-version",
        "envelope version " + std::to_string(*v) + " is not " + std::to_string(kProtocolVersion)});
  }
  if (!v || !id) {
    auto err = obj.Finish();
    return tl::make_unexpected(Violation(err.error()));
  }
  return *id;
}

}  // namespace

std::string_view RequestTypeName(RequestType t) {
  for (const auto& [type, name] : kTypeNames) {
    if (type == t) return name;
  }
  return "unknown";
}

std::optional<RequestType> RequestTypeFromName(std::string_view name) {
  for (const auto& [type, n] : kTypeNames) {
    if (n == name) return type;
  }
  return std::nullopt;
}

RequestType TypeOf(const RequestBody& body) { return static_cast<RequestType>(body.index() + 1); }

tl::expected<Request, ProtocolViolation> DecodeRequest(std::string_view frame) {
  auto parsed = strict_json::ParseObject(frame);
  if (!parsed) return tl::make_unexpected(Violation(parsed.error()));
  strict_json::StrictObject obj(*parsed, "request");
  auto id = ReadEnvelope(obj);
  if (!id) return tl::make_unexpected(id.error());
  auto type_name = obj.String("type");
  if (!type_name) return tl::make_unexpected(Violation(obj.Finish().error()));
  auto type = RequestTypeFromName(*type_name);
  if (!type) {
    return tl::make_unexpected(ProtocolViolation{
        "request-type-unknown", "unknown request type \"" + type_name->substr(0, 40) + "\""});
  }
  Request req{*id, *type, ReadBody(*type, obj)};
  // Structure first: a missing or unknown key is a violation even when a value also failed.
  if (auto done = obj.Finish(); !done) return tl::make_unexpected(Violation(done.error()));
  return req;
}

std::string EncodeRequest(uint64_t id, const RequestBody& body) {
  json j = {{"v", kProtocolVersion}, {"id", id}, {"type", RequestTypeName(TypeOf(body))}};
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, HelloRequest>) {
          j["min_version"] = r.min_version;
          j["max_version"] = r.max_version;
          j["client"] = r.client;
        } else if constexpr (std::is_same_v<T, WriteUnitRequest>) {
          j["name"] = r.name.str();
          j["content"] = r.content;
        } else if constexpr (std::is_same_v<T, RepointLinkRequest>) {
          j["name"] = r.name.str();
          j["target"] = r.target.str();
        } else if constexpr (!std::is_same_v<T, DaemonReloadRequest>) {
          j["name"] = r.name.str();
        }
      },
      body);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

json UnitStateJson(const UnitState& u) {
  return {{"load_state", u.load_state},
          {"active_state", u.active_state},
          {"sub_state", u.sub_state},
          {"main_pid", u.main_pid},
          {"n_restarts", u.n_restarts}};
}

std::optional<UnitState> ReadUnitState(strict_json::StrictObject& parent) {
  const json* j = parent.Object("unit");
  if (!j) return std::nullopt;
  strict_json::StrictObject obj(*j, "unit state");
  UnitState u;
  auto load = obj.String("load_state");
  auto active = obj.String("active_state");
  auto sub = obj.String("sub_state");
  auto pid = obj.Uint("main_pid");
  auto restarts = obj.Uint("n_restarts");
  if (!obj.Finish() || *pid > UINT32_MAX || *restarts > UINT32_MAX) return std::nullopt;
  return UnitState{*load, *active, *sub, static_cast<uint32_t>(*pid),
                   static_cast<uint32_t>(*restarts)};
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (auto c : {ErrorCode::kMalformed, ErrorCode::kDenied, ErrorCode::kNotFound,
                 ErrorCode::kFailed, ErrorCode::kTimeout}) {
    if (ErrorCodeName(c) == name) return c;
  }
  return std::nullopt;
}

// Reads the fields of a successful reply to `type`; nullopt when they are missing or wrong.
std::optional<ReplyBody> ReadReplyBody(RequestType type, strict_json::StrictObject& obj) {
  switch (type) {
    case RequestType::kHello: {
      auto version = obj.Uint("version");
      auto helper = obj.String("helper_version");
      auto digest = obj.String("policy_digest");
      if (!version || !helper || !digest || *version > 1000) return std::nullopt;
      return HelloReply{static_cast<int>(*version), *helper, *digest};
    }
    case RequestType::kWriteUnit:
    case RequestType::kRepointLink: {
      auto changed = obj.Bool("changed");
      if (!changed) return std::nullopt;
      if (type == RequestType::kWriteUnit) return WriteUnitReply{*changed};
      return RepointLinkReply{*changed};
    }
    case RequestType::kRemoveUnit: {
      auto removed = obj.Bool("removed");
      if (!removed) return std::nullopt;
      return RemoveUnitReply{*removed};
    }
    case RequestType::kDaemonReload:
      return DaemonReloadReply{};
    case RequestType::kRestartUnit: {
      auto job = obj.String("job_result");
      auto unit = ReadUnitState(obj);
      if (!job || !unit) return std::nullopt;
      return RestartUnitReply{*job, *unit};
    }
    case RequestType::kUnitStatus: {
      auto unit = ReadUnitState(obj);
      if (!unit) return std::nullopt;
      return UnitStatusReply{*unit};
    }
  }
  return std::nullopt;
}

}  // namespace

std::string EncodeReply(uint64_t id, const Result<ReplyBody>& body) {
  json j = {{"v", kProtocolVersion}, {"id", id}};
  if (!body) {
    j["result"] = ErrorCodeName(body.error().code);
    j["rule"] = body.error().rule;
    j["message"] = body.error().message;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  j["result"] = "ok";
  std::visit(
      [&](const auto& r) {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, HelloReply>) {
          j["version"] = r.version;
          j["helper_version"] = r.helper_version;
          j["policy_digest"] = r.policy_digest;
        } else if constexpr (std::is_same_v<T, WriteUnitReply> ||
                             std::is_same_v<T, RepointLinkReply>) {
          j["changed"] = r.changed;
        } else if constexpr (std::is_same_v<T, RemoveUnitReply>) {
          j["removed"] = r.removed;
        } else if constexpr (std::is_same_v<T, RestartUnitReply>) {
          j["job_result"] = r.job_result;
          j["unit"] = UnitStateJson(r.unit);
        } else if constexpr (std::is_same_v<T, UnitStatusReply>) {
          j["unit"] = UnitStateJson(r.unit);
        }
      },
      *body);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

tl::expected<Reply, ProtocolViolation> DecodeReply(std::string_view frame, RequestType expected) {
  auto parsed = strict_json::ParseObject(frame);
  if (!parsed) return tl::make_unexpected(Violation(parsed.error()));
  strict_json::StrictObject obj(*parsed, "reply");
  auto id = ReadEnvelope(obj);
  if (!id) return tl::make_unexpected(id.error());
  auto result = obj.String("result");
  if (!result) return tl::make_unexpected(Violation(obj.Finish().error()));
  Reply reply{*id, ReplyBody{}};
  if (*result == "ok") {
    auto body = ReadReplyBody(expected, obj);
    if (body) reply.body = std::move(*body);
  } else if (auto code = ErrorCodeFromName(*result)) {
    auto rule = obj.String("rule");
    auto message = obj.String("message");
    if (rule && message) reply.body = tl::make_unexpected(Error{*code, *rule, *message});
  } else {
    return tl::make_unexpected(ProtocolViolation{
        "reply-result-unknown", "unknown reply result \"" + result->substr(0, 40) + "\""});
  }
  if (auto done = obj.Finish(); !done) return tl::make_unexpected(Violation(done.error()));
  return reply;
}

}  // namespace decnet::proto
