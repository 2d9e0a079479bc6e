#include "daemon/upload_form.h"

#include <algorithm>
#include <utility>

namespace decnet::daemon {
namespace {

constexpr size_t kMaxShaField = 128;
constexpr size_t kMaxConfirmField = 16;
constexpr size_t kMaxTextTotal = 1024;
constexpr size_t kSha256HexLength = 64;

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string LowerString(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), LowerAscii);
  return out;
}

}  // namespace

UploadForm::UploadForm(int spool_dir_fd, uint64_t max_tarball_bytes)
    : spool_dir_fd_(spool_dir_fd), max_tarball_bytes_(max_tarball_bytes) {}

Result<void> UploadForm::BeginAuthField(const std::string& name) {
  // SECURITY: these fields are checked when the tarball begins; one arriving later would
  // escape that check.
  if (tarball_seen_)
    return Fail(ErrorCode::kMalformed, "multipart-field-order",
                "field " + name + " must come before the tarball");
  counts_in_total_ = false;
  if (name == "descriptor") {
    if (form_.descriptor)
      return Fail(ErrorCode::kMalformed, "multipart-field-count", "a second descriptor field");
    current_ = Field::kDescriptor;
    text_ = &form_.descriptor.emplace();
    text_cap_ = kMaxDescriptorField;
  } else if (name == "signature") {
    if (form_.signatures.size() >= kMaxSignatureFields)
      return Fail(ErrorCode::kMalformed, "multipart-field-count",
                  "more than " + std::to_string(kMaxSignatureFields) + " signature fields");
    current_ = Field::kSignature;
    text_ = &form_.signatures.emplace_back();
    text_cap_ = kMaxSignatureField;
  } else {
    if (form_.downgrade)
      return Fail(ErrorCode::kMalformed, "multipart-field-count", "a second downgrade field");
    current_ = Field::kDowngrade;
    text_ = &form_.downgrade.emplace();
    text_cap_ = kMaxConfirmField;
  }
  return {};
}

Result<void> UploadForm::OnPartBegin(const PartHeaders& headers) {
  const std::string& name = headers.name;
  if (name == "tarball") {
    tarball_seen_ = true;
    // SECURITY: the pre-body checks (signatures, floor) run before any tarball byte is read.
    if (tarball_hook_) {
      if (Result<void> ok = tarball_hook_(form_); !ok) return ok;
    }
    auto spool = Spool::Create(spool_dir_fd_, max_tarball_bytes_);
    if (!spool) return tl::make_unexpected(spool.error());
    spool_.emplace(std::move(*spool));
    current_ = Field::kTarball;
    return {};
  }
  counts_in_total_ = true;
  if (name == "descriptor" || name == "signature" || name == "downgrade") {
    if (Result<void> ok = BeginAuthField(name); !ok) return ok;
  } else if (name == "sha") {
    current_ = Field::kSha;
    text_ = &form_.sha.emplace();
    text_cap_ = kMaxShaField;
  } else if (name == "sha256") {
    current_ = Field::kSha256;
    text_ = &form_.sha256.emplace();
    text_cap_ = kMaxShaField;
  } else if (name == "confirm_self") {
    current_ = Field::kConfirmSelf;
    text_ = &form_.confirm_self.emplace();
    text_cap_ = kMaxConfirmField;
  } else {
    return Fail(ErrorCode::kMalformed, "multipart-unknown-field",
                "the form has a field this updater does not know (" + std::to_string(name.size()) +
                    " bytes long name)");
  }
  if (headers.filename) {
    return Fail(ErrorCode::kMalformed, "multipart-field-kind",
                "field " + name + " must be text, not a file");
  }
  return {};
}

Result<void> UploadForm::OnPartData(std::string_view data) {
  if (current_ == Field::kTarball) return spool_->Write(data);
  if (text_ == nullptr) {
    return Fail(ErrorCode::kMalformed, "multipart-syntax", "data outside a part");
  }
  // SECURITY: text fields live in memory; both caps are checked before appending.
  if (data.size() > text_cap_ - text_->size() ||
      (counts_in_total_ && data.size() > kMaxTextTotal - text_total_)) {
    return Fail(ErrorCode::kMalformed, "multipart-field-size",
                "a text field exceeds its cap (sha and sha256 128 bytes, confirm_self 16, "
                "1024 in all; descriptor 2048, signature 256, downgrade 16)");
  }
  text_->append(data);
  if (counts_in_total_) text_total_ += data.size();
  return {};
}

Result<void> UploadForm::OnPartEnd() {
  if (current_ == Field::kTarball) {
    auto done = spool_->Finish();
    spool_.reset();
    if (!done) return tl::make_unexpected(done.error());
    form_.tarball.emplace(std::move(*done));
  }
  current_ = Field::kNone;
  text_ = nullptr;
  return {};
}

Result<UploadedForm> UploadForm::Finish() {
  if (current_ != Field::kNone) {
    return Fail(ErrorCode::kMalformed, "multipart-truncated", "the form ended inside a part");
  }
  return std::move(form_);
}

Result<VerifiedUpload> VerifyUpload(UploadedForm&& form) {
  if (!form.tarball) {
    return Fail(ErrorCode::kMalformed, "tarball-required", "the form has no tarball file");
  }
  if (!form.sha256 || form.sha256->empty()) {
    return Fail(ErrorCode::kMalformed, "sha256-required", "sha256 of the tarball is required");
  }
  const std::string& declared = *form.sha256;
  // Exact format, no trimming: a digest with stray bytes around it is not the digest the
  // master computed, and DECNET refuses whitespace-only values too.
  if (declared.size() != kSha256HexLength ||
      !std::all_of(declared.begin(), declared.end(), IsHex)) {
    return Fail(ErrorCode::kMalformed, "sha256-malformed", "sha256 must be 64 hexadecimal digits");
  }
  std::string wanted = LowerString(declared);
  if (wanted != form.tarball->sha256) {
    return Fail(ErrorCode::kDenied, "sha256-mismatch",
                "sha256 mismatch: declared " + wanted + ", received " + form.tarball->sha256);
  }
  return VerifiedUpload{std::move(*form.tarball), std::move(wanted), std::move(form.sha)};
}

Result<void> VerifySelfConfirm(const UploadedForm& form) {
  if (!form.confirm_self || LowerString(*form.confirm_self) != "true") {
    return Fail(ErrorCode::kDenied, "confirm-self-required", "update-self needs confirm_self=true");
  }
  return {};
}

}  // namespace decnet::daemon
