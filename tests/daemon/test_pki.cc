#include "tests/daemon/test_pki.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace decnet::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::string reasons;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    reasons += std::string(" ") + buf;
  }
  throw std::runtime_error("test_pki: " + what + ":" + reasons);
}

void Check(bool ok, const char* what) {
  if (!ok) Die(what);
}

PkeyPtr NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  Check(key != nullptr, "EC key");
  return key;
}

std::string ToPem(int (*write)(BIO*, void*), void* object) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  Check(bio && write(bio.get(), object) == 1, "PEM");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CertPem(X509* cert) {
  return ToPem([](BIO* b, void* o) { return PEM_write_bio_X509(b, static_cast<X509*>(o)); }, cert);
}

std::string KeyPem(EVP_PKEY* key) {
  return ToPem(
      [](BIO* b, void* o) {
        return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(o), nullptr, nullptr, 0, nullptr,
                                        nullptr);
      },
      key);
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  Check(X509_digest(cert, EVP_sha256(), md, &n) == 1, "digest");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xf];
  }
  return out;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  Check(ext != nullptr, "extension");
  Check(X509_add_ext(cert, ext, -1) == 1, "add extension");
  X509_EXTENSION_free(ext);
}

// Builds and signs one certificate. `issuer`/`issuer_key` null: self-signed.
Issued Make(const std::vector<std::string>& cns, std::chrono::seconds not_before,
            std::chrono::seconds not_after, X509* issuer, EVP_PKEY* issuer_key, const char* basic,
            const char* usage, const char* eku, const char* san) {
  static long serial = 1;
  Issued out;
  out.key = NewKey();
  out.cert.reset(X509_new());
  X509* cert = out.cert.get();
  Check(cert != nullptr, "X509_new");
  Check(X509_set_version(cert, 2) == 1, "version");
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial + static_cast<long>(getpid()) * 1000);
  Check(X509_gmtime_adj(X509_getm_notBefore(cert), not_before.count()) != nullptr, "notBefore");
  Check(X509_gmtime_adj(X509_getm_notAfter(cert), not_after.count()) != nullptr, "notAfter");
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("decnet-test"), -1, -1, 0);
  for (const std::string& cn : cns) {
    Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(cn.data()),
                                     static_cast<int>(cn.size()), -1, 0) == 1,
          "CN");
  }
  X509* signer = issuer ? issuer : cert;
  Check(X509_set_issuer_name(cert, X509_get_subject_name(signer)) == 1, "issuer");
  Check(X509_set_pubkey(cert, out.key.get()) == 1, "pubkey");
  AddExtension(cert, signer, NID_basic_constraints, basic);
  AddExtension(cert, signer, NID_key_usage, usage);
  AddExtension(cert, signer, NID_subject_key_identifier, "hash");
  if (issuer) AddExtension(cert, signer, NID_authority_key_identifier, "keyid:always");
  if (eku) AddExtension(cert, signer, NID_ext_key_usage, eku);
  if (san) AddExtension(cert, signer, NID_subject_alt_name, san);
  Check(X509_sign(cert, issuer_key ? issuer_key : out.key.get(), EVP_sha256()) > 0, "sign");
  out.cert_pem = CertPem(cert);
  out.key_pem = KeyPem(out.key.get());
  out.fingerprint = Fingerprint(cert);
  return out;
}

}  // namespace

TestCa::TestCa(const std::string& cn)
    : ca_(Make({cn}, std::chrono::seconds(-3600), std::chrono::seconds(7 * 24 * 3600), nullptr,
               nullptr, "critical,CA:TRUE", "critical,keyCertSign,cRLSign", nullptr, nullptr)) {}

Issued TestCa::Issue(const CertSpec& spec) const {
  std::string san = "IP:127.0.0.1,DNS:localhost";
  for (const auto& ip : spec.extra_ips) san += ",IP:" + ip;
  return Make(spec.common_names, spec.not_before, spec.not_after, ca_.cert.get(), ca_.key.get(),
              "critical,CA:FALSE", "critical,digitalSignature,keyEncipherment",
              spec.server ? "serverAuth" : "clientAuth", spec.server ? san.c_str() : nullptr);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "decnet-pki-XXXXXX").string();
  Check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name, const std::string& content) const {
  std::filesystem::path file = path_ / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  Check(out.good(), "write file");
  chmod(file.c_str(), 0600);
  return file.string();
}

PemPaths WritePem(const TempDir& dir, const std::string& name, const Issued& issued) {
  return PemPaths{dir.Write(name + ".crt", issued.cert_pem),
                  dir.Write(name + ".key", issued.key_pem)};
}

CtxPtr MakeClientContext(const TestCa& trust, const Issued* client) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  Check(ctx != nullptr, "client ctx");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  Check(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), trust.ca().cert.get()) == 1,
        "trust");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (client != nullptr) {
    Check(SSL_CTX_use_certificate(ctx.get(), client->cert.get()) == 1, "client cert");
    Check(SSL_CTX_use_PrivateKey(ctx.get(), client->key.get()) == 1, "client key");
  }
  return ctx;
}

MemoryHandshake HandshakeInMemory(SSL_CTX* server_ctx, SSL_CTX* client_ctx) {
  MemoryHandshake h;
  h.server.reset(SSL_new(server_ctx));
  h.client.reset(SSL_new(client_ctx));
  Check(h.server && h.client, "SSL_new");
  BIO* server_bio = nullptr;
  BIO* client_bio = nullptr;
  Check(BIO_new_bio_pair(&server_bio, 0, &client_bio, 0) == 1, "bio pair");
  SSL_set_bio(h.server.get(), server_bio, server_bio);
  SSL_set_bio(h.client.get(), client_bio, client_bio);
  SSL_set_accept_state(h.server.get());
  SSL_set_connect_state(h.client.get());
  bool server_failed = false;
  bool client_failed = false;
  auto step = [](SSL* ssl, bool& ok, bool& failed) {
    if (ok || failed) return;
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
      ok = true;
      return;
    }
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) failed = true;
  };
  for (int round = 0; round < 32 && !(h.server_ok && h.client_ok); ++round) {
    step(h.client.get(), h.client_ok, client_failed);
    step(h.server.get(), h.server_ok, server_failed);
    if (server_failed) break;
  }
  ERR_clear_error();
  return h;
}

}  // namespace decnet::testing
