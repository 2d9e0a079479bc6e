// The daemon's server-side TLS context: TLS 1.2 minimum (1.3 preferred), our certificate and
// key, and a client certificate that is REQUIRED and must chain to the configured CA.
// Who the client is (and whether it is the master) is decided afterwards, from the verified
// certificate, by client_identity.h.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "proto/result.h"

namespace decnet::daemon {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// PEM files of the updater's TLS bundle (DECNET: /etc/decnet/updater/{ca.crt,updater.crt,
// updater.key}).
struct TlsFiles {
  std::string ca_file;    // the CA every client certificate must chain to
  std::string cert_file;  // our certificate (chain), PEM
  std::string key_file;   // its private key, PEM
};

// Builds the server context. Refuses (kFailed, rule "tls-context") when a file cannot be
// read, the key does not match the certificate, or the CA file holds no certificate; the
// message carries OpenSSL's reason. The context:
//  * speaks TLS 1.2 and 1.3 only, with forward-secret AEAD suites for 1.2;
//  * requests a client certificate and fails the handshake without one, or when it does
//    not chain to `ca_file`, or is outside its validity period;
//  * disables renegotiation, compression, session tickets and the session cache, so every
//    connection presents (and verifies) its certificate afresh.
[[nodiscard]] Result<SslCtxPtr> MakeServerTlsContext(const TlsFiles& files);

}  // namespace decnet::daemon
