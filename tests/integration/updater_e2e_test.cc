// End to end: a master pushing with curl over mTLS to the real decnet-updaterd, started by the
// real decnet-update-helper, installing units into a real systemd (PID 1 of a throw-away
// container) whose agent serves its version over mTLS. The world is
// tests/integration/updater_e2e_fixture.h; every scenario checks the HTTP answer and then,
// independently, systemd's view, the files, the agent itself, the audit log and the helper's
// record.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/integration/updater_e2e_fixture.h"

namespace decnet::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// The entries of /releases, as the daemon lists them.
json ReleaseList(const HttpReply& r) {
  return r.json.is_object() && r.json.contains("releases") ? r.json["releases"] : json::array();
}

// The audit lines for operation `op`, oldest first.
std::vector<json> AuditOf(const std::vector<json>& audit, const std::string& op) {
  std::vector<json> out;
  for (const json& e : audit)
    if (Str(e, "op") == op) out.push_back(e);
  return out;
}

// How many times the helper served request `type` with result ok.
int Served(const std::vector<json>& record, const std::string& type) {
  int n = 0;
  for (const json& e : record) n += Str(e, "type") == type && Str(e, "result") == "ok";
  return n;
}

ReleaseSpec Spec(std::string version, std::vector<std::string> agent_flags = {},
                 bool extra_unit = false) {
  return ReleaseSpec{std::move(version), std::move(agent_flags), extra_unit};
}

class AnUpdaterEndToEnd : public AnUpdaterOnARealSystemd {
 protected:
  // The agent in the container answers its own /health with `version`.
  void ExpectAgentAnswers(const std::string& version) {
    HttpReply health = AgentHealth();
    EXPECT_EQ(health.status, 200) << health.Describe();
    EXPECT_EQ(Str(health.json, "version"), version) << health.Describe();
  }

  void ExpectAgentActive() {
    EXPECT_EQ(Property(kAgent, kUnitIface, "ActiveState"), "active");
    EXPECT_EQ(Property(kAgent, kServiceIface, "User"), "decnet");
  }

  // V1 installed, then `broken` pushed: 409 rolled back, V1 answers again, the failed
  // release is recorded as failed, and the audit says why.
  // `rules`: the gate's verdicts that may explain it (a process that exits at once may fail
  // its restart job or be seen inactive after it).
  void ExpectAutomaticRollbackOf(const ReleaseSpec& broken, const std::vector<std::string>& rules) {
    const BuiltRelease v1 = Install(Spec("1.0.0"));
    ASSERT_FALSE(HasFailure());
    const std::string v1_pid = Property(kAgent, kServiceIface, "MainPID");
    const BuiltRelease bad = BuildRelease(broken);

    HttpReply reply = Push(bad);
    ASSERT_EQ(reply.status, 409) << reply.Describe();
    const json& detail = reply.json["detail"];
    EXPECT_EQ(detail.value("rolled_back", false), true) << reply.Describe();
    EXPECT_FALSE(Str(detail, "error").empty()) << reply.Describe();
    EXPECT_NE(Str(detail, "stderr").find("old release"), std::string::npos)
        << "both probes' details are expected: " << reply.Describe();
    const std::string rule = Str(detail, "rule");
    EXPECT_NE(std::find(rules.begin(), rules.end(), rule), rules.end()) << reply.Describe();

    // Independently: systemd runs the old agent again (a new process), which answers V1.
    ExpectAgentActive();
    EXPECT_NE(Property(kAgent, kServiceIface, "MainPID"), v1_pid);
    ExpectAgentAnswers("1.0.0");
    EXPECT_EQ(CurrentRelease(), v1.id());
    EXPECT_NE(Slurp(testbed().unit_dir() / kAgent).find("--version 1.0.0"), std::string::npos);

    HttpReply releases = Get("/releases");
    ASSERT_EQ(releases.status, 200) << releases.Describe();
    const json list = ReleaseList(releases);
    ASSERT_GE(list.size(), 1u) << releases.Describe();
    EXPECT_EQ(Str(list[0], "slot"), "active");
    EXPECT_EQ(Str(list[0], "version"), "1.0.0") << releases.Describe();
    bool failed_recorded = false;
    for (const json& r : list)
      failed_recorded |= Str(r, "id") == bad.id() && Str(r, "state") == "failed";
    EXPECT_TRUE(failed_recorded) << "the failed release is not recorded as failed: "
                                 << releases.Describe();

    const auto updates = AuditOf(AuditLog(), "update");
    ASSERT_EQ(updates.size(), 2u);
    EXPECT_EQ(Str(updates[1], "result"), "rolled_back") << updates[1].dump();
    EXPECT_EQ(Str(updates[1], "sha256"), bad.sha256) << updates[1].dump();
    EXPECT_TRUE(!rule.empty() && Str(updates[1], "rollback_cause").starts_with(rule))
        << updates[1].dump();
    // The helper restarted the agent three times: V1, the broken one, V1 again.
    EXPECT_GE(Served(HelperRecord(), "restart_unit"), 3);
  }
};

TEST_F(AnUpdaterEndToEnd, InstallsAFirstReleaseWhoseAgentThenAnswersItsVersion) {
  const BuiltRelease v1 = BuildRelease(Spec("1.0.0"));
  HttpReply reply = Push(v1);
  ASSERT_EQ(reply.status, 200) << reply.Describe();
  EXPECT_EQ(Str(reply.json, "status"), "updated") << reply.Describe();
  EXPECT_EQ(Str(reply.json["release"], "slot"), "active") << reply.Describe();
  EXPECT_EQ(Str(reply.json["release"], "version"), "1.0.0") << reply.Describe();
  EXPECT_NE(Str(reply.json, "probe").find("1.0.0"), std::string::npos) << reply.Describe();

  // systemd's view, the files, the agent itself.
  ExpectAgentActive();
  ExpectAgentAnswers("1.0.0");
  EXPECT_NE(Slurp(testbed().unit_dir() / kAgent).find("User=decnet"), std::string::npos);
  EXPECT_EQ(CurrentRelease(), v1.id());
  EXPECT_EQ(fs::read_symlink(link_dir() / "decnet-test-agent"),
            install_dir() / "current/bin/decnet-test-agent");

  // DECNET's shape of /releases: active first, with slot, sha and installed_at.
  HttpReply releases = Get("/releases");
  ASSERT_EQ(releases.status, 200) << releases.Describe();
  const json list = ReleaseList(releases);
  ASSERT_EQ(list.size(), 1u) << releases.Describe();
  EXPECT_EQ(Str(list[0], "slot"), "active");
  EXPECT_EQ(Str(list[0], "sha"), v1.sha256.substr(0, 40));
  EXPECT_TRUE(list[0].contains("installed_at") && list[0]["installed_at"].is_string() &&
              Str(list[0], "installed_at").find('T') != std::string::npos)
      << releases.Describe();

  const auto updates = AuditOf(AuditLog(), "update");
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(Str(updates[0], "result"), "updated") << updates[0].dump();
  EXPECT_EQ(Str(updates[0]["client"], "cn"), "decnet-master") << updates[0].dump();
  EXPECT_EQ(Str(updates[0]["client"], "fingerprint").size(), 64u) << updates[0].dump();
  EXPECT_EQ(Str(updates[0], "sha256"), v1.sha256) << updates[0].dump();
  const auto record = HelperRecord();
  EXPECT_EQ(Str(record.at(0), "type"), "hello");
  EXPECT_EQ(Served(record, "write_unit"), 1);
  EXPECT_EQ(Served(record, "daemon_reload"), 1);
  EXPECT_EQ(Served(record, "repoint_link"), 1);
  EXPECT_EQ(Served(record, "restart_unit"), 1);
}

TEST_F(AnUpdaterEndToEnd, UpdatesToAHealthyReleaseAndRollsBackByHand) {
  const BuiltRelease v1 = Install(Spec("1.0.0"));
  const BuiltRelease v2 = BuildRelease(Spec("2.0.0"));
  HttpReply updated = Push(v2);
  ASSERT_EQ(updated.status, 200) << updated.Describe();
  ExpectAgentAnswers("2.0.0");
  EXPECT_EQ(CurrentRelease(), v2.id());
  HttpReply releases = Get("/releases");
  json list = ReleaseList(releases);
  ASSERT_GE(list.size(), 2u) << releases.Describe();
  EXPECT_EQ(Str(list[0], "slot"), "active");
  EXPECT_EQ(Str(list[0], "version"), "2.0.0");
  EXPECT_EQ(Str(list[1], "slot"), "prev");
  EXPECT_EQ(Str(list[1], "version"), "1.0.0");
  const std::string v2_pid = Property(kAgent, kServiceIface, "MainPID");

  HttpReply rolled = Rollback();
  ASSERT_EQ(rolled.status, 200) << rolled.Describe();
  EXPECT_EQ(Str(rolled.json, "status"), "rolled_back") << rolled.Describe();
  EXPECT_EQ(Str(rolled.json["release"], "version"), "1.0.0") << rolled.Describe();
  ExpectAgentActive();
  EXPECT_NE(Property(kAgent, kServiceIface, "MainPID"), v2_pid);
  ExpectAgentAnswers("1.0.0");
  EXPECT_EQ(CurrentRelease(), v1.id());
  list = ReleaseList(Get("/releases"));
  ASSERT_GE(list.size(), 2u);
  EXPECT_EQ(Str(list[0], "version"), "1.0.0");
  EXPECT_EQ(Str(list[1], "slot"), "prev");
  EXPECT_EQ(Str(list[1], "version"), "2.0.0");

  const auto rollbacks = AuditOf(AuditLog(), "rollback");
  ASSERT_EQ(rollbacks.size(), 1u);
  EXPECT_EQ(Str(rollbacks[0], "result"), "rolled_back") << rollbacks[0].dump();
  EXPECT_EQ(Str(rollbacks[0], "release"), v1.id()) << rollbacks[0].dump();
}

TEST_F(AnUpdaterEndToEnd, RollsBackAReleaseWhoseAgentCrashesDuringTheSettleWindow) {
  ExpectAutomaticRollbackOf(Spec("2.0.0-crashes", {"--crash-after-ms", "300"}),
                            {"gate-unit-inactive"});
}

TEST_F(AnUpdaterEndToEnd, RollsBackAReleaseWhoseAgentExitsAtOnce) {
  ExpectAutomaticRollbackOf(Spec("2.0.0-exits", {"--exit-immediately"}),
                            {"gate-unit-inactive", "unit-restart-failed"});
}

TEST_F(AnUpdaterEndToEnd, RollsBackAReleaseWhoseAgentAnswersUnhealthy) {
  ExpectAutomaticRollbackOf(Spec("2.0.0-unhealthy", {"--unhealthy"}), {"gate-probe"});
}

TEST_F(AnUpdaterEndToEnd, RollsBackAReleaseWhoseAgentReportsAnotherVersion) {
  // The manifest says 2.0.0; the agent it ships says 1.9.9 (the last --version wins).
  ExpectAutomaticRollbackOf(Spec("2.0.0", {"--version", "1.9.9"}), {"gate-version"});
}

// DECNET's master, restated (tests/support/decnet_master_client.py sends what its client sends:
// its form fields, the master's certificate, TLS 1.2 or newer, the updater's certificate
// pinned), pushes a healthy release, a broken one and a rollback to the real daemon; each answer
// is read by the restatement of its dashboard (tests/daemon/decnet_master_models.py) and
// classified as DECNET does, and the agent in the container runs the code each answer names.
TEST_F(AnUpdaterEndToEnd,
       IsDrivenByDecnetsMasterClientThroughAnUpdateAnAutomaticAndAManualRollback) {
  const std::string source = DECNET_SOURCE_DIR;
  const fs::path pki = root() / "pki";
  const json daemon_config = json::parse(Slurp(root() / "daemon.json"), nullptr, false);
  ASSERT_TRUE(daemon_config.is_object() && daemon_config.contains("port"));
  auto shell = [](const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (pipe != nullptr && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    const int status = pipe != nullptr ? ::pclose(pipe) : -1;
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  auto [pin_rc, pin] = shell("openssl x509 -in " + (pki / "updater.crt").string() +
                             " -outform der | sha256sum | cut -d' ' -f1");
  ASSERT_EQ(pin_rc, 0) << pin;
  pin = pin.substr(0, 64);
  json cases = json::array();
  // One request of DECNET's master; returns the status and records the case for its models.
  auto master = [&](const std::string& op, const fs::path& tarball, int want,
                    const std::string& expect) {
    auto [rc, out] =
        shell("/usr/bin/python3 " + source + "/tests/support/decnet_master_client.py" +
              " --url https://127.0.0.1:" + std::to_string(daemon_config["port"].get<int>()) +
              " --ca " + (pki / "ca.crt").string() + " --cert " + (pki / "master.crt").string() +
              " --key " + (pki / "master.key").string() + " --pin " + pin + " " + op +
              (tarball.empty() ? "" : " " + tarball.string()));
    const size_t line = out.rfind("{\"status\"");
    const json answer =
        json::parse(line == std::string::npos ? "" : out.substr(line), nullptr, false);
    EXPECT_TRUE(rc == 0 && answer.is_object()) << out;
    const int status = answer.is_object() ? answer.value("status", 0) : 0;
    EXPECT_EQ(status, want) << op << ": " << out << Logs();
    cases.push_back({{"name", op + " " + std::to_string(want)},
                     {"route", op},
                     {"status", status},
                     {"body", answer.is_object() ? answer.value("body", "") : ""},
                     {"expect", expect},
                     {"cli", op == "update"}});
  };

  const BuiltRelease v1 = Install(Spec("1.0.0"));
  const BuiltRelease v2 = BuildRelease(Spec("2.0.0"));
  master("update", v2.tarball, 200, "updated");
  ExpectAgentAnswers("2.0.0");
  EXPECT_EQ(CurrentRelease(), v2.id());

  master("update", BuildRelease(Spec("3.0.0-unhealthy", {"--unhealthy"})).tarball, 409,
         "rolled-back");
  ExpectAgentAnswers("2.0.0");
  EXPECT_EQ(CurrentRelease(), v2.id());

  master("rollback", {}, 200, "rolled-back");
  ExpectAgentActive();
  ExpectAgentAnswers("1.0.0");
  EXPECT_EQ(CurrentRelease(), v1.id());

  const fs::path file = root() / "master-cases.json";
  std::ofstream(file) << cases.dump(1);
  auto [rc, report] = shell("/usr/bin/python3 " + source +
                            "/tests/daemon/decnet_master_models.py " + file.string());
  EXPECT_EQ(rc, 0) << report;
  EXPECT_NE(report.find("3 of 3 answers read"), std::string::npos) << report;
}

TEST_F(AnUpdaterEndToEnd, RefusesAManualRollbackWithNoPreviousRelease) {
  HttpReply empty = Rollback();
  EXPECT_EQ(empty.status, 404) << empty.Describe();
  Install(Spec("1.0.0"));
  HttpReply one = Rollback();
  EXPECT_EQ(one.status, 404) << one.Describe();
  EXPECT_TRUE(one.json.is_object() && one.json.contains("detail")) << one.Describe();
  ExpectAgentAnswers("1.0.0");
  const auto rollbacks = AuditOf(AuditLog(), "rollback");
  ASSERT_EQ(rollbacks.size(), 2u);
  EXPECT_EQ(Str(rollbacks[1], "result"), "refused") << rollbacks[1].dump();
}

TEST_F(AnUpdaterEndToEnd, StopsAndRemovesAUnitTheNextReleaseNoLongerShips) {
  Install(Spec("1.0.0"));
  Install(Spec("2.0.0", {}, /*extra_unit=*/true));
  EXPECT_EQ(Property(kExtra, kUnitIface, "ActiveState"), "active");
  EXPECT_TRUE(fs::exists(testbed().unit_dir() / kExtra));

  HttpReply reply = Push(BuildRelease(Spec("3.0.0")));
  ASSERT_EQ(reply.status, 200) << reply.Describe();
  EXPECT_FALSE(fs::exists(testbed().unit_dir() / kExtra));
  EXPECT_EQ(Property(kExtra, kUnitIface, "ActiveState"), "inactive");
  EXPECT_EQ(Property(kExtra, kUnitIface, "LoadState"), "not-found");
  ExpectAgentActive();
  ExpectAgentAnswers("3.0.0");
  EXPECT_EQ(Served(HelperRecord(), "remove_unit"), 1);
}

TEST_F(AnUpdaterEndToEnd, RefusesAnUpdateWithoutItsDigest) {
  const BuiltRelease v1 = Install(Spec("1.0.0"));
  const std::string pid = Property(kAgent, kServiceIface, "MainPID");
  HttpReply reply = PushWithDigest(BuildRelease(Spec("2.0.0")), "");
  EXPECT_EQ(reply.status, 400) << reply.Describe();
  EXPECT_EQ(reply.json, json({{"detail", "sha256 of the tarball is required"}}))
      << reply.Describe();
  EXPECT_EQ(StoredReleases(), std::vector<std::string>{v1.id()});
  EXPECT_EQ(Property(kAgent, kServiceIface, "MainPID"), pid);
  ExpectAgentAnswers("1.0.0");
}

TEST_F(AnUpdaterEndToEnd, RefusesATarballWhoseDigestDoesNotMatchAndChangesNothing) {
  const BuiltRelease v1 = Install(Spec("1.0.0"));
  const std::string pid = Property(kAgent, kServiceIface, "MainPID");
  const std::string unit = Slurp(testbed().unit_dir() / kAgent);
  const BuiltRelease v2 = BuildRelease(Spec("2.0.0"));
  std::string wrong = v2.sha256;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  HttpReply reply = PushWithDigest(v2, wrong);
  EXPECT_TRUE(reply.status == 400 || reply.status == 500) << reply.Describe();
  ASSERT_TRUE(reply.json.is_object() && reply.json["detail"].is_object()) << reply.Describe();
  EXPECT_EQ(reply.json["detail"].value("rolled_back", true), false) << reply.Describe();
  EXPECT_EQ(StoredReleases(), std::vector<std::string>{v1.id()});
  EXPECT_EQ(CurrentRelease(), v1.id());
  EXPECT_EQ(Slurp(testbed().unit_dir() / kAgent), unit);
  EXPECT_EQ(Property(kAgent, kServiceIface, "MainPID"), pid);
  ExpectAgentAnswers("1.0.0");
  const auto updates = AuditOf(AuditLog(), "update");
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(Str(updates[1], "result"), "refused") << updates[1].dump();
}

TEST_F(AnUpdaterEndToEnd, RefusesAWorkerCertificateWhereTheMastersIsRequired) {
  const json forbidden = {{"detail", "master certificate required"}};
  HttpReply push = Push(BuildRelease(Spec("1.0.0")), Caller::kWorker);
  EXPECT_EQ(push.status, 403) << push.Describe();
  EXPECT_EQ(push.json, forbidden) << push.Describe();
  HttpReply rollback = Rollback(Caller::kWorker);
  EXPECT_EQ(rollback.status, 403) << rollback.Describe();
  EXPECT_EQ(rollback.json, forbidden) << rollback.Describe();
  HttpReply releases = Get("/releases", Caller::kWorker);
  EXPECT_EQ(releases.status, 403) << releases.Describe();
  // Any certificate from the CA may read /health (DECNET's contract): a positive control
  // that the worker's handshake itself succeeds.
  EXPECT_EQ(Get("/health", Caller::kWorker).status, 200);
  EXPECT_TRUE(StoredReleases().empty());
  EXPECT_FALSE(fs::exists(testbed().unit_dir() / kAgent));
  EXPECT_TRUE(AuditOf(AuditLog(), "update").empty());
}

TEST_F(AnUpdaterEndToEnd, RedeploysWhenTheActiveDigestIsPushedAgain) {
  const BuiltRelease v1 = Install(Spec("1.0.0"));
  const std::string pid = Property(kAgent, kServiceIface, "MainPID");
  HttpReply again = Push(v1);
  ASSERT_EQ(again.status, 200) << again.Describe();
  EXPECT_EQ(Str(again.json, "status"), "updated") << again.Describe();
  // Restarted (a new process) from the same release, not extracted again.
  ExpectAgentActive();
  EXPECT_NE(Property(kAgent, kServiceIface, "MainPID"), pid);
  ExpectAgentAnswers("1.0.0");
  EXPECT_EQ(StoredReleases(), std::vector<std::string>{v1.id()});
  EXPECT_EQ(ReleaseList(Get("/releases")).size(), 1u);
  const auto updates = AuditOf(AuditLog(), "update");
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(Str(updates[1], "result"), "updated") << updates[1].dump();
  EXPECT_EQ(Served(HelperRecord(), "restart_unit"), 2);
}

// update-self on the real helper: the daemon runs from its own store; systemd's restart of
// the unit is played by stopping and starting the helper, as the unit's restart would.
class AnUpdaterUpdatingItself : public AnUpdaterOnARealSystemd {
 protected:
  bool DaemonFromItsStore() const override { return true; }
};

TEST_F(AnUpdaterUpdatingItself, RunsTheNewBuildAfterTheRestartAndReturnsFromABuildThatCannotStart) {
  const std::string first = RunningDaemonBuild();
  ASSERT_EQ(first.size(), 16u) << "the daemon runs from its store: " << first;

  const BuiltRelease second = BuildUpdaterBuild("2.0.0");
  HttpReply queued = PushSelf(second);
  ASSERT_EQ(queued.status, 200) << queued.Describe();
  EXPECT_EQ(queued.json, (nlohmann::json{{"status", "self_update_queued"}, {"via", "systemd"}}));
  RestartHelper();
  EXPECT_EQ(RunningDaemonBuild(), second.id()) << "the helper starts updater/current";

  const BuiltRelease broken = BuildUpdaterBuild("3.0.0", /*broken=*/true);
  queued = PushSelf(broken);
  ASSERT_EQ(queued.status, 200) << queued.Describe()
                                << "\n(--version answers: it passes the smoke test)";
  StopUpdater();
  // The first start runs the fresh build, which exits before its hello; the helper fails.
  const auto failed = StartHelperExpectingExit();
  ASSERT_TRUE(failed.has_value()) << "the helper did not end\n" << Logs();
  EXPECT_TRUE(WIFEXITED(*failed) && WEXITSTATUS(*failed) == 3) << *failed << "\n" << Logs();
  // The next start returns to the last proven build, before dropping privileges.
  RestartHelper();
  EXPECT_EQ(RunningDaemonBuild(), second.id()) << Logs();
  EXPECT_NE(Logs().find("returning to build " + second.id()), std::string::npos) << Logs();
  EXPECT_EQ(Get("/health").status, 200);
  const auto self = AuditOf(AuditLog(), "update-self");
  ASSERT_EQ(self.size(), 3u);
  EXPECT_EQ(Str(self[0], "result"), "queued");
  EXPECT_EQ(Str(self[1], "result"), "queued");
  EXPECT_EQ(Str(self[2], "result"), "reverted") << self[2].dump();
  EXPECT_EQ(Str(self[2], "release"), broken.id());
  // The operator's view: which build runs and which one is proven.
  const nlohmann::json status = HelperctlStatus();
  EXPECT_EQ(status["daemon_build"]["build"], second.id()) << status.dump();
  EXPECT_EQ(status["daemon_build"]["proven"], second.id()) << status.dump();
}

TEST_F(AnUpdaterUpdatingItself, RefusesAReleaseOfTheSuiteOnUpdateSelfAndKeepsRunning) {
  const std::string first = RunningDaemonBuild();
  HttpReply refused = PushSelf(BuildRelease(Spec("1.0.0")));
  EXPECT_EQ(refused.status, 500) << refused.Describe();
  EXPECT_EQ(Str(refused.json["detail"], "rule"), "update-self-kind") << refused.Describe();
  EXPECT_EQ(RunningDaemonBuild(), first);
  EXPECT_EQ(fs::read_symlink(updater_dir() / "current").string(), "releases/" + first);
}

class AnUpdaterWithTwoPolicies : public AnUpdaterOnARealSystemd {
 protected:
  bool DaemonReadsAnotherPolicy() const override { return true; }
};

TEST_F(AnUpdaterWithTwoPolicies, SaysSoLoudlyAndInTheAuditLogButKeepsServing) {
  const auto hello = AuditOf(AuditLog(), "hello");
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(Str(hello[0], "result"), "policy-mismatch");
  EXPECT_EQ(Str(hello[0], "rule"), "policy-digest-mismatch");
  EXPECT_NE(Logs().find("POLICY MISMATCH"), std::string::npos) << Logs();
  EXPECT_EQ(Get("/health").status, 200);
  // The helper still enforces its own policy: an update goes through it as before.
  Install(Spec("1.0.0"));
  HttpReply agent = AgentHealth();
  EXPECT_EQ(agent.status, 200) << agent.Describe();
  EXPECT_EQ(Str(agent.json, "version"), "1.0.0") << agent.Describe();
}

}  // namespace
}  // namespace decnet::test
