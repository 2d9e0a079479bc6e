// The mTLS HTTP server over real sockets on 127.0.0.1, with real curl and openssl s_client
// processes as clients and certificates made at test time. A tiny Application stands in for
// the update logic: GET /health for anyone, POST /upload for the master only, streaming the
// body into a counter and replying with the byte count from another thread.
#include "daemon/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>

#include "daemon/tls.h"
#include "tests/daemon/test_pki.h"
#include "tests/support/loopback.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

using decnet::testing::CertSpec;
using decnet::testing::Issued;
using decnet::testing::PemPaths;
using decnet::testing::TempDir;
using decnet::testing::TestCa;
using namespace std::chrono_literals;

// The drain stops at the first read past Limits::linger_bytes (4 MiB); one read is 64 KiB.
constexpr std::uint64_t kBodyChunkSlack = 64 * 1024;

struct Ran {
  int exit_code = -1;
  std::string out;
};

// Runs a shell command, returns its exit code and standard output.
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

// The server's counters (ServerStats) change on its I/O threads and signal nothing: waits on
// them are bounded polls (test::Eventually). What the test's own Application does is waited
// for on its condition variable (TestApp::Await).
using test::Eventually;

class TestApp : public Application {
 public:
  ~TestApp() override {
    Release();
    for (std::thread& t : workers_) t.join();
  }

  Route OnHead(const RequestHead& head, const Peer& peer) override {
    ++heads;
    if (head.verb == "GET" && head.target == "/health")
      return Response{200, "application/json", R"({"status":"ok"})"};
    if (head.verb != "POST" || head.target != "/upload")
      return Response{404, "application/json", R"({"detail":"Not Found"})"};
    if (!peer.master)
      return Response{403, "application/json", R"({"detail":"master certificate required"})"};
    if (busy.exchange(true))
      return Response{503, "application/json",
                      R"({"detail":{"error":"an update is already running"}})"};
    return std::make_unique<Consumer>(*this);
  }

  // Lets held updates reply.
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  // Waits until `done` holds; it is re-checked whenever an update finishes reading or
  // replies. False after test::kHangBound.
  template <typename F>
  bool Await(F done) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, test::kHangBound, done);
  }

  std::atomic<int> heads{0};
  std::atomic<bool> busy{false};
  std::atomic<std::uint64_t> bytes{0};  // body bytes handed to consumers, all requests
  std::atomic<int> finishing{0};        // updates running off the I/O thread
  std::atomic<int> replies{0};          // reply callbacks invoked
  std::atomic<int> abandoned{0};
  bool hold = false;  // updates wait for Release() before replying

 private:
  class Consumer : public BodyConsumer {
   public:
    explicit Consumer(TestApp& app) : app_(app) {}
    ConsumeResult Consume(std::string_view chunk) override {
      count_ += chunk.size();
      app_.bytes += chunk.size();
      return {};
    }
    void Finish(Reply reply) override {
      TestApp& app = app_;
      std::uint64_t count = count_;
      std::lock_guard lock(app.mu_);
      ++app.finishing;
      app.cv_.notify_all();
      app.workers_.emplace_back([&app, count, reply] {
        {
          std::unique_lock lock(app.mu_);
          app.cv_.wait(lock, [&] { return !app.hold || app.released_; });
        }
        app.busy = false;
        reply(Response{200, "application/json", "{\"bytes\":" + std::to_string(count) + "}"});
        std::lock_guard lock(app.mu_);
        ++app.replies;
        app.cv_.notify_all();
      });
    }
    void Abandon(const Error&) override {
      ++app_.abandoned;
      app_.busy = false;
    }

   private:
    TestApp& app_;
    std::uint64_t count_ = 0;
  };

  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<std::thread> workers_;
};

class AnHttpServer : public ::testing::Test {
 protected:
  AnHttpServer() {
    Issued server = ca_.Issue(CertSpec{{"updater"}, true});
    auto paths = WritePem(dir_, "server", server);
    files_ = TlsFiles{dir_.Write("ca.crt", ca_.ca().cert_pem), paths.cert, paths.key};
    master_ = ca_.Issue(CertSpec{{"decnet-master"}});
    worker_ = ca_.Issue(CertSpec{{"worker"}});
    master_pem_ = WritePem(dir_, "master", master_);
    worker_pem_ = WritePem(dir_, "worker", worker_);
  }

  // Starts a server on an ephemeral port; `loosen` may adjust the TLS context first.
  std::unique_ptr<HttpServer> StartServer(ServerConfig config, std::uint16_t& port,
                                          void (*loosen)(SSL_CTX*) = nullptr) {
    auto ctx = MakeServerTlsContext(files_);
    EXPECT_TRUE(ctx.has_value());
    if (!ctx) return nullptr;
    if (loosen) loosen(ctx->get());
    auto server = HttpServer::Create(std::move(*ctx), std::move(config), app_);
    EXPECT_TRUE(server.has_value());
    if (!server) return nullptr;
    auto bound = (*server)->Start("127.0.0.1", 0);
    EXPECT_TRUE(bound.has_value()) << (bound ? "" : bound.error().message);
    port = bound.value_or(0);
    return std::move(*server);
  }

  void Start(ServerConfig config = {}) { server_ = StartServer(std::move(config), port_); }

  std::string Url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

  // curl with the CA, a client certificate (or none), and a bound on its run time.
  std::string Curl(const PemPaths* client, const std::string& args) const {
    std::string cmd = "curl -sS --max-time 20 --cacert " + files_.ca_file;
    if (client) cmd += " --cert " + client->cert + " --key " + client->key;
    return cmd + " " + args;
  }

  // The status code curl saw ("000" when there was no HTTP response).
  std::string Status(const PemPaths* client, const std::string& args) const {
    return Shell(Curl(client, "-o /dev/null -w '%{http_code}' " + args) + " 2>/dev/null").out;
  }

  PemPaths Extra(const std::string& name, const Issued& issued) {
    return WritePem(dir_, name, issued);
  }

  std::string BigFile(std::size_t size) {
    return dir_.Write("big-" + std::to_string(size), std::string(size, 'x'));
  }

  TestCa ca_{"decnet-test-ca"};
  TempDir dir_;
  TlsFiles files_;
  Issued master_, worker_;
  PemPaths master_pem_, worker_pem_;
  TestApp app_;  // declared before the server: outlives it
  std::uint16_t port_ = 0;
  std::unique_ptr<HttpServer> server_;
};

// --- identity ------------------------------------------------------------------------------

TEST_F(AnHttpServer, RefusesTheHandshakeOfAClientWithoutACertificate) {
  Start();
  EXPECT_EQ(Status(nullptr, Url("/health")), "000");
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshake_failures >= 1; }));
  EXPECT_EQ(app_.heads, 0);
}

TEST_F(AnHttpServer, RefusesTheHandshakeOfAClientFromAnotherCa) {
  Start();
  TestCa other("decnet-test-ca");
  PemPaths pem = Extra("other", other.Issue(CertSpec{{"decnet-master"}}));
  EXPECT_EQ(Status(&pem, Url("/health")), "000");
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshake_failures >= 1; }));
  EXPECT_EQ(app_.heads, 0);
}

TEST_F(AnHttpServer, RefusesTheHandshakeOfAnExpiredClientCertificate) {
  Start();
  PemPaths pem = Extra("expired", ca_.Issue(CertSpec{{"decnet-master"}, false, -48h, -1h}));
  EXPECT_EQ(Status(&pem, Url("/health")), "000");
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshake_failures >= 1; }));
  EXPECT_EQ(app_.heads, 0);
}

TEST_F(AnHttpServer, RefusesTheHandshakeOfANotYetValidClientCertificate) {
  Start();
  PemPaths pem = Extra("future", ca_.Issue(CertSpec{{"decnet-master"}, false, 1h, 48h}));
  EXPECT_EQ(Status(&pem, Url("/health")), "000");
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshake_failures >= 1; }));
  EXPECT_EQ(app_.heads, 0);
}

TEST_F(AnHttpServer, AnswersHealthToAnyCaSignedClientButTheMasterRouteOnlyToTheMaster) {
  Start();
  EXPECT_EQ(Status(&worker_pem_, Url("/health")), "200");
  std::string body = Shell(Curl(&worker_pem_, "-d x " + Url("/upload"))).out;
  EXPECT_EQ(body, R"({"detail":"master certificate required"})");
  EXPECT_EQ(Status(&worker_pem_, "-d x " + Url("/upload")), "403");
  EXPECT_EQ(Status(&master_pem_, "-d hello " + Url("/upload")), "200");
  EXPECT_EQ(Status(&master_pem_, Url("/nowhere")), "404");
}

TEST_F(AnHttpServer, RefusesTheMasterCnWhenPinsAreConfiguredAndItsFingerprintIsNotPinned) {
  ServerConfig config;
  config.master_pins = {worker_.fingerprint};
  Start(config);
  EXPECT_EQ(Status(&master_pem_, "-d x " + Url("/upload")), "403");
}

TEST_F(AnHttpServer, ServesAPinnedFingerprintWhateverItsCn) {
  ServerConfig config;
  std::string colons;  // the pin as `openssl x509 -fingerprint -sha256` prints it
  for (size_t i = 0; i < worker_.fingerprint.size(); i += 2)
    colons += (i ? ":" : "") + worker_.fingerprint.substr(i, 2);
  config.master_pins = {colons};
  Start(config);
  EXPECT_EQ(Shell(Curl(&worker_pem_, "-d hello " + Url("/upload"))).out, R"({"bytes":5})");
}

TEST_F(AnHttpServer, RefusesTls10And11ThatALoosenedServerAcceptsFromTheSameClient) {
  Start();
  std::uint16_t loose_port = 0;
  auto loose = StartServer({}, loose_port, [](SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
  });
  ASSERT_TRUE(loose);
  for (const char* version : {"-tls1", "-tls1_1"}) {
    auto s_client = [&](std::uint16_t port) {
      return Shell(
          "printf 'GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | "
          "timeout 10 openssl s_client -quiet " +
          std::string(version) + " -cipher 'DEFAULT:@SECLEVEL=0' -cert " + worker_pem_.cert +
          " -key " + worker_pem_.key + " -CAfile " + files_.ca_file +
          " -connect 127.0.0.1:" + std::to_string(port) + " 2>&1");
    };
    Ran refused = s_client(port_);
    EXPECT_EQ(refused.out.find("HTTP/1.1 200"), std::string::npos) << version << refused.out;
    EXPECT_NE(refused.exit_code, 0) << version;
    Ran control = s_client(loose_port);
    EXPECT_NE(control.out.find("HTTP/1.1 200"), std::string::npos) << version << control.out;
  }
  EXPECT_GE(server_->Stats().handshake_failures, 2u);
}

// --- protocol manners ----------------------------------------------------------------------

// A client that writes its whole body as fast as it can and reads only when it can no longer
// write: the adversary the graceful close is for.
struct FastWriter {
  std::uint64_t sent = 0;
  std::string response;
};

FastWriter WriteWithoutWaiting(std::uint16_t port, SSL_CTX* ctx, std::uint64_t body) {
  FastWriter out;
  signal(SIGPIPE, SIG_IGN);  // the server closing under our writes must not kill the test
  const int fd = test::ConnectLoopback(port);
  if (fd < 0) return out;
  decnet::testing::SslPtr ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) == 1) {
    std::string head =
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body) + "\r\n\r\n";
    SSL_write(ssl.get(), head.data(), static_cast<int>(head.size()));
    std::string chunk(64 * 1024, 'z');
    while (out.sent < body) {
      int n = SSL_write(ssl.get(), chunk.data(), static_cast<int>(chunk.size()));
      if (n <= 0) break;
      out.sent += static_cast<std::uint64_t>(n);
    }
    char buf[4096];
    for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) out.response.append(buf, n);
  }
  close(fd);
  return out;
}

// A TLS client on a raw socket, for requests written (and connections left) exactly when a
// test says; its reads give up after test::kHangBound.
class TlsClient {
 public:
  TlsClient(std::uint16_t port, SSL_CTX* ctx)
      : fd_(test::ConnectLoopback(port, test::kHangBound.count() / 1000)) {
    if (fd_ < 0) return;
    ssl_.reset(SSL_new(ctx));
    SSL_set_fd(ssl_.get(), fd_);
    if (SSL_connect(ssl_.get()) != 1) ssl_.reset();
  }
  ~TlsClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return ssl_ != nullptr; }
  bool Write(std::string_view bytes) {
    return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }
  enum class Ended { kClosedByServer, kClientTimedOut };
  // Reads (and drops) until the server closes the connection or the read times out.
  Ended ReadUntilClosed() {
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl_.get(), buf, sizeof buf);
      if (n > 0) continue;
      const bool timed_out = SSL_get_error(ssl_.get(), n) == SSL_ERROR_SYSCALL &&
                             (errno == EAGAIN || errno == EWOULDBLOCK);
      return timed_out ? Ended::kClientTimedOut : Ended::kClosedByServer;
    }
  }

 private:
  int fd_ = -1;
  decnet::testing::SslPtr ssl_;
};

TEST_F(AnHttpServer, AnswersAForbiddenOneGibBodySentWithoutWaitingWith403AndCutsItOff) {
  Start();
  auto ctx = decnet::testing::MakeClientContext(ca_, &worker_);
  FastWriter client = WriteWithoutWaiting(port_, ctx.get(), 1ull << 30);
  ServerStats stats = server_->Stats();
  EXPECT_EQ(client.response.substr(0, 12), "HTTP/1.1 403") << client.response;
  EXPECT_EQ(app_.bytes, 0u);
  EXPECT_LE(stats.lingered_bytes, (4u << 20) + kBodyChunkSlack);
  EXPECT_LT(client.sent, 64u << 20) << "the client was stopped long before 1 GiB";
  std::printf("client wrote %llu bytes (socket buffers included); server drained %llu\n",
              static_cast<unsigned long long>(client.sent),
              static_cast<unsigned long long>(stats.lingered_bytes));
}

TEST_F(AnHttpServer, AnswersCurlStreamingAForbiddenOneGibBodyWith403WithoutReadingIt) {
  Start();
  Ran ran = Shell("head -c 1073741824 /dev/zero | " +
                  Curl(&worker_pem_,
                       "-H 'Expect:' -X POST -T - -o /dev/null "
                       "-w '%{http_code}' " +
                           Url("/upload")) +
                  " 2>/dev/null");
  EXPECT_EQ(ran.out, "403");
  EXPECT_EQ(app_.bytes, 0u);
  EXPECT_LE(server_->Stats().lingered_bytes, (4u << 20) + kBodyChunkSlack);
}

TEST_F(AnHttpServer, SendsContinueToTheAuthorisedCallerAndThenReadsTheBody) {
  Start();
  std::string file = BigFile(2 << 20);
  Ran ran = Shell(Curl(&master_pem_,
                       "-v --expect100-timeout 15 -H 'Expect: 100-continue' "
                       "--data-binary @" +
                           file + " " + Url("/upload")) +
                  " 2>&1");
  EXPECT_NE(ran.out.find("HTTP/1.1 100 Continue"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find(R"({"bytes":2097152})"), std::string::npos) << ran.out;
}

TEST_F(AnHttpServer, RefusesAForbiddenCallerWithoutContinueSoItNeverSendsTheBody) {
  Start();
  std::string file = BigFile(2 << 20);
  Ran ran = Shell(Curl(&worker_pem_,
                       "-v --expect100-timeout 15 -H 'Expect: 100-continue' "
                       "--data-binary @" +
                           file + " -w '\\nupload=%{size_upload}' " + Url("/upload")) +
                  " 2>&1");
  EXPECT_EQ(ran.out.find("100 Continue"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("HTTP/1.1 403"), std::string::npos) << ran.out;
  EXPECT_NE(ran.out.find("upload=0"), std::string::npos) << ran.out;
  EXPECT_EQ(app_.bytes, 0u);
}

TEST_F(AnHttpServer, Answers413ToAContentLengthOverTheCapWithoutReadingIt) {
  ServerConfig config;
  config.limits.body_bytes = 1 << 20;
  Start(config);
  std::string file = BigFile(2 << 20);
  EXPECT_EQ(Status(&master_pem_, "-H 'Expect:' --data-binary @" + file + " " + Url("/upload")),
            "413");
  EXPECT_EQ(app_.bytes, 0u);
  EXPECT_EQ(app_.abandoned, 1);
  // The cap is checked after authorisation: a forbidden caller still gets its 403.
  EXPECT_EQ(Status(&worker_pem_, "-H 'Expect:' --data-binary @" + file + " " + Url("/upload")),
            "403");
}

TEST_F(AnHttpServer, CutsOffAChunkedBodyAt413WhenItGrowsOverTheCap) {
  ServerConfig config;
  config.limits.body_bytes = 1 << 20;
  Start(config);
  EXPECT_EQ(Status(&master_pem_,
                   "-H 'Expect:' -X POST -T - " + Url("/upload") + " < " + BigFile(3 << 20)),
            "413");
  EXPECT_LE(app_.bytes, 1u << 20);
  EXPECT_EQ(app_.abandoned, 1);
  EXPECT_EQ(app_.replies, 0);
}

TEST_F(AnHttpServer, Answers431ToHeadersOverTheCap) {
  Start();
  std::string big(20000, 'a');
  EXPECT_EQ(Status(&master_pem_, "-H 'X-Big: " + big + "' " + Url("/health")), "431");
  EXPECT_EQ(app_.heads, 0);
}

TEST_F(AnHttpServer, KeepsAConnectionAliveAcrossRequestsWithoutABody) {
  Start();
  Ran ran =
      Shell(Curl(&worker_pem_, "-o /dev/null -o /dev/null -w '%{http_code}:%{num_connects} ' " +
                                   Url("/health") + " " + Url("/health")));
  EXPECT_EQ(ran.out, "200:1 200:0 ");
}

// --- concurrency ---------------------------------------------------------------------------

TEST_F(AnHttpServer, AnswersTwoHundredConcurrentHealthRequestsAndRefusesASecondUpdate) {
  ServerConfig server;  // all 200 come from 127.0.0.1: lift the per-source cap on handshakes
  server.limits.max_pending_per_source = 256;
  Start(server);
  app_.hold = true;
  auto first = std::async(std::launch::async,
                          [&] { return Shell(Curl(&master_pem_, "-d hello " + Url("/upload"))); });
  ASSERT_TRUE(app_.Await([&] { return app_.finishing == 1; }));

  std::string config;
  for (int i = 0; i < 200; ++i) config += "url = \"" + Url("/health") + "\"\noutput = /dev/null\n";
  std::string config_file = dir_.Write("parallel.cfg", config);
  Ran health = Shell(Curl(&worker_pem_,
                          "--parallel --parallel-immediate --parallel-max 200 "
                          "-w '%{http_code}\\n' -K " +
                              config_file) +
                     " 2>/dev/null");
  int ok = 0;
  for (size_t at = 0; (at = health.out.find("200\n", at)) != std::string::npos; at += 4) ++ok;
  EXPECT_EQ(ok, 200) << health.out.substr(0, 400);
  EXPECT_GE(server_->Stats().peak_connections, 50u);

  Ran second = Shell(Curl(&master_pem_, "-d again -w ' %{http_code}' " + Url("/upload")));
  EXPECT_EQ(second.out, R"({"detail":{"error":"an update is already running"}} 503)");

  app_.Release();
  EXPECT_EQ(first.get().out, R"({"bytes":5})");
}

TEST_F(AnHttpServer, StillRunsTheReplyWhenTheClientLeftDuringTheUpdate) {
  Start();
  app_.hold = true;
  {
    auto ctx = decnet::testing::MakeClientContext(ca_, &master_);
    TlsClient client(port_, ctx.get());
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.Write("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
    ASSERT_TRUE(app_.Await([&] { return app_.finishing == 1; }));
  }  // the client leaves while the update is held
  EXPECT_EQ(app_.replies, 0);
  app_.Release();
  ASSERT_TRUE(app_.Await([&] { return app_.replies == 1; }));
  EXPECT_TRUE(Eventually([&] { return server_->Stats().open_connections == 0; }));
  EXPECT_EQ(Status(&worker_pem_, Url("/health")), "200");
}

TEST_F(AnHttpServer, DropsAReplyThatArrivesAfterItStopped) {
  Start();
  app_.hold = true;
  auto client = std::async(std::launch::async, [&] {
    return Shell(Curl(&master_pem_, "-d hello " + Url("/upload")) + " 2>/dev/null");
  });
  ASSERT_TRUE(app_.Await([&] { return app_.finishing == 1; }));
  server_->Stop();
  app_.Release();
  ASSERT_TRUE(app_.Await([&] { return app_.replies == 1; }));
  EXPECT_EQ(server_->Stats().dropped_replies, 1u);
  client.get();
}

// Connections that have not completed a handshake hold no authenticated slot; the caps and
// the flood itself are tested in http_flood_test.cc.
TEST_F(AnHttpServer, DoesNotCountIdleConnectionsAgainstTheAuthenticatedCap) {
  ServerConfig config;
  config.limits.max_connections = 2;
  Start(config);
  std::vector<int> idle;
  for (int i = 0; i < 2; ++i) {
    const int fd = test::ConnectLoopback(port_);
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  ASSERT_TRUE(Eventually([&] { return server_->Stats().pending_connections == 2; }));
  EXPECT_EQ(Status(&worker_pem_, Url("/health")), "200");
  EXPECT_EQ(server_->Stats().refused_over_cap, 0u);
  for (int fd : idle) close(fd);
  ASSERT_TRUE(Eventually([&] { return server_->Stats().open_connections == 0; }));
}

TEST_F(AnHttpServer, CutsOffAClientThatStallsInItsHeaderAfterTheTimeout) {
  ServerConfig config;
  config.limits.header_timeout = 500ms;
  Start(config);
  auto ctx = decnet::testing::MakeClientContext(ca_, &worker_);
  TlsClient client(port_, ctx.get());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write("GET /health HTTP/1.1\r\n"));
  // The client never sends the rest nor closes: only the server's timeout can end the read,
  // well before the client's own receive timeout (test::kHangBound).
  EXPECT_EQ(client.ReadUntilClosed(), TlsClient::Ended::kClosedByServer);
  ASSERT_TRUE(Eventually([&] { return server_->Stats().open_connections == 0; }));
  EXPECT_EQ(app_.heads, 0);
}

}  // namespace
}  // namespace decnet::daemon
