#include "daemon/release_guard.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

namespace decnet::daemon {
namespace {

// How far a descriptor's creation time may lie ahead of this host's clock (as
// VerifyReleaseSignatures allows).
constexpr int64_t kClockSkewSeconds = 300;

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; });
  return out;
}

Result<Downgrade> ParseDowngrade(const std::optional<std::string>& field, bool allowed) {
  if (!field) return Downgrade::kNotAsked;
  const std::string value = Lower(*field);
  if (value == "false") return Downgrade::kNotAsked;
  if (value != "true")
    return Fail(ErrorCode::kMalformed, "downgrade-malformed", "downgrade must be true or false");
  return allowed ? Downgrade::kPermitted : Downgrade::kRefused;
}

// The lifetime check VerifyReleaseSignatures makes, for a descriptor sent without signatures.
Result<void> CheckLifetime(const ReleaseDescriptor& d, int64_t now) {
  if (now < d.created - kClockSkewSeconds)
    return Fail(ErrorCode::kDenied, "descriptor-not-yet-valid",
                "the descriptor was created " + FormatUtcTime(d.created) + ", after this host's " +
                    FormatUtcTime(now));
  if (now >= d.expires)
    return Fail(ErrorCode::kDenied, "descriptor-expired",
                "the descriptor expired " + FormatUtcTime(d.expires));
  return {};
}

}  // namespace

Result<std::vector<std::string>> ReleaseGuard::VerifySignatures(
    const std::string& descriptor, const std::vector<std::string>& lines, int64_t now) const {
  struct stat st {};
  if (::stat(config_.trusted_keys_dir.c_str(), &st) != 0 && errno == ENOENT)
    return Fail(ErrorCode::kDenied, "signature-unverifiable",
                "the release is signed but this updater has no trusted keys (" +
                    config_.trusted_keys_dir +
                    " does not exist): a signature that cannot be checked is not accepted");
  // SECURITY: keys are read for each upload, from a root-owned directory only, so a rotation
  // applies at once and a key planted by anyone but root is never trusted.
  auto keys =
      LoadTrustedKeys(config_.trusted_keys_dir, static_cast<unsigned>(config_.signature_threshold),
                      config_.trusted_keys_owner);
  if (!keys) return tl::make_unexpected(keys.error());
  std::vector<ReleaseSignature> signatures;
  for (const std::string& line : lines) {
    auto parsed = ParseSignatureLine(line);
    if (!parsed) return tl::make_unexpected(parsed.error());
    signatures.push_back(std::move(*parsed));
  }
  auto verdict = VerifyReleaseSignatures(descriptor, signatures, *keys, now);
  if (!verdict) return tl::make_unexpected(verdict.error());
  return verdict->valid_key_ids;
}

Result<ReleaseClaim> ReleaseGuard::CheckHead(ReleaseKind endpoint, const ReleaseFields& fields,
                                             int64_t now,
                                             std::vector<std::string>* signed_by) const {
  ReleaseClaim claim;
  auto downgrade = ParseDowngrade(fields.downgrade, config_.allow_downgrade);
  if (!downgrade) return tl::make_unexpected(downgrade.error());
  claim.downgrade = *downgrade;
  const bool signed_push = !fields.signatures.empty();
  // SECURITY: with require_signature, nothing unsigned reaches the spool.
  if (config_.require_signature && !signed_push)
    return Fail(ErrorCode::kDenied, "signature-required",
                "this updater requires signed releases: send the descriptor and at least " +
                    std::to_string(config_.signature_threshold) +
                    " signature(s) before the tarball");
  if (!fields.descriptor) {
    if (signed_push)
      return Fail(ErrorCode::kMalformed, "descriptor-required",
                  "signatures were sent without the descriptor they sign");
    return claim;  // DECNET's push: the floor is checked once the version is known
  }
  auto descriptor = ParseReleaseDescriptor(*fields.descriptor);
  if (!descriptor) return tl::make_unexpected(descriptor.error());
  if (descriptor->kind != endpoint)
    return Fail(ErrorCode::kDenied, "descriptor-kind-mismatch",
                "the descriptor is for a release of kind \"" +
                    std::string(ReleaseKindName(descriptor->kind)) + "\"; this endpoint takes \"" +
                    std::string(ReleaseKindName(endpoint)) + "\"");
  if (signed_push) {
    auto verified = VerifySignatures(*fields.descriptor, fields.signatures, now);
    if (!verified) return tl::make_unexpected(verified.error());
    claim.signed_by = std::move(*verified);
    if (signed_by != nullptr) *signed_by = claim.signed_by;
  } else if (auto alive = CheckLifetime(*descriptor, now); !alive) {
    return tl::make_unexpected(alive.error());
  }
  if (auto newer = floor_.Check(endpoint, {descriptor->version.str(), true}, claim.downgrade);
      !newer)
    return tl::make_unexpected(newer.error());
  claim.descriptor = std::move(*descriptor);
  return claim;
}

Result<void> ReleaseGuard::CheckSpooled(const ReleaseClaim& claim, std::string_view sha256,
                                        uint64_t size) {
  if (!claim.descriptor) return {};
  // SECURITY: the signature covers the descriptor; this ties the descriptor to these bytes.
  if (claim.descriptor->sha256 != sha256)
    return Fail(ErrorCode::kDenied, "descriptor-digest-mismatch",
                "the tarball's sha256 is " + std::string(sha256) + "; the descriptor names " +
                    claim.descriptor->sha256);
  if (claim.descriptor->size != size)
    return Fail(ErrorCode::kDenied, "descriptor-size-mismatch",
                "the tarball has " + std::to_string(size) + " bytes; the descriptor says " +
                    std::to_string(claim.descriptor->size));
  return {};
}

Result<void> ReleaseGuard::CheckManifest(const ReleaseClaim& claim,
                                         const std::optional<ReleaseManifest>& manifest) {
  if (!claim.descriptor) return {};
  const ReleaseDescriptor& d = *claim.descriptor;
  if (!manifest)
    return Fail(ErrorCode::kDenied, "descriptor-manifest-mismatch",
                "the descriptor names version " + d.version.str() + " but the release has no " +
                    std::string(kReleaseManifestName));
  return CheckRecorded(claim, manifest->kind, manifest->version);
}

Result<void> ReleaseGuard::CheckRecorded(const ReleaseClaim& claim, ReleaseKind kind,
                                         const ReleaseVersion& version) {
  if (!claim.descriptor) return {};
  const ReleaseDescriptor& d = *claim.descriptor;
  if (kind != d.kind || version != d.version)
    return Fail(ErrorCode::kDenied, "descriptor-manifest-mismatch",
                "the release manifest says " + std::string(ReleaseKindName(kind)) + " " +
                    version.str() + "; the descriptor says " +
                    std::string(ReleaseKindName(d.kind)) + " " + d.version.str());
  return {};
}

}  // namespace decnet::daemon
