// `helperctl audit` as operators run it: a real subprocess reading an audit log written by the
// daemon's own AuditLog and a request record written by the helper's own RequestRecord. The
// timeline must file each request under the right operation, and nothing the daemon wrote
// may reach the terminal unescaped.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/audit_log.h"
#include "helper/record.h"
#include "policy/policy.h"
#include "tests/support/subprocess.h"

namespace decnet::helper {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using testing_support::CtlRun;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The ids of the helper requests in a --json array.
std::vector<uint64_t> Ids(const json& requests) {
  std::vector<uint64_t> ids;
  for (const auto& r : requests) ids.push_back(r.at("id").get<uint64_t>());
  return ids;
}

std::vector<size_t> Lines(const json& entries) {
  std::vector<size_t> lines;
  for (const auto& e : entries) lines.push_back(e.at("line").get<size_t>());
  return lines;
}

// True when `text` holds a byte a terminal could act on: anything below 0x20 but the newline,
// DEL, or a non-ASCII byte.
bool HasRawControlByte(const std::string& text) {
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\n') || c >= 0x7f) return true;
  }
  return false;
}

class AHelperctlAudit : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-audit-test.XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ASSERT_FALSE(root_.empty());
    ::chmod(root_.c_str(), 0755);
    fs::create_directories(HelperState());
    ::chmod(HelperState().c_str(), 0700);
    fs::create_directories(DaemonState());
    policy_.state_dir = HelperState();
    WritePolicy();
    state_fd_ = ::open(HelperState().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(state_fd_, 0);
    auto record = RequestRecord::Open(state_fd_);
    ASSERT_TRUE(record) << record.error().message;
    record_.emplace(std::move(*record));
    auto audit = daemon::AuditLog::Open(AuditPath());
    ASSERT_TRUE(audit) << audit.error().message;
    audit_.emplace(std::move(*audit));
  }

  void TearDown() override {
    record_.reset();
    audit_.reset();
    if (state_fd_ >= 0) ::close(state_fd_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string HelperState() const { return root_ + "/helper-state"; }
  std::string DaemonState() const { return root_ + "/daemon-state"; }
  std::string AuditPath() const { return DaemonState() + "/audit.jsonl"; }
  std::string RecordPath() const { return HelperState() + "/" + kRequestRecordFile; }
  std::string ChangesPath() const { return HelperState() + "/" + kChangeRecordFile; }

  void WritePolicy() {
    config_ = root_ + "/helper.json";
    std::ofstream(config_, std::ios::binary) << PolicyToJson(policy_);
    ASSERT_EQ(::chmod(config_.c_str(), 0644), 0);
    ASSERT_EQ(::chown(config_.c_str(), 0, 0), 0);
  }

  // Both writers stamp milliseconds; a pause keeps every line's time distinct and ordered.
  static void Tick() { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }

  void Request(uint64_t id, const std::string& type, const std::string& subject,
               const std::string& result = "ok", const std::string& detail = "") {
    Tick();
    RequestEntry e{id, type, subject, result, result == "ok" ? "" : "unit-name-allow-list", detail};
    ASSERT_TRUE(record_->Append(e));
  }

  void Audit(const daemon::AuditEntry& entry) {
    Tick();
    ASSERT_TRUE(audit_->Append(entry));
  }

  static daemon::AuditEntry Op(const std::string& op, const std::string& release) {
    daemon::AuditEntry e;
    e.op = op;
    e.client_fingerprint = std::string(64, 'a');
    e.client_cn = "decnet-master";
    e.sha256 = std::string(64, 'b');
    e.release = release;
    e.version = "1.2.3";
    e.result = "updated";
    e.durations_ms = {{"extract", 12}, {"total", 40}};
    return e;
  }

  // Raw bytes appended to the audit log, as a compromised daemon could write them.
  void AppendRaw(const std::string& text) {
    std::ofstream(AuditPath(), std::ios::binary | std::ios::app) << text;
  }

  // Runs helperctl --config CONFIG audit ARGS; stdout and stderr go to files.
  CtlRun Helperctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {HELPERCTL_PATH, "--config", config_, "audit"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing_support::RunCaptured(std::move(argv), root_);
  }

  // `audit --json` with `args`: exactly one JSON object on one line.
  json AuditJson(std::vector<std::string> args = {}, int expected_exit = 0) {
    args.insert(args.begin(), {"--json", "--state-dir", DaemonState()});
    const CtlRun run = Helperctl(args);
    EXPECT_EQ(run.exit_code, expected_exit) << run.err;
    EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 1) << run.out;
    json j = json::parse(run.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << run.out;
    return j.is_object() ? j : json::object();
  }

  // Two operations with the helper's requests around them, and one request after both.
  void WriteTwoUpdates() {
    Request(1, "hello", "");
    Request(2, "write_unit", "decnet-agent.service", "ok", "changed");
    Audit(Op("update", "1111111111111111"));
    Request(3, "restart_unit", "decnet-agent.service", "ok", "done");
    Request(4, "unit_status", "decnet-agent.service");
    Audit(Op("rollback", "2222222222222222"));
    Request(5, "unit_status", "decnet-agent.service");
  }

  std::string root_;
  std::string config_;
  Policy policy_ = Policy::Defaults();
  int state_fd_ = -1;
  std::optional<RequestRecord> record_;
  std::optional<daemon::AuditLog> audit_;
};

TEST_F(AHelperctlAudit, FilesEachHelperRequestUnderTheFirstOperationLoggedAfterIt) {
  WriteTwoUpdates();
  const json j = AuditJson();
  ASSERT_EQ(j["operations"].size(), 2u);
  EXPECT_EQ(Ids(j["operations"][0]["helper_requests"]), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Ids(j["operations"][1]["helper_requests"]), (std::vector<uint64_t>{3, 4}));
  EXPECT_EQ(Ids(j["after_last_operation"]), (std::vector<uint64_t>{5}));

  // The table says the same, in order: each request line sits under its operation.
  const CtlRun run = Helperctl({"--state-dir", DaemonState()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const size_t first = run.out.find("\"update\" \"updated\"");
  const size_t second = run.out.find("\"rollback\" \"updated\"");
  const size_t after = run.out.find("after the last operation");
  ASSERT_NE(first, std::string::npos) << run.out;
  ASSERT_NE(second, std::string::npos) << run.out;
  ASSERT_NE(after, std::string::npos) << run.out;
  const size_t write = run.out.find("#2 \"write_unit\" \"decnet-agent.service\" -> \"ok\"");
  const size_t restart = run.out.find("#3 \"restart_unit\"");
  const size_t last = run.out.find("#5 \"unit_status\"");
  EXPECT_TRUE(first < write && write < second) << run.out;
  EXPECT_TRUE(second < restart && restart < after) << run.out;
  EXPECT_TRUE(after < last && last != std::string::npos) << run.out;
  EXPECT_NE(run.out.find("first operation whose audit line was written at or after it"),
            std::string::npos)
      << "the table states its matching rule\n"
      << run.out;
}

TEST_F(AHelperctlAudit, PrintsOneJsonObjectWithEveryFieldTheDaemonWrote) {
  daemon::AuditEntry e = Op("update", "3333333333333333");
  e.result = "rolled_back";
  e.rule = "health-gate-probe";
  e.error = "the agent answered 503";
  e.rollback_cause = "agent unhealthy";
  Request(1, "write_unit", "decnet-agent.service", "denied", "refused");
  Audit(e);
  const json j = AuditJson();
  for (const char* key :
       {"audit_log", "helper_record", "match", "operations", "after_last_operation", "malformed"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["audit_log"], AuditPath());
  EXPECT_EQ(j["helper_record"]["files"], json::array({ChangesPath(), RecordPath()}));
  EXPECT_TRUE(j["helper_record"]["error"].is_null());
  ASSERT_EQ(j["operations"].size(), 1u);
  const json& op = j["operations"][0];
  EXPECT_EQ(op["line"], 1);
  EXPECT_EQ(op["op"], "update");
  EXPECT_EQ(op["client"], json({{"fingerprint", e.client_fingerprint}, {"cn", "decnet-master"}}));
  EXPECT_EQ(op["sha256"], e.sha256);
  EXPECT_EQ(op["release"], e.release);
  EXPECT_EQ(op["version"], "1.2.3");
  EXPECT_EQ(op["result"], "rolled_back");
  EXPECT_EQ(op["rule"], "health-gate-probe");
  EXPECT_EQ(op["error"], "the agent answered 503");
  EXPECT_EQ(op["rollback_cause"], "agent unhealthy");
  EXPECT_EQ(op["durations_ms"], json({{"extract", 12}, {"total", 40}}));
  EXPECT_EQ(op["ts"].get<std::string>().size(), 24u);
  ASSERT_EQ(op["helper_requests"].size(), 1u);
  const json& r = op["helper_requests"][0];
  EXPECT_EQ(r["type"], "write_unit");
  EXPECT_EQ(r["subject"], "decnet-agent.service");
  EXPECT_EQ(r["result"], "denied");
  EXPECT_EQ(r["rule"], "unit-name-allow-list");
  EXPECT_EQ(r["detail"], "refused");
  EXPECT_EQ(r["pid"], ::getpid());
  EXPECT_EQ(r["file"], RecordPath());
  EXPECT_EQ(r["line"], 1);
}

TEST_F(AHelperctlAudit, ShowsOnlyTheLastOperationsAndOnlyTheirRequests) {
  Request(1, "hello", "");
  Audit(Op("update", "1111111111111111"));
  AppendRaw("garbage between the first and second operations\n");  // line 2
  Request(2, "write_unit", "decnet-agent.service");
  Audit(Op("update", "2222222222222222"));
  Request(3, "restart_unit", "decnet-agent.service");
  Audit(Op("update", "3333333333333333"));
  // The malformed line lies inside the window of the second operation: reported.
  const json j = AuditJson({"--last", "2"}, 1);
  EXPECT_EQ(Lines(j["malformed"]), (std::vector<size_t>{2}));
  ASSERT_EQ(j["operations"].size(), 2u);
  EXPECT_EQ(Lines(j["operations"]), (std::vector<size_t>{3, 4}));
  EXPECT_EQ(j["operations"][0]["release"], "2222222222222222");
  EXPECT_EQ(Ids(j["operations"][0]["helper_requests"]), (std::vector<uint64_t>{2}));
  EXPECT_EQ(Ids(j["operations"][1]["helper_requests"]), (std::vector<uint64_t>{3}));
  EXPECT_TRUE(j["after_last_operation"].empty());

  // Before the window of the last operation: neither shown nor counted against the exit code.
  const CtlRun run = Helperctl({"--last", "1", "--state-dir", DaemonState()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out.find("malformed"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("3333333333333333"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("2222222222222222"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("#2 "), std::string::npos) << run.out;
}

TEST_F(AHelperctlAudit, EscapesHostileStringsSoNoneReachesTheTerminalRaw) {
  daemon::AuditEntry e = Op("update\r", "4444444444444444");
  e.client_cn = "decnet-master\x1b[2J";
  e.result = "failed";
  e.rule = "rule\x07";
  e.error = "it broke\nFORGED 2030-01-01T00:00:00.000Z \"update\" \"updated\"";
  e.version = "caf\xc3\xa9";
  e.rollback_cause = std::string(10'000, 'x') + "\x1b]0;owned\x07";
  e.durations_ms = {{"step\x1b[31m", 1}};
  Request(1, "write_unit", "decnet-\x1b[2J.service", "malformed", "bad\nFORGED name");
  Audit(e);

  const CtlRun table = Helperctl({"--state-dir", DaemonState()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_FALSE(HasRawControlByte(table.out)) << table.out;
  EXPECT_NE(table.out.find("\"decnet-master\\x1b[2J\""), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\"it broke\\x0aFORGED"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\"caf\\xc3\\xa9\""), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\"decnet-\\x1b[2J.service\""), std::string::npos) << table.out;
  std::istringstream lines(table.out);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(line.starts_with("FORGED")) << line;
    EXPECT_LT(line.size(), 400u) << "a long field is cut: " << line.substr(0, 120);
  }

  const CtlRun j = Helperctl({"--json", "--state-dir", DaemonState()});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_FALSE(HasRawControlByte(j.out)) << j.out;
  const json parsed = json::parse(j.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object());
  EXPECT_EQ(parsed["operations"][0]["client"]["cn"], "decnet-master\x1b[2J");
  EXPECT_EQ(parsed["operations"][0]["error"], e.error);
}

TEST_F(AHelperctlAudit, ReportsMalformedLinesByNumberAndStillShowsTheLinesAfterThem) {
  Audit(Op("update", "1111111111111111"));  // line 1
  const std::string real = ReadAll(AuditPath()).substr(0, ReadAll(AuditPath()).find('\n'));
  AppendRaw("not json at all\n");  // line 2
  AppendRaw(R"({"ts":5,"op":"update"})"
            "\n");                                                // line 3
  AppendRaw("{\"ts\":\"" + std::string(100'000, '9') + "\"}\n");  // line 4
  AppendRaw("{\"\\u001b[2Jextra\":1," + real.substr(1) + "\n");   // line 5
  AppendRaw("\n");                                                // line 6
  std::string negative = real;
  negative.replace(negative.find("\"extract\":12"), 12, "\"extract\":-1");
  AppendRaw(negative + "\n");                 // line 7
  Audit(Op("rollback", "8888888888888888"));  // line 8

  const json j = AuditJson({}, 1);
  EXPECT_EQ(Lines(j["operations"]), (std::vector<size_t>{1, 8}));
  EXPECT_EQ(Lines(j["malformed"]), (std::vector<size_t>{2, 3, 4, 5, 6, 7}));
  std::vector<std::string> rules;
  for (const auto& m : j["malformed"]) rules.push_back(m["rule"]);
  EXPECT_EQ(rules, (std::vector<std::string>{"json-syntax", "json-wrong-type", "line-too-long",
                                             "json-unknown-key", "empty-line", "json-wrong-type"}));

  const CtlRun run = Helperctl({"--state-dir", DaemonState()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_FALSE(HasRawControlByte(run.out)) << run.out;
  for (int line = 2; line <= 7; ++line) {
    EXPECT_NE(run.out.find("audit.jsonl:" + std::to_string(line) + ": malformed line skipped"),
              std::string::npos)
        << line << "\n"
        << run.out;
  }
  // Reported in place: between the operations of lines 1 and 8, which are both shown.
  EXPECT_LT(run.out.find("1111111111111111"), run.out.find("audit.jsonl:2:"));
  EXPECT_LT(run.out.find("audit.jsonl:7:"), run.out.find("8888888888888888"));
  EXPECT_LT(run.out.size(), 10'000u) << "an over-long line is reported, not printed";
}

TEST_F(AHelperctlAudit, ListsOnlyTheLatestThousandMalformedLinesAndCountsTheRest) {
  std::string junk;
  for (int i = 0; i < 1500; ++i) junk += "junk\n";
  AppendRaw(junk);
  Audit(Op("update", "1111111111111111"));  // line 1501
  const json j = AuditJson({}, 1);
  EXPECT_EQ(Lines(j["operations"]), (std::vector<size_t>{1501}));
  ASSERT_EQ(j["malformed"].size(), 1000u);
  EXPECT_EQ(j["malformed"][0]["line"], 501);
  EXPECT_EQ(j["malformed_unlisted"], 500);
  const CtlRun run = Helperctl({"--state-dir", DaemonState()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.out.find("500 earlier malformed lines not listed"), std::string::npos);
}

TEST_F(AHelperctlAudit, ReportsAMalformedHelperRecordLineAndKeepsTheRestOfTheRecord) {
  Request(1, "hello", "");
  std::ofstream(RecordPath(), std::ios::binary | std::ios::app) << "{\"ts\":\"garbage\n";
  Request(3, "write_unit", "decnet-agent.service");
  Audit(Op("update", "1111111111111111"));
  const json j = AuditJson({}, 1);
  EXPECT_EQ(Ids(j["operations"][0]["helper_requests"]), (std::vector<uint64_t>{1, 3}));
  ASSERT_EQ(j["malformed"].size(), 1u);
  EXPECT_EQ(j["malformed"][0]["file"], RecordPath());
  EXPECT_EQ(j["malformed"][0]["line"], 2);
  const CtlRun run = Helperctl({"--state-dir", DaemonState()});
  EXPECT_NE(run.out.find("requests.jsonl:2: malformed line skipped"), std::string::npos) << run.out;
}

TEST_F(AHelperctlAudit, ReadsTheRotatedRecordBeforeTheCurrentOne) {
  Request(1, "hello", "");
  Request(2, "write_unit", "decnet-agent.service");
  fs::rename(RecordPath(), RecordPath() + ".1");
  record_.reset();
  auto reopened = RequestRecord::Open(state_fd_);
  ASSERT_TRUE(reopened);
  record_.emplace(std::move(*reopened));
  Request(3, "restart_unit", "decnet-agent.service");
  Audit(Op("update", "1111111111111111"));
  const json j = AuditJson();
  EXPECT_EQ(Ids(j["operations"][0]["helper_requests"]), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(j["helper_record"]["files"],
            json::array({ChangesPath(), RecordPath() + ".1", RecordPath()}));
}

TEST_F(AHelperctlAudit, ListsAChangeWhoseRequestLineRotatedAwayAndNoChangeTwice) {
  Request(1, "hello", "");
  Tick();
  ASSERT_TRUE(
      record_->Append({2, "repoint_link", "decnet", "ok", "", "changed"}, Effect::kChangesState));
  Tick();
  ASSERT_TRUE(record_->Append({3, "write_unit", "decnet-agent.service", "ok", "", "changed"},
                              Effect::kChangesState));
  Request(4, "restart_unit", "ssh.service", "denied");
  Audit(Op("update", "1111111111111111"));
  // Both copies present: each change is listed once, in time order.
  EXPECT_EQ(Ids(AuditJson()["operations"][0]["helper_requests"]),
            (std::vector<uint64_t>{1, 2, 3, 4}));
  // A flood of refusals rotated the request record twice: the changes are still there.
  fs::remove(RecordPath() + ".1");
  fs::remove(RecordPath());
  const json j = AuditJson();
  ASSERT_EQ(j["operations"].size(), 1u);
  EXPECT_EQ(Ids(j["operations"][0]["helper_requests"]), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(j["operations"][0]["helper_requests"][0]["file"], ChangesPath());
}

TEST_F(AHelperctlAudit, FindsTheAuditLogThroughTheDaemonConfigurationThePolicyStartsItWith) {
  const std::string daemon_config = root_ + "/daemon.json";
  std::ofstream(daemon_config) << json({{"state_dir", DaemonState()}}).dump();
  policy_.daemon_args = {"--config", daemon_config};
  WritePolicy();
  Audit(Op("update", "5555555555555555"));
  const CtlRun run = Helperctl({"--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json j = json::parse(run.out, nullptr, false);
  EXPECT_EQ(j["audit_log"], AuditPath());
  EXPECT_EQ(j["operations"][0]["release"], "5555555555555555");

  const CtlRun explicit_path = Helperctl({"--json", "--audit-log", AuditPath()});
  EXPECT_EQ(explicit_path.exit_code, 0) << explicit_path.err;
  EXPECT_EQ(json::parse(explicit_path.out, nullptr, false)["operations"].size(), 1u);
}

TEST_F(AHelperctlAudit, NamesAMissingAuditLogAndExitsTwo) {
  const std::string missing = root_ + "/nowhere";
  const CtlRun run = Helperctl({"--state-dir", missing});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_TRUE(run.out.empty()) << run.out;
  EXPECT_NE(run.err.find(missing + "/audit.jsonl: no such file"), std::string::npos) << run.err;
}

TEST_F(AHelperctlAudit, RefusesAnAuditLogThatIsASymlinkOrNotARegularFile) {
  const std::string secret = root_ + "/secret";
  std::ofstream(secret) << "root-only\n";
  fs::create_symlink(secret, root_ + "/link.jsonl");
  CtlRun run = Helperctl({"--audit-log", root_ + "/link.jsonl"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("is a symbolic link"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("root-only"), std::string::npos);

  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0600), 0);
  run = Helperctl({"--audit-log", root_ + "/fifo"});  // would block a read if opened blocking
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.err.find("not a regular file"), std::string::npos) << run.err;
}

TEST_F(AHelperctlAudit, RefusesBadArguments) {
  const std::vector<std::vector<std::string>> cases = {
      {"--last"},
      {"--last", "0"},
      {"--last", "-1"},
      {"--last", "2x"},
      {"--last", "1000001"},
      {"--last", "1", "--last", "2"},
      {"--json", "--json"},
      {"--audit-log", "/a", "--state-dir", "/b"},
      {"--state-dir"},
      {"--state-dir", ""},
      {"--verbose"},
  };
  for (const auto& args : cases) {
    const CtlRun run = Helperctl(args);
    EXPECT_EQ(run.exit_code, 2) << ::testing::PrintToString(args);
    EXPECT_NE(run.err.find("usage: helperctl"), std::string::npos)
        << ::testing::PrintToString(args);
  }
}

}  // namespace
}  // namespace decnet::helper
