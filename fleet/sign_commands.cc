// decnet-rollout keygen and sign: Ed25519 keys (proto/release_auth.h writes and reads them)
// and detached signatures appended, one line per signer, beside a release descriptor.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>

#include "fleet/commands.h"
#include "fleet/pack_args.h"
#include "fleet/pack_release.h"
#include "proto/release_auth.h"
#include "proto/unique_fd.h"

namespace decnet::fleet {
namespace fs = std::filesystem;

namespace {

constexpr char kKeygenUsage[] =
    "usage: decnet-rollout keygen --out NAME\n"
    "\n"
    "Makes an Ed25519 key pair: NAME.key (private, PKCS#8 PEM, mode 0600) and NAME.pub\n"
    "(public, for the workers' trusted_keys_dir). Never overwrites either; prints the key id.\n";

constexpr char kSignUsage[] =
    "usage: decnet-rollout sign --key NAME.key FILE.tgz.manifest.json\n"
    "\n"
    "Signs a release descriptor and appends the signature line to FILE.tgz.manifest.json.sig.\n"
    "Refuses an expired descriptor, one whose tarball beside it does not match, and a key\n"
    "that already signed it; prints the key id.\n";

// The upload carries at most this many signature fields; a longer file could not travel.
constexpr size_t kMaxSignatures = 16;
// A private key PEM is a few hundred bytes; anything much larger is not one.
constexpr size_t kMaxKeyFileBytes = 16 * 1024;

Error IoError(const std::string& what, std::string rule = "sign-io") {
  return Error{ErrorCode::kFailed, std::move(rule), what + ": " + std::strerror(errno)};
}

Result<void> WriteAll(int fd, std::string_view bytes, const std::string& what) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::make_unexpected(IoError(what));
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

// Reads at most `cap` + 1 bytes from `fd` (so a caller can tell "over the cap").
Result<std::string> ReadCapped(int fd, size_t cap, const std::string& what) {
  std::string out;
  char buffer[4096];
  while (out.size() <= cap) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::make_unexpected(IoError(what));
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

int Refused(const char* command, const Error& error) {
  std::fprintf(stderr, "decnet-rollout %s: %s: %s\n", command, error.rule.c_str(),
               error.message.c_str());
  return 1;
}

int UsageError(const char* command, const std::string& message, const char* usage) {
  std::fprintf(stderr, "decnet-rollout %s: %s\n%s", command, message.c_str(), usage);
  return 2;
}

// Creates `path` with `mode`, refusing one that exists (or a link in its place).
Result<void> CreateExclusive(const fs::path& path, std::string_view bytes, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) return tl::make_unexpected(IoError(path.string(), "keygen-io"));
  // The umask may only have narrowed `mode`; set it exactly.
  if (fchmod(fd.get(), mode) != 0 || !WriteAll(fd.get(), bytes, path.string()) ||
      fsync(fd.get()) != 0) {
    Error e = IoError(path.string(), "keygen-io");
    unlink(path.c_str());
    return tl::make_unexpected(e);
  }
  return {};
}

}  // namespace

int RunKeygen(Args args) {
  static constexpr OptionSpec kSpecs[] = {{"--out"}};
  auto parsed = ParseArgs(args, kSpecs, 0);
  if (!parsed) return UsageError("keygen", parsed.error().message, kKeygenUsage);
  if (parsed->help) {
    std::fputs(kKeygenUsage, stdout);
    return 0;
  }
  if (!parsed->Has("--out") || parsed->Get("--out").empty()) {
    return UsageError("keygen", "--out is required", kKeygenUsage);
  }
  const std::string name = parsed->Get("--out");
  const fs::path private_path = name + ".key";
  const fs::path public_path = name + ".pub";
  // Both are checked before either is written: a pair is made whole or not at all.
  for (const fs::path& p : {private_path, public_path}) {
    struct stat st {};
    if (lstat(p.c_str(), &st) == 0) {
      return Refused("keygen", Error{ErrorCode::kDenied, "keygen-exists",
                                     p.string() + " exists; keys are never overwritten"});
    }
  }
  auto key = SigningKey::Generate();
  if (!key) return Refused("keygen", key.error());
  // SECURITY: the private key is created 0600 with O_EXCL: no window where others can read it,
  // and no existing key (or a link planted in its place) is ever replaced.
  if (auto ok = CreateExclusive(private_path, key->PrivatePem(), 0600); !ok) {
    return Refused("keygen", ok.error());
  }
  if (auto ok = CreateExclusive(public_path, key->PublicPem(), 0644); !ok) {
    unlink(private_path.c_str());
    return Refused("keygen", ok.error());
  }
  const TrustedKey pub = key->Public();
  std::printf("key id %s\n", pub.key_id.c_str());
  std::printf("  private %s (mode 0600: keep it off the workers)\n", private_path.c_str());
  std::printf("  public  %s (copy it into each worker's trusted_keys_dir)\n", public_path.c_str());
  return 0;
}

namespace {

Result<SigningKey> ReadSigningKey(const fs::path& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) return tl::make_unexpected(IoError(path.string(), "sign-key"));
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return tl::make_unexpected(IoError(path.string(), "sign-key"));
  if (!S_ISREG(st.st_mode)) {
    return Fail(ErrorCode::kDenied, "sign-key", path.string() + " is not a regular file");
  }
  // SECURITY: like ssh, a private key others can read or write is refused, not used: it may
  // already be someone else's too.
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Fail(ErrorCode::kDenied, "sign-key-permissions",
                path.string() + " has mode " + mode + "; a private key must be 0600 or 0400");
  }
  auto pem = ReadCapped(fd.get(), kMaxKeyFileBytes, path.string());
  if (!pem) return tl::make_unexpected(pem.error());
  if (pem->size() > kMaxKeyFileBytes) {
    return Fail(ErrorCode::kMalformed, "signing-key-format", path.string() + " is too large");
  }
  return SigningKey::FromPem(*pem);
}

// The tarball a descriptor names, when it sits beside it (FILE.tgz for FILE.tgz.manifest.json).
std::optional<fs::path> TarballBeside(const fs::path& descriptor) {
  constexpr std::string_view kSuffix = ".manifest.json";
  const std::string s = descriptor.string();
  if (s.size() <= kSuffix.size() || !s.ends_with(kSuffix)) return std::nullopt;
  fs::path tarball = s.substr(0, s.size() - kSuffix.size());
  struct stat st {};
  if (stat(tarball.c_str(), &st) != 0) return std::nullopt;
  return tarball;
}

Result<std::string> FileSha256(const fs::path& path, uint64_t& size) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return tl::make_unexpected(IoError(path.string()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Fail(ErrorCode::kFailed, "sign-io", "OpenSSL cannot digest");
  }
  std::array<char, 64 * 1024> buffer;
  size = 0;
  for (;;) {
    const ssize_t n = read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::make_unexpected(IoError(path.string()));
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

// Reads the descriptor and checks it is worth signing: it parses, it has not expired, and the
// tarball beside it (when there is one) is the one it names.
Result<std::string> ReadDescriptorToSign(const fs::path& path, int64_t now) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return tl::make_unexpected(IoError(path.string(), "sign-descriptor"));
  auto bytes = ReadCapped(fd.get(), kMaxReleaseDescriptorBytes, path.string());
  if (!bytes) return tl::make_unexpected(bytes.error());
  auto descriptor = ParseReleaseDescriptor(*bytes);
  if (!descriptor) return tl::make_unexpected(descriptor.error());
  if (now >= descriptor->expires) {
    return Fail(ErrorCode::kDenied, "descriptor-expired",
                path.string() + " expired at " + FormatUtcTime(descriptor->expires) +
                    "; pack the release again");
  }
  if (auto tarball = TarballBeside(path)) {
    uint64_t size = 0;
    auto sha = FileSha256(*tarball, size);
    if (!sha) return tl::make_unexpected(sha.error());
    // SECURITY: a signer vouches for the tarball too; one swapped after packing is not signed.
    if (*sha != descriptor->sha256 || size != descriptor->size) {
      return Fail(ErrorCode::kDenied, "sign-tarball-mismatch",
                  tarball->string() + " is not the tarball " + path.string() + " names");
    }
  } else {
    std::fprintf(stderr,
                 "decnet-rollout sign: no tarball beside %s; signing the descriptor alone\n",
                 path.c_str());
  }
  return *bytes;
}

// Checks the signatures already in `existing` (the .sig file's contents): each line parses,
// there are fewer than kMaxSignatures, and none is by `key_id`.
Result<size_t> CheckExistingSignatures(std::string_view existing, const std::string& key_id,
                                       const fs::path& path) {
  size_t count = 0;
  size_t line_no = 0;
  while (!existing.empty()) {
    const size_t nl = existing.find('\n');
    const std::string_view line =
        existing.substr(0, nl == std::string_view::npos ? existing.size() : nl + 1);
    existing.remove_prefix(line.size());
    ++line_no;
    auto sig = ParseSignatureLine(line);
    if (!sig) {
      return Fail(ErrorCode::kMalformed, sig.error().rule,
                  path.string() + ":" + std::to_string(line_no) + ": " + sig.error().message);
    }
    if (sig->key_id == key_id) {
      return Fail(ErrorCode::kDenied, "sign-already-signed",
                  "key " + key_id + " already signed this descriptor (" + path.string() + ":" +
                      std::to_string(line_no) + ")");
    }
    ++count;
  }
  if (count >= kMaxSignatures) {
    return Fail(ErrorCode::kDenied, "sign-limit",
                path.string() + " holds " + std::to_string(count) +
                    " signatures; an upload carries at most " + std::to_string(kMaxSignatures));
  }
  return count;
}

}  // namespace

int RunSign(Args args) {
  static constexpr OptionSpec kSpecs[] = {{"--key"}};
  auto parsed = ParseArgs(args, kSpecs, 1);
  if (!parsed) return UsageError("sign", parsed.error().message, kSignUsage);
  if (parsed->help) {
    std::fputs(kSignUsage, stdout);
    return 0;
  }
  if (!parsed->Has("--key")) return UsageError("sign", "--key is required", kSignUsage);
  if (parsed->operands.size() != 1) {
    return UsageError("sign", "the descriptor to sign is required", kSignUsage);
  }
  const fs::path descriptor_path = parsed->operands[0];
  const int64_t now = static_cast<int64_t>(std::time(nullptr));

  auto key = ReadSigningKey(parsed->Get("--key"));
  if (!key) return Refused("sign", key.error());
  auto descriptor = ReadDescriptorToSign(descriptor_path, now);
  if (!descriptor) return Refused("sign", descriptor.error());
  const TrustedKey pub = key->Public();
  const ReleaseSignature signature = key->Sign(*descriptor);
  // The line is checked the way a worker will check it, at the descriptor's own creation time
  // (a release may be signed before it becomes valid).
  auto created = ParseReleaseDescriptor(*descriptor);
  TrustedKeySet self{{pub}, 1};
  if (auto ok = VerifyReleaseSignatures(*descriptor, {signature}, self, created->created); !ok) {
    return Refused("sign", ok.error());
  }

  const fs::path sig_path = SignaturesPathFor(descriptor_path);
  UniqueFd fd(open(sig_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Refused("sign", IoError(sig_path.string()));
  // Two signers at once each see the other's line: the check and the append hold the lock.
  if (flock(fd.get(), LOCK_EX) != 0) return Refused("sign", IoError(sig_path.string()));
  auto existing =
      ReadCapped(fd.get(), kMaxSignatures * (kMaxSignatureLineBytes + 1), sig_path.string());
  if (!existing) return Refused("sign", existing.error());
  auto count = CheckExistingSignatures(*existing, pub.key_id, sig_path);
  if (!count) return Refused("sign", count.error());
  // A last line left without its newline (an editor's doing) keeps its own line.
  const std::string line =
      (existing->empty() || existing->back() == '\n' ? "" : "\n") + FormatSignatureLine(signature);
  if (lseek(fd.get(), 0, SEEK_END) < 0) return Refused("sign", IoError(sig_path.string()));
  if (auto ok = WriteAll(fd.get(), line, sig_path.string()); !ok) {
    return Refused("sign", ok.error());
  }
  if (fsync(fd.get()) != 0) return Refused("sign", IoError(sig_path.string()));
  std::printf("signed %s with key %s (%zu signatures in %s)\n", descriptor_path.c_str(),
              pub.key_id.c_str(), *count + 1, sig_path.c_str());
  return 0;
}

}  // namespace decnet::fleet
