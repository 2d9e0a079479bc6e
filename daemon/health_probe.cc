// The agent health probe: one HTTPS GET with a client certificate, over a plain socket
// that this file drives itself, with OpenSSL working on memory BIOs. Doing the socket I/O
// here (rather than through a socket BIO) gives every wait a poll() bounded by the
// attempt's deadline, and lets writes use MSG_NOSIGNAL: an agent that resets the
// connection must not kill the daemon with SIGPIPE.
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "daemon/health_gate.h"
#include "daemon/openssl_errors.h"
#include "proto/unique_fd.h"

namespace decnet::daemon {
namespace {

using Clock = std::chrono::steady_clock;

struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct AddrFree {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using AddrPtr = std::unique_ptr<addrinfo, AddrFree>;

// ---------------------------------------------------------------- the connection

// One TLS connection over a non-blocking socket; every wait ends at `deadline`.
// When the attempt ends, and how long it was given (for the message).
struct Deadline {
  Clock::time_point at;
  std::chrono::milliseconds budget;
};

struct Conn {
  UniqueFd fd;
  SslPtr ssl;
  BIO* in = nullptr;   // network -> OpenSSL (owned by ssl)
  BIO* out = nullptr;  // OpenSSL -> network (owned by ssl)
  Deadline deadline;
  bool eof = false;
};

// Waits until `fd` is ready for `events`, or fails with "probe-timeout" at the deadline.
Result<void> WaitFor(int fd, short events, const Deadline& deadline, std::string_view during) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline.at - Clock::now());
    if (left.count() <= 0) {
      return Fail(ErrorCode::kTimeout, "probe-timeout",
                  "timed out after " + std::to_string(deadline.budget.count()) + " ms during " +
                      std::string(during));
    }
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) {
      return Fail(ErrorCode::kFailed, "probe-io", "poll: " + std::string(std::strerror(errno)));
    }
  }
}

// Sends everything OpenSSL has queued for the network.
Result<void> Flush(Conn& c, std::string_view during) {
  char buf[16 * 1024];
  while (BIO_ctrl_pending(c.out) > 0) {
    int n = BIO_read(c.out, buf, sizeof buf);
    for (int off = 0; n > 0 && off < n;) {
      ssize_t w = ::send(c.fd.get(), buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w > 0) {
        off += static_cast<int>(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (auto ok = WaitFor(c.fd.get(), POLLOUT, c.deadline, during); !ok) return ok;
      } else {
        return Fail(ErrorCode::kFailed, "probe-io",
                    std::string(during) + ": send: " + std::strerror(errno));
      }
    }
  }
  return {};
}

// Reads what the network has into OpenSSL's input; at end of stream, OpenSSL sees EOF.
Result<void> Fill(Conn& c, std::string_view during) {
  if (c.eof) {
    return Fail(ErrorCode::kFailed, "probe-io",
                std::string(during) + ": the agent closed the connection");
  }
  char buf[16 * 1024];
  for (;;) {
    if (auto ok = WaitFor(c.fd.get(), POLLIN, c.deadline, during); !ok) return ok;
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      BIO_write(c.in, buf, static_cast<int>(n));
      return {};
    }
    if (n == 0) {
      c.eof = true;
      BIO_set_mem_eof_return(c.in, 0);
      return {};
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return Fail(ErrorCode::kFailed, "probe-io",
                  std::string(during) + ": recv: " + std::strerror(errno));
    }
  }
}

// Runs one OpenSSL operation to completion: its byte count, 0 at a clean end of stream.
template <typename Op>
Result<int> Drive(Conn& c, Op op, std::string_view during, std::string_view rule) {
  for (;;) {
    ERR_clear_error();
    int n = op(c.ssl.get());
    int err = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c.ssl.get(), n);
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE &&
        err != SSL_ERROR_ZERO_RETURN) {
      std::string why = OpenSslErrors();
      long verify = SSL_get_verify_result(c.ssl.get());
      if (verify != X509_V_OK) {
        why += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      (void)Flush(c, during);  // best effort: tell the agent why (an alert)
      return Fail(ErrorCode::kFailed, std::string(rule), std::string(during) + ": " + why);
    }
    if (auto ok = Flush(c, during); !ok) return tl::make_unexpected(ok.error());
    if (n > 0) return n;
    if (err == SSL_ERROR_ZERO_RETURN) return 0;
    if (err == SSL_ERROR_WANT_READ) {
      if (auto ok = Fill(c, during); !ok) return tl::make_unexpected(ok.error());
    }
  }
}

// The client context: the agent's CA, the worker's certificate, TLS 1.2 at least. The
// peer's chain is verified; its host name is not (DECNET's agent certificates do not
// name the address the probe uses).
Result<CtxPtr> MakeProbeContext(const ProbeConfig& probe) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  auto fail = [](std::string what) {
    return Fail(ErrorCode::kFailed, "probe-tls-config", what + ": " + OpenSslErrors());
  };
  if (!ctx) return fail("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_load_verify_locations(ctx.get(), probe.ca.c_str(), nullptr) != 1) {
    return fail("cannot load the agent CA " + probe.ca);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), probe.cert.c_str()) != 1) {
    return fail("cannot load the client certificate " + probe.cert);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), probe.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail("cannot load the client key " + probe.key);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return fail("the client key does not match " + probe.cert);
  }
  return ctx;
}

// Connects to the first address that answers before the deadline. Name resolution
// (getaddrinfo) is not bounded by it; the default URL is an IP literal, which never
// touches DNS.
Result<UniqueFd> Connect(const ProbeUrl& url, const Deadline& deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
    return Fail(ErrorCode::kFailed, "probe-resolve",
                "cannot resolve " + url.host + ": " + ::gai_strerror(rc));
  }
  AddrPtr addrs(found);
  std::string last = "no address";
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    UniqueFd fd(
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (fd.get() < 0) {
      last = std::strerror(errno);
      continue;
    }
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = std::strerror(errno);
        continue;
      }
      if (auto ok = WaitFor(fd.get(), POLLOUT, deadline, "connect to " + url.authority); !ok) {
        return tl::make_unexpected(ok.error());
      }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
      if (so_error != 0) {
        last = std::strerror(so_error);
        continue;
      }
    }
    return fd;
  }
  return Fail(ErrorCode::kFailed, "probe-connect",
              "cannot connect to " + url.authority + ": " + last);
}

// The response, read until it is complete or the agent closes.
Result<ProbeResponse> Exchange(Conn& c, const ProbeUrl& url) {
  if (auto hs = Drive(
          c, [](SSL* s) { return SSL_connect(s); }, "TLS handshake", "probe-handshake");
      !hs) {
    return tl::make_unexpected(hs.error());
  }
  const std::string request = "GET " + url.path + " HTTP/1.1\r\nHost: " + url.authority +
                              "\r\nUser-Agent: decnet-updater\r\nAccept: */*\r\n"
                              "Connection: close\r\n\r\n";
  auto sent = Drive(
      c, [&](SSL* s) { return SSL_write(s, request.data(), static_cast<int>(request.size())); },
      "sending the request", "probe-io");
  if (!sent) return tl::make_unexpected(sent.error());
  std::string bytes;
  char buf[16 * 1024];
  for (;;) {
    auto n = Drive(
        c, [&](SSL* s) { return SSL_read(s, buf, sizeof buf); }, "reading the response",
        "probe-io");
    if (!n) return tl::make_unexpected(n.error());
    bytes.append(buf, static_cast<size_t>(*n));
    auto parsed = ParseProbeResponse(bytes, *n == 0);
    if (!parsed) return tl::make_unexpected(parsed.error());
    if (*parsed) return std::move(**parsed);
  }
}

}  // namespace

Result<std::string> ProbeOnce(const ProbeConfig& probe, std::chrono::milliseconds timeout) {
  auto url = ParseProbeUrl(probe.url);
  if (!url) return tl::make_unexpected(url.error());
  auto ctx = MakeProbeContext(probe);
  if (!ctx) return tl::make_unexpected(ctx.error());
  Conn c;
  c.deadline = {Clock::now() + timeout, timeout};
  auto fd = Connect(*url, c.deadline);
  if (!fd) return tl::make_unexpected(fd.error());
  c.fd = std::move(*fd);
  c.ssl.reset(SSL_new(ctx->get()));
  c.in = BIO_new(BIO_s_mem());
  c.out = BIO_new(BIO_s_mem());
  if (!c.ssl || !c.in || !c.out) {
    BIO_free(c.in);
    BIO_free(c.out);
    return Fail(ErrorCode::kFailed, "probe-tls-config", "out of memory: " + OpenSslErrors());
  }
  SSL_set_bio(c.ssl.get(), c.in, c.out);
  SSL_set_connect_state(c.ssl.get());
  auto response = Exchange(c, *url);
  if (!response) return tl::make_unexpected(response.error());
  if (response->status != 200) {
    constexpr size_t kExcerpt = 512;
    std::string excerpt = response->body.substr(0, kExcerpt);
    if (response->body.size() > kExcerpt) excerpt += "...";
    return Fail(ErrorCode::kFailed, "probe-status",
                "agent answered " + std::to_string(response->status) +
                    (excerpt.empty() ? "" : ": " + excerpt));
  }
  return std::move(response->body);
}

}  // namespace decnet::daemon
