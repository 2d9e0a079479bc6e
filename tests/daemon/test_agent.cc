#include "tests/daemon/test_agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace decnet::testing {
namespace {

[[noreturn]] void Die(const std::string& what) { throw std::runtime_error("test_agent: " + what); }

std::string Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

TestAgent::TestAgent(const Issued& server, const TestCa& client_ca)
    : ctx_(SSL_CTX_new(TLS_server_method())) {
  if (!ctx_) Die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate(ctx_.get(), server.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx_.get(), server.key.get()) != 1 ||
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_.get()), client_ca.ca().cert.get()) != 1) {
    Die("server context");
  }
  SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("listen");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
}

TestAgent::~TestAgent() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
}

void TestAgent::Script(std::vector<AgentReply> replies) {
  std::lock_guard lock(mu_);
  replies_ = std::move(replies);
}

std::string TestAgent::Url(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(port_) + path;
}

std::string TestAgent::last_request() const {
  std::lock_guard lock(mu_);
  return last_request_;
}

void TestAgent::Run() {
  // A client that gives up mid-write must not kill the test binary with SIGPIPE; the
  // signal is directed at this thread, so blocking it here suffices.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval five{5, 0};  // bounds a client that stalls mid-handshake
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &five, sizeof five);
    AgentReply reply;
    {
      std::lock_guard lock(mu_);
      size_t i = std::min<size_t>(static_cast<size_t>(connections_), replies_.size() - 1);
      reply = replies_[i];
    }
    ++connections_;
    Serve(fd, reply);
    ::close(fd);
  }
}

void TestAgent::Serve(int fd, const AgentReply& reply) {
  using Kind = AgentReply::Kind;
  if (reply.kind == Kind::kSilentBeforeHandshake) return WaitForClose(fd);
  SslPtr ssl(SSL_new(ctx_.get()));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_accept(ssl.get()) != 1) {
    ++refused_;
    return;
  }
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  {
    std::lock_guard lock(mu_);
    last_request_ = request;
  }
  ++requests_;
  if (reply.kind == Kind::kSilent) return WaitForClose(fd);
  if (reply.kind == Kind::kClose) return;
  std::string out =
      "HTTP/1.1 " + std::to_string(reply.status) + " " + Reason(reply.status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(reply.body.size()) +
      "\r\nConnection: close\r\n\r\n" + reply.body;
  if (SSL_write(ssl.get(), out.data(), static_cast<int>(out.size())) > 0) SSL_shutdown(ssl.get());
}

// Holds the connection open without a word until the client goes away (or the test ends).
void TestAgent::WaitForClose(int fd) const {
  char buf[4096];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    if (::recv(fd, buf, sizeof buf, 0) <= 0) return;
  }
}

}  // namespace decnet::testing
