// decnet-test-agent: the stand-in for DECNET's agent that end-to-end releases ship in
// bin/. It runs inside the testbed container as the units' user and serves the health
// endpoint the daemon's gate probes, over mTLS (a client certificate chained to --ca is
// required), answering GET /health with 200 {"status":"ok","version":V}.
//
//   decnet-test-agent --port P --version V --ca CA --cert CRT --key KEY
//                     [--unhealthy] [--crash-after-ms N] [--exit-immediately]
//
// Behaviours for the broken releases: --unhealthy answers 503, --crash-after-ms ends the
// process abruptly (status 70) N ms after start, --exit-immediately exits 1 before serving.
// Linked with OpenSSL statically (tests/integration/tests.cmake), so the container needs no
// libssl. Single-threaded and blocking: one short request per connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

namespace {

struct Options {
  int port = 0;
  std::string version;
  std::string ca, cert, key;
  bool unhealthy = false;
  bool exit_immediately = false;
  int crash_after_ms = -1;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "decnet-test-agent: %s\n", what.c_str());
  ERR_print_errors_fp(stderr);
  std::exit(2);
}

int ToInt(std::string_view s, const char* flag) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0)
    Die(std::string("bad value for ") + flag + ": '" + std::string(s) + "'");
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--port")
      o.port = ToInt(value(), "--port");
    else if (a == "--version")
      o.version = value();
    else if (a == "--ca")
      o.ca = value();
    else if (a == "--cert")
      o.cert = value();
    else if (a == "--key")
      o.key = value();
    else if (a == "--unhealthy")
      o.unhealthy = true;
    else if (a == "--exit-immediately")
      o.exit_immediately = true;
    else if (a == "--crash-after-ms")
      o.crash_after_ms = ToInt(value(), "--crash-after-ms");
    else
      Die("unknown argument '" + std::string(a) + "'");
  }
  if (o.port <= 0 || o.port > 65535 || o.version.empty() || o.ca.empty() || o.cert.empty() ||
      o.key.empty())
    Die("usage: --port P --version V --ca CA --cert CRT --key KEY [--unhealthy] "
        "[--crash-after-ms N] [--exit-immediately]");
  return o;
}

SSL_CTX* MakeContext(const Options& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) Die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) Die("cannot load " + o.cert);
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
    Die("cannot load " + o.key);
  if (SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) != 1) Die("cannot load " + o.ca);
  // The agent's own rule, as DECNET's: only callers with a certificate from the CA.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

int Listen(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    Die("bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  if (::listen(fd, 64) != 0) Die(std::string("listen: ") + std::strerror(errno));
  return fd;
}

std::string Response(const Options& o, std::string_view request) {
  int status = 200;
  std::string reason = "OK", body;
  if (!request.starts_with("GET /health ")) {
    status = 404;
    reason = "Not Found";
    body = R"({"detail":"not found"})";
  } else if (o.unhealthy) {
    status = 503;
    reason = "Service Unavailable";
    body = R"({"status":"unhealthy","version":")" + o.version + "\"}";
  } else {
    body = R"({"status":"ok","version":")" + o.version + "\"}";
  }
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

// One connection: handshake, read the request head (bounded by a receive timeout and a
// size cap), answer, close.
void Serve(SSL_CTX* ctx, int fd, const Options& o) {
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) {
    std::string request;
    char buf[2048];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    if (request.find("\r\n\r\n") != std::string::npos) {
      const std::string reply = Response(o, request);
      SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
      SSL_shutdown(ssl);
    }
  }
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  if (o.exit_immediately) {
    std::fprintf(stderr, "decnet-test-agent %s: exiting at once (--exit-immediately)\n",
                 o.version.c_str());
    return 1;
  }
  if (o.crash_after_ms >= 0) {
    std::thread([ms = o.crash_after_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      std::fprintf(stderr, "decnet-test-agent: crashing (--crash-after-ms %d)\n", ms);
      std::_Exit(70);
    }).detach();
  }
  SSL_CTX* ctx = MakeContext(o);
  const int listen_fd = Listen(o.port);
  std::fprintf(stderr, "decnet-test-agent %s listening on 127.0.0.1:%d%s\n", o.version.c_str(),
               o.port, o.unhealthy ? " (unhealthy)" : "");
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      Die(std::string("accept: ") + std::strerror(errno));
    }
    Serve(ctx, fd, o);
  }
}
