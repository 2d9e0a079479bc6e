// Internal to the HTTP server, not part of its interface (http_server.h): one Session per
// connection, a template on its transport, and the state it shares with the server. Included
// by http_server.cc, whose TLS transport is the only one decnet-updaterd has, and by
// http_server_testing.cc, whose plain transport only tests and the fuzz target link. The
// design of the read loop, the head screen and admission is described at the top of
// http_server.cc.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/client_identity.h"
#include "daemon/http_server.h"

namespace decnet::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

inline constexpr std::size_t kBodyChunk = 64 * 1024;
inline constexpr std::size_t kReadSize = 64 * 1024;  // most bytes one read asks of the stream

using Clock = std::chrono::steady_clock;

// {"detail":{"error":text,"rule":rule}}; both are our own constants, never client text.
inline Response Detail(unsigned status, std::string_view rule, std::string_view text) {
  return Response{status, "application/json",
                  std::string(R"({"detail":{"error":")") + std::string(text) + R"(","rule":")" +
                      std::string(rule) + "\"}}"};
}

// One line on stderr (the journal) per caught exception.
inline void LogException(const char* where, const char* what) {
  std::fprintf(stderr,
               "decnet-updaterd: http: exception in %s, it ends its request or connection: %s\n",
               where, what);
}

// A protocol error from Beast's parser, other than the peer simply going away.
inline bool IsMalformed(const boost::beast::error_code& ec) {
  namespace http = boost::beast::http;
  return ec.category() == make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// How a connection ends after a response.
enum class After {
  kKeepAlive,  // read the next request
  kClose,      // TLS close_notify, then close
  kLinger,     // a body is pending and unread: FIN, bounded drain, close
};

class SessionBase;

// The pool a connection's slot is in (see the top of http_server.cc).
enum class Pool { kNone, kPending, kAuthenticated, kMaster };

// A connection whose handshake has not completed, in arrival order.
struct PendingEntry {
  SessionBase* session;
  std::weak_ptr<SessionBase> weak;
  std::string source;  // see SourceOf
  Clock::time_point since;
};

// What the screen of the raw request head decided.
enum class Screen { kPass, kObsFold, kTooManyFields };

// Screens a request head byte by byte as it arrives, until its blank line.
class HeadScreen {
 public:
  explicit HeadScreen(std::size_t max_fields) : max_fields_(max_fields) {}

  Screen Feed(std::string_view bytes) {
    for (char c : bytes) {
      if (done_) break;
      if (c == '\n' && prev_ == '\r') {
        if (line_length_ == 1 && lines_ > 0) done_ = true;  // the blank line ends the head
        ++lines_;
        line_length_ = 0;
        prev_ = c;
        continue;
      }
      if (line_length_ == 0 && lines_ > 0) {  // a header line begins (lines_ is its number)
        // SECURITY: obs-fold is refused, not joined; see the top of http_server.cc.
        if (c == ' ' || c == '\t') return Screen::kObsFold;
        if (c != '\r' && lines_ > max_fields_) return Screen::kTooManyFields;
      }
      ++line_length_;
      prev_ = c;
    }
    return Screen::kPass;
  }

 private:
  std::size_t max_fields_;
  std::size_t lines_ = 0;        // complete lines, the request line first
  std::size_t line_length_ = 0;  // bytes of the current line so far
  char prev_ = 0;
  bool done_ = false;
};

// Server state that connections and pending replies may hold on to.
struct Shared {
  ServerConfig config;
  Application* app = nullptr;
  std::mutex mu;
  bool open = true;  // false once stopped: replies are dropped, never posted
  std::unordered_map<SessionBase*, std::shared_ptr<SessionBase>> parked;  // awaiting a reply
  std::atomic<std::uint64_t> accepted{0}, refused_over_cap{0}, handshake_failures{0},
      open_connections{0}, peak_connections{0}, lingered_bytes{0}, dropped_replies{0},
      handler_exceptions{0}, shed_oldest{0}, shed_per_source{0}, handshake_timeouts{0},
      accept_errors{0}, memory_trims{0};
  // Admission (see http_server.cc). slots_mu guards these and each Session's pool_ and pending_at_.
  std::mutex slots_mu;
  std::list<PendingEntry> pending;  // oldest first
  std::unordered_map<std::string, std::size_t> pending_by_source;
  std::size_t authenticated = 0, masters = 0, peak_pending = 0;
};

// What admission and a pending reply need of a connection, whatever its transport.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  SessionBase(asio::any_io_executor executor, std::shared_ptr<Shared> shared)
      : executor_(std::move(executor)), shared_(std::move(shared)) {}
  virtual ~SessionBase() = default;

  // Starts the connection on its strand: waits for its first byte, then the handshake.
  virtual void Run() = 0;
  // Closes a connection the admission code took out of the pending pool, on its strand.
  virtual void ShedOnStrand() = 0;
  // A consumer's reply, on this connection's strand.
  virtual void OnReply(Response response) = 0;

  // Takes this connection out of the pending pool (slots_mu held).
  void LeavePendingLocked() {
    auto by = shared_->pending_by_source.find(pending_at_->source);
    if (--by->second == 0) shared_->pending_by_source.erase(by);
    shared_->pending.erase(pending_at_);
    pool_ = Pool::kNone;
  }

  asio::any_io_executor executor_;  // this connection's strand
  std::shared_ptr<Shared> shared_;
  Pool pool_ = Pool::kNone;                         // guarded by Shared::slots_mu
  std::list<PendingEntry>::iterator pending_at_{};  // while pool_ is kPending; ditto
};

// One connection over `Transport`, which provides (see TlsTransport in http_server.cc):
//   using Stream = ...;                                      // layered over beast::tcp_stream
//   void Open(std::optional<Stream>&, beast::tcp_stream&&);  // once its first byte arrived
//   void Handshake(Stream&, Handler);                        // Handler(error_code)
//   Result<ClientIdentity> Identify(Stream&);                // after a handshake that succeeded
//   void Shutdown(Stream&, Handler);                         // Handler(error_code); then closed
template <typename Transport>
class Session final : public SessionBase {
 public:
  Session(tcp::socket socket, Transport transport, std::shared_ptr<Shared> shared)
      : SessionBase(socket.get_executor(), std::move(shared)),
        tcp_(std::move(socket)),
        transport_(std::move(transport)),
        buffer_(std::max(limits().read_buffer_bytes, limits().header_bytes)) {
    std::uint64_t now = ++shared_->open_connections;
    std::uint64_t peak = shared_->peak_connections.load();
    while (now > peak && !shared_->peak_connections.compare_exchange_weak(peak, now)) {
    }
  }
  ~Session() {
    {
      std::lock_guard lock(shared_->slots_mu);
      if (pool_ == Pool::kPending) LeavePendingLocked();
      if (pool_ == Pool::kAuthenticated) --shared_->authenticated;
      if (pool_ == Pool::kMaster) --shared_->masters;
    }
    if (consumer_) {
      try {
        consumer_->Abandon(Error{ErrorCode::kFailed, "http-server-stopped", ""});
      } catch (const std::exception& e) {
        ++shared_->handler_exceptions;
        LogException("BodyConsumer::Abandon", e.what());
      } catch (...) {
        ++shared_->handler_exceptions;
      }
    }
    --shared_->open_connections;
  }

  void Run() override {
    asio::dispatch(executor_,
                   [self = Self()] { self->Guarded("handler", [&] { self->DoWaitForBytes(); }); });
  }

  // Whatever the connection was waiting for completes with an error and ends it.
  void ShedOnStrand() override {
    Guarded("shed", [&] { tcp_layer().close(); });
  }

  void OnReply(Response response) override {
    auto self = shared_from_this();  // parked may hold the last reference
    {
      std::lock_guard lock(shared_->mu);
      shared_->parked.erase(this);
    }
    Guarded("reply", [&] { DoWrite(std::move(response), After::kClose); });
  }

 private:
  enum class Phase { kHead, kBody };

  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  const Limits& limits() const { return shared_->config.limits; }
  beast::tcp_stream& tcp_layer() { return stream_ ? beast::get_lowest_layer(*stream_) : tcp_; }

  // A completion handler that keeps the session alive and runs `fn` under Guarded.
  template <typename... Args>
  auto Bind(void (Session::*fn)(Args...)) {
    return [self = Self(), fn](Args... args) {
      self->Guarded("handler", [&] { ((*self).*fn)(args...); });
    };
  }

  // Runs `fn`; an exception from it (ours, Beast's or the Application's) ends this request
  // with a 500 when no response is under way, else this connection; never the process.
  template <typename F>
  void Guarded(const char* where, F&& fn) {
    try {
      fn();
      return;
    } catch (const std::exception& e) {
      LogException(where, e.what());
    } catch (...) {
      LogException(where, "unknown exception");
    }
    ++shared_->handler_exceptions;
    try {
      Abandon("http-internal-error", "an exception ended the request");
      if (!writing_ && parser_)  // a request is under way: it gets its answer
        return DoWrite(Detail(500, "http-internal-error", "internal error"), After::kLinger);
    } catch (...) {
    }
    beast::error_code ignored;
    tcp_layer().socket().close(ignored);
  }

  // No TLS state until the client sends something (see the top of http_server.cc); the pending
  // deadline, enforced by the admission sweep, bounds the wait.
  void DoWaitForBytes() {
    tcp_.socket().async_wait(tcp::socket::wait_read, Bind(&Session::OnReadable));
  }

  void OnReadable(beast::error_code ec) {
    if (ec) return;               // shed, or the server stopped
    if (!StillPending()) return;  // shed meanwhile: spend no handshake on it
    transport_.Open(stream_, std::move(tcp_));
    DoHandshake();
  }

  void DoHandshake() {
    tcp_layer().expires_after(limits().handshake_timeout);  // the sweep usually acts first
    transport_.Handshake(*stream_, Bind(&Session::OnHandshake));
  }

  // True while this connection holds its pending slot, i.e. it was not shed.
  bool StillPending() {
    std::lock_guard lock(shared_->slots_mu);
    return pool_ == Pool::kPending;
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      if (StillPending()) ++shared_->handshake_failures;
      return;
    }
    // Second lock: the context already refuses unverified peers.
    Result<ClientIdentity> id = transport_.Identify(*stream_);
    if (!id) {
      ++shared_->handshake_failures;
      return;
    }
    peer_.fingerprint = id->fingerprint;
    peer_.cn = id->cn.value_or("");
    peer_.master =
        Authorise(*id, shared_->config.master_pins, shared_->config.fallback_cn) == Role::kMaster;
    if (!TakeAuthenticatedSlot()) return;  // the connection closes with its last handler
    DoReadHeader();
  }

  // Moves this connection from the pending pool into the master's or the authenticated
  // pool. False when it was shed meanwhile, or when that pool is full (counted).
  bool TakeAuthenticatedSlot() {
    std::lock_guard lock(shared_->slots_mu);
    if (pool_ != Pool::kPending) return false;  // shed while its handshake completed
    LeavePendingLocked();
    // SECURITY: the master's slots are apart; nothing another client holds can fill them.
    std::size_t& taken = peer_.master ? shared_->masters : shared_->authenticated;
    if (taken >= (peer_.master ? limits().master_connections : limits().max_connections)) {
      ++shared_->refused_over_cap;
      return false;
    }
    ++taken;
    pool_ = peer_.master ? Pool::kMaster : Pool::kAuthenticated;
    return true;
  }

  void DoReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().header_bytes));
    // The body cap is ours to check after OnHead: Beast would refuse a large Content-Length
    // while reading the header, i.e. before the caller is known to be authorised.
    parser_->body_limit(boost::none);
    parser_->eager(false);  // stop after the head
    phase_ = Phase::kHead;
    screen_.emplace(limits().header_fields);
    screened_ = 0;
    tcp_layer().expires_after(limits().header_timeout);
    Pump();
  }

  // Feeds what is buffered to the parser and reads more until the phase ends: the head is
  // parsed, or (body) the parser is done or the body chunk is full; then OnHeader or OnBody.
  void Pump() {
    if (buffer_.size() > 0) {
      if (phase_ == Phase::kHead) {
        auto data = static_cast<const char*>(buffer_.data().data());
        Screen screen =
            screen_->Feed(std::string_view(data + screened_, buffer_.size() - screened_));
        screened_ = buffer_.size();
        if (screen == Screen::kObsFold)
          return Refuse(400, "http-obs-fold", "obsolete line folding in the request head");
        if (screen == Screen::kTooManyFields)
          return Refuse(431, "http-too-many-fields", "too many header fields");
      }
      beast::error_code ec;
      std::size_t used = 0;
      try {
        used = parser_->put(buffer_.data(), ec);
      } catch (const std::exception& e) {
        // Beast's field store refuses values over 64 KiB by throwing (see the top of
        // http_server.cc).
        ++shared_->handler_exceptions;
        LogException("the HTTP parser", e.what());
        if (phase_ == Phase::kHead)
          return Refuse(431, "http-header-too-large", "a header field is too large");
        return Refuse(400, "http-trailer-too-large", "a trailer field is too large");
      }
      buffer_.consume(used);
      screened_ -= std::min(screened_, used);
      if (ec == http::error::need_more) {
        ec = {};
      } else if (ec) {
        return Deliver(ec);
      }
      if (phase_ == Phase::kHead ? parser_->is_header_done() : parser_->is_done())
        return Deliver({});
    }
    // SECURITY: a full buffer is a line or a section over the cap, never a reason to grow.
    std::size_t room = beast::read_size(buffer_, kReadSize);
    if (room == 0) return Deliver(http::error::buffer_overflow);
    stream_->async_read_some(buffer_.prepare(room), Bind(&Session::OnRead));
  }

  void OnRead(beast::error_code ec, std::size_t n) {
    buffer_.commit(n);
    if (ec == asio::error::eof) {
      if (!parser_->got_some()) return Deliver(http::error::end_of_stream);
      ec = {};
      parser_->put_eof(ec);  // partial_message unless the message was complete
      return Deliver(ec);
    }
    if (ec) return Deliver(ec);
    Pump();
  }

  void Deliver(beast::error_code ec) { phase_ == Phase::kHead ? OnHeader(ec) : OnBody(ec); }

  // Refuses the request: the consumer (if any) is abandoned, the answer sent, the
  // connection closed gracefully.
  void Refuse(unsigned status, const char* rule, const char* text) {
    Abandon(rule, text);
    DoWrite(Detail(status, rule, text), After::kLinger);
  }

  void OnHeader(beast::error_code ec) {
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
      return Refuse(431, "http-header-too-large", "the request head is too large");
    if (IsMalformed(ec)) return Refuse(400, "http-malformed", "malformed request");
    if (ec) return;  // the client left, or idled past the timeout: nothing to answer
    // SECURITY: exactly one Host, whatever the version (see the top of http_server.cc).
    if (parser_->get().count(http::field::host) != 1)
      return Refuse(400, "http-host-required", "a request needs exactly one Host header");
    // SECURITY: the one transfer coding read is chunked, alone. A coding that would be ignored
    // ("gzip, chunked") or a chunked that is not the last is where a front end and this
    // server would disagree on where the body ends (Beast already refuses it beside a
    // Content-Length).
    if (const auto& fields = parser_->get(); fields.count(http::field::transfer_encoding) > 0) {
      std::string_view coding = fields[http::field::transfer_encoding];
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t'))
        coding.remove_prefix(1);
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t'))
        coding.remove_suffix(1);
      if (fields.count(http::field::transfer_encoding) != 1 || !beast::iequals(coding, "chunked"))
        return Refuse(501, "http-transfer-encoding", "only the chunked transfer coding is read");
    }
    RequestHead head = MakeHead();
    Route route = shared_->app->OnHead(head, peer_);
    if (auto* response = std::get_if<Response>(&route)) {
      bool keep = !head.HasBody() && parser_->get().keep_alive();
      return DoWrite(std::move(*response), head.HasBody() ? After::kLinger
                                           : keep         ? After::kKeepAlive
                                                          : After::kClose);
    }
    consumer_ = std::move(std::get<std::unique_ptr<BodyConsumer>>(route));
    if (head.content_length.value_or(0) > limits().body_bytes) return RefuseTooLarge();
    if (!head.HasBody()) return DoFinish();
    parser_->body_limit(limits().body_bytes);
    if (!head.expect_continue) return DoReadBody();
    continue_ = {http::status::continue_, parser_->get().version()};
    tcp_layer().expires_after(limits().write_timeout);
    http::async_write(*stream_, continue_, Bind(&Session::OnContinue));
  }

  RequestHead MakeHead() const {
    const auto& req = parser_->get();
    RequestHead head;
    head.verb = std::string(req.method_string());
    head.target = std::string(req.target());
    for (const auto& field : req) head.headers.emplace_back(field.name_string(), field.value());
    if (auto length = parser_->content_length()) head.content_length = *length;
    head.chunked = parser_->chunked();
    head.expect_continue = beast::iequals(req[http::field::expect], "100-continue");
    return head;
  }

  void OnContinue(beast::error_code ec, std::size_t) {
    if (ec) return Abandon("http-client-gone", ec.message());
    DoReadBody();
  }

  void DoReadBody() {
    if (chunk_.empty()) chunk_.resize(kBodyChunk);
    auto& body = parser_->get().body();
    body.data = chunk_.data();
    body.size = chunk_.size();
    parser_->eager(true);
    phase_ = Phase::kBody;
    tcp_layer().expires_after(limits().body_read_timeout);
    // The whole chunk is filled (need_buffer) from as many TLS records as that takes, so the
    // consumer and the timer run once per chunk rather than once per 16 KiB record.
    Pump();
  }

  void OnBody(beast::error_code ec) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit) return RefuseTooLarge();
    if (ec == http::error::buffer_overflow)
      return Refuse(400, "http-chunk-metadata-too-large",
                    "a chunk-size line with its extensions, or the trailer section, is too large");
    if (ec) {
      bool framing = IsMalformed(ec);
      if (!framing) return Abandon("http-client-gone", ec.message());
      return Refuse(400, "http-bad-body", "malformed body");
    }
    std::size_t got = chunk_.size() - parser_->get().body().size;
    body_read_ += got;
    if (body_read_ > limits().body_bytes) return RefuseTooLarge();  // belt and braces
    if (got > 0) {
      ConsumeResult consumed = consumer_->Consume(std::string_view(chunk_.data(), got));
      if (!consumed) {
        Abandon("http-consumer-refused", "the application refused the body");
        return DoWrite(std::move(consumed.error()), After::kLinger);
      }
    }
    if (parser_->is_done()) return DoFinish();
    DoReadBody();
  }

  void RefuseTooLarge() { Refuse(413, "http-body-too-large", "request body too large"); }

  void Abandon(const char* rule, std::string message) {
    if (!consumer_) return;
    std::unique_ptr<BodyConsumer> consumer = std::move(consumer_);
    consumer->Abandon(Error{ErrorCode::kFailed, rule, std::move(message)});
  }

  // Parks the connection until the reply; it holds no timer meanwhile (the update has its
  // own deadline), and a dead peer is discovered at write time.
  void DoFinish() {
    tcp_layer().expires_never();
    {
      std::lock_guard lock(shared_->mu);
      shared_->parked.emplace(this, shared_from_this());
    }
    std::unique_ptr<BodyConsumer> consumer = std::move(consumer_);
    auto once = std::make_shared<std::atomic<bool>>(false);
    try {
      consumer->Finish(MakeReply(once));
    } catch (...) {
      // A reply already given will arrive and close the connection; otherwise the 500 is ours.
      if (once->exchange(true)) return;
      std::lock_guard lock(shared_->mu);
      shared_->parked.erase(this);
      throw;
    }
  }

  // The reply holds no executor of its own: a strand outliving its io_context is undefined
  // behaviour, and a reply may be destroyed after the server is (a job still running at
  // Stop). The connection's strand is reached through the connection, and only while the
  // server is open (checked under the lock Stop takes before the io_context goes).
  Reply MakeReply(std::shared_ptr<std::atomic<bool>> once) {
    return [shared = shared_, weak = weak_from_this(), once](Response response) {
      if (once->exchange(true)) return;
      std::lock_guard lock(shared->mu);
      auto session = shared->open ? weak.lock() : nullptr;
      if (!session) {
        ++shared->dropped_replies;
        return;
      }
      asio::post(session->executor_, [shared, weak, response = std::move(response)]() mutable {
        if (auto alive = weak.lock()) {
          alive->OnReply(std::move(response));
        } else {
          ++shared->dropped_replies;
        }
      });
    };
  }

  void DoWrite(Response response, After after) {
    writing_ = true;
    after_ = after;
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    res_ = {static_cast<http::status>(response.status), version};
    res_.set(http::field::content_type, response.content_type);
    res_.body() = std::move(response.body);
    res_.keep_alive(after == After::kKeepAlive);
    res_.prepare_payload();
    // A response to HEAD has no body (RFC 9110 §9.3.2): its Content-Length is the one a GET
    // would get. Sending the body would be read as the start of the next response.
    if (parser_ && parser_->is_header_done() && parser_->get().method() == http::verb::head)
      res_.body().clear();
    tcp_layer().expires_after(limits().write_timeout);
    http::async_write(*stream_, res_, Bind(&Session::OnWrite));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      ++shared_->dropped_replies;
      return;
    }
    switch (after_) {
      case After::kKeepAlive:
        return DoReadHeader();
      case After::kClose:
        return DoShutdown();
      case After::kLinger:
        return DoLinger();
    }
  }

  void DoShutdown() {
    writing_ = true;  // nothing more is answered on this connection
    tcp_layer().expires_after(limits().linger_timeout);
    transport_.Shutdown(*stream_, Bind(&Session::OnShutdown));
  }

  void OnShutdown(beast::error_code) { tcp_layer().close(); }

  // The peer may still be sending a body nobody will read. Closing now would turn the unread
  // bytes into a reset that can destroy our response in flight, so: send FIN (the response
  // is complete by its Content-Length; no close_notify, which would need the peer's), drain
  // what is in flight for a bounded time and size, then close.
  void DoLinger() {
    writing_ = true;  // nothing more is answered on this connection
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    chunk_.resize(kBodyChunk);
    tcp_layer().expires_after(limits().linger_timeout);
    ReadLinger();
  }

  void ReadLinger() { tcp_layer().async_read_some(asio::buffer(chunk_), Bind(&Session::OnLinger)); }

  void OnLinger(beast::error_code ec, std::size_t n) {
    lingered_ += n;
    shared_->lingered_bytes += n;
    if (ec || lingered_ >= limits().linger_bytes) return tcp_layer().close();
    ReadLinger();  // the deadline armed in DoLinger still bounds the whole drain
  }

  beast::tcp_stream tcp_;  // until the first byte; then moved into stream_
  Transport transport_;
  std::optional<typename Transport::Stream> stream_;
  // SECURITY: capped; everything the parser needs whole (head, chunk line, trailers) fits.
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  Phase phase_ = Phase::kHead;
  std::optional<HeadScreen> screen_;
  std::size_t screened_ = 0;  // bytes at the front of buffer_ already screened
  std::vector<char> chunk_;
  std::unique_ptr<BodyConsumer> consumer_;
  std::uint64_t body_read_ = 0;
  std::uint64_t lingered_ = 0;
  http::response<http::empty_body> continue_;
  http::response<http::string_body> res_;
  After after_ = After::kClose;
  bool writing_ = false;  // a response is being written, or the connection is closing
  Peer peer_;
};

// The server's insides that a transport other than its own acceptor's needs
// (http_server_testing.cc); defined in http_server.cc.
struct HttpServerInternals {
  static std::shared_ptr<Shared> SharedOf(HttpServer& server);
  // A new strand of the server's I/O context, for a connection's socket.
  static asio::any_io_executor NewStrand(HttpServer& server);
  // Admits `session` as a pending connection from `source` and starts it, on the admission
  // thread, as an accepted connection is.
  static void Adopt(HttpServer& server, std::shared_ptr<SessionBase> session, std::string source);
  // Starts the I/O and admission threads without binding a port. Fails (kFailed, rule
  // "http-listen") when the server was already started.
  static Result<void> StartWithoutListening(HttpServer& server);
};

}  // namespace decnet::daemon
