// A TLS updater on loopback for the rollout's client tests: it requires a client certificate
// from the test CA, reads each request whole and answers it with what a script returns, while
// counting handshakes, request bytes and how often each path was asked. And a fixture with the
// certificates both sides use and the master's TLS loaded.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "fleet/host_ops.h"
#include "fleet/rollout_plan.h"
#include "fleet/worker_client.h"
#include "tests/daemon/test_pki.h"

namespace decnet::testing {

// What the stub answers one request with: a status and a JSON body.
struct StubAnswer {
  int status = 200;
  std::string body;
};

class TlsUpdaterStub {
 public:
  // Answers a request for `path`, asked `nth` times before (0 for the first).
  using Script = std::function<StubAnswer(const std::string& path, int nth)>;

  // What the stub has seen so far, over all connections.
  struct Seen {
    std::uint64_t request_bytes = 0;  // application bytes read
    int connections = 0;              // completed handshakes
    std::string client_cn;            // of the last client certificate
    std::string last_path;
    std::string last_body;
    std::map<std::string, int> asked;  // requests per path
  };

  // Listens on an ephemeral loopback port with `server`'s certificate, trusting `ca` for
  // clients.
  TlsUpdaterStub(const TestCa& ca, const Issued& server, Script script)
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
  TlsUpdaterStub(const TlsUpdaterStub&) = delete;
  TlsUpdaterStub& operator=(const TlsUpdaterStub&) = delete;
  ~TlsUpdaterStub() {
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
  int Asked(const std::string& path) {
    std::lock_guard lock(mu_);
    return seen_.asked[path];
  }

 private:
  void Serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SslPtr ssl(SSL_new(ctx_.get()));
      SSL_set_fd(ssl.get(), c);
      if (SSL_accept(ssl.get()) == 1) {
        NoteClient(ssl.get());
        Handle(ssl.get());
      }
      ERR_clear_error();
      ::close(c);
    }
  }

  void NoteClient(SSL* ssl) {
    std::lock_guard lock(mu_);
    ++seen_.connections;
    X509* peer = SSL_get1_peer_certificate(ssl);
    char cn[256] = {0};
    if (peer) X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, 255);
    X509_free(peer);
    seen_.client_cn = cn;
  }

  void Handle(SSL* ssl) {
    std::string data;
    char buf[65536];
    auto read_more = [&] {
      const int n = SSL_read(ssl, buf, sizeof buf);
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
      seen_.last_path = path;
      seen_.last_body = data.substr(head_end + 4);
      nth = seen_.asked[path]++;
    }
    const StubAnswer a = script_(path, nth);
    const std::string answer =
        "HTTP/1.1 " + std::to_string(a.status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(a.body.size()) +
        "\r\nConnection: close\r\n\r\n" + a.body;
    SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
    SSL_shutdown(ssl);
  }

  Script script_;
  CtxPtr ctx_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  Seen seen_;
};

}  // namespace decnet::testing

namespace decnet::fleet::testing_support {

// A test CA named `ca_name`, the updater's certificate and the master's, and settings_ with
// the master's client TLS and short timeouts; the test sets the release.
class AgainstAStubUpdater : public ::testing::Test {
 protected:
  explicit AgainstAStubUpdater(const std::string& ca_name)
      : ca_(ca_name),
        server_(ca_.Issue(decnet::testing::CertSpec{{"updater"}, true})),
        master_(ca_.Issue(decnet::testing::CertSpec{{"decnet-master"}, false})) {
    // As decnet-rollout does: a peer that hangs up is an error, not a death.
    std::signal(SIGPIPE, SIG_IGN);
    auto pem = decnet::testing::WritePem(dir_, "master", master_);
    auto tls = ClientTls::Load({pem.cert, pem.key, ""});
    EXPECT_TRUE(tls) << tls.error().message;
    tls_ = std::move(*tls);
    settings_.tls = &tls_;
    settings_.timeouts.connect = std::chrono::seconds(5);
    settings_.timeouts.io = std::chrono::seconds(5);
    settings_.timeouts.response = std::chrono::seconds(10);
  }

  // The stub as a host pinned to `fingerprint` (by default, the updater's own).
  Target At(const decnet::testing::TlsUpdaterStub& u, const std::string& fingerprint) const {
    return Target{"w1", "127.0.0.1", u.port(), fingerprint};
  }
  Target At(const decnet::testing::TlsUpdaterStub& u) const { return At(u, server_.fingerprint); }

  decnet::testing::TempDir dir_;
  decnet::testing::TestCa ca_;
  decnet::testing::Issued server_;
  decnet::testing::Issued master_;
  ClientTls tls_;
  PushSettings settings_;
  NullProgress progress_;
};

}  // namespace decnet::fleet::testing_support
