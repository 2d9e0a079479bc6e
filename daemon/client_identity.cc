#include "daemon/client_identity.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace decnet::daemon {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string ToHex(const unsigned char* data, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[data[i] >> 4];
    out += kHex[data[i] & 0xf];
  }
  return out;
}

// The entry's text as UTF-8, whatever ASN.1 string type it was encoded with.
std::optional<std::string> EntryUtf8(X509_NAME_ENTRY* entry) {
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (len < 0) return std::nullopt;
  std::string text(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return text;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

Result<ClientIdentity> IdentityOfCertificate(X509* cert) {
  ClientIdentity id;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (cert == nullptr || X509_digest(cert, EVP_sha256(), md, &md_len) != 1)
    return Fail(ErrorCode::kDenied, "client-cert-unreadable", "cannot digest the certificate");
  id.fingerprint = ToHex(md, md_len);

  X509_NAME* subject = X509_get_subject_name(cert);
  int count = 0;
  std::optional<std::string> only;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    ++count;
    std::optional<std::string> text = EntryUtf8(X509_NAME_get_entry(subject, i));
    std::string shown = text ? Printable(*text) : "<undecodable>";
    id.cn_for_log += id.cn_for_log.empty() ? shown : "," + shown;
    only = std::move(text);
  }
  // SECURITY: one CN, decodable, no embedded NUL: "decnet-master\0.evil" or a second CN
  // must not be read as "decnet-master" by a C-string comparison anywhere downstream.
  if (count == 1 && only && only->find('\0') == std::string::npos) id.cn = std::move(only);
  return id;
}

Result<ClientIdentity> ReadClientIdentity(const SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr)
    return Fail(ErrorCode::kDenied, "client-cert-missing", "no client certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK)
    return Fail(ErrorCode::kDenied, "client-cert-unverified",
                X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
  return IdentityOfCertificate(cert);
}

Result<std::string> NormaliseFingerprint(std::string_view pin) {
  std::string out;
  for (size_t i = 0; i < pin.size(); ++i) {
    char c = pin[i];
    if (c == ':' && i % 3 == 2 && i + 1 < pin.size()) continue;
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Fail(ErrorCode::kMalformed, "fingerprint-pin",
                  "a pin is 64 hex digits, optionally colon-separated");
    }
    out += c;
  }
  bool colons = pin.find(':') != std::string_view::npos;
  if (out.size() != 64 || (colons && pin.size() != 95))
    return Fail(ErrorCode::kMalformed, "fingerprint-pin",
                "a pin is 64 hex digits, optionally colon-separated");
  return out;
}

Role Authorise(const ClientIdentity& identity, std::span<const std::string> pins,
               std::string_view fallback_cn) {
  if (!pins.empty()) {
    bool pinned = std::any_of(pins.begin(), pins.end(),
                              [&](const std::string& p) { return p == identity.fingerprint; });
    return pinned ? Role::kMaster : Role::kClient;
  }
  if (!fallback_cn.empty() && identity.cn && *identity.cn == fallback_cn) return Role::kMaster;
  return Role::kClient;
}

}  // namespace decnet::daemon
