// The OpenSSL half of release authenticity: signature lines, Ed25519 keys, the trusted key
// directory and the k-of-n check. No OpenSSL exception or error queue entry leaves this file:
// every call's failure becomes an Error value (and the queue is cleared).
#include <dirent.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>

#include "proto/release_auth.h"
#include "proto/sha256.h"
#include "proto/unique_fd.h"
#include "proto/values.h"

namespace decnet {
namespace {

constexpr std::string_view kSigningPrefix = "decnet-release-descriptor-v1\n";
constexpr std::string_view kAlgorithm = "ed25519";
constexpr size_t kKeyIdLength = 16;
constexpr size_t kRawKeyLength = 32;
constexpr size_t kSignatureLength = 64;
constexpr size_t kSignatureBase64Length = 88;  // 4 * ceil(64 / 3), padded with "=="
constexpr size_t kMaxKeyFileBytes = 16 * 1024;
constexpr size_t kMaxKeyFiles = 256;
// A signer's clock may run a little ahead of the worker's.
constexpr int64_t kClockSkewSeconds = 300;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct DirClose {
  void operator()(DIR* p) const { closedir(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

tl::unexpected<Error> Malformed(std::string rule, std::string message) {
  return Fail(ErrorCode::kMalformed, std::move(rule), std::move(message));
}

tl::unexpected<Error> Denied(std::string rule, std::string message) {
  return Fail(ErrorCode::kDenied, std::move(rule), std::move(message));
}

bool IsLowerHex(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

std::string Base64(const std::vector<std::uint8_t>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

// Exactly 64 bytes in standard, padded, canonical base64; nothing else.
std::optional<std::vector<std::uint8_t>> DecodeSignature(std::string_view text) {
  // EVP_DecodeBlock skips surrounding whitespace and ignores padding, so the shape is checked
  // here first: 86 alphabet characters then "==".
  if (text.size() != kSignatureBase64Length || text.substr(86) != "==") return std::nullopt;
  for (char c : text.substr(0, 86)) {
    if (!IsBase64Char(c)) return std::nullopt;
  }
  std::vector<std::uint8_t> out(kSignatureBase64Length / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n != static_cast<int>(out.size())) return std::nullopt;
  out.resize(kSignatureLength);  // the two padding characters decoded as zero bytes
  // Canonical only: unused low bits of the last character must be zero, so one signature has
  // one spelling.
  if (Base64(out) != text) return std::nullopt;
  return out;
}

std::string KeyIdOf(const std::vector<std::uint8_t>& raw) {
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()))
      .substr(0, kKeyIdLength);
}

std::optional<std::vector<std::uint8_t>> RawPublicKey(EVP_PKEY* pkey) {
  std::vector<std::uint8_t> raw(kRawKeyLength);
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, raw.data(), &len) != 1 || len != kRawKeyLength) {
    return std::nullopt;
  }
  return raw;
}

// True when the rest of `bio` holds nothing but whitespace.
bool OnlyWhitespaceLeft(BIO* bio) {
  std::array<char, 256> buf{};
  int n = 0;
  while ((n = BIO_read(bio, buf.data(), static_cast<int>(buf.size()))) > 0) {
    for (int i = 0; i < n; ++i) {
      if (buf[i] != '\n' && buf[i] != '\r' && buf[i] != ' ' && buf[i] != '\t') return false;
    }
  }
  return true;
}

// Refuses to prompt: an encrypted key is simply not readable here.
int NoPassword(char*, int, int, void*) { return -1; }

std::string PemOf(EVP_PKEY* pkey, bool private_key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio) return "";
  const int ok =
      private_key ? PEM_write_bio_PrivateKey(bio.get(), pkey, nullptr, nullptr, 0, nullptr, nullptr)
                  : PEM_write_bio_PUBKEY(bio.get(), pkey);
  if (ok != 1) {
    ERR_clear_error();
    return "";
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

bool VerifyWith(const TrustedKey& key, std::string_view payload,
                const std::vector<std::uint8_t>& signature) {
  if (key.raw.size() != kRawKeyLength || signature.size() != kSignatureLength) return false;
  Pkey pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.raw.data(), key.raw.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  bool ok =
      pkey && ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) == 1;
  ERR_clear_error();
  return ok;
}

// ---- the trusted key directory ---------------------------------------------------------

// Why `st` may not be trusted, or "" when it may.
std::string OwnershipProblem(const struct stat& st, uid_t required_owner) {
  if (st.st_uid != required_owner) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", not " +
           std::to_string(required_owner);
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) return "is writable by its group or by others";
  return "";
}

Result<std::string> ReadKeyFile(int dir_fd, const std::filesystem::path& path,
                                const std::string& name, uid_t required_owner) {
  // SECURITY: O_NOFOLLOW and fstat on the opened descriptor: the file checked is the file
  // read, and a symbolic link cannot point the trust anchor elsewhere.
  UniqueFd fd(
      openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ELOOP) {
      return Denied("trusted-key-owner", "trusted key " + path.string() + " is a symbolic link");
    }
    return Fail(ErrorCode::kFailed, "trusted-key-dir",
                "cannot open trusted key " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Denied("trusted-key-owner", "trusted key " + path.string() + " is not a regular file");
  }
  // SECURITY: a key file anyone but root can write is a key anyone can plant.
  if (auto problem = OwnershipProblem(st, required_owner); !problem.empty()) {
    return Denied("trusted-key-owner", "trusted key " + path.string() + " " + problem);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileBytes) {
    return Malformed("trusted-key-format", "trusted key " + path.string() + " is too large");
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return Fail(ErrorCode::kFailed, "trusted-key-dir",
                  "cannot read trusted key " + path.string() + ": " + std::strerror(errno));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxKeyFileBytes) {
    return Malformed("trusted-key-format", "trusted key " + path.string() + " is too large");
  }
  text.resize(used);
  return text;
}

// The `*.pub` names of an open directory, sorted; subdirectories are skipped by the caller.
Result<std::vector<std::string>> KeyFileNames(int dir_fd, const std::filesystem::path& dir) {
  const int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  std::unique_ptr<DIR, DirClose> listing(dup_fd >= 0 ? fdopendir(dup_fd) : nullptr);
  if (!listing) {
    if (dup_fd >= 0) close(dup_fd);
    return Fail(ErrorCode::kFailed, "trusted-key-dir",
                "cannot list " + dir.string() + ": " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(listing.get())) {
    std::string_view name = entry->d_name;
    if (name.size() <= 4 || !name.ends_with(".pub")) continue;
    if (names.size() >= kMaxKeyFiles) {
      return Malformed("trusted-key-threshold",
                       dir.string() + " holds more than " + std::to_string(kMaxKeyFiles) + " keys");
    }
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<void> CheckThreshold(const std::filesystem::path& dir, size_t n, unsigned threshold) {
  if (n == 0) {
    return Malformed("trusted-key-threshold", dir.string() + " holds no *.pub key");
  }
  if (threshold < 1 || threshold > n) {
    return Malformed("trusted-key-threshold", "signature threshold " + std::to_string(threshold) +
                                                  " is outside 1.." + std::to_string(n) +
                                                  " (the keys in " + dir.string() + ")");
  }
  return {};
}

}  // namespace

// ---- signature lines -------------------------------------------------------------------

std::string DescriptorSigningPayload(std::string_view descriptor_bytes) {
  std::string payload(kSigningPrefix);
  payload += descriptor_bytes;
  return payload;
}

Result<ReleaseSignature> ParseSignatureLine(std::string_view line) {
  if (line.size() > kMaxSignatureLineBytes) {
    return Malformed("signature-size", "signature line is longer than " +
                                           std::to_string(kMaxSignatureLineBytes) + " bytes");
  }
  if (line.ends_with('\n')) line.remove_suffix(1);
  // Exactly three fields separated by single spaces; any other byte outside printable ASCII
  // (a tab, "\r", a second newline) is a different shape.
  for (char c : line) {
    if (c < 0x20 || c > 0x7e) {
      return Malformed("signature-format", "signature line has a control or non-ASCII byte");
    }
  }
  const size_t first = line.find(' ');
  const size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
  if (second == std::string_view::npos || line.find(' ', second + 1) != std::string_view::npos ||
      first == 0 || second == first + 1 || second + 1 == line.size()) {
    return Malformed("signature-format", "signature line " + QuotePrintable(line) +
                                             " is not \"ed25519 <key id> <base64 signature>\"");
  }
  const std::string_view algorithm = line.substr(0, first);
  const std::string_view key_id = line.substr(first + 1, second - first - 1);
  const std::string_view encoded = line.substr(second + 1);
  if (algorithm != kAlgorithm) {
    return Malformed("signature-algorithm",
                     "signature algorithm " + QuotePrintable(algorithm) + " is not \"ed25519\"");
  }
  if (key_id.size() != kKeyIdLength || !IsLowerHex(key_id)) {
    return Malformed("signature-key-id",
                     "key id " + QuotePrintable(key_id) + " is not 16 lower-case hex digits");
  }
  auto signature = DecodeSignature(encoded);
  if (!signature) {
    return Malformed("signature-encoding", "signature is not 64 bytes in padded standard base64");
  }
  return ReleaseSignature{std::string(key_id), std::move(*signature)};
}

std::string FormatSignatureLine(const ReleaseSignature& signature) {
  return std::string(kAlgorithm) + " " + signature.key_id + " " + Base64(signature.signature) +
         "\n";
}

// ---- keys ------------------------------------------------------------------------------

Result<TrustedKey> ParsePublicKeyPem(std::string_view pem) {
  if (pem.size() > kMaxKeyFileBytes) {
    return Malformed("trusted-key-format", "public key PEM is too large");
  }
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey pkey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassword, nullptr) : nullptr);
  ERR_clear_error();
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Malformed("trusted-key-format", "not a PEM \"PUBLIC KEY\" holding an Ed25519 key");
  }
  // SECURITY: one key per file; a second block would be silently ignored otherwise.
  if (!OnlyWhitespaceLeft(bio.get())) {
    return Malformed("trusted-key-format", "public key PEM has bytes after its key");
  }
  auto raw = RawPublicKey(pkey.get());
  if (!raw) return Malformed("trusted-key-format", "Ed25519 public key has no raw form");
  return TrustedKey{KeyIdOf(*raw), std::move(*raw), ""};
}

SigningKey::SigningKey(SigningKey&& other) noexcept : pkey_(other.pkey_) { other.pkey_ = nullptr; }

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_));
    pkey_ = other.pkey_;
    other.pkey_ = nullptr;
  }
  return *this;
}

SigningKey::~SigningKey() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

Result<SigningKey> SigningKey::Generate() {
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &pkey) != 1) {
    ERR_clear_error();
    return Fail(ErrorCode::kFailed, "signing-key-generate",
                "OpenSSL could not make an Ed25519 key");
  }
  return SigningKey(pkey);
}

Result<SigningKey> SigningKey::FromPem(std::string_view pem) {
  // Only the unencrypted PKCS#8 form that keygen writes; never a prompt for a passphrase.
  if (pem.size() > kMaxKeyFileBytes ||
      pem.find("-----BEGIN PRIVATE KEY-----") == std::string_view::npos) {
    return Malformed("signing-key-format", "not an unencrypted PEM \"PRIVATE KEY\" (PKCS#8)");
  }
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassword, nullptr) : nullptr);
  ERR_clear_error();
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Malformed("signing-key-format", "not a PEM PKCS#8 Ed25519 private key");
  }
  return SigningKey(pkey.release());
}

std::string SigningKey::PrivatePem() const {
  return pkey_ ? PemOf(static_cast<EVP_PKEY*>(pkey_), /*private_key=*/true) : "";
}

std::string SigningKey::PublicPem() const {
  return pkey_ ? PemOf(static_cast<EVP_PKEY*>(pkey_), /*private_key=*/false) : "";
}

TrustedKey SigningKey::Public() const {
  auto raw = pkey_ ? RawPublicKey(static_cast<EVP_PKEY*>(pkey_)) : std::nullopt;
  if (!raw) return TrustedKey{};
  return TrustedKey{KeyIdOf(*raw), std::move(*raw), ""};
}

ReleaseSignature SigningKey::Sign(std::string_view descriptor_bytes) const {
  ReleaseSignature out{Public().key_id, {}};
  const std::string payload = DescriptorSigningPayload(descriptor_bytes);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::vector<std::uint8_t> signature(kSignatureLength);
  size_t len = signature.size();
  // Ed25519 signs the message itself (no separate digest): md is NULL, one-shot call.
  if (pkey_ && ctx &&
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_)) ==
          1 &&
      EVP_DigestSign(ctx.get(), signature.data(), &len,
                     reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) == 1 &&
      len == kSignatureLength) {
    out.signature = std::move(signature);
  }
  ERR_clear_error();
  return out;
}

// ---- the trusted key set ----------------------------------------------------------------

Result<TrustedKeySet> LoadTrustedKeys(const std::filesystem::path& dir, unsigned threshold,
                                      uid_t required_owner) {
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir_fd.get() < 0) {
    const int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      return Denied("trusted-key-owner", dir.string() + " is not a directory (or is a link)");
    }
    return Fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kFailed, "trusted-key-dir",
                "cannot open " + dir.string() + ": " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(dir_fd.get(), &st) != 0) {
    return Fail(ErrorCode::kFailed, "trusted-key-dir",
                "cannot stat " + dir.string() + ": " + std::strerror(errno));
  }
  // SECURITY: whoever can write the directory can add a key and sign anything.
  if (auto problem = OwnershipProblem(st, required_owner); !problem.empty()) {
    return Denied("trusted-key-owner", dir.string() + " " + problem);
  }
  auto names = KeyFileNames(dir_fd.get(), dir);
  if (!names) return tl::make_unexpected(names.error());

  TrustedKeySet set;
  set.threshold = threshold;
  for (const std::string& name : *names) {
    const std::filesystem::path path = dir / name;
    struct stat entry {};
    if (fstatat(dir_fd.get(), name.c_str(), &entry, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(entry.st_mode)) continue;  // a subdirectory, whatever its name
    auto text = ReadKeyFile(dir_fd.get(), path, name, required_owner);
    if (!text) return tl::make_unexpected(text.error());
    auto key = ParsePublicKeyPem(*text);
    if (!key) {
      return Malformed("trusted-key-format", path.string() + ": " + key.error().message);
    }
    key->source = path.string();
    // SECURITY: the same key under two names would count twice towards k of n.
    for (const TrustedKey& seen : set.keys) {
      if (seen.raw == key->raw) {
        return Malformed("trusted-key-duplicate",
                         path.string() + " holds the same key as " + seen.source);
      }
    }
    set.keys.push_back(std::move(*key));
  }
  if (auto ok = CheckThreshold(dir, set.keys.size(), threshold); !ok) {
    return tl::make_unexpected(ok.error());
  }
  return set;
}

// ---- verification ------------------------------------------------------------------------

Result<SignatureVerdict> VerifyReleaseSignatures(std::string_view descriptor_bytes,
                                                 const std::vector<ReleaseSignature>& signatures,
                                                 const TrustedKeySet& keys, int64_t now) {
  if (signatures.empty()) {
    return Denied("signature-required", "the release carries no signature");
  }
  if (descriptor_bytes.size() > kMaxReleaseDescriptorBytes) {
    return Denied("descriptor-size", "release descriptor is larger than " +
                                         std::to_string(kMaxReleaseDescriptorBytes) + " bytes");
  }
  const std::string payload = DescriptorSigningPayload(descriptor_bytes);
  SignatureVerdict verdict;
  verdict.threshold = keys.threshold;
  std::set<std::string> counted;
  for (const TrustedKey& key : keys.keys) {
    // SECURITY: each trusted key counts once, however many of its signatures arrive, so one
    // stolen key cannot stand in for k.
    if (counted.contains(key.key_id)) continue;
    for (const ReleaseSignature& signature : signatures) {
      if (signature.key_id != key.key_id) continue;
      if (VerifyWith(key, payload, signature.signature)) {
        counted.insert(key.key_id);
        verdict.valid_key_ids.push_back(key.key_id);
        break;
      }
    }
  }
  // SECURITY: a threshold of 0 would accept anything; it never counts as met.
  if (keys.threshold == 0 || verdict.valid_key_ids.size() < keys.threshold) {
    return Denied("signature-threshold",
                  std::to_string(verdict.valid_key_ids.size()) + " of " +
                      std::to_string(keys.threshold) + " required signatures by the " +
                      std::to_string(keys.keys.size()) + " trusted keys verified");
  }
  // Only now, with the bytes authenticated, does their content matter.
  auto descriptor = ParseReleaseDescriptor(descriptor_bytes);
  if (!descriptor) return Denied(descriptor.error().rule, descriptor.error().message);
  if (now < descriptor->created - kClockSkewSeconds) {
    return Denied("descriptor-not-yet-valid",
                  "release descriptor was created at " + FormatUtcTime(descriptor->created) +
                      ", in the future (now " + FormatUtcTime(now) + ")");
  }
  if (now >= descriptor->expires) {
    return Denied("descriptor-expired", "release descriptor expired at " +
                                            FormatUtcTime(descriptor->expires) + " (now " +
                                            FormatUtcTime(now) + ")");
  }
  return verdict;
}

}  // namespace decnet
