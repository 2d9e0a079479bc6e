// Test-only: the HTTP server over plain bytes, so that tests and the fuzz target of the whole
// HTTP session can drive the real server (read loop, head screen, parser, limits, admission,
// authorisation through the Application) without TLS. Built into decnet_daemon_http_testing,
// which decnet-updaterd does not link: the daemon's only transport is mTLS.
#pragma once

#include "daemon/client_identity.h"
#include "daemon/http_server.h"
#include "proto/result.h"

namespace decnet::daemon {

// Starts `server`'s I/O and admission threads without binding a port, for AdoptForTesting
// (Start does as well, and also listens). Fails (kFailed, rule "http-listen") when the server
// was already started.
[[nodiscard]] Result<void> StartForTesting(HttpServer& server);

// Hands `server` a connected stream socket (one end of a socketpair, say) that speaks plain
// HTTP/1.1. There is no TLS: the handshake is skipped, `client` stands for the certificate a
// TLS client would have presented and is authorised against the server's pins or fallback CN
// exactly as that certificate would be, and a graceful close is a FIN. The connection goes
// through admission like an accepted one. Takes `fd` in every case; fails (kFailed, rule
// "http-adopt", `fd` closed) when it cannot be adopted.
[[nodiscard]] Result<void> AdoptForTesting(HttpServer& server, int fd, ClientIdentity client);

}  // namespace decnet::daemon
