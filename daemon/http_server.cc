// One Session per connection: a handful of short do_x/on_x steps, each arming its own
// timeout first. Authorisation is the Application's, decided in OnHead on the header alone.
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

Response Detail(unsigned status, std::string_view text) {
  return Response{status, "application/json", std::string(R"({"detail":")") +
                                                  std::string(text) + "\"}"};
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

// Server state that connections and pending replies may hold on to.
struct Shared {
  ServerConfig config;
  Application* app = nullptr;
  std::mutex mu;
  bool open = true;  // false once stopped: replies are dropped, never posted
  std::unordered_map<Session*, std::shared_ptr<Session>> parked;  // awaiting a reply
  std::atomic<std::uint64_t> accepted{0}, refused_over_cap{0}, handshake_failures{0},
      open_connections{0}, peak_connections{0}, lingered_bytes{0}, dropped_replies{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, asio::ssl::context& tls, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket), tls), shared_(std::move(shared)) {
    std::uint64_t now = ++shared_->open_connections;
    std::uint64_t peak = shared_->peak_connections.load();
    while (now > peak && !shared_->peak_connections.compare_exchange_weak(peak, now)) {
    }
  }
  ~Session() {
    if (consumer_) consumer_->Abandon(Error{ErrorCode::kFailed, "http-server-stopped", ""});
    --shared_->open_connections;
  }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::DoHandshake, shared_from_this()));
  }

  // A consumer's reply, on this connection's strand.
  void OnReply(Response response) {
    auto self = shared_from_this();
    {
      std::lock_guard lock(shared_->mu);
      shared_->parked.erase(this);
    }
    DoWrite(std::move(response), After::kClose);
  }

 private:
  const Limits& limits() const { return shared_->config.limits; }
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(stream_); }

  void DoHandshake() {
    tcp_layer().expires_after(limits().handshake_timeout);
    stream_.async_handshake(asio::ssl::stream_base::server,
                            beast::bind_front_handler(&Session::OnHandshake, shared_from_this()));
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
    peer_.master = Authorise(*id, shared_->config.master_pins, shared_->config.fallback_cn) ==
                   Role::kMaster;
    DoReadHeader();
  }

  void DoReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().header_bytes));
    // The body cap is ours to check after OnHead: Beast would refuse a large Content-Length
    // while reading the header, i.e. before the caller is known to be authorised.
    parser_->body_limit(boost::none);
    tcp_layer().expires_after(limits().header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec == http::error::header_limit) return DoWrite(Detail(431, "header too large"), After::kLinger);
    if (IsMalformed(ec))
      return DoWrite(Detail(400, "malformed request"), After::kLinger);
    if (ec) return;  // the client left, or idled past the timeout: nothing to answer
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
    http::async_write(stream_, continue_,
                      beast::bind_front_handler(&Session::OnContinue, shared_from_this()));
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
    tcp_layer().expires_after(limits().body_read_timeout);
    // async_read, not async_read_some: it fills the whole chunk (returning need_buffer) from
    // as many TLS records as that takes, so the consumer and the timer run once per chunk
    // rather than once per 16 KiB record.
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit) return RefuseTooLarge();
    if (ec) {
      bool framing = IsMalformed(ec);
      Abandon(framing ? "http-bad-body" : "http-client-gone", ec.message());
      if (framing) DoWrite(Detail(400, "malformed body"), After::kLinger);
      return;
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

  void RefuseTooLarge() {
    Abandon("http-body-too-large", "the body is over the cap");
    DoWrite(Detail(413, "request body too large"), After::kLinger);
  }

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
    consumer->Finish(MakeReply());
  }

  Reply MakeReply() {
    auto once = std::make_shared<std::atomic<bool>>(false);
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
    after_ = after;
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    res_ = {static_cast<http::status>(response.status), version};
    res_.set(http::field::content_type, response.content_type);
    res_.body() = std::move(response.body);
    res_.keep_alive(after == After::kKeepAlive);
    res_.prepare_payload();
    tcp_layer().expires_after(limits().write_timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
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
    tcp_layer().expires_after(limits().linger_timeout);
    stream_.async_shutdown(beast::bind_front_handler(&Session::OnShutdown, shared_from_this()));
  }

  void OnShutdown(beast::error_code) { tcp_layer().close(); }

  // The peer may still be sending a body nobody will read. Closing now would turn the unread
  // bytes into a reset that can destroy our response in flight, so: send FIN (the response
  // is complete by its Content-Length; no close_notify, which would need the peer's), drain
  // what is in flight for a bounded time and size, then close.
  void DoLinger() {
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
    chunk_.resize(kBodyChunk);
    tcp_layer().expires_after(limits().linger_timeout);
    ReadLinger();
  }

  void ReadLinger() {
    tcp_layer().async_read_some(asio::buffer(chunk_),
                                beast::bind_front_handler(&Session::OnLinger, shared_from_this()));
  }

  void OnLinger(beast::error_code ec, std::size_t n) {
    lingered_ += n;
    shared_->lingered_bytes += n;
    if (ec || lingered_ >= limits().linger_bytes) return tcp_layer().close();
    ReadLinger();  // the deadline armed in DoLinger still bounds the whole drain
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  std::shared_ptr<Shared> shared_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::buffer_body>> parser_;
  std::vector<char> chunk_;
  std::unique_ptr<BodyConsumer> consumer_;
  std::uint64_t body_read_ = 0;
  std::uint64_t lingered_ = 0;
  http::response<http::empty_body> continue_;
  http::response<http::string_body> res_;
  After after_ = After::kClose;
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
    return Fail(ErrorCode::kFailed, "http-listen",
                std::string(what) + " " + address + ":" + std::to_string(port) + ": " +
                    ec.message());
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
    m.threads.emplace_back([&m] { m.ioc.run(); });
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
  return ServerStats{s.accepted,           s.refused_over_cap, s.handshake_failures,
                     s.open_connections,   s.peak_connections, s.lingered_bytes,
                     s.dropped_replies};
}

}  // namespace decnet::daemon
