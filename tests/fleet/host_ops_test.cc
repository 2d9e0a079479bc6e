// What the rollout does to one host, against a scripted TLS updater made in the test: the
// update-self wait, decided by the build identity /health shows, and the dry run's unit
// differences, computed from what /releases lists.
#include "fleet/host_ops.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "fleet/report.h"
#include "fleet/worker_client.h"
#include "tests/daemon/test_pki.h"
#include "tests/fleet/tls_updater_stub.h"

namespace decnet::fleet {
namespace {

using nlohmann::json;
using testing::TlsUpdaterStub;
using namespace std::chrono_literals;

using Answer = testing::StubAnswer;

// A /health body as our updater writes it; `build` null leaves the field out (an updater that
// predates it).
std::string Health(const std::string& version, const json& build) {
  json h = {
      {"status", "ok"}, {"role", "updater"}, {"releases", json::array()}, {"version", version}};
  if (!build.is_null()) h["build"] = build;
  return h.dump();
}

json Build(const std::string& version, const json& id) {
  return {{"version", version}, {"id", id}};
}

const std::string kUpdated =
    R"({"status":"updated","release":{"slot":"active","version":"1.2.0"},"probe":""})";
const std::string kQueued = R"({"status":"self_update_queued","via":"systemd"})";
const std::string kOldId = "0123456789abcdef";

class AHostOperation : public testing_support::AgainstAStubUpdater {
 protected:
  AHostOperation() : AgainstAStubUpdater("fleet-host-ops-ca") {
    release_ = FileOf("service.tgz", "a service release", "1.2.0", "service");
    build_ = FileOf("self.tgz", "an updater build", "2.0.0", "updater");
    settings_.release = &release_;
    settings_.self_timeout = 1500ms;
    settings_.self_poll = 50ms;
  }

  ReleaseFile FileOf(const std::string& name, const std::string& bytes, const std::string& version,
                     const std::string& kind) {
    ReleaseFile f;
    f.path = dir_.Write(name, bytes);
    f.file_name = name;
    f.size = bytes.size();
    f.sha256 = *FileSha256(f.path, nullptr);
    f.version = version;
    f.kind = kind;
    return f;
  }

  // The release id the worker gives the build: its digest's first 16 hex digits.
  std::string BuildId() const { return build_.sha256.substr(0, 16); }

  // A worker that updates, queues update-self, then answers /health with `health(nth)`.
  HostOutcome PushWithSelf(const std::function<Answer(int nth)>& health,
                           Answer self = {200, kQueued}) {
    settings_.self_release = &build_;
    TlsUpdaterStub worker(ca_, server_, [&](const std::string& path, int nth) -> Answer {
      if (path == "/update") return {200, kUpdated};
      if (path == "/update-self") return self;
      if (path == "/health") return health(nth);
      return {404, R"({"detail":"Not Found"})"};
    });
    HostOutcome o = UpdateHost(At(worker), settings_, progress_);
    self_asked_ = worker.Asked("/update-self");
    return o;
  }

  ReleaseFile release_;
  ReleaseFile build_;
  int self_asked_ = 0;
};

TEST_F(AHostOperation, CountsUpdateSelfOnlyOnceTheNewBuildsIdAnswersHealth) {
  // The old build answers first, with the very version the new one carries; then the new one.
  HostOutcome o = PushWithSelf([&](int nth) -> Answer {
    if (nth < 3) return {200, Health("0.1.0", Build("2.0.0", kOldId))};
    return {200, Health("0.1.0", Build("2.0.0", BuildId()))};
  });
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(self_asked_, 1);
  EXPECT_EQ(o.self["result"], "ok") << o.self.dump();
  EXPECT_EQ(o.self["id"], BuildId()) << o.self.dump();
  EXPECT_EQ(o.self["version"], "2.0.0") << o.self.dump();
}

TEST_F(AHostOperation, FailsUpdateSelfWhenHealthNeverShowsTheNewBuild) {
  struct Row {
    const char* why;
    Answer health;
  };
  const Row rows[] = {
      {"the old build of the same version keeps answering",
       {200, Health("0.1.0", Build("2.0.0", kOldId))}},
      {"an updater without a build identity reports the build's version",
       {200, Health("2.0.0", nullptr)}},
      {"a build not run from its store reports the version",
       {200, Health("2.0.0", Build("2.0.0", nullptr))}},
      {"the new id with another version", {200, Health("0.1.0", Build("9.9.9", "PLACEHOLDER"))}},
      {"the build field is not an object",
       {200, R"({"status":"ok","role":"updater","build":"2.0.0"})"}},
      {"health answers 503", {503, R"({"detail":"busy"})"}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.why);
    Answer health = row.health;
    if (auto at = health.body.find("PLACEHOLDER"); at != std::string::npos)
      health.body.replace(at, 11, BuildId());
    HostOutcome o = PushWithSelf([&](int) { return health; });
    EXPECT_EQ(o.result, HostResult::kFailed);
    EXPECT_EQ(o.failure, FailureKind::kSelfFailed);
    EXPECT_EQ(o.rule, "self-timeout") << o.cause;
    EXPECT_NE(o.cause.find(BuildId()), std::string::npos)
        << "the cause names the build: " << o.cause;
    EXPECT_EQ(o.self["result"], "failed") << o.self.dump();
    EXPECT_FALSE(o.release.is_null()) << "the service update itself succeeded";
  }
}

TEST_F(AHostOperation, FailsUpdateSelfAtOnceWhenTheWorkerRefusesTheBuild) {
  const std::string refused =
      R"({"error":"the build is for arm64","stderr":"","detail":{"error":"the build is for arm64","stderr":"","rule":"update-self-arch"}})";
  int health_asked = 0;
  HostOutcome o = PushWithSelf(
      [&](int) -> Answer {
        ++health_asked;
        return {200, Health("0.1.0", Build("2.0.0", BuildId()))};
      },
      {500, refused});
  EXPECT_EQ(o.result, HostResult::kFailed);
  EXPECT_EQ(o.failure, FailureKind::kSelfFailed);
  EXPECT_EQ(o.rule, "update-self-arch");
  EXPECT_EQ(o.http_status, 500);
  EXPECT_EQ(health_asked, 0) << "a refused build is not waited for";
}

// --- status ---------------------------------------------------------------------------------

class AStatusQuery : public AHostOperation {
 protected:
  // status against a worker whose /health carries `extra` beside the usual fields.
  HostOutcome Status(const json& extra) {
    json health = json::parse(Health("0.1.0", nullptr));
    health.update(extra);
    const json releases = {{"releases", json::array()}};
    TlsUpdaterStub worker(ca_, server_, [&](const std::string& path, int) -> Answer {
      if (path == "/health") return {200, health.dump()};
      if (path == "/releases") return {200, releases.dump()};
      return {500, R"({"detail":"status writes nothing"})"};
    });
    return StatusHost(At(worker), settings_, progress_);
  }

  // What PrintStatusTable writes for `o`.
  static std::string Table(const HostOutcome& o) {
    char* text = nullptr;
    size_t size = 0;
    std::FILE* out = ::open_memstream(&text, &size);
    PrintStatusTable(out, {o});
    std::fclose(out);
    std::string table(text, size);
    std::free(text);
    return table;
  }
};

TEST_F(AStatusQuery, ShowsTheWorkersLastResultAndBuildInTheReportAndTheTable) {
  const json last = {{"op", "update"},
                     {"result", "refused"},
                     {"rule", "version-not-newer"},
                     {"version", "1.1.0"},
                     {"at", "2024-05-01T10:00:00.000Z"}};
  HostOutcome o = Status({{"last_result", last}, {"build", Build("2.0.0", kOldId)}});
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(o.details["last_result"], last) << o.details.dump();
  EXPECT_EQ(o.details["build"], Build("2.0.0", kOldId)) << o.details.dump();
  const std::string table = Table(o);
  EXPECT_NE(table.find("LAST RESULT"), std::string::npos) << table;
  EXPECT_NE(table.find("update refused (version-not-newer)"), std::string::npos) << table;
  EXPECT_NE(table.find(kOldId), std::string::npos) << table;
}

TEST_F(AStatusQuery, ShowsNoLastResultOrBuildForAWorkerThatShowsNoneOrAMalformedOne) {
  struct Row {
    const char* what;
    json extra;
    json last_result;  // as the report keeps it
    json build;
  };
  const json all_null = {{"op", nullptr},
                         {"result", nullptr},
                         {"rule", nullptr},
                         {"version", nullptr},
                         {"at", nullptr}};
  const Row rows[] = {
      {"an updater that predates both", json::object(), nullptr, nullptr},
      {"null last_result", {{"last_result", nullptr}}, nullptr, nullptr},
      {"a string last_result", {{"last_result", "updated"}}, nullptr, nullptr},
      {"an array last_result", {{"last_result", json::array({"update"})}}, nullptr, nullptr},
      {"numbers for strings",
       {{"last_result", {{"op", 1}, {"result", true}, {"rule", json::object()}}}},
       all_null,
       nullptr},
      {"a number build", {{"build", 7}}, nullptr, nullptr},
      {"a build with a numeric id",
       {{"build", {{"version", "1.0.0"}, {"id", 5}}}},
       nullptr,
       {{"version", "1.0.0"}, {"id", nullptr}}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    HostOutcome o = Status(row.extra);
    ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
    EXPECT_EQ(o.details["last_result"], row.last_result) << o.details.dump();
    EXPECT_EQ(o.details["build"], row.build) << o.details.dump();
    const std::string table = Table(o);
    EXPECT_EQ(table.find("update"), std::string::npos) << table;
    EXPECT_EQ(table.find(kOldId), std::string::npos) << table;
  }
}

// --- the dry run's units --------------------------------------------------------------------

json ReleaseRow(const std::string& slot, const std::string& sha256, const json& units) {
  return {{"slot", slot},
          {"sha", nullptr},
          {"installed_at", nullptr},
          {"id", sha256.substr(0, 16)},
          {"sha256", sha256},
          {"version", "1.0.0"},
          {"size", 1},
          {"state", "ready"},
          {"units", units}};
}

class ADryRun : public AHostOperation {
 protected:
  HostOutcome DryRun(const json& active_units) {
    const json releases = {
        {"releases",
         {ReleaseRow("active", std::string(64, 'a'), active_units),
          ReleaseRow("prev", std::string(64, 'b'), json::array({"old.service"}))}}};
    TlsUpdaterStub worker(ca_, server_, [&](const std::string& path, int) -> Answer {
      if (path == "/health") return {200, Health("0.1.0", Build("0.1.0", nullptr))};
      if (path == "/releases") return {200, releases.dump()};
      return {500, R"({"detail":"nothing is written in a dry run"})"};
    });
    HostOutcome o = DryRunHost(At(worker), settings_, progress_);
    writes_ = worker.Asked("/update") + worker.Asked("/update-self") + worker.Asked("/rollback");
    return o;
  }
  int writes_ = 0;
};

TEST_F(ADryRun, NamesTheUnitsTheReleaseWouldAddAndRemoveAgainstTheActiveOnes) {
  release_.units = {"decnet-agent.service", "decnet-new.timer"};
  HostOutcome o = DryRun(json::array({"decnet-agent.service", "decnet-gone.service"}));
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(writes_, 0);
  const json& units = o.details["units"];
  EXPECT_EQ(units["ships"], json::array({"decnet-agent.service", "decnet-new.timer"}));
  EXPECT_EQ(units["active"], json::array({"decnet-agent.service", "decnet-gone.service"}));
  EXPECT_EQ(units["added"], json::array({"decnet-new.timer"})) << units.dump();
  EXPECT_EQ(units["removed"], json::array({"decnet-gone.service"})) << units.dump();
  EXPECT_EQ(units["kept"], json::array({"decnet-agent.service"})) << units.dump();
  EXPECT_EQ(o.details["would_change"], true);
}

TEST_F(ADryRun, CannotSayWhatChangesWhenTheActiveReleaseListsNoUnits) {
  release_.units = {"decnet-agent.service"};
  for (const json& unknown : {json(nullptr), json("decnet-agent.service")}) {
    SCOPED_TRACE(unknown.dump());
    HostOutcome o = DryRun(unknown);
    ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
    const json& units = o.details["units"];
    EXPECT_TRUE(units["active"].is_null()) << units.dump();
    EXPECT_TRUE(units["added"].is_null()) << units.dump();
    EXPECT_TRUE(units["removed"].is_null()) << units.dump();
    EXPECT_TRUE(units["kept"].is_null()) << units.dump();
  }
}

TEST_F(ADryRun, RemovesEveryActiveUnitOnlyWhenTheReleaseShipsAnEmptyUnitDirectory) {
  release_.units = {};
  release_.ships_unit_dir = true;
  HostOutcome o = DryRun(json::array({"decnet-agent.service"}));
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(o.details["units"]["added"], json::array());
  EXPECT_EQ(o.details["units"]["removed"], json::array({"decnet-agent.service"}));

  // Without etc/systemd/system/ the worker leaves its units alone.
  release_.ships_unit_dir = false;
  o = DryRun(json::array({"decnet-agent.service"}));
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_TRUE(o.details["units"]["ships"].is_null()) << o.details.dump();
  EXPECT_EQ(o.details["units"]["added"], json::array());
  EXPECT_EQ(o.details["units"]["removed"], json::array());
  EXPECT_EQ(o.details["units"]["kept"], json::array({"decnet-agent.service"}));
}

}  // namespace
}  // namespace decnet::fleet
