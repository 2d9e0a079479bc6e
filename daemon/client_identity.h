// Who is on the other end of a verified mTLS connection, and whether it is the master.
// Pure functions over OpenSSL objects: tested over memory BIOs, no sockets.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proto/result.h"

namespace decnet::daemon {

// The DECNET master's certificate CN, authorised when no fingerprint pin is configured.
inline constexpr std::string_view kDecnetMasterCn = "decnet-master";

struct ClientIdentity {
  // SHA-256 of the leaf certificate's DER encoding, 64 lowercase hex digits.
  std::string fingerprint;
  // The subject's common name when the subject has exactly one CN entry that converts to
  // UTF-8 without an embedded NUL; nullopt otherwise (none, several, or NUL tricks).
  std::optional<std::string> cn;
  // The raw CN text for logs when `cn` is nullopt (possibly several, joined with ","); NULs
  // are replaced by "\\0". Never used for a decision.
  std::string cn_for_log;
};

enum class Role { kClient, kMaster };

// Reads the identity of a certificate. Fails (kDenied, rule "client-cert-unreadable") only
// when the certificate cannot be encoded.
[[nodiscard]] Result<ClientIdentity> IdentityOfCertificate(X509* cert);

// Reads the identity of a server-side connection after its handshake. Refuses (kDenied,
// rule "client-cert-missing" / "client-cert-unverified") when the peer presented no
// certificate or its verification did not succeed: the context already fails such
// handshakes, this is the second lock.
[[nodiscard]] Result<ClientIdentity> ReadClientIdentity(const SSL* ssl);

// Normalises a configured pin: 64 hex digits, optionally separated by ':' (as
// `openssl x509 -fingerprint -sha256` prints them), any case. Refuses anything else
// (kMalformed, rule "fingerprint-pin").
[[nodiscard]] Result<std::string> NormaliseFingerprint(std::string_view pin);

// SECURITY: the master is whoever holds a pinned certificate. Only when NO pin is configured
// does the CN decide (DECNET compatibility), and then only an unambiguous CN equal to
// `fallback_cn` byte for byte. Every CA-signed client is at least kClient (GET /health).
// `pins` must already be normalised.
[[nodiscard]] Role Authorise(const ClientIdentity& identity, std::span<const std::string> pins,
                             std::string_view fallback_cn = kDecnetMasterCn);

}  // namespace decnet::daemon
