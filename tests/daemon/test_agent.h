// A tiny TLS "agent" for the health gate's tests: a thread accepting on 127.0.0.1 at an
// ephemeral port, requiring a client certificate chained to a given CA (real handshakes),
// and answering each connection as scripted: a status and body, silence, or a close.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/test_pki.h"

namespace decnet::testing {

struct AgentReply {
  enum class Kind {
    kAnswer,                 // handshake, read the request, answer status + body
    kSilent,                 // handshake, read the request, never answer
    kSilentBeforeHandshake,  // accept, never handshake
    kClose,                  // handshake, read the request, close without a word
  };
  Kind kind = Kind::kAnswer;
  int status = 200;
  std::string body = R"({"status":"ok"})";
};

class TestAgent {
 public:
  // Serves with `server` (its certificate and key); clients must present a certificate
  // chained to `client_ca`. Throws std::runtime_error when it cannot listen.
  TestAgent(const Issued& server, const TestCa& client_ca);
  ~TestAgent();
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  // Connection i gets replies[min(i, size-1)]. Default: one healthy 200.
  void Script(std::vector<AgentReply> replies);
  uint16_t port() const { return port_; }
  std::string Url(const std::string& path = "/health") const;

  int connections() const { return connections_; }  // accepted
  int requests() const { return requests_; }        // handshaken and read
  int refused() const { return refused_; }          // handshakes the agent refused
  std::string last_request() const;

 private:
  void Run();
  void Serve(int fd, const AgentReply& reply);
  void WaitForClose(int fd) const;

  CtxPtr ctx_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<AgentReply> replies_{AgentReply{}};
  std::string last_request_;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> refused_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace decnet::testing
