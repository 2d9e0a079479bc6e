// Certificates made at test time with OpenSSL's C API (openssl req cannot make expired or
// not-yet-valid ones): CAs, server and client certificates with chosen subjects and
// validity, written as PEM files into a temporary directory. Failures throw
// std::runtime_error (a test failure under GoogleTest). EC P-256 keys: fast to generate.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace decnet::testing {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct CtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

struct CertSpec {
  // Subject CN entries, in order: none, one, or several (to test ambiguity). A CN may hold
  // an embedded NUL (std::string with '\0').
  std::vector<std::string> common_names{"client"};
  bool server = false;  // serverAuth, SAN IP:127.0.0.1 and DNS:localhost; else clientAuth
  std::chrono::seconds not_before{-3600};  // relative to now
  std::chrono::seconds not_after{24 * 3600};
  std::vector<std::string> extra_ips{};  // server only: more SAN IP entries, e.g. "10.1.2.3"
};

// A certificate and its key.
struct Issued {
  X509Ptr cert;
  PkeyPtr key;
  std::string cert_pem;
  std::string key_pem;
  std::string fingerprint;  // SHA-256 of the DER, lowercase hex
};

class TestCa {
 public:
  explicit TestCa(const std::string& cn);  // a self-signed CA, valid from an hour ago
  Issued Issue(const CertSpec& spec) const;
  const Issued& ca() const { return ca_; }

 private:
  Issued ca_;
};

// A temporary directory removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name (mode 0600) and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

// PEM file paths of one certificate and key.
struct PemPaths {
  std::string cert;
  std::string key;
};
PemPaths WritePem(const TempDir& dir, const std::string& name, const Issued& issued);

// A client-side context trusting `trust` (server name not checked: tests connect to an IP),
// presenting `client` when given. TLS 1.2+ unless loosened by the caller.
CtxPtr MakeClientContext(const TestCa& trust, const Issued* client);

// A handshake between two SSL objects over a BIO pair, in memory.
struct MemoryHandshake {
  SslPtr server;
  SslPtr client;
  bool server_ok = false;  // the server side completed its handshake
  bool client_ok = false;
};
// Pumps both sides until each finishes or fails. server_ok is the server's verdict on the
// client (under TLS 1.3 the client may finish before the server has judged it).
MemoryHandshake HandshakeInMemory(SSL_CTX* server_ctx, SSL_CTX* client_ctx);

}  // namespace decnet::testing
