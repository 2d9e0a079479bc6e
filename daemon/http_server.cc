// One Session per connection: a handful of short do_x/on_x steps, each arming its own
// timeout first. Authorisation is the Application's, decided in OnHead on the header alone.
// The Session (http_session.h) is a template on its transport; TlsTransport below is the only
// one this library has (a plain one for tests is in http_server_testing.h, a library of its
// own).
//
// Reading is our own loop (Pump) around Beast's parser rather than http::async_read, for
// two reasons found in Beast 1.81's basic_parser.ipp:
//  * header_limit bounds only the request head. A chunk-size line (with its extensions) and
//    the trailer section are searched for their end in whatever the read buffer holds, so
//    the buffer's max_size is the only bound on them; on_chunk_header runs only once the
//    whole line is buffered, too late to bound anything.
//  * a field value over 65533 bytes makes basic_fields throw std::length_error from inside
//    put() (a trailer is not under header_limit). Inside Beast's composed read that
//    exception escapes to io_context::run; in our loop it is caught and answered.
// The loop also screens the raw head before the parser sees it, which is the only place an
// obs-fold can be seen (Beast joins folded lines silently).
//
// Decisions on the head, before the Application sees it:
//  * obs-fold (a header line starting with SP or HTAB) is refused with 400, rule
//    "http-obs-fold": RFC 9112 §5.2 lets a server refuse it, and a folded line is where
//    parsers that disagree on joining start to disagree on the request.
//  * a request without exactly one Host (HTTP/1.0 included) is refused with 400, rule
//    "http-host-required": RFC 9112 §3.2 for HTTP/1.1; for HTTP/1.0 we ask the same.
//  DECNET's master (python httpx) sends HTTP/1.1 with one Host and never folds a line.
//
// Admission, decided before anybody is known. A connection is "pending" from its accept to
// its completed handshake; then it moves into the master's pool or the authenticated pool,
// each with its own cap, so nothing unauthenticated can take a slot an authenticated client
// needs, and no authenticated connection is ever closed to make room for a pending one.
// Pending connections are what a flood is made of, so:
//  * each source (IPv4 address, IPv6 /64: what one host can vary cheaply) holds at most
//    Limits::max_pending_per_source; its newcomer sheds its own oldest;
//  * all of them together hold at most Limits::max_pending; a newcomer sheds the oldest of
//    the source holding the most. Shedding the oldest rather than refusing the newest means
//    a client that reconnects gets in (an attacker's slots age, the newcomer's do not), and
//    taking it from the busiest source means a lone client's connection is the last to go;
//  * the deadline from accept to a completed handshake shrinks from handshake_timeout to
//    handshake_timeout_min as the pool fills past half, applied to every pending connection
//    at each arrival and by a sweep every 250 ms;
//  * until its first byte arrives a connection holds only its socket and its Session: the
//    TLS stream (about 100 KiB with Asio's and OpenSSL's buffers) is made when needed;
//  * accepting and shedding run on a thread of their own, so the backlog drains while the
//    I/O threads are busy with handshakes, and a connection shed before its ClientHello is
//    read costs no handshake: the CPU a flood can take is bounded by the pending pool.
// After a flood (64 connections open at once), once at most 16 remain, the freed heap is
// handed back to the system (malloc_trim): glibc keeps it otherwise.
#include "daemon/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "daemon/http_session.h"

namespace decnet::daemon {
namespace {

constexpr auto kSweepEvery = std::chrono::milliseconds(250);  // pending deadlines, trimming
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);  // after EMFILE and the like
// A flood is this many connections open at once; it is over when at most kTrimLowWater are.
constexpr std::uint64_t kTrimHighWater = 64;
constexpr std::uint64_t kTrimLowWater = 16;

// The key a source's pending connections are counted under: the IPv4 address (an
// IPv4-mapped IPv6 address counts as IPv4), or the /64 of an IPv6 address.
std::string SourceOf(const asio::ip::address& address) {
  if (address.is_v6() && !address.to_v6().is_v4_mapped()) {
    auto bytes = address.to_v6().to_bytes();
    return "6" + std::string(bytes.begin(), bytes.begin() + 8);
  }
  auto v4 = address.is_v4() ? address.to_v4()
                            : asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  auto bytes = v4.to_bytes();
  return "4" + std::string(bytes.begin(), bytes.end());
}

}  // namespace

// The only transport decnet-updaterd has: TLS over the TCP stream, made once the first byte
// arrived (see the top); the client is whoever its verified certificate says.
struct TlsTransport {
  using Stream = beast::ssl_stream<beast::tcp_stream>;

  void Open(std::optional<Stream>& stream, beast::tcp_stream&& tcp) {
    stream.emplace(std::move(tcp), *tls);
  }
  template <typename Handler>
  void Handshake(Stream& stream, Handler&& handler) {
    stream.async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(handler));
  }
  // SECURITY: the second lock; the context already refuses unverified peers.
  Result<ClientIdentity> Identify(Stream& stream) {
    return ReadClientIdentity(stream.native_handle());
  }
  template <typename Handler>
  void Shutdown(Stream& stream, Handler&& handler) {
    stream.async_shutdown(std::forward<Handler>(handler));
  }

  asio::ssl::context* tls;
};

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

struct HttpServer::Impl {
  using Shedding = std::vector<std::shared_ptr<SessionBase>>;

  Impl(SslCtxPtr ctx, std::shared_ptr<Shared> s)
      : shared(std::move(s)),
        tls(ctx.release()),
        acceptor(accept_ioc),
        sweep(accept_ioc),
        retry(accept_ioc) {}

  const Limits& limits() const { return shared->config.limits; }

  void DoAccept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      OnAccept(ec, std::move(s));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) return OnAcceptError(ec);
    ++shared->accepted;
    beast::error_code gone;
    tcp::endpoint remote = socket.remote_endpoint(gone);
    if (gone) return DoAccept();  // reset before we saw it; the socket closes here
    // A response is written as several TLS records (head, body, close_notify): without this,
    // Nagle holds each behind the peer's delayed ACK, 40 ms apiece.
    socket.set_option(tcp::no_delay(true), gone);
    Adopt(std::make_shared<Session<TlsTransport>>(std::move(socket), TlsTransport{&tls}, shared),
          SourceOf(remote.address()));
    DoAccept();
  }

  // Admits a new connection and starts it (on accept_thread).
  void Adopt(const std::shared_ptr<SessionBase>& session, std::string source) {
    Admit(session, std::move(source));
    session->Run();
    if (shared->open_connections.load() >= kTrimHighWater) trim_owed = true;
    ArmSweep();
  }

  // Out of descriptors or memory, the connection stays in the backlog and accept fails
  // again at once: free a pending slot and try again shortly rather than spin.
  void OnAcceptError(beast::error_code ec) {
    ++shared->accept_errors;
    bool exhausted = ec == asio::error::no_descriptors || ec == asio::error::no_memory ||
                     ec == asio::error::no_buffer_space ||
                     ec == beast::error_code(ENFILE, asio::error::get_system_category());
    if (!exhausted) return DoAccept();
    Shedding shed;
    {
      std::lock_guard lock(shared->slots_mu);
      if (!shared->pending.empty()) {
        ShedLocked(OldestOfBusiestLocked(), shed);
        ++shared->shed_oldest;
      }
    }
    Post(shed);
    retry.expires_after(kAcceptRetry);
    retry.async_wait([this](beast::error_code waited) {
      if (!waited) DoAccept();
    });
  }

  // Gives the new connection a pending slot, shedding whom the rules at the top say.
  void Admit(const std::shared_ptr<SessionBase>& session, std::string source) {
    Shedding shed;  // released after the lock: a Session's destructor takes it
    {
      std::lock_guard lock(shared->slots_mu);
      Clock::time_point now = Clock::now();
      ExpireLocked(now, shed);
      auto mine = shared->pending_by_source.find(source);
      // SECURITY: a flood sheds its own oldest first, then the busiest source's; never an
      // authenticated connection, which holds no pending slot.
      if (mine != shared->pending_by_source.end() &&
          mine->second >= limits().max_pending_per_source) {
        ShedLocked(OldestOfLocked(source), shed);
        ++shared->shed_per_source;
      } else if (shared->pending.size() >= limits().max_pending) {
        ShedLocked(OldestOfBusiestLocked(), shed);
        ++shared->shed_oldest;
      }
      ++shared->pending_by_source[source];
      shared->pending.push_back(PendingEntry{session.get(), session, std::move(source), now});
      session->pending_at_ = std::prev(shared->pending.end());
      session->pool_ = Pool::kPending;
      shared->peak_pending = std::max(shared->peak_pending, shared->pending.size());
    }
    if (!shed.empty() && !shedding_logged) {
      shedding_logged = true;
      std::fprintf(stderr,
                   "decnet-updaterd: http: shedding connections that have not completed their "
                   "handshake (at most %zu in all, %zu per source)\n",
                   limits().max_pending, limits().max_pending_per_source);
    }
    Post(shed);
  }

  // The pending deadline for the pool's current fill (see Limits::handshake_timeout).
  std::chrono::milliseconds DeadlineLocked() const {
    const Limits& l = limits();
    std::chrono::milliseconds full = l.handshake_timeout;
    std::chrono::milliseconds tight = std::min(l.handshake_timeout_min, full);
    std::size_t half = l.max_pending / 2, taken = std::min(shared->pending.size(), l.max_pending);
    if (taken <= half) return full;
    auto over = static_cast<std::int64_t>(taken - half);
    auto span = static_cast<std::int64_t>(l.max_pending - half);
    return full - (full - tight) * over / span;
  }

  // Sheds the pending connections past the deadline, oldest first.
  void ExpireLocked(Clock::time_point now, Shedding& shed) {
    while (!shared->pending.empty() && now - shared->pending.front().since >= DeadlineLocked()) {
      ShedLocked(shared->pending.begin(), shed);
      ++shared->handshake_timeouts;
    }
  }

  std::list<PendingEntry>::iterator OldestOfLocked(const std::string& source) {
    return std::find_if(shared->pending.begin(), shared->pending.end(),
                        [&](const PendingEntry& e) { return e.source == source; });
  }

  // The oldest pending connection of the source holding the most (pending is not empty).
  std::list<PendingEntry>::iterator OldestOfBusiestLocked() {
    std::size_t most = 0;
    for (const auto& [source, count] : shared->pending_by_source) most = std::max(most, count);
    return std::find_if(shared->pending.begin(), shared->pending.end(), [&](const PendingEntry& e) {
      return shared->pending_by_source.at(e.source) == most;
    });
  }

  // Takes `at` out of the pending pool now; its socket is closed on its own strand (Post).
  void ShedLocked(std::list<PendingEntry>::iterator at, Shedding& shed) {
    if (at == shared->pending.end()) return;
    std::shared_ptr<SessionBase> session = at->weak.lock();  // null: it is being destroyed
    at->session->LeavePendingLocked();
    if (session) shed.push_back(std::move(session));
  }

  static void Post(Shedding& shed) {
    for (std::shared_ptr<SessionBase>& session : shed) {
      asio::any_io_executor executor = session->executor_;
      asio::post(executor, [session = std::move(session)] { session->ShedOnStrand(); });
    }
    shed.clear();
  }

  // While anything is pending or a trim is owed: deadlines, then memory.
  void ArmSweep() {
    if (sweeping) return;
    sweeping = true;
    sweep.expires_after(kSweepEvery);
    sweep.async_wait([this](beast::error_code ec) { OnSweep(ec); });
  }

  void OnSweep(beast::error_code ec) {
    sweeping = false;
    if (ec || !acceptor.is_open()) return;
    Shedding shed;
    bool pending = false;
    {
      std::lock_guard lock(shared->slots_mu);
      ExpireLocked(Clock::now(), shed);
      pending = !shared->pending.empty();
    }
    Post(shed);
    if (!pending) shedding_logged = false;
    MaybeTrim();
    if (pending || trim_owed) ArmSweep();
  }

  // After a flood, hands the heap it freed back to the system: glibc keeps freed memory in
  // its arenas, so without this the daemon stays at its flood size.
  void MaybeTrim() {
    if (!trim_owed || shared->open_connections.load() > kTrimLowWater) return;
    trim_owed = false;
#if defined(__GLIBC__)
    malloc_trim(0);
    ++shared->memory_trims;
#endif
  }

  // An I/O thread. Sessions catch their own exceptions; one that escapes anyway (from Asio,
  // Beast or the acceptor) is counted and logged, its handler's connection goes with the
  // unwound handler, and the thread goes back to serving: never std::terminate.
  void Run(asio::io_context& context) {
    for (;;) {
      try {
        context.run();
        return;  // stopped
      } catch (const std::exception& e) {
        ++shared->handler_exceptions;
        LogException("an I/O thread", e.what());
      } catch (...) {
        ++shared->handler_exceptions;
        LogException("an I/O thread", "unknown exception");
      }
    }
  }

  std::shared_ptr<Shared> shared;
  asio::ssl::context tls;
  asio::io_context ioc;  // connections, on io_threads
  // Keeps the I/O threads running while no connection is open; dropped by Stop's ioc.stop().
  asio::executor_work_guard<asio::io_context::executor_type> idle_work{ioc.get_executor()};
  // Admission on a thread of its own, so that accepting and shedding never wait behind the
  // handshakes a flood makes the I/O threads do: the backlog drains at once, and a
  // connection shed before its turn costs no handshake.
  asio::io_context accept_ioc;
  tcp::acceptor acceptor;
  asio::steady_timer sweep;
  asio::steady_timer retry;
  std::thread accept_thread;
  bool sweeping = false;         // on accept_thread, as are the two below
  bool trim_owed = false;        // kTrimHighWater connections were open since the last trim
  bool shedding_logged = false;  // once per flood
  std::vector<std::thread> threads;
  bool started = false;
  bool stopped = false;
  // Keeps accept_thread running without an acceptor (HttpServerInternals::StartWithoutListening).
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> accept_idle_work;

  void StartThreads() {
    for (unsigned i = 0; i < shared->config.io_threads; ++i)
      threads.emplace_back([this] { Run(ioc); });
    accept_thread = std::thread([this] { Run(accept_ioc); });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Create(SslCtxPtr tls, ServerConfig config,
                                                       Application& app) {
  if (!tls) return Fail(ErrorCode::kMalformed, "http-config", "no TLS context");
  if (config.io_threads < 1 || config.io_threads > 2)
    return Fail(ErrorCode::kMalformed, "http-config", "io_threads must be 1 or 2");
  const Limits& l = config.limits;
  if (l.max_pending < 1 || l.max_pending_per_source < 1 || l.master_connections < 1)
    return Fail(ErrorCode::kMalformed, "http-config",
                "max_pending, max_pending_per_source and master_connections must be at least 1");
  if (l.handshake_timeout_min.count() < 1 || l.handshake_timeout_min > l.handshake_timeout)
    return Fail(ErrorCode::kMalformed, "http-config",
                "handshake_timeout_min must be positive and at most handshake_timeout");
  for (std::string& pin : config.master_pins) {
    Result<std::string> normal = NormaliseFingerprint(pin);
    if (!normal) return tl::make_unexpected(normal.error());
    pin = *normal;
  }
  auto shared = std::make_shared<Shared>();
  shared->config = std::move(config);
  shared->app = &app;
  auto impl = std::make_unique<Impl>(std::move(tls), std::move(shared));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Result<std::uint16_t> HttpServer::Start(const std::string& address, std::uint16_t port) {
  Impl& m = *impl_;
  if (m.started) return Fail(ErrorCode::kFailed, "http-listen", "already started");
  beast::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(address, ec), port);
  auto failed = [&](const char* what) {
    return Fail(
        ErrorCode::kFailed, "http-listen",
        std::string(what) + " " + address + ":" + std::to_string(port) + ": " + ec.message());
  };
  if (ec) return failed("bad address");
  if (m.acceptor.open(endpoint.protocol(), ec)) return failed("socket");
  if (m.acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return failed("option");
  if (m.acceptor.bind(endpoint, ec)) return failed("bind");
  if (m.acceptor.listen(asio::socket_base::max_listen_connections, ec)) return failed("listen");
  std::uint16_t bound = m.acceptor.local_endpoint(ec).port();
  if (ec) return failed("local endpoint");
  m.started = true;
  m.DoAccept();
  m.StartThreads();
  return bound;
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  m.accept_ioc.stop();  // first: no new connection after this
  if (m.accept_thread.joinable()) m.accept_thread.join();
  m.ioc.stop();
  for (std::thread& t : m.threads) t.join();
  beast::error_code ignored;
  m.acceptor.close(ignored);
  std::unordered_map<SessionBase*, std::shared_ptr<SessionBase>> parked;
  {
    std::lock_guard lock(m.shared->mu);
    m.shared->open = false;
    parked.swap(m.shared->parked);
  }
  parked.clear();  // before the io_context goes: their sockets belong to it
}

std::shared_ptr<Shared> HttpServerInternals::SharedOf(HttpServer& server) {
  return server.impl_->shared;
}

asio::any_io_executor HttpServerInternals::NewStrand(HttpServer& server) {
  return asio::make_strand(server.impl_->ioc);
}

void HttpServerInternals::Adopt(HttpServer& server, std::shared_ptr<SessionBase> session,
                                std::string source) {
  HttpServer::Impl* m = server.impl_.get();
  asio::post(m->accept_ioc, [m, session = std::move(session), source = std::move(source)] {
    m->Adopt(session, source);
  });
}

Result<void> HttpServerInternals::StartWithoutListening(HttpServer& server) {
  HttpServer::Impl& m = *server.impl_;
  if (m.started) return Fail(ErrorCode::kFailed, "http-listen", "already started");
  m.started = true;
  m.accept_idle_work.emplace(m.accept_ioc.get_executor());
  m.StartThreads();
  return {};
}

ServerStats HttpServer::Stats() const {
  Shared& s = *impl_->shared;
  ServerStats out;
  out.accepted = s.accepted;
  out.refused_over_cap = s.refused_over_cap;
  out.handshake_failures = s.handshake_failures;
  out.open_connections = s.open_connections;
  out.peak_connections = s.peak_connections;
  out.lingered_bytes = s.lingered_bytes;
  out.dropped_replies = s.dropped_replies;
  out.handler_exceptions = s.handler_exceptions;
  out.shed_oldest = s.shed_oldest;
  out.shed_per_source = s.shed_per_source;
  out.handshake_timeouts = s.handshake_timeouts;
  out.accept_errors = s.accept_errors;
  out.memory_trims = s.memory_trims;
  std::lock_guard lock(s.slots_mu);
  out.pending_connections = s.pending.size();
  out.peak_pending = s.peak_pending;
  out.authenticated_connections = s.authenticated;
  out.master_connections = s.masters;
  return out;
}

}  // namespace decnet::daemon