// The pinned client against a tiny TLS updater made in the test: it requires the master's
// certificate, answers /health, swallows /update while counting every request byte.
#include "fleet/worker_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <thread>

#include "fleet/host_ops.h"
#include "tests/daemon/test_pki.h"

namespace decnet::fleet {
namespace {

using testing::CertSpec;
using testing::Issued;
using testing::TempDir;
using testing::TestCa;

class TinyUpdater {
 public:
  struct Seen {
    std::uint64_t request_bytes = 0;  // application bytes read, all connections
    int connections = 0;              // completed handshakes
    std::string client_cn;
    std::string last_body;
    std::string last_path;
  };

  TinyUpdater(const TestCa& ca, const Issued& server, int update_status)
      : update_status_(update_status) {
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
  ~TinyUpdater() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  Seen seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      testing::SslPtr ssl(SSL_new(ctx_.get()));
      SSL_set_fd(ssl.get(), c);
      if (SSL_accept(ssl.get()) == 1) {
        {
          std::lock_guard lock(mu_);
          ++seen_.connections;
          X509* peer = SSL_get1_peer_certificate(ssl.get());
          char cn[256] = {0};
          if (peer) X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, 255);
          X509_free(peer);
          seen_.client_cn = cn;
        }
        Handle(ssl.get());
      }
      ERR_clear_error();
      ::close(c);
    }
  }

  void Handle(SSL* ssl) {
    std::string data;
    char buf[65536];
    auto read_more = [&]() {
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
      std::lock_guard lock(mu_);
      seen_.request_bytes += static_cast<std::uint64_t>(n);
      return true;
    };
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos)
      if (!read_more()) return;
    const std::string head = data.substr(0, head_end);
    const std::string path =
        head.substr(head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
    size_t length = 0;
    if (auto cl = head.find("Content-Length: "); cl != std::string::npos)
      length = std::stoul(head.substr(cl + 16));
    while (data.size() < head_end + 4 + length)
      if (!read_more()) return;
    {
      std::lock_guard lock(mu_);
      seen_.last_path = path;
      seen_.last_body = data.substr(head_end + 4);
    }
    std::string body;
    int status = 200;
    if (path == "/health") {
      body = R"({"status":"ok","role":"updater","version":"0.1.0","releases":[]})";
    } else if (path == "/update") {
      status = update_status_;
      body =
          status == 200
              ? R"({"status":"updated","release":{"slot":"active","version":"1.2.0"},"probe":""})"
              : R"({"error":"health gate failed","stderr":"","detail":{"error":"health gate failed","stderr":"","rolled_back":true,"rule":"gate-unhealthy"}})";
    } else {
      status = 404;
      body = R"({"detail":"Not Found"})";
    }
    const std::string answer =
        "HTTP/1.1 " + std::to_string(status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
    SSL_shutdown(ssl);
  }

  int update_status_;
  testing::CtxPtr ctx_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  Seen seen_;
};

class APinnedClient : public ::testing::Test {
 protected:
  APinnedClient()
      : ca_("fleet-test-ca"),
        server_(ca_.Issue(CertSpec{{"updater"}, true})),
        master_(ca_.Issue(CertSpec{{"decnet-master"}, false})) {
    // As decnet-rollout does: a peer that hangs up is an error, not a death.
    std::signal(SIGPIPE, SIG_IGN);
    auto pem = testing::WritePem(dir_, "master", master_);
    auto tls = ClientTls::Load({pem.cert, pem.key, ""});
    EXPECT_TRUE(tls) << tls.error().message;
    tls_ = std::move(*tls);
    // A 3 MiB "tarball": random bytes, so that nothing in it looks like a boundary.
    std::string bytes(3 * 1024 * 1024 + 17, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    tarball_ = bytes;
    release_.path = dir_.Write("r.tgz", bytes);
    release_.file_name = "r.tgz";
    release_.size = bytes.size();
    release_.sha256 = *FileSha256(release_.path, nullptr);
    release_.descriptor = "{\"format\":1,\"note\":\"descriptor bytes\"}\n";
    release_.signatures = {"ed25519 0123456789abcdef SIGNATURE-ONE",
                           "ed25519 fedcba9876543210 SIGNATURE-TWO"};
    release_.version = "1.2.0";
    settings_.tls = &tls_;
    settings_.release = &release_;
    settings_.timeouts.connect = std::chrono::seconds(5);
    settings_.timeouts.io = std::chrono::seconds(5);
    settings_.timeouts.response = std::chrono::seconds(10);
  }

  Target At(const TinyUpdater& u, const std::string& fingerprint) {
    return Target{"w1", "127.0.0.1", u.port(), fingerprint};
  }

  TempDir dir_;
  TestCa ca_;
  Issued server_;
  Issued master_;
  ClientTls tls_;
  ReleaseFile release_;
  std::string tarball_;
  PushSettings settings_;
  NullProgress progress_;
};

TEST_F(APinnedClient, RefusesAWrongPinWithoutWritingASingleRequestByte) {
  TinyUpdater updater(ca_, server_, 200);
  const std::string wrong(64, 'b');
  auto conn = PinnedConnection::Open(tls_, At(updater, wrong), settings_.timeouts);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().rule, "pin-mismatch");
  EXPECT_NE(conn.error().message.find(server_.fingerprint), std::string::npos);

  HostOutcome o = UpdateHost(At(updater, wrong), settings_, progress_);
  EXPECT_EQ(o.result, HostResult::kFailed);
  EXPECT_EQ(o.failure, FailureKind::kPinMismatch);
  EXPECT_EQ(o.bytes_sent, 0u);
  // Let the server notice both connections end, then: handshakes done, not one byte read.
  for (int i = 0; i < 50 && updater.seen().connections < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(updater.seen().connections, 2);
  EXPECT_EQ(updater.seen().request_bytes, 0u);
}

TEST_F(APinnedClient, UploadsTheWholeBodyWithDescriptorAndSignaturesBeforeTheTarball) {
  TinyUpdater updater(ca_, server_, 200);
  std::uint64_t last_total = 0, last_sent = 0;
  class Recording final : public ProgressSink {
   public:
    std::uint64_t* sent;
    std::uint64_t* total;
    void Phase(const std::string&, std::string_view) override {}
    void Bytes(const std::string&, std::uint64_t s, std::uint64_t t) override {
      *sent = s;
      *total = t;
    }
    void Finished(const HostOutcome&) override {}
  } recording;
  recording.sent = &last_sent;
  recording.total = &last_total;
  HostOutcome o = UpdateHost(At(updater, server_.fingerprint), settings_, recording);
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(o.release["version"], "1.2.0");
  const auto seen = updater.seen();
  EXPECT_EQ(seen.client_cn, "decnet-master");
  EXPECT_EQ(seen.last_path, "/update");
  EXPECT_EQ(seen.last_body.size(), o.bytes_sent);
  EXPECT_EQ(last_sent, last_total);
  EXPECT_EQ(last_total, o.bytes_sent);
  const std::string& body = seen.last_body;
  const size_t tarball_part = body.find("name=\"tarball\"");
  ASSERT_NE(tarball_part, std::string::npos);
  const size_t descriptor = body.find("name=\"descriptor\"");
  const size_t sig1 = body.find("SIGNATURE-ONE");
  const size_t sig2 = body.find("SIGNATURE-TWO");
  const size_t sha = body.find("name=\"sha256\"\r\n\r\n" + release_.sha256);
  for (size_t at : {descriptor, sig1, sig2, sha}) {
    EXPECT_NE(at, std::string::npos);
    EXPECT_LT(at, tarball_part);
  }
  EXPECT_NE(body.find("descriptor bytes"), std::string::npos);
  // The tarball arrives byte for byte.
  EXPECT_NE(body.find(tarball_), std::string::npos);
}

TEST_F(APinnedClient, ReportsAWorkerThatRolledBack) {
  TinyUpdater updater(ca_, server_, 409);
  HostOutcome o = UpdateHost(At(updater, server_.fingerprint), settings_, progress_);
  EXPECT_EQ(o.result, HostResult::kFailed);
  EXPECT_EQ(o.failure, FailureKind::kRolledBack);
  EXPECT_EQ(o.rule, "gate-unhealthy");
  EXPECT_EQ(o.http_status, 409);
}

TEST_F(APinnedClient, ReportsAClosedPortAsUnreachable) {
  std::uint16_t port;
  {
    TinyUpdater gone(ca_, server_, 200);
    port = gone.port();
  }
  HostOutcome o =
      UpdateHost(Target{"w1", "127.0.0.1", port, server_.fingerprint}, settings_, progress_);
  EXPECT_EQ(o.failure, FailureKind::kUnreachable);
  EXPECT_EQ(o.bytes_sent, 0u);
}

TEST_F(APinnedClient, ReadsHealthOverThePinnedConnection) {
  TinyUpdater updater(ca_, server_, 200);
  auto conn = PinnedConnection::Open(tls_, At(updater, server_.fingerprint), settings_.timeouts);
  ASSERT_TRUE(conn) << conn.error().message;
  EXPECT_EQ(conn->peer_fingerprint(), server_.fingerprint);
  auto r = conn->Request("GET", "/health");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"updater\""), std::string::npos);
}

TEST_F(APinnedClient, FailsTheChainCheckWhenACaIsGivenThatDidNotSignTheUpdater) {
  TinyUpdater updater(ca_, server_, 200);
  TestCa other("other-ca");
  const std::string other_ca = dir_.Write("other-ca.crt", other.ca().cert_pem);
  auto pem = testing::WritePem(dir_, "master2", master_);
  auto strict = ClientTls::Load({pem.cert, pem.key, other_ca});
  ASSERT_TRUE(strict);
  auto conn = PinnedConnection::Open(*strict, At(updater, server_.fingerprint), settings_.timeouts);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().rule, "tls-handshake");
}

}  // namespace
}  // namespace decnet::fleet
