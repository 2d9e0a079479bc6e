// DECNET's upload form (DECNET's updater contract): the `tarball` file part streamed into a
// Spool, the short text fields `sha`, `sha256` and `confirm_self` kept in memory, and the
// checks DECNET applies to them, in DECNET's order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/multipart.h"
#include "daemon/spool.h"
#include "proto/result.h"

namespace decnet::daemon {

// What a well-formed form carried. Text fields are the client's bytes, unchecked.
struct UploadedForm {
  std::optional<std::string> sha;
  std::optional<std::string> sha256;
  std::optional<std::string> confirm_self;
  // Release authenticity (daemon/release_guard.h), all before the tarball part.
  std::optional<std::string> descriptor;
  std::vector<std::string> signatures;
  std::optional<std::string> downgrade;
  std::optional<SpoolResult> tarball;
};

// A text field longer than this is refused ("multipart-field-size").
inline constexpr size_t kMaxDescriptorField = 2048;  // proto's kMaxReleaseDescriptorBytes
inline constexpr size_t kMaxSignatureField = 256;    // proto's kMaxSignatureLineBytes
inline constexpr size_t kMaxSignatureFields = 16;

// Collects one form from a MultipartReader.
//
// Refuses (rule): a field other than tarball, sha, sha256, confirm_self (DECNET's) and
// descriptor, signature, downgrade (ours) ("multipart-unknown-field": an extension we do
// not know about is better refused than silently dropped); a text field with a filename
// ("multipart-field-kind"); a text field over its cap (sha and sha256 128 bytes,
// confirm_self 16 and DECNET's fields 1 KiB together; descriptor 2048, each signature 256,
// downgrade 16) ("multipart-field-size"); more than 16 signatures or a second descriptor or
// downgrade ("multipart-field-count"); descriptor, signature or downgrade after the tarball
// ("multipart-field-order": they are checked before its bytes are read). Spool errors and
// the tarball hook's refusals pass through ("upload-too-large", "spool-create", ...).
class UploadForm final : public MultipartHandler {
 public:
  // The tarball goes to an anonymous file in `spool_dir_fd`, at most `max_tarball_bytes`.
  UploadForm(int spool_dir_fd, uint64_t max_tarball_bytes);

  [[nodiscard]] Result<void> OnPartBegin(const PartHeaders& headers) override;
  [[nodiscard]] Result<void> OnPartData(std::string_view data) override;
  [[nodiscard]] Result<void> OnPartEnd() override;

  // Hands over the fields once the reader's Finish succeeded. Fails ("multipart-truncated")
  // while a part is still open, or with a spool error; callable once.
  [[nodiscard]] Result<UploadedForm> Finish();

  // Called with the text fields read so far when the tarball part begins, before any of its
  // bytes are read or a spool file exists; a refusal ends the form with that error.
  using TarballHook = std::function<Result<void>(const UploadedForm& fields)>;
  void SetTarballHook(TarballHook hook) { tarball_hook_ = std::move(hook); }

 private:
  enum class Field {
    kNone,
    kTarball,
    kSha,
    kSha256,
    kConfirmSelf,
    kDescriptor,
    kSignature,
    kDowngrade
  };
  Result<void> BeginAuthField(const std::string& name);

  int spool_dir_fd_;
  uint64_t max_tarball_bytes_;
  Field current_ = Field::kNone;
  std::string* text_ = nullptr;  // the text field being filled
  size_t text_cap_ = 0;
  size_t text_total_ = 0;  // DECNET's fields, together
  bool counts_in_total_ = false;
  bool tarball_seen_ = false;
  TarballHook tarball_hook_;
  std::optional<Spool> spool_;
  UploadedForm form_;
};

// An upload whose tarball matches its declared digest.
struct VerifiedUpload {
  SpoolResult tarball;
  std::string sha256;              // lower-case hex, equal to tarball.sha256
  std::optional<std::string> sha;  // DECNET's git commit field, unchecked
};

// Applies DECNET's checks to `form`, moving the tarball into the result. In order:
// no tarball part ("tarball-required", HTTP 422: DECNET's framework validates the form
// before its handler looks at the digest); sha256 missing or empty ("sha256-required",
// HTTP 400 "sha256 of the tarball is required"); sha256 not exactly 64 hex digits, either
// case, no surrounding whitespace, so a blank or whitespace-only value lands here
// ("sha256-malformed"); digest differs from the spooled bytes' ("sha256-mismatch",
// kDenied). Format errors are kMalformed.
[[nodiscard]] Result<VerifiedUpload> VerifyUpload(UploadedForm&& form);

// update-self's extra check, made before VerifyUpload: `confirm_self` must be "true" in
// any case, nothing around it. Refuses anything else, absent included
// ("confirm-self-required", kDenied).
[[nodiscard]] Result<void> VerifySelfConfirm(const UploadedForm& form);

}  // namespace decnet::daemon
