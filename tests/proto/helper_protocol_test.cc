#include "proto/helper_protocol.h"

#include <gtest/gtest.h>

namespace decnet::proto {
namespace {

TEST(DecodeRequest, RoundTripsEveryRequestType) {
  const RequestBody bodies[] = {
      HelloRequest{1, 1, "decnet-updaterd/0.1"},
      WriteUnitRequest{*UnitName::Parse("decnet-agent.service"), "[Unit]\nDescription=x\n"},
      RemoveUnitRequest{*UnitName::Parse("decnet-agent.service")},
      DaemonReloadRequest{},
      RestartUnitRequest{*UnitName::Parse("decnet-agent.service")},
      UnitStatusRequest{*UnitName::Parse("decnet.target")},
      RepointLinkRequest{*LinkName::Parse("decnet"), *AbsPath::Parse("/opt/decnet/current/x")},
  };
  uint64_t id = 1;
  for (const auto& body : bodies) {
    std::string frame = EncodeRequest(id, body);
    auto req = DecodeRequest(frame);
    ASSERT_TRUE(req) << frame << ": " << req.error().rule;
    EXPECT_EQ(req->id, id);
    EXPECT_EQ(req->type, TypeOf(body));
    ASSERT_TRUE(req->body) << frame;
    EXPECT_EQ(req->body->index(), body.index());
    EXPECT_EQ(EncodeRequest(id, *req->body), frame);
    ++id;
  }
}

struct ViolationRow {
  std::string frame;
  std::string rule;
};

TEST(DecodeRequest, TreatsEveryStructuralFaultAsAViolation) {
  const ViolationRow rows[] = {
      {"", "json-syntax"},
      {"not json", "json-syntax"},
      {"[]", "json-not-object"},
      {"\"hello\"", "json-not-object"},
      {R"({"v":1,"id":1,"type":"daemon_reload"} )", ""},  // trailing space is fine JSON
      {R"({"v":1,"id":1,"type":"daemon_reload"}{})", "json-syntax"},
      {R"({"v":1,"id":1,"type":"daemon_reload"}x)", "json-syntax"},
      {R"({"v":2,"id":1,"type":"daemon_reload"})", "envelope-version"},
      {R"({"id":1,"type":"daemon_reload"})", "json-missing-key"},
      {R"({"v":1,"type":"daemon_reload"})", "json-missing-key"},
      {R"({"v":1,"id":-1,"type":"daemon_reload"})", "json-wrong-type"},
      {R"({"v":1,"id":1.5,"type":"daemon_reload"})", "json-wrong-type"},
      {R"({"v":"1","id":1,"type":"daemon_reload"})", "json-wrong-type"},
      {R"({"v":1,"id":1})", "json-missing-key"},
      {R"({"v":1,"id":1,"type":"reboot"})", "request-type-unknown"},
      {R"({"v":1,"id":1,"type":"daemon_reload","extra":1})", "json-unknown-key"},
      {R"({"v":1,"id":1,"type":"daemon_reload","type":"daemon_reload"})", "json-duplicate-key"},
      {R"({"v":1,"id":1,"type":"restart_unit"})", "json-missing-key"},
      {R"({"v":1,"id":1,"type":"restart_unit","name":7})", "json-wrong-type"},
      {R"({"v":1,"id":1,"type":"restart_unit","name":["a"]})", "json-wrong-type"},
      {R"({"v":1,"id":1,"type":"restart_unit","name":"decnet-a.service","name":"ssh.service"})",
       "json-duplicate-key"},
      {R"({"v":1,"id":1,"type":"write_unit","name":"decnet-a.service"})", "json-missing-key"},
      {R"({"v":1,"id":1,"type":"hello","min_version":1,"max_version":1})", "json-missing-key"},
      {R"({"v":1,"id":1,"type":"hello","min_version":1,"max_version":1,"client":"x","x":{"a":{"b":{"c":{"d":[1]}}}}})",
       "json-depth"},
      {"{\"v\":1,\"id\":1,\"type\":\"restart_unit\",\"name\":\"\xff\xfe\"}", "json-syntax"},
  };
  for (const auto& row : rows) {
    auto req = DecodeRequest(row.frame);
    if (row.rule.empty()) {
      EXPECT_TRUE(req) << row.frame;
      continue;
    }
    ASSERT_FALSE(req) << row.frame;
    EXPECT_EQ(req.error().rule, row.rule) << row.frame << ": " << req.error().message;
  }
}

TEST(DecodeRequest, GivesAMalformedBodyForBadValuesButKeepsIdAndType) {
  const std::pair<std::string, std::string> rows[] = {
      {R"({"v":1,"id":9,"type":"restart_unit","name":"../x.service"})", "unit-name-charset"},
      {R"({"v":1,"id":9,"type":"restart_unit","name":"decnet-a@.service"})", "unit-name-charset"},
      {R"({"v":1,"id":9,"type":"unit_status","name":"sshd"})", "unit-name-suffix"},
      {R"({"v":1,"id":9,"type":"write_unit","name":"decnet-a.service.d/x.conf","content":""})",
       "unit-name-suffix"},
      {R"({"v":1,"id":9,"type":"repoint_link","name":"../decnet","target":"/opt/decnet"})",
       "link-name-charset"},
      {R"({"v":1,"id":9,"type":"repoint_link","name":"decnet","target":"/opt/../etc"})",
       "path-normalised"},
      {R"({"v":1,"id":9,"type":"repoint_link","name":"decnet","target":"opt"})", "path-absolute"},
      {R"({"v":1,"id":9,"type":"hello","min_version":2,"max_version":1,"client":"x"})",
       "hello-version-range"},
      {R"({"v":1,"id":9,"type":"hello","min_version":1,"max_version":1,"client":"a\u0001"})",
       "hello-client"},
  };
  for (const auto& [frame, rule] : rows) {
    auto req = DecodeRequest(frame);
    ASSERT_TRUE(req) << frame << ": " << req.error().rule;
    EXPECT_EQ(req->id, 9u);
    ASSERT_FALSE(req->body) << frame;
    EXPECT_EQ(req->body.error().code, ErrorCode::kMalformed);
    EXPECT_EQ(req->body.error().rule, rule) << frame;
  }
}

TEST(DecodeReply, RoundTripsSuccessAndErrorReplies) {
  UnitState st{"loaded", "active", "running", 42, 3};
  auto frame = EncodeReply(5, ReplyBody{RestartUnitReply{"done", st}});
  auto reply = DecodeReply(frame, RequestType::kRestartUnit);
  ASSERT_TRUE(reply) << reply.error().rule;
  ASSERT_TRUE(reply->body);
  EXPECT_EQ(std::get<RestartUnitReply>(*reply->body).unit, st);

  auto err = EncodeReply(6, tl::make_unexpected(Error{ErrorCode::kDenied, "unit-user-root", "no"}));
  auto decoded = DecodeReply(err, RequestType::kWriteUnit);
  ASSERT_TRUE(decoded);
  ASSERT_FALSE(decoded->body);
  EXPECT_EQ(decoded->body.error().code, ErrorCode::kDenied);
  EXPECT_EQ(decoded->body.error().rule, "unit-user-root");
}

TEST(DecodeReply, RefusesAReplyShapedForAnotherRequest) {
  auto frame = EncodeReply(5, ReplyBody{WriteUnitReply{true}});
  EXPECT_FALSE(DecodeReply(frame, RequestType::kRestartUnit));
  EXPECT_FALSE(DecodeReply(R"({"v":1,"id":1,"result":"maybe"})", RequestType::kDaemonReload));
  EXPECT_TRUE(DecodeReply(R"({"v":1,"id":1,"result":"ok"})", RequestType::kDaemonReload));
}

}  // namespace
}  // namespace decnet::proto
