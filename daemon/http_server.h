// The daemon's mTLS HTTP/1.1 server: transport only. It terminates TLS, identifies the
// client, parses request heads within limits, and hands each head to the Application, which
// decides (before any body byte is read) whether to answer at once or to stream the body into
// a BodyConsumer whose reply may come later from another thread.
//
// Protocol manners it guarantees:
//  * `100 Continue` is sent only when the Application returned a consumer (authorised);
//  * a request answered at once while its body is pending is answered, then the connection
//    is closed gracefully (FIN, a bounded drain of what is in flight, close) so the peer
//    reads the response instead of a reset; the body is never handed to anyone;
//  * the body cap is enforced from Content-Length before reading (413) and while reading;
//  * every handshake, header read, body read and write runs under its own timeout;
//  * connections are admitted in three pools kept apart (see Limits): before a completed
//    handshake ("pending": nobody is known yet), authenticated non-master clients, and the
//    master. Pending connections are bounded per source address and in total; a newcomer
//    sheds the oldest pending connection of the busiest source rather than being refused,
//    so a client that reconnects always gets in; the pending deadline tightens as the pool
//    fills. An authenticated connection is never shed for a pending one. An idle TCP
//    connection holds no TLS state until its first byte arrives;
//  * every byte held before parsing is bounded (Limits::read_buffer_bytes): the request head
//    (431), a chunk-size line with its extensions and the trailer section (400);
//  * heads with obs-fold lines, without exactly one Host, or with more than
//    Limits::header_fields fields are refused (400, 400, 431);
//  * an exception from the parser, the Application or a consumer ends its request (400/431
//    from the parser, 500 otherwise) or its connection, never the process;
//  * keep-alive is allowed for requests answered at once without a body; a consumer's
//    request closes the connection after its reply.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/client_identity.h"
#include "daemon/tls.h"
#include "proto/result.h"

namespace decnet::daemon {

// A request as far as its header: all the Application sees before deciding.
struct RequestHead {
  std::string verb;                                          // "GET", "POST", ... as sent
  std::string target;                                        // origin-form target, e.g. "/update"
  std::vector<std::pair<std::string, std::string>> headers;  // bounded by Limits::header_bytes
  std::optional<std::uint64_t> content_length;               // nullopt: no body, or chunked
  bool chunked = false;                                      // Transfer-Encoding: chunked
  bool expect_continue = false;                              // Expect: 100-continue

  // The first header of that name (case-insensitive), or nullopt.
  std::optional<std::string_view> Find(std::string_view name) const;
  // True when a body follows this head (Content-Length > 0, or chunked).
  bool HasBody() const { return chunked || content_length.value_or(0) > 0; }
};

// The verified client of a connection.
struct Peer {
  std::string fingerprint;  // SHA-256 of its DER leaf, lowercase hex
  std::string cn;           // its CN when unambiguous, else "" (see client_identity.h)
  bool master = false;      // Authorise() said kMaster
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Sends the reply of a consumer's request. Callable from any thread, once (later calls are
// ignored); it posts onto the connection's strand. If the connection is gone, or the server
// stopped, the response is dropped: callers never need to care.
using Reply = std::function<void(Response)>;

// What Consume returns: nothing, or the response that stops reading (e.g. 400 for a
// malformed multipart body). After an error response no more body is read.
using ConsumeResult = tl::expected<void, Response>;

// Receives one request's body as it arrives. The server calls, on the connection's strand:
// Consume zero or more times, then exactly one of Finish (whole body read) or Abandon (it
// will not be). The consumer is destroyed soon after Finish returns: work it starts (on
// another thread) must own what it needs and answer through `reply`.
class BodyConsumer {
 public:
  virtual ~BodyConsumer() = default;
  virtual ConsumeResult Consume(std::string_view chunk) = 0;
  virtual void Finish(Reply reply) = 0;
  // Reading stopped before the end: the client left or timed out, the body was over the cap
  // (rule "http-body-too-large"), the framing was bad, or Consume returned an error
  // (rule "http-consumer-refused"). For clean-up; the server answers by itself if it can.
  virtual void Abandon(const Error& why) = 0;
};

// Either an immediate response or a consumer for the body.
using Route = std::variant<Response, std::unique_ptr<BodyConsumer>>;

// The seam to the update logic. OnHead runs on an I/O thread: it must decide quickly
// (authorisation, routing, "an update is already running") and never block.
class Application {
 public:
  virtual ~Application() = default;
  virtual Route OnHead(const RequestHead& head, const Peer& peer) = 0;
};

struct Limits {
  std::size_t header_bytes = 16 * 1024;  // request line + headers -> 431
  std::size_t header_fields = 64;        // fields in the head, counted before parsing -> 431
  // Raw bytes held before the parser takes them (at least header_bytes is used): a
  // chunk-size line with its extensions, or the whole trailer section, must fit -> 400.
  std::size_t read_buffer_bytes = 32 * 1024;
  std::uint64_t body_bytes = 2ull * 1024 * 1024 * 1024;  // -> 413, before and while reading
  // Authenticated connections other than the master's; over it a newly authenticated one is
  // closed (ServerStats::refused_over_cap). Pending connections do not count.
  std::size_t max_connections = 512;
  // The master's own connections, apart from every other pool; over it a newly
  // authenticated master connection is closed (refused_over_cap).
  std::size_t master_connections = 64;
  // Connections whose TLS handshake has not completed. Over the cap, the oldest pending
  // connection of the source holding the most is shed (ServerStats::shed_oldest) and the
  // newcomer admitted.
  std::size_t max_pending = 256;
  // Pending connections from one source (an IPv4 address, an IPv6 /64); a newcomer over it
  // sheds that source's oldest (ServerStats::shed_per_source).
  std::size_t max_pending_per_source = 16;
  // A pending connection's deadline, counted from its arrival: handshake_timeout while at
  // most half of max_pending is taken, then shrinking linearly to handshake_timeout_min when
  // all of it is (ServerStats::handshake_timeouts). Applied to every pending connection at
  // each arrival and at least every 250 ms.
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds handshake_timeout_min{1'000};
  std::chrono::milliseconds header_timeout{30'000};     // also the keep-alive idle time
  std::chrono::milliseconds body_read_timeout{30'000};  // each 64 KiB of the body
  std::chrono::milliseconds write_timeout{30'000};      // each write
  std::chrono::milliseconds linger_timeout{2'000};      // graceful close: drain for at most this
  std::size_t linger_bytes = 4 * 1024 * 1024;           // ... and at most this many bytes
};

struct ServerConfig {
  Limits limits;
  std::vector<std::string> master_pins;                    // as configured; normalised by Create
  std::string fallback_cn = std::string(kDecnetMasterCn);  // used only when no pin is set
  unsigned io_threads = 2;                                 // 1 or 2
};

// Counters, for tests and /metrics.
struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused_over_cap =
      0;  // authenticated, closed: max_connections or master_connections
  std::uint64_t handshake_failures = 0;
  std::uint64_t open_connections = 0;  // all pools
  std::uint64_t peak_connections = 0;
  std::uint64_t lingered_bytes = 0;       // raw bytes drained (and dropped) while closing
  std::uint64_t dropped_replies = 0;      // replies whose connection was gone
  std::uint64_t handler_exceptions = 0;   // exceptions caught in a connection or an I/O thread
  std::uint64_t pending_connections = 0;  // now, before a completed handshake
  std::uint64_t peak_pending = 0;         // most pending at once
  std::uint64_t authenticated_connections = 0;  // now, handshake done, not the master
  std::uint64_t master_connections = 0;         // now, the master's
  std::uint64_t shed_oldest = 0;                // pending shed because every pending slot was taken
  std::uint64_t shed_per_source = 0;            // pending shed because their source held its cap
  std::uint64_t handshake_timeouts = 0;         // pending closed at their (tightened) deadline
  std::uint64_t accept_errors = 0;              // accept(2) failures, e.g. EMFILE
  std::uint64_t memory_trims = 0;  // freed heap handed back to the system after a flood
};

class HttpServer {
 public:
  // Takes the TLS context (see tls.h; tests may loosen theirs). Refuses a malformed pin or
  // an io_threads outside 1..2 (kMalformed, rule "http-config"). `app` must outlive the
  // server.
  [[nodiscard]] static Result<std::unique_ptr<HttpServer>> Create(SslCtxPtr tls,
                                                                  ServerConfig config,
                                                                  Application& app);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. Port 0 picks an ephemeral port. Returns the
  // bound port, or kFailed (rule "http-listen") with the system's reason. Once only.
  [[nodiscard]] Result<std::uint16_t> Start(const std::string& address, std::uint16_t port);

  // Stops accepting, abandons open connections, joins the I/O threads. Replies that arrive
  // afterwards are dropped. Idempotent.
  void Stop();

  ServerStats Stats() const;

  struct Impl;

 private:
  friend struct HttpServerInternals;  // http_session.h: connections over another transport
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace decnet::daemon
