// The release manifest `.decnet-release.json` (a wire contract: the master writes it, the
// daemon reads it) and the typed values that name a release. Parse failures are
// ErrorCode::kMalformed with a "manifest-*" or "release-*" rule naming the check.
//
// Format 1, one JSON object, no other keys:
//   {"format":1, "version":"1.4.2+g3f2a", "kind":"service"|"updater",
//    "arch":"x86_64",          // `uname -m` of the build; required for kind "updater",
//                              // optional for "service"
//    "helper_protocol":1,      // kind "updater" only, required there: the helper protocol
//                              // version the build speaks
//    "commit":"3f2a9c1"}       // optional: the git commit built, 7..64 lower-case hex
// A tree without a manifest (every DECNET push) is a "service" release whose version is the
// `sha` form field, or else the tarball digest (see VersionWithoutManifest).
//
// Not linked into the root helper: the helper never reads network input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proto/result.h"

namespace decnet {

// The manifest's file name at the root of a release tree.
inline constexpr std::string_view kReleaseManifestName = ".decnet-release.json";
// The only format this code reads or writes.
inline constexpr uint64_t kReleaseManifestFormat = 1;
// A manifest larger than this is refused unread ("manifest-size").
inline constexpr size_t kMaxReleaseManifestBytes = 4096;

// The identity of a release in the store: the first 16 lower-case hex digits of the
// tarball's SHA-256. Refuses anything else ("release-id").
class ReleaseId {
 public:
  static Result<ReleaseId> Parse(std::string_view text);
  // From a full digest (64 lower-case hex digits); refuses anything else ("release-digest").
  static Result<ReleaseId> FromSha256Hex(std::string_view digest);
  const std::string& str() const { return value_; }
  auto operator<=>(const ReleaseId&) const = default;

 private:
  explicit ReleaseId(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// True when `text` is 64 lower-case hex digits.
bool IsSha256Hex(std::string_view text);

// A release version: 1..64 characters of [A-Za-z0-9._+-]. Refuses anything else
// ("manifest-version"): no spaces, '/', control bytes or non-ASCII.
class ReleaseVersion {
 public:
  static Result<ReleaseVersion> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  auto operator<=>(const ReleaseVersion&) const = default;

 private:
  explicit ReleaseVersion(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// What a release contains: the managed suite, or the updater daemon's own build.
enum class ReleaseKind {
  kService,
  kUpdater,
};

// Wire name ("service", "updater").
std::string_view ReleaseKindName(ReleaseKind kind);
// Refuses any other name ("manifest-kind").
Result<ReleaseKind> ParseReleaseKind(std::string_view text);

struct ReleaseManifest {
  ReleaseVersion version;
  ReleaseKind kind = ReleaseKind::kService;
  std::optional<std::string> arch;          // required when kind is kUpdater
  std::optional<uint64_t> helper_protocol;  // present exactly when kind is kUpdater
  std::optional<std::string> commit;        // the git commit built, when known
};

// Parses manifest bytes strictly. Refuses: more than kMaxReleaseManifestBytes
// ("manifest-size"); not exactly one JSON object, duplicate keys, nesting ("manifest-json");
// a key other than those above ("manifest-unknown-key"); and per field, missing where
// required, of the wrong type or out of range: "manifest-format" (must be the integer 1),
// "manifest-version", "manifest-kind", "manifest-arch" (1..32 of [A-Za-z0-9_]; required for
// "updater"), "manifest-helper-protocol" (integer 1..65535, required for "updater",
// refused for "service"), "manifest-commit" (7..64 lower-case hex digits).
[[nodiscard]] Result<ReleaseManifest> ParseReleaseManifest(std::string_view bytes);

// Serialises a manifest in format 1 (keys in a fixed order); ParseReleaseManifest reads it
// back unchanged.
std::string SerializeReleaseManifest(const ReleaseManifest& manifest);

// The version of a tree that carries no manifest: the `sha` form field when it is present
// and a valid ReleaseVersion, else the tarball digest. Refuses a `sha` that is not a valid
// version ("manifest-version") and a digest that is not 64 lower-case hex ("release-digest").
[[nodiscard]] Result<ReleaseVersion> VersionWithoutManifest(std::optional<std::string_view> sha,
                                                            std::string_view tarball_sha256);

// The exact bytes a detached release signature signs (docs/fleet.md, "Signing a release";
// the payload was fixed before signatures existed, so the manifest format did not change):
//
//   "decnet-release-v1\n" + <tarball SHA-256, 64 lower-case hex> + "\n" + <manifest bytes>
//
// The manifest bytes are the raw file contents, unparsed and unnormalised; a tree without a
// manifest signs an empty manifest. The domain-separation prefix keeps a signature over a
// release from being valid for any other message the same key may sign.
std::string ManifestSigningPayload(std::string_view manifest_bytes,
                                   std::string_view tarball_sha256);

}  // namespace decnet
