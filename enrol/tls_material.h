// The worker's TLS material, made or checked with OpenSSL: a CA, the updater's server
// certificate and the health probe's client certificate (EC P-256 keys), and the checks a
// bundle handed over by a master must pass before it is installed. Everything is PEM text in
// memory; nothing here touches the file system.
#pragma once

#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::enrol {

// A certificate and its private key, PEM.
struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

// A bundle as it lies on disk: the CA that the leaf chains to, the leaf, its key.
struct Bundle {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

enum class Purpose { kServer, kClient };

// What a certificate made here says about its subject.
struct LeafSpec {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName DNS: entries
  std::vector<std::string> addresses;  // subjectAltName IP: entries (literals already checked)
  Purpose purpose = Purpose::kServer;
  int days = 825;
};

// A new self-signed CA (basicConstraints CA:TRUE, pathlen 0; keyCertSign, cRLSign). Fails
// (kFailed, rule "enrol-tls-make") only when OpenSSL does.
[[nodiscard]] Result<CertAndKey> MakeCa(const std::string& common_name, int days);

// A leaf signed by `ca` (serverAuth or clientAuth, digitalSignature). The returned bundle's
// ca_pem is ca.cert_pem. Fails as MakeCa, or as CheckCa when `ca` is not a usable CA.
[[nodiscard]] Result<Bundle> IssueLeaf(const CertAndKey& ca, const LeafSpec& spec);

// Checks a CA given for signing: both parse, the key is the certificate's, it is a CA.
// Refuses "enrol-tls-parse", "enrol-tls-key-mismatch", "enrol-tls-not-ca".
[[nodiscard]] Result<void> CheckCa(const CertAndKey& ca);

// Checks a bundle before it is installed or kept: each part parses (the CA file may hold
// several certificates), the key belongs to the leaf, the leaf chains to the CA for
// `purpose` and is within its validity. Returns the leaf's SHA-256 fingerprint. Refuses
// (kDenied) "enrol-tls-parse", "enrol-tls-key-mismatch", "enrol-tls-chain"; `what` names the
// bundle in the message.
[[nodiscard]] Result<std::string> CheckBundle(const Bundle& bundle, Purpose purpose,
                                              const std::string& what);

// The SHA-256 of a PEM certificate's DER encoding, 64 lower-case hex digits (what the daemon
// pins and the master's inventory holds). Refuses "enrol-tls-parse".
[[nodiscard]] Result<std::string> Fingerprint(const std::string& cert_pem);

// Checks that `cert_pem` chains to a certificate of `ca_pem` as a client (the master's
// certificate against the CA the updater trusts). Refuses "enrol-tls-parse",
// "enrol-master-chain".
[[nodiscard]] Result<void> CheckClientChain(const std::string& ca_pem, const std::string& cert_pem);

}  // namespace decnet::enrol
