// The JSON report against docs/rollout-report.schema.json (python3's jsonschema, draft
// 2020-12), the failure bodies the worker sends, and the order of the upload's fields.
#include "fleet/report.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "fleet/host_ops.h"
#include "proto/updater_api.h"
#include "tests/daemon/test_pki.h"

namespace decnet::fleet {
namespace {

using nlohmann::json;

// 0 when `report` validates, else python's exit code (1: invalid, other: the tool failed).
int Validate(const json& report) {
  testing::TempDir dir;
  const std::string path = dir.Write("report.json", report.dump());
  const std::string schema = std::string(DECNET_SOURCE_DIR) + "/docs/rollout-report.schema.json";
  const std::string cmd =
      "python3 -c 'import json,sys,jsonschema\n"
      "s=json.load(open(sys.argv[1])); jsonschema.Draft202012Validator.check_schema(s)\n"
      "try: jsonschema.Draft202012Validator(s).validate(json.load(open(sys.argv[2])))\n"
      "except jsonschema.ValidationError as e: print(e.message); sys.exit(1)' '" +
      schema + "' '" + path + "'";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 99;
}

// A host of the report, not yet given a result.
HostOutcome HostAt(std::string name, std::string address, std::uint16_t port) {
  HostOutcome h;
  h.name = std::move(name);
  h.address = std::move(address);
  h.port = port;
  return h;
}

PlanReport MixedPush() {
  PlanReport r;
  HostOutcome ok = HostAt("w1", "10.0.0.1", 8766);
  ok.result = HostResult::kOk;
  ok.http_status = 200;
  ok.phase = "done";
  ok.bytes_sent = 12345;
  ok.release = {{"slot", "active"},
                {"sha", nullptr},
                {"installed_at", nullptr},
                {"id", "0123456789abcdef"},
                {"version", "1.2.0"}};
  ok.self = {{"result", "ok"}, {"version", "0.2.0"}};
  HostOutcome bad = ok;
  bad.name = "w2";
  bad.result = HostResult::kFailed;
  bad.failure = FailureKind::kRolledBack;
  bad.cause = "HTTP 409: health gate failed";
  bad.rule = "gate-unhealthy";
  bad.http_status = 409;
  bad.phase = "gate";
  bad.self = nullptr;
  HostOutcome skipped = HostAt("w3", "w3.example", 1);
  skipped.cause = "not started: the rollout halted at w2";
  r.hosts = {ok, bad, skipped};
  r.halted_by = "w2";
  return r;
}

ReportHeader PushHeader() {
  ReportHeader h;
  h.command = "push";
  h.started = 1700000000;
  h.finished = 1700000100;
  h.release = {{"path", "r.tgz"},
               {"sha256", std::string(64, 'e')},
               {"size", 10},
               {"version", "1.2.0"},
               {"kind", "service"},
               {"signed", true},
               {"units", {"decnet-agent.service"}}};
  h.options = {{"batch", 5},           {"max_parallel", 5},
               {"canary", "w1"},       {"allow_downgrade", false},
               {"include_self", true}, {"timeout_s", 180}};
  return h;
}

TEST(TheReport, OfAHaltedPushValidatesAgainstItsSchema) {
  json report = ReportJson(PushHeader(), MixedPush());
  EXPECT_EQ(report["result"], "failed");
  EXPECT_EQ(report["halted_by"], "w2");
  EXPECT_EQ(report["counts"]["skipped"], 1);
  EXPECT_EQ(report["hosts"][1]["failure"], "rolled-back");
  EXPECT_EQ(Validate(report), 0);
}

TEST(TheReport, OfAStatusRunAndADryRunValidate) {
  PlanReport r;
  HostOutcome h = HostAt("w1", "10.0.0.1", 8766);
  h.result = HostResult::kOk;
  h.details = {
      {"reachable", true},         {"updater_version", "0.1.0"},
      {"active", nullptr},         {"previous", nullptr},
      {"last_result", nullptr},    {"version_floor", {{"service", "1.2.0"}, {"updater", nullptr}}},
      {"require_signature", false}};
  HostOutcome down = h;
  down.name = "w2";
  down.result = HostResult::kFailed;
  down.failure = FailureKind::kUnreachable;
  down.cause = "cannot connect";
  down.details["reachable"] = false;
  r.hosts = {h, down};
  ReportHeader status;
  status.command = "status";
  EXPECT_EQ(Validate(ReportJson(status, r)), 0);

  HostOutcome dry = h;
  dry.details = {
      {"active", nullptr},
      {"previous", nullptr},
      {"target", {{"version", "1.3.0"}, {"sha256", std::string(64, 'f')}}},
      {"would_change", true},
      {"units",
       {{"ships", {"a.service"}}, {"active", nullptr}, {"added", nullptr}, {"removed", nullptr}}},
      {"version_floor", nullptr},
      {"require_signature", nullptr},
      {"notes", json::array()}};
  r.hosts = {dry};
  ReportHeader header = PushHeader();
  header.command = "dry-run";
  EXPECT_EQ(Validate(ReportJson(header, r)), 0);
}

TEST(TheSchema, RefusesAReportThatBreaksIt) {
  json report = ReportJson(PushHeader(), MixedPush());
  json no_result = report;
  no_result["hosts"][0].erase("result");
  EXPECT_EQ(Validate(no_result), 1);
  json failed_without_class = report;
  failed_without_class["hosts"][1]["failure"] = nullptr;
  EXPECT_EQ(Validate(failed_without_class), 1);
  json bad_digest = report;
  bad_digest["release"]["sha256"] = "abc";
  EXPECT_EQ(Validate(bad_digest), 1);
  json extra = report;
  extra["surprise"] = 1;
  EXPECT_EQ(Validate(extra), 1);
}

struct FailureCase {
  const char* label;
  int status;
  std::string body;
  const char* cause;
  const char* rule;
  bool rolled_back;
};

class AWorkersFailureBody : public ::testing::TestWithParam<FailureCase> {};

TEST_P(AWorkersFailureBody, GivesItsCauseRuleAndRollback) {
  const auto& c = GetParam();
  WorkerFailure f = ReadFailureBody(c.status, c.body);
  EXPECT_EQ(f.cause, c.cause);
  EXPECT_EQ(f.rule, c.rule);
  EXPECT_EQ(f.rolled_back, c.rolled_back);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AWorkersFailureBody,
    ::testing::Values(
        FailureCase{"rolled back", 409,
                    api::FailureJson("health gate failed", "", true, "gate-unhealthy").dump(),
                    "health gate failed", "gate-unhealthy", true},
        FailureCase{"refused at the head", 500,
                    api::FailureJson("", "", std::nullopt, "signature-threshold").dump(),
                    "signature-threshold", "signature-threshold", false},
        FailureCase{"failed not rolled back", 500,
                    api::FailureJson("install failed", "x", false, "install-exit").dump(),
                    "install failed", "install-exit", false},
        FailureCase{"detail string", 404, api::DetailJson("no previous release").dump(),
                    "no previous release", "", false},
        FailureCase{"not json", 502, "<html>bad gateway</html>", "<html>bad gateway</html>", "",
                    false},
        FailureCase{"control bytes", 500, "\x1b[2Jboom", "\\x1b[2Jboom", "", false},
        FailureCase{"empty", 500, "", "no body", "", false}),
    [](const auto& info) {
      std::string n = info.param.label;
      for (char& ch : n)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST(AnUploadForm, PutsEveryFieldBeforeTheTarballAndConfirmSelfFirst) {
  ReleaseFile r;
  r.path = "/x/r.tgz";
  r.file_name = "r.tgz";
  r.size = 100;
  r.sha256 = std::string(64, 'a');
  r.descriptor = "{\"format\":1}\n";
  r.signatures = {"ed25519 0123456789abcdef AAAA", "ed25519 fedcba9876543210 BBBB"};
  r.version = "1.2.0";
  r.commit = "abcdef1";
  UploadForm self = MakeUploadForm(r, true, true);
  std::vector<std::string> names;
  for (const auto& [n, v] : self.fields) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"confirm_self", "sha256", "sha", "descriptor",
                                             "signature", "signature", "downgrade"}));
  UploadForm plain = MakeUploadForm(r, false, false);
  EXPECT_EQ(plain.fields.front().first, "sha256");
  EXPECT_EQ(plain.fields[1].second, "abcdef1");
  for (const auto& [n, v] : plain.fields) EXPECT_NE(n, "downgrade");

  auto frame = FrameUpload(self, "BOUNDARY0123");
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->content_length, frame->head.size() + 100 + frame->tail.size());
  EXPECT_LT(frame->head.find("name=\"signature\""), frame->head.find("name=\"tarball\""));
  EXPECT_EQ(frame->tail, "\r\n--BOUNDARY0123--\r\n");
  UploadForm hostile = self;
  hostile.fields.emplace_back("sha", "x--BOUNDARY0123y");
  EXPECT_FALSE(FrameUpload(hostile, "BOUNDARY0123"));
}

}  // namespace
}  // namespace decnet::fleet
