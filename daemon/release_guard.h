// Release authenticity and the never-older floor on the worker: what a push's `descriptor`,
// `signature` and `downgrade` form fields (proto/release_auth.h) must satisfy, checked in
// three places so that each check runs as early as what it needs is known:
//
//   at the head of the `tarball` part, before any of its bytes are read (CheckHead):
//     signatures required but absent, the descriptor unparsable or for the other endpoint's
//     kind, the signatures short of the threshold of trusted keys, the descriptor expired or
//     not yet valid, its version not newer than the floor;
//   once the tarball is spooled (CheckSpooled): its digest and size against the descriptor's;
//   once extracted (CheckManifest, and the floor again for pushes without a descriptor): the
//   release manifest's kind and version against the descriptor's.
//
// Trusted keys are read from config.trusted_keys_dir for every signed upload, so a key
// rotation takes effect without a restart. A push that carries signatures is verified whether
// or not signatures are required; one whose keys cannot be read is refused, never accepted
// unverified.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"
#include "daemon/version_floor.h"
#include "proto/release_auth.h"
#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet::daemon {

// The authenticity fields of an upload form, as the client sent them (unchecked).
struct ReleaseFields {
  std::optional<std::string> descriptor;
  std::vector<std::string> signatures;
  std::optional<std::string> downgrade;
};

// What CheckHead admitted; it travels with the upload to the pipeline.
struct ReleaseClaim {
  std::optional<ReleaseDescriptor> descriptor;  // nullopt: a push without one (DECNET's)
  std::vector<std::string> signed_by;           // trusted key ids whose signatures verified
  Downgrade downgrade = Downgrade::kNotAsked;
};

class ReleaseGuard {
 public:
  // Borrows both; they must outlive the guard.
  ReleaseGuard(const DaemonConfig& config, VersionFloor& floor) : config_(config), floor_(floor) {}

  // The checks at the head of the tarball part for an upload to the endpoint of `endpoint`
  // (/update: kService, /update-self: kUpdater) at `now` (seconds since the epoch). Refuses:
  // "downgrade-malformed" (neither "true" nor "false", any case); "signature-required"
  // (require_signature and no signature); "descriptor-required" (signatures without a
  // descriptor); the descriptor's parse rules; "descriptor-kind-mismatch"; for a signed push
  // "signature-unverifiable" (no trusted keys directory), the trusted-key-* rules of
  // LoadTrustedKeys, the signature line rules, "signature-threshold"; "descriptor-expired",
  // "descriptor-not-yet-valid" (signed or not); then the floor's rules (CheckAgainstFloor).
  // `signed_by`, when given, receives the verified key ids even when a later check refuses.
  [[nodiscard]] Result<ReleaseClaim> CheckHead(ReleaseKind endpoint, const ReleaseFields& fields,
                                               int64_t now,
                                               std::vector<std::string>* signed_by = nullptr) const;

  // The spooled tarball against the claim's descriptor (nothing to check without one).
  // Refuses "descriptor-digest-mismatch" and "descriptor-size-mismatch" (kDenied).
  [[nodiscard]] static Result<void> CheckSpooled(const ReleaseClaim& claim, std::string_view sha256,
                                                 uint64_t size);

  // The extracted release's manifest against the claim's descriptor (nothing to check
  // without one): both must exist and agree on kind and version, else
  // "descriptor-manifest-mismatch" (kDenied).
  [[nodiscard]] static Result<void> CheckManifest(const ReleaseClaim& claim,
                                                  const std::optional<ReleaseManifest>& manifest);
  // The same for a release already in the store, by its recorded kind and version.
  [[nodiscard]] static Result<void> CheckRecorded(const ReleaseClaim& claim, ReleaseKind kind,
                                                  const ReleaseVersion& version);

  // The floor of `kind` against `version` (CheckAgainstFloor).
  [[nodiscard]] Result<void> CheckVersion(ReleaseKind kind, FloorVersion version,
                                          Downgrade downgrade) const {
    return floor_.Check(kind, version, downgrade);
  }

  VersionFloor& floor() const { return floor_; }
  bool require_signature() const { return config_.require_signature; }

 private:
  Result<std::vector<std::string>> VerifySignatures(const std::string& descriptor,
                                                    const std::vector<std::string>& lines,
                                                    int64_t now) const;

  const DaemonConfig& config_;
  VersionFloor& floor_;
};

}  // namespace decnet::daemon
