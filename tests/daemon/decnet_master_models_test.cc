// Every answer the daemon gives DECNET's master, read as that master reads it. The real mTLS
// server and API in front of the real update pipeline, release stores, extractor and the
// helper's real serve loop (systemd mocked, the health gate scripted), driven into each status
// of each route: the requests DECNET's master makes are sent by our restatement of its client
// (tests/support/decnet_master_client.py: its form fields, its TLS), the others by curl. Each
// (route, status, body) is then fed to tests/daemon/decnet_master_models.py, which restates
// the master's models (pydantic) and its handlers' reading, and must read every one without
// error and classify it as DECNET does (updated / rolled-back / failed / self-updated /
// self-failed; rollback's rolled-back / failed / 404 with its detail).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/self_update.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_pki.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/test_dirs.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using decnet::testing::CertSpec;
using decnet::testing::PemPaths;
using nlohmann::json;
using test::Tarball;
using namespace std::chrono_literals;

constexpr char kPython[] = "/usr/bin/python3";
const std::string kModels =
    std::string(DECNET_SOURCE_DIR) + "/tests/daemon/decnet_master_models.py";
const std::string kClient =
    std::string(DECNET_SOURCE_DIR) + "/tests/support/decnet_master_client.py";

std::pair<int, std::string> Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string out;
  if (pipe == nullptr) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Verdicts from a script (healthy when it runs out); Hold() keeps the next check waiting, so
// that an operation is really running while other requests arrive.
class ScriptedGate : public HealthGate {
 public:
  GateVerdict Check(const std::map<UnitName, uint32_t>&, const std::string&,
                    std::chrono::steady_clock::time_point) override {
    std::unique_lock lock(mu_);
    if (hold_) {
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
      held_ = false;
    }
    if (script_.empty()) return {true, R"({"status":"ok","version":"agent"})", "", ""};
    GateVerdict v = script_.front();
    script_.pop_front();
    return v;
  }
  void Script(std::deque<GateVerdict> verdicts) {
    std::lock_guard lock(mu_);
    script_ = std::move(verdicts);
  }
  void Hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  bool WaitUntilHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 60s, [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GateVerdict> script_;
  bool hold_ = false, held_ = false;
};

// What a client got: the status (0: no answer) and the body.
struct Answer {
  int status = 0;
  std::string body;
  std::string log = "";
};

class DecnetsMaster : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = test::LayOutHost(dirs_, dirs_.root(), config_, test::SelfUpdate::kOn);
    config_.units = {"decnet-agent.service"};
    config_.links = {{"decnet", "venv/bin/decnet"}};
    ASSERT_TRUE(
        test::InstallOperatorUnit(dirs_, "decnet-agent.service", test::OperatorUnit("agent")));
    ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-updater.service", test::kUpdaterUnit));
    ASSERT_NO_FATAL_FAILURE(stack_.Open(
        dirs_, config_, {.client = "master-models", .self_update = test::SelfUpdate::kOn}));
    worker_ = WritePem(pki_.dir, "worker", pki_.ca.Issue(CertSpec{{"decnet-worker"}}));
  }
  void TearDown() override {
    stack_.gate.Release();
    front_.Stop();
    stack_.Close();
  }

  // Self-update pointed at the updater's store, or refused as by a daemon started without one.
  void EnableSelfUpdate(bool on) {
    if (on) return stack_.EnableSelfUpdate();
    SelfUpdateTarget self;
    self.unavailable_why = "this daemon was started without its own release store";
    stack_.pipeline->SetSelfUpdate(self);
  }

  // The API and the mTLS server in front of the pipeline, on an ephemeral port.
  void Serve(std::chrono::milliseconds deadline = 150'000ms) {
    ApiOptions options = test::TestApiOptions(dirs_);
    options.audit = &*stack_.audit;
    options.self_restart_delay = 1ms;
    options.max_upload_bytes = 256 * 1024;
    options.update_deadline = deadline;
    ASSERT_NO_FATAL_FAILURE(front_.Start(*stack_.pipeline, options, pki_));
  }

  // DECNET's master's request, by our restatement of its client, with `who`'s certificate.
  Answer Master(const std::string& op, const std::string& tarball = "",
                const PemPaths* who = nullptr) {
    const PemPaths& id = who ? *who : pki_.master;
    auto [rc, out] =
        Shell(std::string(kPython) + " " + kClient + " --url " + front_.Url() + " --ca " +
              pki_.ca_file + " --cert " + id.cert + " --key " + id.key + " --pin " +
              pki_.server.fingerprint + " " + op + (tarball.empty() ? "" : " " + tarball));
    const size_t line = out.rfind("{\"status\"");  // the client's one line, after any warning
    auto j = json::parse(line == std::string::npos ? "" : out.substr(line), nullptr, false);
    if (rc != 0 || !j.is_object() || !j["status"].is_number()) return {0, "", out};
    return {j["status"].get<int>(), j["body"].get<std::string>(), out};
  }
  // A request DECNET's master never makes (a field missing), with curl.
  Answer Curl(const std::string& path, const std::string& args) {
    const std::string body = dirs_.root() + "/curl-body";
    auto [rc, out] = Shell("curl -sS --max-time 60 " + pki_.CurlAsMaster() + " -o " + body +
                           " -w '%{http_code}' " + args + " " + front_.Url() + path);
    std::ifstream in(body);
    return {rc == 0 ? std::atoi(out.c_str()) : 0,
            std::string(std::istreambuf_iterator<char>(in), {}), out};
  }

  // Records a case for the models: `answer` must have `status`, and the master must read it
  // as `expect` (a text containing `contains`); `cli`: `decnet swarm update` prints it too.
  void Case(const std::string& name, const std::string& route, const Answer& answer, int status,
            const std::string& expect, const std::string& contains = "", bool cli = false,
            json extra = json::object()) {
    EXPECT_EQ(answer.status, status) << name << ": " << answer.body << "\n" << answer.log;
    extra.update({{"name", name},
                  {"route", route},
                  {"status", answer.status},
                  {"body", answer.body},
                  {"expect", expect},
                  {"detail_contains", contains},
                  {"cli", cli}});
    cases_.push_back(extra);
  }
  // Runs the models over `cases`; their exit status and report.
  std::pair<int, std::string> ReadAsDecnetsMaster(const json& cases) {
    const std::string file = dirs_.root() + "/cases-" + std::to_string(++runs_) + ".json";
    std::ofstream(file) << cases.dump(1);
    return Shell(std::string(kPython) + " " + kModels + " " + file);
  }
  void ExpectEveryCaseReadAsExpected() {
    ASSERT_FALSE(cases_.empty());
    auto [rc, report] = ReadAsDecnetsMaster(cases_);
    std::cout << report;
    EXPECT_EQ(rc, 0) << report;
    EXPECT_NE(report.find(std::to_string(cases_.size()) + " of " + std::to_string(cases_.size()) +
                          " answers read"),
              std::string::npos)
        << report;
  }

  // A release of the suite: VERSION, the link's target, and `units` in etc/systemd/system.
  Tarball Pack(const std::string& version, const std::map<std::string, std::string>& units = {}) {
    std::string tree = dirs_.root() + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/venv/bin");
    std::ofstream(tree + "/VERSION") << version << "\n";
    std::ofstream(tree + "/venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    if (!units.empty()) fs::create_directories(tree + "/etc/systemd/system");
    for (const auto& [name, text] : units)
      std::ofstream(tree + "/etc/systemd/system/" + name) << text;
    return test::PackTree(tree);
  }
  // A build of the daemon for update-self: its manifest and a binary answering --version.
  Tarball PackBuild(const std::string& version) {
    std::string tree = dirs_.root() + "/build-" + std::to_string(++packed_);
    fs::create_directories(tree + "/bin");
    std::ofstream(tree + "/bin/decnet-updaterd")
        << "#!/bin/sh\necho decnet-updaterd " << version << "\n";
    fs::permissions(tree + "/bin/decnet-updaterd", fs::perms(0755));
    std::ofstream(tree + "/.decnet-release.json") << json{
        {"format", 1},
        {"version", version},
        {"kind", "updater"},
        {"arch", HostArch()},
        {"helper_protocol", proto::kProtocolVersion}}.dump();
    return test::PackTree(tree);
  }
  // What DECNET's master tars and sends to /update-self: its Python tree, no manifest.
  Tarball PackDecnetTree() {
    std::string tree = dirs_.root() + "/decnet-tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/decnet");
    std::ofstream(tree + "/pyproject.toml")
        << "[project]\nname = \"decnet\"\nversion = \"1.2.3\"\n[project.scripts]\n"
           "decnet = \"decnet.cli:main\"\n";
    std::ofstream(tree + "/decnet/__init__.py") << "__version__ = \"1.2.3\"\n";
    std::ofstream(tree + "/decnet/cli.py") << "def main():\n    print('decnet')\n";
    return test::PackTree(tree);
  }
  void WaitUntilIdle() {
    ASSERT_TRUE(test::Eventually([&] { return !front_.api->busy(); })) << "the daemon stayed busy";
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
  test::ServedStack<ScriptedGate> stack_;
  test::UpdaterPki pki_;     // its server's fingerprint is the one the client pins
  test::ServedFront front_;  // after the pipeline it borrows
  PemPaths worker_;
  json cases_ = json::array();
  int packed_ = 0, runs_ = 0;
};

TEST_F(DecnetsMaster, ReadsEveryAnswerOfUpdateAsItsDashboardAndItsCliDo) {
  Serve();
  Answer first = Master("update", Pack("1.0").path);
  Case("update 200", "update", first, 200, "updated", R"("status":"ok")", true);
  Case("update 200 again", "update", Master("update", Pack("2.0").path), 200, "updated", "", true);

  stack_.gate.Script({GateVerdict{false, "new: 503 starting", "agent answered 503", "gate-probe"},
                      GateVerdict{true, "old: ok", "", ""}});
  Case("update 409 rolled back", "update", Master("update", Pack("3.0").path), 409, "rolled-back",
       "agent answered 503", true);
  stack_.gate.Script({GateVerdict{false, "new: down", "agent never answered", "gate-probe"},
                      GateVerdict{false, "old: down too", "agent never answered", "gate-probe"}});
  Case("update 500 failed after switching", "update", Master("update", Pack("4.0").path), 500,
       "failed", "agent never answered", true);
  Case("update 500 refused before switching", "update",
       Master("update", Pack("5.0", {{"ssh.service", test::OperatorUnit("not ours")}}).path), 500,
       "failed", "ssh.service", true);

  const std::string empty = dirs_.root() + "/empty.tar.gz";
  ASSERT_EQ(std::system(("tar -czf " + empty + " -T /dev/null").c_str()), 0);
  Case("update 400 empty archive", "update", Master("update", empty), 400, "failed", "", true);

  const std::string big_tree = dirs_.root() + "/big";
  fs::create_directories(big_tree);
  ASSERT_EQ(std::system(("head -c 400000 /dev/urandom > " + big_tree + "/blob").c_str()), 0);
  Case("update 413 too large", "update", Master("update", test::PackTree(big_tree).path), 413,
       "failed", "", true);

  // Requests DECNET's master never makes (it always sends the tarball, both digests and its
  // own certificate): its dashboard still reads each answer; its CLI's table would not (it
  // reads detail.error of any body, and these details are DECNET's plain strings).
  const Tarball t6 = Pack("6.0");
  Case("update 400 without sha256", "update", Curl("/update", "-F tarball=@" + t6.path), 400,
       "failed");
  Case("update 422 without tarball", "update", Curl("/update", "--form-string sha256=" + t6.sha256),
       422, "failed");
  Case("update 400 malformed digest", "update",
       Curl("/update", "-F tarball=@" + t6.path + " --form-string sha256=xyz"), 400, "failed", "",
       true);
  Case("update 403 worker", "update", Master("update", t6.path, &worker_), 403, "failed");

  // With include_self, the dashboard reads the /update answer and the /update-self status.
  Case("include-self after 200", "include-self", Master("update-self", PackBuild("2.0.0").path),
       200, "self-updated", R"("status":"ok")", false,
       {{"update_status", first.status}, {"update_body", first.body}});
  WaitUntilIdle();
  Case("include-self refused", "include-self", Master("update-self", PackDecnetTree().path), 500,
       "self-failed", "", false, {{"update_status", first.status}, {"update_body", first.body}});
  ExpectEveryCaseReadAsExpected();
}

TEST_F(DecnetsMaster, ReadsEveryAnswerOfUpdateSelfAsItsPushSelfDoes) {
  Serve();
  Case("update-self 200", "update-self", Master("update-self", PackBuild("2.0.0").path), 200,
       "self-updated");
  WaitUntilIdle();
  Case("update-self 500 DECNET tree", "update-self", Master("update-self", PackDecnetTree().path),
       500, "self-failed", "kind \"updater\"");
  Case("update-self 500 a release of the suite", "update-self",
       Master("update-self", Pack("1.0").path), 500, "self-failed", ".decnet-release.json");
  const Tarball build = PackBuild("3.0.0");
  Case("update-self 400 without confirm_self", "update-self",
       Curl("/update-self", "-F tarball=@" + build.path + " --form-string sha256=" + build.sha256),
       400, "self-failed", "confirm_self");
  Case("update-self 403 worker", "update-self", Master("update-self", build.path, &worker_), 403,
       "self-failed");
  EnableSelfUpdate(false);
  Case("update-self 500 unavailable", "update-self", Master("update-self", build.path), 500,
       "self-failed", "without its own release store");
  ExpectEveryCaseReadAsExpected();
}

TEST_F(DecnetsMaster, ReadsEveryAnswerOfRollbackAsItsDashboardDoes) {
  Serve();
  Case("rollback 404", "rollback", Master("rollback"), 404, "404", "no previous release");
  ASSERT_EQ(Master("update", Pack("1.0").path).status, 200);
  ASSERT_EQ(Master("update", Pack("2.0").path).status, 200);
  Case("rollback 200", "rollback", Master("rollback"), 200, "rolled-back", "rolled_back");
  stack_.gate.Script({GateVerdict{false, "old: down", "agent never answered", "gate-probe"},
                      GateVerdict{true, "back: ok", "", ""}});
  Case("rollback 500", "rollback", Master("rollback"), 500, "failed", "agent never answered");
  Case("rollback 403 worker", "rollback", Master("rollback", "", &worker_), 403, "failed",
       "master certificate required");
  ExpectEveryCaseReadAsExpected();
}

TEST_F(DecnetsMaster, ReadsEveryBusyAnswerWhileAnOperationRunsAsAFailure) {
  Serve();
  ASSERT_EQ(Master("update", Pack("1.0").path).status, 200);
  stack_.gate.Hold();
  auto running = std::async(std::launch::async, [&] { return Master("update", Pack("2.0").path); });
  ASSERT_TRUE(stack_.gate.WaitUntilHeld()) << "the update never reached its health gate";
  Case("update 503", "update", Master("update", Pack("3.0").path), 503, "failed", "already running",
       true);
  Case("update-self 503", "update-self", Master("update-self", PackBuild("2.0.0").path), 503,
       "self-failed", "already running");
  Case("rollback 503", "rollback", Master("rollback"), 503, "failed", "already running");
  stack_.gate.Release();
  Case("the update that was running", "update", running.get(), 200, "updated", "", true);
  ExpectEveryCaseReadAsExpected();
}

TEST_F(DecnetsMaster, ReadsTheAnswerAtTheDeadlineAsAFailure) {
  Serve(1500ms);
  ASSERT_EQ(Master("update", Pack("1.0").path).status, 200);
  stack_.gate.Hold();
  Case("update 500 deadline", "update", Master("update", Pack("2.0").path), 500, "failed",
       "deadline", true);
  stack_.gate.Release();
  WaitUntilIdle();
  stack_.gate.Hold();
  Case("rollback 500 deadline", "rollback", Master("rollback"), 500, "failed", "deadline");
  stack_.gate.Release();
  WaitUntilIdle();
  ExpectEveryCaseReadAsExpected();
}

TEST_F(DecnetsMaster, ReadsHealthAndReleasesForTheMasterAndOtherClients) {
  Serve();
  ASSERT_EQ(Master("update", Pack("1.0").path).status, 200);
  ASSERT_EQ(Master("update", Pack("2.0").path).status, 200);
  const Answer health = Master("health");
  Case("health master", "health", health, 200, "reachable", "ok");
  auto j = json::parse(health.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << health.body;
  ASSERT_GE(j["releases"].size(), 2u) << health.body;
  EXPECT_EQ(j["releases"][0]["slot"], "active");
  EXPECT_EQ(j["releases"][1]["slot"], "prev");
  Case("health worker", "health", Master("health", "", &worker_), 200, "reachable", "ok");
  Case("releases master", "releases", Master("releases"), 200, "reachable");
  // DECNET's client raises on any status but 2xx: the dashboard shows the host unreachable.
  Case("releases worker", "releases", Master("releases", "", &worker_), 403, "unreachable");
  ExpectEveryCaseReadAsExpected();
}

// The client sends nothing to an updater whose certificate is not the pinned one, even one the
// CA signed; with the right pin the same request goes through.
TEST_F(DecnetsMaster, ClientSendsNothingToAnUpdaterWithAnotherCertificate) {
  Serve();
  const Tarball t = Pack("1.0");
  const std::string pinned = pki_.server.fingerprint;
  pki_.server.fingerprint = pki_.ca.Issue(CertSpec{{"updater"}, true}).fingerprint;
  const Answer refused = Master("update", t.path);
  EXPECT_EQ(refused.status, 0) << refused.log;
  EXPECT_NE(refused.log.find("PinMismatch"), std::string::npos) << refused.log;
  EXPECT_FALSE(stack_.store->Active()) << "the update was sent despite the pin";
  pki_.server.fingerprint = pinned;
  EXPECT_EQ(Master("update", t.path).status, 200);
  EXPECT_TRUE(stack_.store->Active());
}

// The daemon refuses DECNET's own tree on update-self and says why and what to send instead;
// DECNET's push-self reports that text as the host's detail.
TEST_F(DecnetsMaster, HearsWhyADecnetTreeIsRefusedOnUpdateSelfAndWhatToSendInstead) {
  Serve();
  const Answer a = Master("update-self", PackDecnetTree().path);
  ASSERT_EQ(a.status, 500) << a.body << a.log;
  auto j = json::parse(a.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << a.body;
  EXPECT_EQ(j["detail"]["rule"], "update-self-manifest") << a.body;
  const std::string error = j["error"];
  for (const char* said : {"no .decnet-release.json", "pyproject.toml", "/update", "updater-build",
                           "of kind \"updater\"", "bin/decnet-updaterd"})
    EXPECT_NE(error.find(said), std::string::npos)
        << "the refusal does not say " << said << ": " << error;
  Case("update-self DECNET tree", "update-self", a, 500, "self-failed", "updater-build");
  EXPECT_TRUE(stack_.updater_store->Releases().empty()) << "the refused tree was kept";
  ExpectEveryCaseReadAsExpected();
}

// The models can fail: real answers with one field's type changed are refused, by each of the
// master's readers, as a drift in the daemon's bodies would be.
TEST_F(DecnetsMaster, RefusesAnAnswerWhoseShapeDrifted) {
  Serve();
  const Answer ok = Master("update", Pack("1.0").path);
  ASSERT_EQ(ok.status, 200) << ok.body;
  stack_.gate.Script({GateVerdict{false, "new: down", "agent never answered", "gate-probe"},
                      GateVerdict{true, "old: ok", "", ""}});
  const Answer rolled = Master("update", Pack("2.0").path);
  ASSERT_EQ(rolled.status, 409) << rolled.body;
  ASSERT_EQ(Master("update", Pack("3.0").path).status, 200);
  stack_.gate.Script({GateVerdict{false, "old: down", "agent never answered", "gate-probe"},
                      GateVerdict{true, "back: ok", "", ""}});
  const Answer failed = Master("rollback");
  ASSERT_EQ(failed.status, 500) << failed.body;
  const Answer health = Master("health");

  auto drift = [](const std::string& body, const std::function<void(json&)>& change) {
    json j = json::parse(body);
    change(j);
    return j.dump();
  };
  struct Drift {
    const char* name;
    const char* route;
    Answer answer;
    const char* expect;
  };
  const std::vector<Drift> drifts = {
      {"probe a number",
       "update",
       {200, drift(ok.body, [](json& j) { j["probe"] = 42; })},
       "updated"},
      {"error an object",
       "update",
       {409, drift(rolled.body, [](json& j) { j["error"] = j["detail"]; })},
       "rolled-back"},
      {"stderr a list",
       "update",
       {409, drift(rolled.body, [](json& j) { j["stderr"] = json::array({"x"}); })},
       "rolled-back"},
      {"rollback's error only inside detail",
       "rollback",
       {500, drift(failed.body, [](json& j) { j.erase("error"); })},
       "failed"},
      {"rollback's status a number",
       "rollback",
       {200, R"({"status":1,"release":{}})"},
       "rolled-back"},
      {"404's detail an object", "rollback", {404, R"({"detail":{"error":"none"}})"}, "404"},
      {"a release not an object",
       "health",
       {200, drift(health.body, [](json& j) { j["releases"][0] = "active"; })},
       "reachable"},
      {"a release's sha a number",
       "health",
       {200, drift(health.body, [](json& j) { j["releases"][0]["sha"] = 7; })},
       "reachable"},
      {"not JSON", "rollback", {500, "Internal Server Error"}, "failed"},
      {"release null for the CLI",
       "update",
       {200, drift(ok.body, [](json& j) { j["release"] = nullptr; })},
       "updated"},
  };
  for (const Drift& d : drifts) {
    SCOPED_TRACE(d.name);
    json one = json::array({{{"name", d.name},
                             {"route", d.route},
                             {"status", d.answer.status},
                             {"body", d.answer.body},
                             {"expect", d.expect},
                             {"cli", true}}});
    auto [rc, report] = ReadAsDecnetsMaster(one);
    EXPECT_EQ(rc, 1) << "a drifted body was read as if nothing changed:\n" << report;
    EXPECT_NE(report.find("FAIL"), std::string::npos) << report;
  }
}

}  // namespace
}  // namespace decnet::daemon
