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
#include "daemon/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace decnet::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr std::size_t kReadSize = 64 * 1024;  // most bytes one read asks of the stream

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
      handler_exceptions{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket), tls),
        shared_(std::move(shared)),
        buffer_(std::max(limits().read_buffer_bytes, limits().header_bytes)) {
    std::uint64_t now = ++shared_->open_connections;
    std::uint64_t peak = shared_->peak_connections.load();
    while (now > peak && !shared_->peak_connections.compare_exchange_weak(peak, now)) {
    }
  }
  ~Session() {
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
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->Guarded("handler", [&] { self->DoHandshake(); });
    });
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

  const Limits& limits() const { return shared_->config.limits; }
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

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
      if (!writing_)
        return DoWrite(Detail(500, "http-internal-error", "internal error"), After::kLinger);
    } catch (...) {
    }
    beast::error_code ignored;
    tcp_layer().socket().close(ignored);
  }

  void DoHandshake() {
    tcp_layer().expires_after(limits().handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server, Bind(&Session::OnHandshake));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      ++shared_->handshake_failures;
      return;
    }
    // Second lock: the context already refuses unverified peers.
    Result<ClientIdentity> id = ReadClientIdentity(stream_.native_handle());
    if (!id) {
      ++shared_->handshake_failures;
      return;
    }
    peer_.fingerprint = id->fingerprint;
    peer_.cn = id->cn.value_or("");
    peer_.master =
        Authorise(*id, shared_->config.master_pins, shared_->config.fallback_cn) == Role::kMaster;
    DoReadHeader();
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
    stream_.async_read_some(buffer_.prepare(room), Bind(&Session::OnRead));
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
    http::async_write(stream_, continue_, Bind(&Session::OnContinue));
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
    return [shared = shared_, weak = weak_from_this(), executor = stream_.get_executor(),
            once](Response response) {
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
    http::async_write(stream_, res_, Bind(&Session::OnWrite));
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
    stream_.async_shutdown(Bind(&Session::OnShutdown));
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

  beast::ssl_stream<beast::tcp_stream> stream_;
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
};

std::optional<std::string_view> RequestHead::Find(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

struct HttpServer::Impl {
  Impl(SslCtxPtr ctx, std::shared_ptr<Shared> s)
      : shared(std::move(s)), tls(ctx.release()), acceptor(asio::make_strand(ioc)) {}

  void DoAccept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
      OnAccept(ec, std::move(s));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      ++shared->accepted;
      // Over the cap the connection is accepted and closed at once: the listen backlog is
      // not left to fill with clients that would wait for nothing.
      if (shared->open_connections.load() >= shared->config.limits.max_connections) {
        ++shared->refused_over_cap;
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<Session>(std::move(socket), tls, shared)->Run();
      }
    }
    DoAccept();
  }

  // An I/O thread. Sessions catch their own exceptions; one that escapes anyway (from Asio,
  // Beast or the acceptor) is counted and logged, its handler's connection goes with the
  // unwound handler, and the thread goes back to serving: never std::terminate.
  void Run() {
    for (;;) {
      try {
        ioc.run();
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
  asio::io_context ioc;
  tcp::acceptor acceptor;
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
    m.threads.emplace_back([&m] { m.Run(); });
  return bound;
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
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
  const Shared& s = *impl_->shared;
  return ServerStats{s.accepted,         s.refused_over_cap,  s.handshake_failures,
                     s.open_connections, s.peak_connections,  s.lingered_bytes,
                     s.dropped_replies,  s.handler_exceptions};
}

}  // namespace decnet::daemon
