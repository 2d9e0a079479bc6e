// The plain transport of http_server_testing.h. Session<PlainTransport> is instantiated here
// only, so decnet-updaterd, which does not link this library, has no plaintext path.
#include "daemon/http_server_testing.h"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <utility>

#include "daemon/http_session.h"

namespace decnet::daemon {
namespace {

// Plain bytes over the TCP stream (or any stream socket); the client is given.
struct PlainTransport {
  using Stream = beast::tcp_stream;

  void Open(std::optional<Stream>& stream, beast::tcp_stream&& tcp) {
    stream.emplace(std::move(tcp));
  }
  template <typename Handler>
  void Handshake(Stream& stream, Handler&& handler) {
    asio::post(stream.get_executor(),
               [handler = std::forward<Handler>(handler)]() mutable { handler({}); });
  }
  Result<ClientIdentity> Identify(Stream&) { return client; }
  template <typename Handler>
  void Shutdown(Stream& stream, Handler&& handler) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    asio::post(stream.get_executor(),
               [handler = std::forward<Handler>(handler)]() mutable { handler({}); });
  }

  ClientIdentity client;
};

}  // namespace

Result<void> StartForTesting(HttpServer& server) {
  return HttpServerInternals::StartWithoutListening(server);
}

Result<void> AdoptForTesting(HttpServer& server, int fd, ClientIdentity client) {
  tcp::socket socket(HttpServerInternals::NewStrand(server));
  beast::error_code ec;
  socket.assign(tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return Fail(ErrorCode::kFailed, "http-adopt", ec.message());
  }
  auto session = std::make_shared<Session<PlainTransport>>(
      std::move(socket), PlainTransport{std::move(client)}, HttpServerInternals::SharedOf(server));
  HttpServerInternals::Adopt(server, std::move(session), "plain");
  return {};
}

}  // namespace decnet::daemon
