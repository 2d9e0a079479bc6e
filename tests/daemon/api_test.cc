// The updater's HTTP API driven through the real HttpServer over real mTLS, with curl as the
// client (as DECNET's master pushes: -F tarball=@file -F sha256=...) and a fake Operations
// that records its calls and can hold an operation to simulate a long update.
#include "daemon/api.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "daemon/tls.h"
#include "proto/sha256.h"
#include "proto/updater_api.h"
#include "tests/daemon/test_pki.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

using decnet::testing::CertSpec;
using decnet::testing::Issued;
using decnet::testing::PemPaths;
using decnet::testing::TempDir;
using decnet::testing::TestCa;
using nlohmann::json;
using namespace std::chrono_literals;

struct Ran {
  int exit_code = -1;
  std::string out;
};

Ran Shell(const std::string& command) {
  Ran ran;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return ran;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) ran.out.append(buf, n);
  int status = pclose(pipe);
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// UpdaterApi::busy() is a flag that signals nothing when it drops (after the operation, its
// housekeeping and any restart hook): waits on it are bounded polls. What the fake operations
// do is waited for on their condition variable (FakeOps::Await).
using test::Eventually;

// A response as curl saw it: the status, then the body.
struct Answer {
  std::string status;
  std::string body;
  json Json() const { return json::parse(body, nullptr, false); }
};

// One call the fake received.
struct Call {
  std::string op;
  Caller caller;
  std::string sha256;
  std::optional<std::string> sha;
  uint64_t size = 0;
  std::string content;  // the spooled tarball, read back through the fd
};

class FakeOps : public Operations {
 public:
  UpdateOutcome Update(const Caller& caller, const VerifiedTarball& tarball) override {
    return Run("update", caller, &tarball, update_answer);
  }
  SelfUpdateOutcome UpdateSelf(const Caller& caller, const VerifiedTarball& tarball,
                               std::function<void()>* after_reply) override {
    *after_reply = [this] {
      std::unique_lock lock(mu_);
      ++hooks_entered;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_hook_; });
      ++hooks;
      cv_.notify_all();
    };
    return Run("update-self", caller, &tarball, self_answer);
  }
  RollbackOutcome Rollback(const Caller& caller) override {
    return Run("rollback", caller, nullptr, rollback_answer);
  }
  std::vector<json> Releases() override {
    std::lock_guard lock(mu_);
    return releases;
  }
  // While on, the restart hook waits in place once entered.
  void HoldHook(bool on) {
    std::lock_guard lock(mu_);
    hold_hook_ = on;
    cv_.notify_all();
  }
  // Waits until `done` holds; re-checked whenever an operation enters, ends, or a hook or
  // the housekeeping starts. False after test::kHangBound.
  template <typename F>
  bool Await(F done) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, test::kHangBound, done);
  }

  // Lets a held operation return.
  void Release() {
    std::lock_guard lock(mu_);
    hold = false;
    cv_.notify_all();
  }
  void Hold() {
    std::lock_guard lock(mu_);
    hold = true;
  }
  std::vector<Call> Calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void SetReleases(std::vector<json> r) {
    std::lock_guard lock(mu_);
    releases = std::move(r);
  }

  UpdateOutcome update_answer = outcome::Updated{};
  SelfUpdateOutcome self_answer = outcome::SelfQueued{};
  RollbackOutcome rollback_answer = outcome::Restored{};
  std::vector<json> releases_after;  // when set, Releases() returns these once an op ended
  AuditLog* audit = nullptr;         // when set, each operation appends its line here
  std::atomic<int> entered{0};
  std::atomic<int> finished{0};
  std::atomic<int> hooks{0};          // restart hooks that returned
  std::atomic<int> hooks_entered{0};  // restart hooks that started

 private:
  template <class Outcome>
  Outcome Run(const std::string& op, const Caller& caller, const VerifiedTarball* tarball,
              const Outcome& answer) {
    Call call{op, caller, "", std::nullopt, 0, ""};
    if (tarball != nullptr) {
      call.sha256 = tarball->sha256;
      call.sha = tarball->sha;
      call.size = tarball->size;
      char buf[65536];
      off_t at = 0;
      ssize_t n;
      while ((n = ::pread(tarball->fd, buf, sizeof buf, at)) > 0) {
        call.content.append(buf, static_cast<size_t>(n));
        at += n;
      }
    }
    std::unique_lock lock(mu_);
    ++entered;
    calls_.push_back(std::move(call));
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold; });
    if (!releases_after.empty()) releases = releases_after;
    if (audit != nullptr) {  // as the pipeline records what it did
      AuditEntry entry;
      entry.op = op;
      entry.client_cn = caller.cn;
      entry.version = "2.0.0";
      entry.result = op == "rollback" ? "rolled_back" : "updated";
      (void)audit->Append(entry);
    }
    ++finished;
    cv_.notify_all();
    return answer;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool hold = false;
  bool hold_hook_ = false;
  std::vector<json> releases;
  std::vector<Call> calls_;
};

json ReleaseRow(const std::string& slot, const std::string& id, const std::string& version) {
  api::Release r;
  r.slot = slot;
  r.sha = "abc123";
  r.installed_at = "2024-05-01T10:00:00Z";
  r.id = id;
  r.sha256 = std::string(64, 'a');
  r.version = version;
  r.size = 42;
  r.state = "ready";
  return api::ReleaseJson(r);
}

class AnUpdaterApi : public ::testing::Test {
 protected:
  AnUpdaterApi() {
    Issued server = ca_.Issue(CertSpec{{"updater"}, true});
    auto paths = WritePem(dir_, "server", server);
    files_ = TlsFiles{dir_.Write("ca.crt", ca_.ca().cert_pem), paths.cert, paths.key};
    master_ = ca_.Issue(CertSpec{{"decnet-master"}});
    worker_ = ca_.Issue(CertSpec{{"worker"}});
    master_pem_ = WritePem(dir_, "master", master_);
    worker_pem_ = WritePem(dir_, "worker", worker_);
    ops_.SetReleases({ReleaseRow("active", "r1", "1.0"), ReleaseRow("prev", "r0", "0.9")});
    tarball_ =
        std::string("\x1f\x8b pretend this is a gzip tarball\n", 34) + std::string(200000, 'z');
    tarball_path_ = dir_.Write("release.tar.gz", tarball_);
    digest_ = Sha256Hex(tarball_);
    auto audit = AuditLog::Open((dir_.path() / "audit.jsonl").string());
    EXPECT_TRUE(audit.has_value());
    audit_.emplace(std::move(*audit));
  }

  ~AnUpdaterApi() override {
    ops_.Release();
    if (server_) server_->Stop();
  }

  void Start(std::chrono::milliseconds deadline = 30s, api::BuildIdentity build = {}) {
    ApiOptions options;
    options.build = std::move(build);
    options.spool_dir = (dir_.path() / "spool").string();
    options.max_upload_bytes = 10 << 20;
    options.update_deadline = deadline;
    options.self_restart_delay = 300ms;
    options.version = "9.9.9";
    options.policy_digest = std::string(64, 'd');
    options.helper_alive = [] { return true; };
    options.audit = &*audit_;
    auto api = UpdaterApi::Create(ops_, options);
    ASSERT_TRUE(api.has_value()) << api.error().message;
    api_ = std::move(*api);
    api_->SetUploadHook([this](std::string_view step) {
      if (step != "uploading") return;
      std::lock_guard lock(upload_mu_);
      ++upload_chunks_;
      upload_cv_.notify_all();
    });
    auto ctx = MakeServerTlsContext(files_);
    ASSERT_TRUE(ctx.has_value());
    // Every client of these tests connects from 127.0.0.1, and one test opens 200 at once:
    // the per-source cap on handshakes in flight is the flood tests' subject, not this one's.
    ServerConfig config;
    config.limits.max_pending_per_source = config.limits.max_pending;
    auto server = HttpServer::Create(std::move(*ctx), std::move(config), *api_);
    ASSERT_TRUE(server.has_value());
    server_ = std::move(*server);
    auto port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.has_value());
    port_ = *port;
  }

  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::string CurlCommand(const PemPaths& client, const std::string& args) const {
    return "curl -sS --max-time 20 --cacert " + files_.ca_file + " --cert " + client.cert +
           " --key " + client.key + " " + args;
  }

  // Runs curl; the status code is written after a marker line, then split off.
  Answer Curl(const PemPaths& client, const std::string& args) const {
    Ran ran = Shell(CurlCommand(client, "-w '\\n@@%{http_code}' " + args) + " 2>/dev/null");
    Answer answer;
    size_t at = ran.out.rfind("\n@@");
    if (at == std::string::npos) return answer;
    answer.body = ran.out.substr(0, at);
    answer.status = ran.out.substr(at + 3);
    return answer;
  }

  std::string Form(const std::string& extra = "") const {
    return "-F tarball=@" + tarball_path_ + " --form-string sha256=" + digest_ + " " + extra + " ";
  }

  Answer Push(const std::string& path, const std::string& form_args) const {
    return Curl(master_pem_, form_args + " " + Url(path));
  }

  // Starts curl with `args` in the background (its output dropped); its pid, or -1.
  pid_t CurlInBackground(const PemPaths& client, const std::string& args) const {
    Ran ran = Shell(CurlCommand(client, args) + " >/dev/null 2>&1 & echo $!");
    return ran.out.empty() ? -1 : static_cast<pid_t>(std::stol(ran.out));
  }

  // Waits until some body bytes of an update have gone into the form.
  bool AwaitUploadStarted() {
    std::unique_lock lock(upload_mu_);
    return upload_cv_.wait_for(lock, test::kHangBound, [&] { return upload_chunks_ > 0; });
  }

  size_t SpoolEntries() const {
    size_t n = 0;
    DIR* d = ::opendir((dir_.path() / "spool").c_str());
    if (d == nullptr) return 999;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ++n;
    }
    ::closedir(d);
    return n;
  }

  TestCa ca_{"decnet-test-ca"};
  TempDir dir_;
  TlsFiles files_;
  Issued master_, worker_;
  PemPaths master_pem_, worker_pem_;
  std::string tarball_, tarball_path_, digest_;
  std::optional<AuditLog> audit_;
  FakeOps ops_;
  std::mutex upload_mu_;
  std::condition_variable upload_cv_;
  int upload_chunks_ = 0;            // under upload_mu_
  std::unique_ptr<UpdaterApi> api_;  // declared before the server: outlives it
  std::unique_ptr<HttpServer> server_;
  std::uint16_t port_ = 0;
};

// --- routing and authorisation -------------------------------------------------------------

TEST_F(AnUpdaterApi, AnswersHealthToAWorkerCertificateWithLivenessOnly) {
  Start();
  Answer a = Curl(worker_pem_, Url("/health"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.Json(), (json{{"status", "ok"}, {"role", "updater"}})) << a.body;
  EXPECT_EQ(a.body.find("abc123"), std::string::npos) << "a worker read the releases";
}

TEST_F(AnUpdaterApi, AnswersHealthToTheMasterWithTheReleases) {
  Start();
  Answer a = Curl(master_pem_, Url("/health"));
  ASSERT_EQ(a.status, "200");
  json body = a.Json();
  EXPECT_EQ(body["status"], "ok");
  EXPECT_EQ(body["role"], "updater");
  ASSERT_EQ(body["releases"].size(), 2u);
  EXPECT_EQ(body["releases"][0]["slot"], "active");
  EXPECT_EQ(body["releases"][0]["sha"], "abc123");
  EXPECT_EQ(body["releases"][0]["installed_at"], "2024-05-01T10:00:00Z");
  EXPECT_EQ(body["releases"][1]["slot"], "prev");
  EXPECT_EQ(body["version"], "9.9.9");
  EXPECT_EQ(body["helper"]["alive"], true);
  EXPECT_EQ(body["helper"]["policy_digest"], std::string(64, 'd'));
}

TEST_F(AnUpdaterApi, NamesTheRunningBuildInHealthToTheMasterOnly) {
  Start(30s, api::BuildIdentity{"2.0.0", "0123456789abcdef"});
  Answer a = Curl(master_pem_, Url("/health"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.Json()["build"], (json{{"version", "2.0.0"}, {"id", "0123456789abcdef"}})) << a.body;
  EXPECT_EQ(a.Json()["version"], "9.9.9") << "the compiled version stays where it was";
  Answer worker = Curl(worker_pem_, Url("/health"));
  EXPECT_EQ(worker.body.find("0123456789abcdef"), std::string::npos) << worker.body;
}

TEST_F(AnUpdaterApi, NamesABuildNotRunFromItsStoreByTheCompiledVersionAndNoId) {
  Start();
  Answer a = Curl(master_pem_, Url("/health"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.Json()["build"], (json{{"version", "9.9.9"}, {"id", nullptr}})) << a.body;
}

TEST_F(AnUpdaterApi, ShowsTheMasterNoLastResultBeforeAnyOperation) {
  Start();
  Answer a = Curl(master_pem_, Url("/health"));
  ASSERT_EQ(a.status, "200");
  ASSERT_TRUE(a.Json().contains("last_result")) << a.body;
  EXPECT_TRUE(a.Json()["last_result"].is_null()) << a.body;
}

TEST_F(AnUpdaterApi, ShowsTheMasterTheLastOperationAfterEachOneAndAfterARestart) {
  ops_.audit = &*audit_;
  Start();
  auto last = [&] { return Curl(master_pem_, Url("/health")).Json()["last_result"]; };
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");

  ASSERT_EQ(Push("/update", Form()).status, "200");
  json after_update = last();
  EXPECT_EQ(after_update["op"], "update") << after_update.dump();
  EXPECT_EQ(after_update["result"], "updated") << after_update.dump();
  EXPECT_TRUE(after_update["rule"].is_null()) << after_update.dump();
  EXPECT_EQ(after_update["version"], "2.0.0") << after_update.dump();
  ASSERT_TRUE(after_update["at"].is_string()) << after_update.dump();
  EXPECT_TRUE(std::regex_match(after_update["at"].get<std::string>(), iso)) << after_update.dump();

  // A refusal the API records itself is an operation's outcome too, with its rule.
  ASSERT_EQ(Push("/update", "-F tarball=@/dev/null ").status, "400");
  json refused = last();
  EXPECT_EQ(refused["op"], "update") << refused.dump();
  EXPECT_EQ(refused["result"], "refused") << refused.dump();
  EXPECT_EQ(refused["rule"], "sha256-required") << refused.dump();
  EXPECT_TRUE(refused["version"].is_null()) << refused.dump();

  ASSERT_EQ(Curl(master_pem_, "-X POST " + Url("/rollback")).status, "200");
  json rolled_back = last();
  EXPECT_EQ(rolled_back["op"], "rollback") << rolled_back.dump();
  EXPECT_EQ(rolled_back["result"], "rolled_back") << rolled_back.dump();

  // Start-up's reconciliation and the helper's greeting are no operations of the master's.
  for (const char* op : {"recovery", "hello"}) {
    AuditEntry entry;
    entry.op = op;
    entry.result = "reconciled";
    ASSERT_TRUE(audit_->Append(entry).has_value());
  }
  EXPECT_EQ(last(), rolled_back);

  // A restart: a new log over the same file (its last line torn by a crash) and a new API.
  server_->Stop();
  server_.reset();
  api_.reset();
  audit_.reset();
  {
    std::ofstream torn(dir_.path() / "audit.jsonl", std::ios::app);
    torn << R"({"op":"update","result":"upd)";
  }
  auto reopened = AuditLog::Open((dir_.path() / "audit.jsonl").string());
  ASSERT_TRUE(reopened.has_value());
  audit_.emplace(std::move(*reopened));
  ops_.audit = nullptr;
  Start();
  EXPECT_EQ(last(), rolled_back) << "recovered from the log's lines, the same time stamp";

  Answer worker = Curl(worker_pem_, Url("/health"));
  EXPECT_EQ(worker.Json(), (json{{"status", "ok"}, {"role", "updater"}})) << worker.body;
}

TEST_F(AnUpdaterApi, RefusesAWorkerCertificateOnEveryMasterRouteWithDecnetsBody) {
  Start();
  const std::string forbidden = R"({"detail":"master certificate required"})";
  for (const std::string& args : {Url("/releases"), Form() + Url("/update"),
                                  Form("-F confirm_self=true") + Url("/update-self"),
                                  "-X POST " + Url("/rollback"), Url("/metrics"), Url("/audit")}) {
    Answer a = Curl(worker_pem_, args);
    EXPECT_EQ(a.status, "403") << args;
    EXPECT_EQ(a.body, forbidden) << args;
  }
  EXPECT_TRUE(ops_.Calls().empty());
  EXPECT_FALSE(api_->busy());
}

TEST_F(AnUpdaterApi, Answers404ForAnUnknownPathAnd405ForAWrongMethod) {
  Start();
  EXPECT_EQ(Curl(master_pem_, Url("/nowhere")).status, "404");
  EXPECT_EQ(Curl(master_pem_, Url("/update")).status, "405");
  EXPECT_EQ(Curl(master_pem_, "-X POST " + Url("/health")).status, "405");
  EXPECT_EQ(Curl(master_pem_, Url("/health?x=1")).status, "200");
}

TEST_F(AnUpdaterApi, ServesReleasesToTheMasterActiveFirst) {
  Start();
  Answer a = Curl(master_pem_, Url("/releases"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.Json()["releases"][0]["id"], "r1");
  EXPECT_EQ(a.Json()["releases"][1]["id"], "r0");
}

// --- DECNET's form checks ------------------------------------------------------------------

TEST_F(AnUpdaterApi, RefusesAPushWithoutSha256With400AndDecnetsExactBody) {
  Start();
  for (const std::string& form : {"-F tarball=@" + tarball_path_,
                                  "-F tarball=@" + tarball_path_ + " --form-string sha256="}) {
    Answer a = Push("/update", form);
    EXPECT_EQ(a.status, "400") << form;
    EXPECT_EQ(a.body, R"({"detail":"sha256 of the tarball is required"})") << form;
  }
  EXPECT_TRUE(ops_.Calls().empty());
  EXPECT_EQ(SpoolEntries(), 0u);
}

TEST_F(AnUpdaterApi, RefusesAWhitespaceOrMalformedDigestWith400InTheFailureShape) {
  Start();
  for (const std::string& digest : {std::string("   "), std::string(64, 'z'), std::string(63, 'a'),
                                    " " + std::string(64, 'a')}) {
    Answer a =
        Push("/update", "-F tarball=@" + tarball_path_ + " --form-string 'sha256=" + digest + "'");
    EXPECT_EQ(a.status, "400") << digest;
    json detail = a.Json()["detail"];
    EXPECT_TRUE(detail["error"].is_string()) << a.body;
    EXPECT_EQ(detail["stderr"], "") << a.body;
    EXPECT_EQ(detail["rolled_back"], false) << a.body;
    EXPECT_EQ(detail["rule"], "sha256-malformed") << a.body;
  }
  EXPECT_TRUE(ops_.Calls().empty());
}

TEST_F(AnUpdaterApi, RefusesAMismatchingDigestAndLeavesNothingInTheSpool) {
  Start();
  Answer a = Push("/update",
                  "-F tarball=@" + tarball_path_ + " --form-string sha256=" + std::string(64, 'b'));
  EXPECT_EQ(a.status, "400");
  EXPECT_EQ(a.Json()["detail"]["rule"], "sha256-mismatch") << a.body;
  EXPECT_EQ(a.Json()["detail"]["rolled_back"], false);
  EXPECT_TRUE(ops_.Calls().empty());
  EXPECT_EQ(SpoolEntries(), 0u);
  EXPECT_FALSE(api_->busy());
}

TEST_F(AnUpdaterApi, Answers422WhenTheTarballIsMissing) {
  Start();
  Answer a = Push("/update", "--form-string sha256=" + digest_);
  EXPECT_EQ(a.status, "422");
  json detail = a.Json()["detail"];
  ASSERT_TRUE(detail.is_array()) << a.body;
  EXPECT_EQ(detail[0]["loc"], json::array({"body", "tarball"}));
}

TEST_F(AnUpdaterApi, RefusesAnUnknownFormFieldAndABodyThatIsNotAForm) {
  Start();
  EXPECT_EQ(Push("/update", Form("--form-string extra=1")).status, "400");
  Answer a = Curl(master_pem_, "-d x=1 " + Url("/update"));
  EXPECT_EQ(a.status, "400");
  EXPECT_EQ(a.Json()["detail"]["rule"], "multipart-content-type") << a.body;
  EXPECT_TRUE(ops_.Calls().empty());
  EXPECT_FALSE(api_->busy());
}

// --- operations ----------------------------------------------------------------------------

TEST_F(AnUpdaterApi, HandsAVerifiedUploadToOperationsAndPassesItsAnswerThrough) {
  api::Release r;
  r.slot = "active";
  r.sha = "deadbeef";
  r.id = "r2";
  ops_.update_answer = outcome::Updated{r, R"({"status":"ok"})"};
  Start();
  Answer a = Push("/update", Form("--form-string sha=deadbeef"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.Json(), api::UpdatedJson(r, R"({"status":"ok"})"));
  auto calls = ops_.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].op, "update");
  EXPECT_EQ(calls[0].sha256, digest_);
  EXPECT_EQ(calls[0].sha, "deadbeef");
  EXPECT_EQ(calls[0].size, tarball_.size());
  EXPECT_TRUE(calls[0].content == tarball_);
  EXPECT_EQ(calls[0].caller.cn, "decnet-master");
  EXPECT_EQ(calls[0].caller.fingerprint, master_.fingerprint);
  EXPECT_TRUE(Eventually([&] { return !api_->busy(); }));
  EXPECT_EQ(SpoolEntries(), 0u);
}

TEST_F(AnUpdaterApi, Passes409RolledBackThrough) {
  ops_.update_answer =
      outcome::RolledBack{{ErrorCode::kFailed, "gate-probe", "health gate failed"}, "probe: 503"};
  Start();
  Answer a = Push("/update", Form());
  EXPECT_EQ(a.status, "409");
  EXPECT_EQ(a.Json()["detail"]["rolled_back"], true);
  EXPECT_EQ(a.Json()["detail"]["error"], "health gate failed");
}

TEST_F(AnUpdaterApi, Passes500FailureThrough) {
  ops_.update_answer = outcome::Failed{{ErrorCode::kDenied, "extract-symlink", "bad archive"}, ""};
  Start();
  Answer a = Push("/update", Form());
  EXPECT_EQ(a.status, "500");
  EXPECT_EQ(a.Json()["detail"]["rolled_back"], false);
}

TEST_F(AnUpdaterApi, PassesARollbackAndIts404Through) {
  ops_.rollback_answer = outcome::NoPrevious{};
  Start();
  Answer a = Curl(master_pem_, "-X POST " + Url("/rollback"));
  EXPECT_EQ(a.status, "404");
  EXPECT_EQ(a.body, R"({"detail":"no previous release to roll back to"})");
  ASSERT_TRUE(Eventually([&] { return !api_->busy(); }));
  api::Release r;
  r.slot = "active";
  ops_.rollback_answer = outcome::Restored{r, "ok"};
  a = Curl(master_pem_, "-X POST " + Url("/rollback"));
  EXPECT_EQ(a.status, "200");
  EXPECT_EQ(a.Json()["status"], "rolled_back");
  EXPECT_EQ(ops_.Calls().size(), 2u);
}

TEST_F(AnUpdaterApi, ChecksConfirmSelfBeforeTheDigestOnUpdateSelf) {
  Start();
  Answer a = Push("/update-self", "-F tarball=@" + tarball_path_);  // neither confirm nor digest
  EXPECT_EQ(a.status, "400");
  EXPECT_EQ(a.Json()["detail"]["rule"], "confirm-self-required") << a.body;
  a = Push("/update-self", "-F tarball=@" + tarball_path_ + " --form-string confirm_self=yes");
  EXPECT_EQ(a.Json()["detail"]["rule"], "confirm-self-required") << a.body;
  a = Push("/update-self", "-F tarball=@" + tarball_path_ + " --form-string confirm_self=TRUE");
  EXPECT_EQ(a.status, "400");
  EXPECT_EQ(a.body, R"({"detail":"sha256 of the tarball is required"})");
  EXPECT_TRUE(ops_.Calls().empty());
}

TEST_F(AnUpdaterApi, RunsTheSelfRestartHookOnlyAfterTheReply) {
  Start();
  // The hook stands in for the restart that ends this process: held once it starts, it would
  // hold back (and curl would time out on) any reply still waiting behind it.
  ops_.HoldHook(true);
  Answer a = Push("/update-self", Form("--form-string confirm_self=True"));
  ASSERT_EQ(a.status, "200");
  EXPECT_EQ(a.body, R"({"status":"self_update_queued","via":"systemd"})");
  EXPECT_EQ(ops_.hooks, 0);
  EXPECT_TRUE(api_->busy());  // no update may start only to be killed by the restart
  ASSERT_TRUE(ops_.Await([&] { return ops_.hooks_entered == 1; }));
  EXPECT_TRUE(api_->busy()) << "still busy while the restart hook runs";
  EXPECT_EQ(Push("/update", Form()).status, "503");
  ops_.HoldHook(false);
  ASSERT_TRUE(ops_.Await([&] { return ops_.hooks == 1; }));
  EXPECT_TRUE(Eventually([&] { return !api_->busy(); }));
  EXPECT_EQ(ops_.Calls().at(0).op, "update-self");
}

// --- one at a time, /health stays up, the deadline -----------------------------------------

TEST_F(AnUpdaterApi, AnswersTwoHundredConcurrentHealthRequestsAndRefusesASecondUpdateWhileOneRuns) {
  ops_.update_answer = outcome::Updated{};
  Start();
  ops_.Hold();
  auto first = std::async(std::launch::async, [&] { return Push("/update", Form()); });
  ASSERT_TRUE(ops_.Await([&] { return ops_.entered == 1; }));

  std::string config;
  for (int i = 0; i < 200; ++i) config += "url = \"" + Url("/health") + "\"\noutput = /dev/null\n";
  std::string config_file = dir_.Write("parallel.cfg", config);
  Ran health = Shell(CurlCommand(worker_pem_,
                                 "--parallel --parallel-immediate --parallel-max 200 "
                                 "-w '%{http_code}\\n' -K " +
                                     config_file) +
                     " 2>/dev/null");
  int ok = 0;
  for (size_t at = 0; (at = health.out.find("200\n", at)) != std::string::npos; at += 4) ++ok;
  EXPECT_EQ(ok, 200) << health.out.substr(0, 400);

  // The failure shape; "error" also at the top, where DECNET's dashboard reads it.
  const std::string busy =
      R"({"detail":{"error":"an update is already running","rule":"update-busy","stderr":""},)"
      R"("error":"an update is already running","stderr":""})";
  for (const std::string& args : {Form() + Url("/update"), "-X POST " + Url("/rollback"),
                                  Form("-F confirm_self=true") + Url("/update-self")}) {
    Answer second = Curl(master_pem_, args);
    EXPECT_EQ(second.status, "503") << args;
    EXPECT_EQ(second.body, busy) << args;
  }
  EXPECT_EQ(Curl(master_pem_, Url("/releases")).status, "200");

  ops_.Release();
  Answer a = first.get();
  EXPECT_EQ(a.status, "200");
  EXPECT_EQ(ops_.Calls().size(), 1u);
}

TEST_F(AnUpdaterApi, AnswersAtTheDeadlineAndLetsTheOperationFinishAndRecordItsOutcome) {
  ops_.releases_after = {ReleaseRow("active", "r2", "2.0"), ReleaseRow("prev", "r1", "1.0")};
  Start(700ms);
  ops_.Hold();  // the operation cannot end before the test releases it: only the deadline answers
  Answer a = Push("/update", Form());
  EXPECT_EQ(a.status, "500");
  EXPECT_EQ(a.Json()["detail"]["rule"], "update-deadline") << a.body;
  EXPECT_EQ(a.Json()["detail"]["rolled_back"], false);
  EXPECT_EQ(ops_.finished, 0) << "answered while the operation was still held";
  EXPECT_TRUE(api_->busy());
  EXPECT_EQ(Push("/update", Form()).status, "503");

  ops_.Release();
  ASSERT_TRUE(Eventually([&] { return !api_->busy(); }));
  EXPECT_EQ(ops_.finished, 1);
  Answer releases = Curl(master_pem_, Url("/releases"));
  EXPECT_EQ(releases.Json()["releases"][0]["id"], "r2");
  Answer audit = Curl(master_pem_, Url("/audit"));
  ASSERT_EQ(audit.status, "200");
  json entries = audit.Json()["entries"];
  ASSERT_EQ(entries.size(), 2u) << audit.body;
  EXPECT_EQ(entries[0]["result"], "deadline");
  EXPECT_EQ(entries[0]["op"], "update");
  EXPECT_EQ(entries[1]["result"], "refused") << "the second update, while the first ran";
  EXPECT_EQ(entries[1]["rule"], "update-busy");
}

TEST_F(AnUpdaterApi, RecordsARefusedFormInTheAuditLogWithItsRule) {
  Start();
  Answer a = Push("/update", "-F tarball=@/dev/null ");
  EXPECT_EQ(a.status, "400") << a.body;
  Answer audit = Curl(master_pem_, Url("/audit"));
  json entries = audit.Json()["entries"];
  ASSERT_EQ(entries.size(), 1u) << audit.body;
  EXPECT_EQ(entries[0]["result"], "refused");
  EXPECT_EQ(entries[0]["rule"], "sha256-required");
  EXPECT_EQ(entries[0]["client"]["cn"], "decnet-master");
  EXPECT_EQ(ops_.Calls().size(), 0u) << "nothing reached the pipeline";
}

TEST_F(AnUpdaterApi, IsIdleTheMomentItsAnswerArrives) {
  ops_.releases_after = {ReleaseRow("active", "r2", "2.0")};
  Start();
  Answer a = Push("/update", Form());
  EXPECT_EQ(a.status, "200");
  // The flag is released and the snapshot taken before the reply is handed over: no wait,
  // no window in which the master's next request would be refused.
  EXPECT_FALSE(api_->busy()) << "still busy after the answer was sent";
  EXPECT_EQ(Curl(master_pem_, Url("/releases")).Json()["releases"][0]["id"], "r2")
      << "the answer's outcome is visible with the answer";
  EXPECT_EQ(Push("/update", Form()).status, "200");
}

TEST_F(AnUpdaterApi, FinishesTheOperationWhenTheClientDisconnects) {
  ops_.releases_after = {ReleaseRow("active", "r2", "2.0")};
  Start();
  ops_.Hold();
  const pid_t client = CurlInBackground(master_pem_, Form() + Url("/update"));
  ASSERT_GT(client, 0);
  ASSERT_TRUE(ops_.Await([&] { return ops_.entered == 1; }));
  ASSERT_EQ(::kill(client, SIGKILL), 0);  // the client leaves while the operation is held
  ASSERT_TRUE(test::WaitForExit(client));
  ops_.Release();
  ASSERT_TRUE(Eventually([&] { return !api_->busy(); }));
  EXPECT_EQ(ops_.finished, 1);
  EXPECT_EQ(Curl(master_pem_, Url("/health")).Json()["releases"][0]["id"], "r2");
}

TEST_F(AnUpdaterApi, ReleasesTheBusyFlagWhenTheUploadIsCutShort) {
  Start();
  std::string big = dir_.Write("big.tar.gz", std::string(8 << 20, 'x'));
  // At 1 MB/s the upload lasts 8 s: it is cut once its first chunk has reached the form.
  const pid_t client =
      CurlInBackground(master_pem_, "--limit-rate 1M -F tarball=@" + big +
                                        " --form-string sha256=" + digest_ + " " + Url("/update"));
  ASSERT_GT(client, 0);
  ASSERT_TRUE(AwaitUploadStarted());
  EXPECT_TRUE(api_->busy());
  ASSERT_EQ(::kill(client, SIGKILL), 0);
  ASSERT_TRUE(test::WaitForExit(client));
  EXPECT_TRUE(Eventually([&] { return !api_->busy(); }));
  EXPECT_EQ(SpoolEntries(), 0u);
  EXPECT_TRUE(ops_.Calls().empty());
}

// --- our extensions ------------------------------------------------------------------------

TEST_F(AnUpdaterApi, ServesMetricsInThePrometheusTextFormat) {
  ops_.update_answer = outcome::Updated{};
  Start();
  ASSERT_EQ(Push("/update", Form()).status, "200");
  ASSERT_TRUE(Eventually([&] { return !api_->busy(); }));
  ASSERT_EQ(Push("/update", "-F tarball=@" + tarball_path_).status, "400");
  Answer m = Curl(master_pem_, Url("/metrics"));
  ASSERT_EQ(m.status, "200");
  // Every line: a comment (# HELP / # TYPE) or `name{label="value",...} number`.
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*\})? -?[0-9]+(\.[0-9]+)?$)");
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  std::istringstream in(m.body);
  int samples = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("#")) {
      EXPECT_TRUE(std::regex_match(line, comment)) << line;
    } else {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
      ++samples;
    }
  }
  EXPECT_GE(samples, 15);
  EXPECT_NE(m.body.find("decnet_updater_updates_total{op=\"update\",result=\"updated\"} 1\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("decnet_updater_updates_total{op=\"update\",result=\"refused\"} 1\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("decnet_updater_update_duration_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("decnet_updater_active_release_info{id=\"r1\",version=\"1.0\"} 1\n"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("decnet_updater_helper_up 1\n"), std::string::npos);
}

TEST_F(AnUpdaterApi, ServesTheLastAuditEntriesToTheMaster) {
  Start();
  for (const char* result : {"updated", "rolled_back"}) {
    AuditEntry entry;
    entry.op = "update";
    entry.result = result;
    entry.client_cn = "decnet-master";
    ASSERT_TRUE(audit_->Append(entry).has_value());
  }
  Answer a = Curl(master_pem_, Url("/audit"));
  ASSERT_EQ(a.status, "200");
  json entries = a.Json()["entries"];
  ASSERT_EQ(entries.size(), 2u) << a.body;
  EXPECT_EQ(entries[0]["result"], "updated");
  EXPECT_EQ(entries[1]["result"], "rolled_back");
}

}  // namespace
}  // namespace decnet::daemon
