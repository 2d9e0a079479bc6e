// OpenSSL's C API behind small RAII holders. Serial numbers are 128 random bits, so two
// certificates made on two workers never share one.
#include "enrol/tls_material.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace decnet::enrol {
namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using X509Ptr = std::unique_ptr<X509, Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;

std::string OpenSslReason() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

tl::unexpected<Error> MakeFailed(const std::string& what) {
  return Fail(ErrorCode::kFailed, "enrol-tls-make", what + ": " + OpenSslReason());
}

BioPtr ReadBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order; empty when none parses.
std::vector<X509Ptr> ReadCerts(const std::string& pem) {
  std::vector<X509Ptr> out;
  BioPtr bio = ReadBio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the input reads as an error
  return out;
}

KeyPtr ReadKey(const std::string& pem) {
  BioPtr bio = ReadBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string ToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, valid from an hour ago for `days`, unsigned.
Result<X509Ptr> NewCert(EVP_PKEY* key, const std::string& cn, int days) {
  X509Ptr cert(X509_new());
  unsigned char serial[16];
  if (!cert || RAND_bytes(serial, sizeof serial) != 1) return MakeFailed("new certificate");
  serial[0] &= 0x7f;  // a positive serial
  std::unique_ptr<BIGNUM, Free> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  X509_NAME* name = X509_get_subject_name(cert.get());
  const auto* text = reinterpret_cast<const unsigned char*>(cn.c_str());
  if (!bn || X509_set_version(cert.get(), 2) != 1 ||
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr) == nullptr ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, text, -1, -1, 0) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1)
    return MakeFailed("certificate fields");
  return cert;
}

Result<std::pair<X509Ptr, KeyPtr>> ParsePair(const CertAndKey& pair, const std::string& what) {
  auto certs = ReadCerts(pair.cert_pem);
  KeyPtr key = ReadKey(pair.key_pem);
  if (certs.empty() || !key)
    return Fail(ErrorCode::kDenied, "enrol-tls-parse",
                what + ": the certificate or the key is not PEM that OpenSSL reads");
  if (X509_check_private_key(certs.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return Fail(ErrorCode::kDenied, "enrol-tls-key-mismatch",
                what + ": the key does not belong to the certificate");
  }
  return std::pair{std::move(certs.front()), std::move(key)};
}

Result<void> Verify(const std::vector<X509Ptr>& anchors, X509* leaf, Purpose purpose,
                    const std::string& rule, const std::string& what) {
  std::unique_ptr<X509_STORE, Free> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, Free> ctx(X509_STORE_CTX_new());
  if (!store || !ctx) return MakeFailed("verification context");
  for (const X509Ptr& a : anchors) X509_STORE_add_cert(store.get(), a.get());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) != 1)
    return MakeFailed("verification context");
  X509_STORE_CTX_set_purpose(
      ctx.get(), purpose == Purpose::kServer ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Fail(ErrorCode::kDenied, rule,
                what + ": the certificate does not verify against the CA (" +
                    X509_verify_cert_error_string(err) + ")");
  }
  return {};
}

}  // namespace

Result<CertAndKey> MakeCa(const std::string& common_name, int days) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return MakeFailed("CA key");
  auto cert = NewCert(key.get(), common_name, days);
  if (!cert) return tl::make_unexpected(cert.error());
  X509* c = cert->get();
  if (X509_set_issuer_name(c, X509_get_subject_name(c)) != 1 ||
      !AddExt(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !AddExt(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !AddExt(c, c, NID_subject_key_identifier, "hash") ||
      X509_sign(c, key.get(), EVP_sha256()) <= 0)
    return MakeFailed("CA certificate");
  return CertAndKey{ToPem(c), ToPem(key.get())};
}

Result<void> CheckCa(const CertAndKey& ca) {
  auto pair = ParsePair(ca, "the CA given with --ca-cert/--ca-key");
  if (!pair) return tl::make_unexpected(pair.error());
  if (X509_check_ca(pair->first.get()) == 0)
    return Fail(ErrorCode::kDenied, "enrol-tls-not-ca",
                "the certificate given with --ca-cert is not a CA certificate");
  return {};
}

Result<Bundle> IssueLeaf(const CertAndKey& ca, const LeafSpec& spec) {
  auto signer = ParsePair(ca, "the signing CA");
  if (!signer) return tl::make_unexpected(signer.error());
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return MakeFailed("key");
  auto cert = NewCert(key.get(), spec.common_name, spec.days);
  if (!cert) return tl::make_unexpected(cert.error());
  X509* c = cert->get();
  std::string san;
  for (const std::string& n : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  for (const std::string& a : spec.addresses) san += (san.empty() ? "IP:" : ",IP:") + a;
  const bool server = spec.purpose == Purpose::kServer;
  if (X509_set_issuer_name(c, X509_get_subject_name(signer->first.get())) != 1 ||
      !AddExt(c, signer->first.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExt(c, signer->first.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExt(c, signer->first.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth") ||
      (!san.empty() && !AddExt(c, signer->first.get(), NID_subject_alt_name, san)) ||
      X509_sign(c, signer->second.get(), EVP_sha256()) <= 0)
    return MakeFailed("certificate");
  return Bundle{ca.cert_pem, ToPem(c), ToPem(key.get())};
}

Result<std::string> CheckBundle(const Bundle& bundle, Purpose purpose, const std::string& what) {
  auto anchors = ReadCerts(bundle.ca_pem);
  if (anchors.empty())
    return Fail(ErrorCode::kDenied, "enrol-tls-parse", what + ": the CA file holds no certificate");
  auto pair = ParsePair({bundle.cert_pem, bundle.key_pem}, what);
  if (!pair) return tl::make_unexpected(pair.error());
  if (auto ok = Verify(anchors, pair->first.get(), purpose, "enrol-tls-chain", what); !ok)
    return tl::make_unexpected(ok.error());
  return Fingerprint(bundle.cert_pem);
}

Result<std::string> Fingerprint(const std::string& cert_pem) {
  auto certs = ReadCerts(cert_pem);
  if (certs.empty()) return Fail(ErrorCode::kDenied, "enrol-tls-parse", "not a PEM certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(certs.front().get(), EVP_sha256(), md, &n) != 1) return MakeFailed("digest");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

Result<void> CheckClientChain(const std::string& ca_pem, const std::string& cert_pem) {
  auto anchors = ReadCerts(ca_pem);
  auto certs = ReadCerts(cert_pem);
  if (anchors.empty() || certs.empty())
    return Fail(ErrorCode::kDenied, "enrol-tls-parse",
                "the master's certificate or the updater's CA is not PEM that OpenSSL reads");
  return Verify(anchors, certs.front().get(), Purpose::kClient, "enrol-master-chain",
                "the master's certificate (--master-cert)");
}

}  // namespace decnet::enrol
