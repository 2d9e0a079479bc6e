#include "daemon/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "daemon/openssl_errors.h"

namespace decnet::daemon {
namespace {

// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 suites are OpenSSL's
// defaults, which are all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A chain deeper than this is not one our CA issues.
constexpr int kVerifyDepth = 4;

// Session ids are scoped to this context; needed whenever peers are verified.
constexpr unsigned char kSessionIdContext[] = "decnet-updaterd";

tl::unexpected<Error> TlsFail(const std::string& what) {
  return Fail(ErrorCode::kFailed, "tls-context", what + ": " + OpenSslErrors());
}

}  // namespace

Result<SslCtxPtr> MakeServerTlsContext(const TlsFiles& files) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return TlsFail("cannot create the TLS context");
  SSL_CTX* c = ctx.get();

  // SECURITY: nothing older than TLS 1.2 (DECNET's master uses 1.2 as its floor too).
  if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) return TlsFail("minimum version");
  if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) return TlsFail("cipher list");
  SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
  // SECURITY: no resumption, so a connection's identity is always a certificate verified
  // in this handshake.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(c, 0);  // TLS 1.3 would otherwise still send (stateful) tickets
  SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext - 1);

  if (SSL_CTX_use_certificate_chain_file(c, files.cert_file.c_str()) != 1)
    return TlsFail("server certificate " + files.cert_file);
  if (SSL_CTX_use_PrivateKey_file(c, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return TlsFail("server key " + files.key_file);
  if (SSL_CTX_check_private_key(c) != 1)
    return TlsFail("server key does not match its certificate");

  if (SSL_CTX_load_verify_locations(c, files.ca_file.c_str(), nullptr) != 1)
    return TlsFail("client CA " + files.ca_file);
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca_file.c_str());
  if (names == nullptr) return TlsFail("client CA names " + files.ca_file);
  SSL_CTX_set_client_CA_list(c, names);  // takes ownership

  // SECURITY: a client certificate is mandatory and must chain to the configured CA; the
  // default verification also checks its validity period. Master or not is decided later.
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(c, kVerifyDepth);
  return ctx;
}

}  // namespace decnet::daemon
