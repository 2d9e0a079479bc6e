// What the rollout does to one host, against a scripted TLS updater made in the test: the
// update-self wait, decided by the build identity /health shows, and the dry run's unit
// differences, computed from what /releases lists.
#include "fleet/host_ops.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "fleet/worker_client.h"
#include "tests/daemon/test_pki.h"

namespace decnet::fleet {
namespace {

using nlohmann::json;
using testing::CertSpec;
using testing::Issued;
using testing::TempDir;
using testing::TestCa;
using namespace std::chrono_literals;

// An answer: status and JSON body.
struct Answer {
  int status = 200;
  std::string body;
};

// A TLS updater that reads each request whole and answers it with what `script` returns for
// its path and how many times that path was asked before (0 for the first).
class ScriptedUpdater {
 public:
  using Script = std::function<Answer(const std::string& path, int nth)>;

  ScriptedUpdater(const TestCa& ca, const Issued& server, Script script)
      : script_(std::move(script)) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx_.get(), server.cert.get());
    SSL_CTX_use_PrivateKey(ctx_.get(), server.key.get());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_.get()), ca.ca().cert.get());
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedUpdater() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int Asked(const std::string& path) {
    std::lock_guard lock(mu_);
    return asked_[path];
  }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      testing::SslPtr ssl(SSL_new(ctx_.get()));
      SSL_set_fd(ssl.get(), c);
      if (SSL_accept(ssl.get()) == 1) Handle(ssl.get());
      ERR_clear_error();
      ::close(c);
    }
  }

  void Handle(SSL* ssl) {
    std::string data;
    char buf[65536];
    auto read_more = [&] {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
      return true;
    };
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos)
      if (!read_more()) return;
    const std::string head = data.substr(0, head_end);
    const size_t sp = head.find(' ');
    const std::string path = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
    size_t length = 0;
    if (auto cl = head.find("Content-Length: "); cl != std::string::npos)
      length = std::stoul(head.substr(cl + 16));
    while (data.size() < head_end + 4 + length)
      if (!read_more()) return;
    int nth;
    {
      std::lock_guard lock(mu_);
      nth = asked_[path]++;
    }
    const Answer a = script_(path, nth);
    const std::string answer =
        "HTTP/1.1 " + std::to_string(a.status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(a.body.size()) +
        "\r\nConnection: close\r\n\r\n" + a.body;
    SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
    SSL_shutdown(ssl);
  }

  Script script_;
  testing::CtxPtr ctx_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, int> asked_;
};

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

class AHostOperation : public ::testing::Test {
 protected:
  AHostOperation()
      : ca_("fleet-host-ops-ca"),
        server_(ca_.Issue(CertSpec{{"updater"}, true})),
        master_(ca_.Issue(CertSpec{{"decnet-master"}, false})) {
    std::signal(SIGPIPE, SIG_IGN);
    auto pem = testing::WritePem(dir_, "master", master_);
    auto tls = ClientTls::Load({pem.cert, pem.key, ""});
    EXPECT_TRUE(tls) << tls.error().message;
    tls_ = std::move(*tls);
    release_ = FileOf("service.tgz", "a service release", "1.2.0", "service");
    build_ = FileOf("self.tgz", "an updater build", "2.0.0", "updater");
    settings_.tls = &tls_;
    settings_.release = &release_;
    settings_.timeouts.connect = 5s;
    settings_.timeouts.io = 5s;
    settings_.timeouts.response = 10s;
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

  Target At(const ScriptedUpdater& u) {
    return Target{"w1", "127.0.0.1", u.port(), server_.fingerprint};
  }

  // A worker that updates, queues update-self, then answers /health with `health(nth)`.
  HostOutcome PushWithSelf(const std::function<Answer(int nth)>& health,
                           Answer self = {200, kQueued}) {
    settings_.self_release = &build_;
    ScriptedUpdater worker(ca_, server_, [&](const std::string& path, int nth) -> Answer {
      if (path == "/update") return {200, kUpdated};
      if (path == "/update-self") return self;
      if (path == "/health") return health(nth);
      return {404, R"({"detail":"Not Found"})"};
    });
    HostOutcome o = UpdateHost(At(worker), settings_, progress_);
    self_asked_ = worker.Asked("/update-self");
    return o;
  }

  TempDir dir_;
  TestCa ca_;
  Issued server_;
  Issued master_;
  ClientTls tls_;
  ReleaseFile release_;
  ReleaseFile build_;
  PushSettings settings_;
  NullProgress progress_;
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
    ScriptedUpdater worker(ca_, server_, [&](const std::string& path, int) -> Answer {
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
