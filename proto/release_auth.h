// Release authenticity, a wire contract between the rollout tool (which writes it) and the
// daemon (which checks it): the release descriptor `FILE.tgz.manifest.json`, detached Ed25519
// signatures over it, the worker's set of trusted keys with its threshold, and the order of
// release versions that the never-older floor uses.
//
// Parse failures are ErrorCode::kMalformed, trust failures kDenied; every error names its
// rule ("descriptor-*", "signature-*", "trusted-key-*", "version-*").
//
// Not linked into the root helper: the helper never reads network input.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet {

// ---------------------------------------------------------------------------------------
// The descriptor.
//
// Format 1, one JSON object, no other keys, written by `decnet-rollout pack` beside the
// tarball as `<tarball>.manifest.json`:
//   {"format":1,
//    "sha256":"<64 lower-case hex of the tarball>",
//    "size":<tarball bytes, 1 .. 2^53>,
//    "kind":"service"|"updater",
//    "version":"<a ReleaseVersion>",
//    "commit":"<git commit, 7..64 lower-case hex>",       // optional
//    "created":"YYYY-MM-DDTHH:MM:SSZ",
//    "expires":"YYYY-MM-DDTHH:MM:SSZ"}                      // after created
// Signatures sign the descriptor's exact bytes, so it is never re-serialised on the way.

inline constexpr uint64_t kReleaseDescriptorFormat = 1;
// A descriptor larger than this is refused unread ("descriptor-size").
inline constexpr size_t kMaxReleaseDescriptorBytes = 2048;

struct ReleaseDescriptor {
  std::string sha256;
  uint64_t size = 0;
  ReleaseKind kind = ReleaseKind::kService;
  ReleaseVersion version;
  std::optional<std::string> commit;
  int64_t created = 0;  // seconds since the epoch, UTC
  int64_t expires = 0;  // seconds since the epoch, UTC; > created
};

// Parses descriptor bytes strictly. Refuses: over kMaxReleaseDescriptorBytes
// ("descriptor-size"); not exactly one flat JSON object or duplicate keys ("descriptor-json");
// any other key ("descriptor-unknown-key"); per field, missing, wrong type or out of range:
// "descriptor-format", "descriptor-sha256", "descriptor-size-field", "descriptor-kind",
// "descriptor-version", "descriptor-commit", "descriptor-created", "descriptor-expires"
// (not a time in the exact form above, or not after created).
[[nodiscard]] Result<ReleaseDescriptor> ParseReleaseDescriptor(std::string_view bytes);

// Serialises in format 1, keys in the order above, one line ending in '\n';
// ParseReleaseDescriptor reads it back unchanged.
std::string SerializeReleaseDescriptor(const ReleaseDescriptor& descriptor);

// "YYYY-MM-DDTHH:MM:SSZ" <-> seconds since the epoch (UTC, 1970..9999). Refuses any other
// form, including fractions, offsets and impossible dates ("descriptor-time"). FormatUtcTime
// clamps a value outside that range to its nearest end.
[[nodiscard]] Result<int64_t> ParseUtcTime(std::string_view text);
std::string FormatUtcTime(int64_t seconds);

// ---------------------------------------------------------------------------------------
// Signatures.
//
// An Ed25519 signature signs
//   "decnet-release-descriptor-v1\n" + <descriptor bytes>
// (the prefix keeps a release signature from meaning anything else the key may sign).
// One signature is one line of text (a `.sig` file holds one line per signer; the upload
// carries one `signature` form field per line):
//   "ed25519 <key id> <signature, standard base64 of 64 bytes, padded>"
// The key id is the first 16 lower-case hex digits of the SHA-256 of the raw 32-byte public
// key: it names a key, it authenticates nothing.

// The message a signature signs.
std::string DescriptorSigningPayload(std::string_view descriptor_bytes);

struct ReleaseSignature {
  std::string key_id;                   // 16 lower-case hex
  std::vector<std::uint8_t> signature;  // exactly 64 bytes
};

// A signature line longer than this is refused unread ("signature-size").
inline constexpr size_t kMaxSignatureLineBytes = 256;

// Parses one line (a trailing "\n" is allowed, nothing else around it). Refuses: over
// kMaxSignatureLineBytes ("signature-size"); another algorithm ("signature-algorithm"); a key
// id that is not 16 lower-case hex ("signature-key-id"); bad base64 or not 64 bytes
// ("signature-encoding"); any other shape ("signature-format").
[[nodiscard]] Result<ReleaseSignature> ParseSignatureLine(std::string_view line);
// The line for `signature`, ending in '\n'.
std::string FormatSignatureLine(const ReleaseSignature& signature);

// An Ed25519 public key (raw 32 bytes) with its id.
struct TrustedKey {
  std::string key_id;
  std::vector<std::uint8_t> raw;  // 32 bytes
  std::string source;             // where it was read from, for messages ("" when none)
};

// Reads a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) holding an Ed25519 key. Refuses anything
// else, another key type included ("trusted-key-format").
[[nodiscard]] Result<TrustedKey> ParsePublicKeyPem(std::string_view pem);

// A private signing key, as `decnet-rollout keygen` writes it (PEM "PRIVATE KEY", PKCS#8,
// Ed25519) and `sign` reads it.
class SigningKey {
 public:
  SigningKey(SigningKey&&) noexcept;
  SigningKey& operator=(SigningKey&&) noexcept;
  ~SigningKey();

  // A new key from the system's random source. Fails ("signing-key-generate") only when
  // OpenSSL does.
  [[nodiscard]] static Result<SigningKey> Generate();
  // Refuses anything but an unencrypted Ed25519 PKCS#8 PEM ("signing-key-format").
  [[nodiscard]] static Result<SigningKey> FromPem(std::string_view pem);

  std::string PrivatePem() const;  // PKCS#8 PEM
  std::string PublicPem() const;   // SubjectPublicKeyInfo PEM
  TrustedKey Public() const;
  // The signature line's value over DescriptorSigningPayload(descriptor_bytes). Should OpenSSL
  // fail (or the key be moved from), `signature` is empty, which no verifier accepts.
  ReleaseSignature Sign(std::string_view descriptor_bytes) const;

 private:
  explicit SigningKey(void* pkey) : pkey_(pkey) {}
  void* pkey_ = nullptr;  // EVP_PKEY*
};

// The keys a worker trusts and how many of them must sign a release.
struct TrustedKeySet {
  std::vector<TrustedKey> keys;
  unsigned threshold = 1;  // k of keys.size(), 1 <= k <= n
};

// Reads every `*.pub` file of `dir` (other names are ignored; subdirectories too). Because a
// key there decides what runs on the host, the directory and each key file must be owned by
// uid 0 and writable by nobody else, and the files must be regular files, not symbolic links
// ("trusted-key-owner": names the path and what is wrong). Refuses a file that is not a key
// ("trusted-key-format"), two files holding the same key ("trusted-key-duplicate"), an empty
// set or a threshold outside 1..n ("trusted-key-threshold"), a directory that cannot be read
// ("trusted-key-dir"). `required_owner` is 0 in production; tests pass their own uid.
[[nodiscard]] Result<TrustedKeySet> LoadTrustedKeys(const std::filesystem::path& dir,
                                                    unsigned threshold, uid_t required_owner = 0);

// What a signature check found, for the audit log.
struct SignatureVerdict {
  std::vector<std::string> valid_key_ids;  // distinct trusted keys whose signature verified
  unsigned threshold = 0;
};

// Checks `signatures` over `descriptor_bytes` against `keys`, then the descriptor's
// lifetime against `now` (seconds since the epoch). Counts each trusted key once however
// often it signed; a signature by an unknown key or one that does not verify counts for
// nothing and is not an error by itself (a rotated-out signer must not block a release
// that enough current keys signed). Refuses (kDenied): no signatures at all
// ("signature-required"); fewer valid distinct trusted keys than the threshold
// ("signature-threshold": says how many of how many); a descriptor that does not parse
// (its rule); now < created - 300 ("descriptor-not-yet-valid"); now >= expires
// ("descriptor-expired").
[[nodiscard]] Result<SignatureVerdict> VerifyReleaseSignatures(
    std::string_view descriptor_bytes, const std::vector<ReleaseSignature>& signatures,
    const TrustedKeySet& keys, int64_t now);

// ---------------------------------------------------------------------------------------
// The order of versions (the never-older floor).
//
// An ordered version is "N(.N)*" (decimal numbers without leading zeros, up to 18 digits
// each), optionally "-PRE" (dot-separated identifiers of [0-9A-Za-z-]), optionally "+BUILD"
// ([0-9A-Za-z.-]). Numbers compare numerically component by component, a missing component
// counting as 0 ("1.2" == "1.2.0"); a pre-release sorts before its release and pre-release
// identifiers compare as in Semantic Versioning 2.0; the build part is ignored, so a rebuild
// of a version is equal to it, never newer. Any other version (a git commit, a digest) has no
// place in the order: CompareVersions returns nullopt.
[[nodiscard]] std::optional<std::strong_ordering> CompareVersions(std::string_view a,
                                                                  std::string_view b);
// True when `text` is an ordered version.
bool IsOrderedVersion(std::string_view text);

}  // namespace decnet
