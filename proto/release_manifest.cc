#include "proto/release_manifest.h"

#include <nlohmann/json.hpp>

#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet {
namespace {

constexpr size_t kReleaseIdLength = 16;
constexpr size_t kMaxVersionLength = 64;
constexpr size_t kMaxArchLength = 32;
constexpr uint64_t kMaxHelperProtocol = 65535;
constexpr size_t kMinCommitLength = 7;
constexpr size_t kMaxCommitLength = 64;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

tl::unexpected<Error> Malformed(std::string rule, std::string message) {
  return Fail(ErrorCode::kMalformed, std::move(rule), std::move(message));
}

// A missing or wrongly typed field carries the field's own rule: the operator learns which
// key is wrong, not merely that one was.
tl::unexpected<Error> FieldError(std::string_view key, std::string_view what) {
  std::string rule = "manifest-" + std::string(key);
  for (char& c : rule) {
    if (c == '_') c = '-';
  }
  return Malformed(rule, "release manifest key \"" + std::string(key) + "\" " + std::string(what));
}

Result<std::string> ValidArch(std::string_view arch) {
  if (arch.empty() || arch.size() > kMaxArchLength) {
    return Malformed("manifest-arch", "release manifest arch must have 1 to 32 characters");
  }
  for (char c : arch) {
    if (!IsAlnum(c) && c != '_') {
      return Malformed("manifest-arch", "release manifest arch " + QuotePrintable(arch) +
                                            " has a character outside [A-Za-z0-9_]");
    }
  }
  return std::string(arch);
}

}  // namespace

bool IsSha256Hex(std::string_view text) { return text.size() == 64 && IsLowerHex(text); }

Result<ReleaseId> ReleaseId::Parse(std::string_view text) {
  // SECURITY: the id names a directory beneath the store; 16 lower-case hex digits can never
  // be "..", contain '/', or collide with the store's own names.
  if (text.size() != kReleaseIdLength || !IsLowerHex(text)) {
    return Malformed("release-id",
                     "release id " + QuotePrintable(text) + " must be 16 lower-case hex digits");
  }
  return ReleaseId(std::string(text));
}

Result<ReleaseId> ReleaseId::FromSha256Hex(std::string_view digest) {
  if (!IsSha256Hex(digest)) {
    return Malformed("release-digest",
                     "digest " + QuotePrintable(digest) + " must be 64 lower-case hex digits");
  }
  return ReleaseId(std::string(digest.substr(0, kReleaseIdLength)));
}

Result<ReleaseVersion> ReleaseVersion::Parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxVersionLength) {
    return Malformed("manifest-version", "release version must have 1 to 64 characters");
  }
  for (char c : text) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '+' && c != '-') {
      return Malformed("manifest-version", "release version " + QuotePrintable(text) +
                                               " has a character outside [A-Za-z0-9._+-]");
    }
  }
  return ReleaseVersion(std::string(text));
}

std::string_view ReleaseKindName(ReleaseKind kind) {
  switch (kind) {
    case ReleaseKind::kService:
      return "service";
    case ReleaseKind::kUpdater:
      return "updater";
  }
  return "service";
}

Result<ReleaseKind> ParseReleaseKind(std::string_view text) {
  if (text == "service") return ReleaseKind::kService;
  if (text == "updater") return ReleaseKind::kUpdater;
  return Malformed("manifest-kind",
                   "release kind " + QuotePrintable(text) + " must be \"service\" or \"updater\"");
}

Result<ReleaseManifest> ParseReleaseManifest(std::string_view bytes) {
  if (bytes.size() > kMaxReleaseManifestBytes) {
    return Malformed("manifest-size", "release manifest is larger than 4096 bytes");
  }
  // Depth 1: the manifest is one flat object; a nested value is refused as syntax.
  auto parsed = strict_json::ParseObject(bytes, /*max_depth=*/1);
  if (!parsed) return Malformed("manifest-json", "release manifest: " + parsed.error().message);
  strict_json::StrictObject object(*parsed, "release manifest");

  if (!object.Has("format")) return FieldError("format", "is missing");
  auto format = object.Uint("format");
  if (!format || *format != kReleaseManifestFormat) {
    return FieldError("format", "must be the integer 1");
  }
  if (!object.Has("version")) return FieldError("version", "is missing");
  auto version_text = object.String("version");
  if (!version_text) return FieldError("version", "must be a string");
  auto version = ReleaseVersion::Parse(*version_text);
  if (!version) return tl::make_unexpected(version.error());
  if (!object.Has("kind")) return FieldError("kind", "is missing");
  auto kind_text = object.String("kind");
  if (!kind_text) return FieldError("kind", "must be a string");
  auto kind = ParseReleaseKind(*kind_text);
  if (!kind) return tl::make_unexpected(kind.error());

  ReleaseManifest manifest{*version, *kind, std::nullopt, std::nullopt, std::nullopt};
  const bool updater = *kind == ReleaseKind::kUpdater;
  if (object.Has("arch")) {
    auto arch_text = object.String("arch");
    if (!arch_text) return FieldError("arch", "must be a string");
    auto arch = ValidArch(*arch_text);
    if (!arch) return tl::make_unexpected(arch.error());
    manifest.arch = *arch;
  } else if (updater) {
    return FieldError("arch", "is required for kind \"updater\"");
  }
  if (object.Has("helper_protocol")) {
    if (!updater) return FieldError("helper_protocol", "is allowed only for kind \"updater\"");
    auto protocol = object.Uint("helper_protocol");
    if (!protocol || *protocol == 0 || *protocol > kMaxHelperProtocol) {
      return FieldError("helper_protocol", "must be an integer from 1 to 65535");
    }
    manifest.helper_protocol = *protocol;
  } else if (updater) {
    return FieldError("helper_protocol", "is required for kind \"updater\"");
  }
  if (object.Has("commit")) {
    auto commit = object.String("commit");
    if (!commit || commit->size() < kMinCommitLength || commit->size() > kMaxCommitLength ||
        !IsLowerHex(*commit)) {
      return FieldError("commit", "must be 7 to 64 lower-case hex digits");
    }
    manifest.commit = *commit;
  }
  if (auto done = object.Finish(); !done) {
    return Malformed("manifest-unknown-key", done.error().message);
  }
  return manifest;
}

std::string SerializeReleaseManifest(const ReleaseManifest& manifest) {
  nlohmann::ordered_json out;
  out["format"] = kReleaseManifestFormat;
  out["version"] = manifest.version.str();
  out["kind"] = std::string(ReleaseKindName(manifest.kind));
  if (manifest.arch) out["arch"] = *manifest.arch;
  if (manifest.helper_protocol) out["helper_protocol"] = *manifest.helper_protocol;
  if (manifest.commit) out["commit"] = *manifest.commit;
  return out.dump();
}

Result<ReleaseVersion> VersionWithoutManifest(std::optional<std::string_view> sha,
                                              std::string_view tarball_sha256) {
  if (sha && !sha->empty()) return ReleaseVersion::Parse(*sha);
  if (!IsSha256Hex(tarball_sha256)) {
    return Malformed("release-digest", "digest " + QuotePrintable(tarball_sha256) +
                                           " must be 64 lower-case hex digits");
  }
  return ReleaseVersion::Parse(tarball_sha256);
}

std::string ManifestSigningPayload(std::string_view manifest_bytes,
                                   std::string_view tarball_sha256) {
  std::string payload = "decnet-release-v1\n";
  payload.reserve(payload.size() + tarball_sha256.size() + 1 + manifest_bytes.size());
  payload += tarball_sha256;
  payload += '\n';
  payload += manifest_bytes;
  return payload;
}

}  // namespace decnet
