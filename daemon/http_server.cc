// One Session per connection: a handful of short do_x/on_x steps, each arming its own
// timeout first. Authorisation is the Application's, decided in OnHead on the header alone.
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

namespace decnet::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr std::size_t kReadSize = 64 * 1024;  // most bytes one read asks of the stream
constexpr auto kSweepEvery = std::chrono::milliseconds(250);  // pending deadlines, trimming
constexpr auto kAcceptRetry = std::chrono::milliseconds(50);  // after EMFILE and the like
// A flood is this many connections open at once; it is over when at most kTrimLowWater are.
constexpr std::uint64_t kTrimHighWater = 64;
constexpr std::uint64_t kTrimLowWater = 16;

using Clock = std::chrono::steady_clock;

// {"detail":{"error":text,"rule":rule}}; both are our own constants, never client text.
Response Detail(unsigned status, std::string_view rule, std::string_view text) {
  return Response{status, "application/json",
                  std::string(R"({"detail":{"error":")") + std::string(text) + R"(","rule":")" +
                      std::string(rule) + "\"}}"};
}

// One line on stderr (the journal) per caught exception.
void LogException(const char* where, const char* what) {
  std::fprintf(stderr,
               "decnet-updaterd: http: exception in %s, it ends its request or connection: %s\n",
               where, what);
}

// A protocol error from Beast's parser, other than the peer simply going away.
bool IsMalformed(const boost::beast::error_code& ec) {
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

}  // namespace

class Session;

// The pool a connection's slot is in (see the top).
enum class Pool { kNone, kPending, kAuthenticated, kMaster };

// A connection whose handshake has not completed, in arrival order.
struct PendingEntry {
  Session* session;
  std::weak_ptr<Session> weak;
  std::string source;  // see SourceOf
  Clock::time_point since;
};

namespace {

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
        // SECURITY: obs-fold is refused, not joined; see the top of this file.
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
  std::unordered_map<Session*, std::shared_ptr<Session>> parked;  // awaiting a reply
  std::atomic<std::uint64_t> accepted{0}, refused_over_cap{0}, handshake_failures{0},
      open_connections{0}, peak_connections{0}, lingered_bytes{0}, dropped_replies{0},
      handler_exceptions{0}, shed_oldest{0}, shed_per_source{0}, handshake_timeouts{0},
      accept_errors{0}, memory_trims{0};
  // Admission (see the top). slots_mu guards these and each Session's pool_ and pending_at_.
  std::mutex slots_mu;
  std::list<PendingEntry> pending;  // oldest first
  std::unordered_map<std::string, std::size_t> pending_by_source;
  std::size_t authenticated = 0, masters = 0, peak_pending = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, std::shared_ptr<Shared> shared)
      : tcp_(std::move(socket)),
        executor_(tcp_.get_executor()),
        tls_(tls),
        shared_(std::move(shared)),
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

  void Run() {
    asio::dispatch(executor_, [self = shared_from_this()] {
      self->Guarded("handler", [&] { self->DoWaitForBytes(); });
    });
  }

  // Closes a connection the admission code took out of the pending pool; posted onto its
  // strand. Whatever it was waiting for completes with an error and ends it.
  void Shed() { tcp_layer().close(); }

  // Takes this connection out of the pending pool (slots_mu held).
  void LeavePendingLocked() {
    auto by = shared_->pending_by_source.find(pending_at_->source);
    if (--by->second == 0) shared_->pending_by_source.erase(by);
    shared_->pending.erase(pending_at_);
    pool_ = Pool::kNone;
  }

  // A consumer's reply, on this connection's strand.
  void OnReply(Response response) {
    auto self = shared_from_this();  // parked may hold the last reference
    {
      std::lock_guard lock(shared_->mu);
      shared_->parked.erase(this);
    }
    Guarded("reply", [&] { DoWrite(std::move(response), After::kClose); });
  }

 private:
  enum class Phase { kHead, kBody };

  friend struct HttpServer::Impl;  // admission: pool_, pending_at_, Shed, Guarded, executor_

  const Limits& limits() const { return shared_->config.limits; }
  beast::tcp_stream& tcp_layer() { return stream_ ? beast::get_lowest_layer(*stream_) : tcp_; }

  // A completion handler that keeps the session alive and runs `fn` under Guarded.
  template <typename... Args>
  auto Bind(void (Session::*fn)(Args...)) {
    return [self = shared_from_this(), fn](Args... args) {
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

  // No TLS state until the client sends something (see the top); the pending deadline,
  // enforced by the admission sweep, bounds the wait.
  void DoWaitForBytes() {
    tcp_.socket().async_wait(tcp::socket::wait_read, Bind(&Session::OnReadable));
  }

  void OnReadable(beast::error_code ec) {
    if (ec) return;               // shed, or the server stopped
    if (!StillPending()) return;  // shed meanwhile: spend no handshake on it
    stream_.emplace(std::move(tcp_), tls_);
    DoHandshake();
  }

  void DoHandshake() {
    tcp_layer().expires_after(limits().handshake_timeout);  // the sweep usually acts first
    stream_->async_handshake(asio::ssl::stream_base::server, Bind(&Session::OnHandshake));
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
    Result<ClientIdentity> id = ReadClientIdentity(stream_->native_handle());
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
        // Beast's field store refuses values over 64 KiB by throwing (see the top).
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
    // SECURITY: exactly one Host, whatever the version (see the top of this file).
    if (parser_->get().count(http::field::host) != 1)
      return Refuse(400, "http-host-required", "a request needs exactly one Host header");
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

  Reply MakeReply(std::shared_ptr<std::atomic<bool>> once) {
    return
        [shared = shared_, weak = weak_from_this(), executor = executor_, once](Response response) {
          if (once->exchange(true)) return;
          std::lock_guard lock(shared->mu);
          if (!shared->open) {
            ++shared->dropped_replies;
            return;
          }
          asio::post(executor, [shared, weak, response = std::move(response)]() mutable {
            if (auto session = weak.lock()) {
              session->OnReply(std::move(response));
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
    stream_->async_shutdown(Bind(&Session::OnShutdown));
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

  beast::tcp_stream tcp_;           // until the first byte; then moved into stream_
  asio::any_io_executor executor_;  // this connection's strand
  asio::ssl::context& tls_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
  std::shared_ptr<Shared> shared_;
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
  Pool pool_ = Pool::kNone;                         // guarded by Shared::slots_mu
  std::list<PendingEntry>::iterator pending_at_{};  // while pool_ is kPending; ditto
};

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

struct HttpServer::Impl {
  using Shedding = std::vector<std::shared_ptr<Session>>;

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
    auto session = std::make_shared<Session>(std::move(socket), tls, shared);
    Admit(session, SourceOf(remote.address()));
    session->Run();
    if (shared->open_connections.load() >= kTrimHighWater) trim_owed = true;
    ArmSweep();
    DoAccept();
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
  void Admit(const std::shared_ptr<Session>& session, std::string source) {
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
    std::shared_ptr<Session> session = at->weak.lock();  // null: it is being destroyed
    at->session->LeavePendingLocked();
    if (session) shed.push_back(std::move(session));
  }

  static void Post(Shedding& shed) {
    for (std::shared_ptr<Session>& session : shed) {
      asio::any_io_executor executor = session->executor_;
      asio::post(executor, [session = std::move(session)] {
        session->Guarded("shed", [&] { session->Shed(); });
      });
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
  for (unsigned i = 0; i < m.shared->config.io_threads; ++i)
    m.threads.emplace_back([&m] { m.Run(m.ioc); });
  m.accept_thread = std::thread([&m] { m.Run(m.accept_ioc); });
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
  std::unordered_map<Session*, std::shared_ptr<Session>> parked;
  {
    std::lock_guard lock(m.shared->mu);
    m.shared->open = false;
    parked.swap(m.shared->parked);
  }
  parked.clear();  // before the io_context goes: their sockets belong to it
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
