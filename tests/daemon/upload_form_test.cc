#include "daemon/upload_form.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "proto/sha256.h"
#include "tests/daemon/multipart_encoder.h"

namespace decnet::daemon {
namespace {

using testing::ContentTypeFor;
using testing::EncodeMultipart;
using testing::FormPart;

constexpr std::string_view kBoundary = "decnet-form-boundary";
constexpr char kTarballBytes[] = "\x1f\x8b\x08\0 pretend gzip \r\n--decnet";
const std::string kTarball(kTarballBytes, sizeof kTarballBytes - 1);

class SpoolDir {
 public:
  SpoolDir() {
    std::string tmpl = "/tmp/decnet-form-test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~SpoolDir() {
    close(fd_);
    rmdir(path_.c_str());  // fails, and the test notices, if a spool file was left named
  }
  int fd() const { return fd_; }
  bool Empty() const {
    DIR* dir = opendir(path_.c_str());
    int entries = 0;
    while (readdir(dir) != nullptr) ++entries;
    closedir(dir);
    return entries == 2;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

Result<UploadedForm> ReadForm(std::string_view body, int dir_fd, uint64_t cap = 1 << 20,
                              size_t chunk = 0) {
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
  if (!reader) return tl::make_unexpected(reader.error());
  UploadForm form(dir_fd, cap);
  if (chunk == 0) chunk = std::max<size_t>(body.size(), 1);
  for (size_t at = 0; at < body.size(); at += chunk) {
    auto fed = reader->Feed(body.substr(at, chunk), form);
    if (!fed) return tl::make_unexpected(fed.error());
  }
  auto done = reader->Finish();
  if (!done) return tl::make_unexpected(done.error());
  return form.Finish();
}

std::string DecnetBody(const std::string& sha256) {
  return EncodeMultipart({{"tarball", kTarball, "tree.tar.gz", "application/gzip"},
                          {"sha", "4f1c2e0"},
                          {"sha256", sha256}},
                         kBoundary);
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(AnUploadForm, ReadsDecnetsFormAndVerifiesIt) {
  SpoolDir dir;
  const std::string digest = Sha256Hex(kTarball);
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{13}}) {
    auto form = ReadForm(DecnetBody(digest), dir.fd(), 1 << 20, chunk);
    ASSERT_TRUE(form) << form.error().message;
    EXPECT_EQ(form->sha, "4f1c2e0");
    EXPECT_EQ(form->sha256, digest);
    EXPECT_FALSE(form->confirm_self);
    ASSERT_TRUE(form->tarball);
    EXPECT_EQ(form->tarball->size, kTarball.size());
    auto verified = VerifyUpload(std::move(*form));
    ASSERT_TRUE(verified) << verified.error().message;
    EXPECT_EQ(verified->sha256, digest);
    EXPECT_EQ(verified->sha, "4f1c2e0");
    EXPECT_EQ(ReadAll(verified->tarball.fd.get()), kTarball);
  }
  EXPECT_TRUE(dir.Empty());
}

TEST(AnUploadForm, AcceptsATarballWithoutAFilenameAndAnUpperCaseDigest) {
  SpoolDir dir;
  std::string digest = Sha256Hex(kTarball);
  for (char& c : digest) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto form =
      ReadForm(EncodeMultipart({{"sha256", digest}, {"tarball", kTarball}}, kBoundary), dir.fd());
  ASSERT_TRUE(form) << form.error().message;
  auto verified = VerifyUpload(std::move(*form));
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->sha256, Sha256Hex(kTarball));
  EXPECT_FALSE(verified->sha);
}

struct FormRow {
  const char* what;
  std::vector<FormPart> parts;
  const char* rule;
};

void PrintTo(const FormRow& row, std::ostream* os) { *os << row.what; }

class ARefusedForm : public ::testing::TestWithParam<FormRow> {};

TEST_P(ARefusedForm, IsRefusedWithItsRule) {
  SpoolDir dir;
  auto form = ReadForm(EncodeMultipart(GetParam().parts, kBoundary), dir.fd(), 64);
  ASSERT_FALSE(form) << GetParam().what;
  EXPECT_EQ(form.error().rule, GetParam().rule) << GetParam().what << ": " << form.error().message;
  EXPECT_TRUE(dir.Empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, ARefusedForm,
    ::testing::Values(
        FormRow{"unknown field", {{"sha256", "x"}, {"comment", "hi"}}, "multipart-unknown-field"},
        FormRow{"unknown file field", {{"payload", "x", "p.bin"}}, "multipart-unknown-field"},
        FormRow{
            "field names are case-sensitive", {{"Tarball", "x", "t"}}, "multipart-unknown-field"},
        FormRow{"sha256 sent as a file",
                {{"sha256", std::string(64, 'a'), "d.txt"}},
                "multipart-field-kind"},
        FormRow{
            "confirm_self sent as a file", {{"confirm_self", "true", "c"}}, "multipart-field-kind"},
        FormRow{"sha over 128 bytes", {{"sha", std::string(129, 'a')}}, "multipart-field-size"},
        FormRow{
            "sha256 over 128 bytes", {{"sha256", std::string(129, 'a')}}, "multipart-field-size"},
        FormRow{"confirm_self over 16 bytes",
                {{"confirm_self", std::string(17, 't')}},
                "multipart-field-size"},
        FormRow{
            "tarball over the cap", {{"tarball", std::string(65, 'z'), "t"}}, "upload-too-large"},
        FormRow{"tarball twice",
                {{"tarball", "a", "t"}, {"tarball", "b", "t"}},
                "multipart-duplicate-field"},
        FormRow{"sha256 twice", {{"sha256", "a"}, {"sha256", "b"}}, "multipart-duplicate-field"}));

TEST(AnUploadForm, AcceptsTextFieldsExactlyAtTheirCaps) {
  SpoolDir dir;
  auto form = ReadForm(EncodeMultipart({{"sha", std::string(128, 's')},
                                        {"sha256", std::string(128, 'd')},
                                        {"confirm_self", std::string(16, 'c')},
                                        {"tarball", std::string(64, 'z'), "t"}},
                                       kBoundary),
                       dir.fd(), 64);
  ASSERT_TRUE(form) << form.error().message;
  EXPECT_EQ(form->sha->size(), 128u);
  EXPECT_EQ(form->tarball->size, 64u);
}

TEST(AnUploadForm, RefusesToHandOverAFormWhosePartIsStillOpen) {
  SpoolDir dir;
  UploadForm form(dir.fd(), 100);
  ASSERT_TRUE(form.OnPartBegin(PartHeaders{"tarball", "t", std::nullopt}));
  ASSERT_TRUE(form.OnPartData("abc"));
  auto done = form.Finish();
  ASSERT_FALSE(done);
  EXPECT_EQ(done.error().rule, "multipart-truncated");
}

// ---- DECNET's digest rules (docs/decnet-compat.md) ---------------------------------

struct VerifyRow {
  const char* what;
  std::optional<std::string> sha256;  // "@" stands for the tarball's own digest
  bool with_tarball;
  const char* rule;  // nullptr: accepted
  ErrorCode code = ErrorCode::kMalformed;
};

void PrintTo(const VerifyRow& row, std::ostream* os) { *os << row.what; }

class AVerifiedUpload : public ::testing::TestWithParam<VerifyRow> {};

TEST_P(AVerifiedUpload, FollowsDecnetsRules) {
  const VerifyRow& row = GetParam();
  SpoolDir dir;
  const std::string digest = Sha256Hex(kTarball);
  std::vector<FormPart> parts;
  if (row.with_tarball) parts.push_back({"tarball", kTarball, "tree.tar.gz"});
  if (row.sha256) {
    std::string value = *row.sha256;
    for (size_t at; (at = value.find('@')) != std::string::npos;) value.replace(at, 1, digest);
    parts.push_back({"sha256", value});
  }
  parts.push_back({"sha", "abc"});
  auto form = ReadForm(EncodeMultipart(parts, kBoundary), dir.fd());
  ASSERT_TRUE(form) << form.error().message;
  auto verified = VerifyUpload(std::move(*form));
  if (row.rule == nullptr) {
    ASSERT_TRUE(verified) << row.what << ": " << verified.error().message;
    EXPECT_EQ(verified->sha256, digest);
    return;
  }
  ASSERT_FALSE(verified) << row.what;
  EXPECT_EQ(verified.error().rule, row.rule) << row.what;
  EXPECT_EQ(verified.error().code, row.code) << row.what;
}

const std::string kOtherDigest = Sha256Hex("another tarball");

INSTANTIATE_TEST_SUITE_P(
    Table, AVerifiedUpload,
    ::testing::Values(
        VerifyRow{"matching digest", "@", true, nullptr},
        VerifyRow{"missing digest", std::nullopt, true, "sha256-required"},
        VerifyRow{"empty digest", "", true, "sha256-required"},
        VerifyRow{"blank digest", " ", true, "sha256-malformed"},
        VerifyRow{"whitespace-only digest", " \t\r\n ", true, "sha256-malformed"},
        VerifyRow{"64 spaces", std::string(64, ' '), true, "sha256-malformed"},
        VerifyRow{"63 hex digits", std::string(63, 'a'), true, "sha256-malformed"},
        VerifyRow{"65 hex digits", std::string(65, 'a'), true, "sha256-malformed"},
        VerifyRow{"non-hex letter", std::string(63, 'a') + "g", true, "sha256-malformed"},
        VerifyRow{"leading space", " @", true, "sha256-malformed"},
        VerifyRow{"trailing newline", "@\n", true, "sha256-malformed"},
        VerifyRow{"0x prefix", "0x@", true, "sha256-malformed"},
        VerifyRow{"trailing space", "@ ", true, "sha256-malformed"},
        VerifyRow{"NUL inside", std::string(32, 'a') + std::string(1, '\0') + std::string(31, 'a'),
                  true, "sha256-malformed"},
        VerifyRow{"mismatching digest", kOtherDigest, true, "sha256-mismatch", ErrorCode::kDenied},
        VerifyRow{"all-zero digest", std::string(64, '0'), true, "sha256-mismatch",
                  ErrorCode::kDenied},
        VerifyRow{"missing tarball", "@", false, "tarball-required"},
        VerifyRow{"missing tarball and digest", std::nullopt, false, "tarball-required"}));

TEST(AVerifiedUpload, RefusesAFormWithoutTarballEvenWithoutReader) {
  UploadedForm form;
  form.sha256 = std::string(64, 'a');
  auto verified = VerifyUpload(std::move(form));
  ASSERT_FALSE(verified);
  EXPECT_EQ(verified.error().rule, "tarball-required");
}

struct ConfirmRow {
  std::optional<std::string> confirm_self;
  bool accepted;
};

void PrintTo(const ConfirmRow& row, std::ostream* os) {
  *os << ::testing::PrintToString(row.confirm_self.value_or("<absent>"));
}

class ASelfUpdateConfirmation : public ::testing::TestWithParam<ConfirmRow> {};

TEST_P(ASelfUpdateConfirmation, MustSayTrue) {
  UploadedForm form;
  form.confirm_self = GetParam().confirm_self;
  auto confirmed = VerifySelfConfirm(form);
  EXPECT_EQ(static_cast<bool>(confirmed), GetParam().accepted)
      << GetParam().confirm_self.value_or("<absent>");
  if (!confirmed) {
    EXPECT_EQ(confirmed.error().rule, "confirm-self-required");
    EXPECT_EQ(confirmed.error().code, ErrorCode::kDenied);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ASelfUpdateConfirmation,
                         ::testing::Values(ConfirmRow{"true", true}, ConfirmRow{"TRUE", true},
                                           ConfirmRow{"True", true}, ConfirmRow{"tRuE", true},
                                           ConfirmRow{std::nullopt, false}, ConfirmRow{"", false},
                                           ConfirmRow{"false", false}, ConfirmRow{"1", false},
                                           ConfirmRow{"yes", false}, ConfirmRow{" true", false},
                                           ConfirmRow{"true ", false}, ConfirmRow{"true\n", false},
                                           ConfirmRow{"truee", false}, ConfirmRow{"tru", false},
                                           ConfirmRow{std::string("true\0", 5), false}));

TEST(ASelfUpdateConfirmation, IsCheckedBeforeTheDigest) {
  // update-self with neither confirmation nor digest: DECNET answers the confirmation.
  SpoolDir dir;
  auto form = ReadForm(EncodeMultipart({{"tarball", kTarball, "t"}}, kBoundary), dir.fd());
  ASSERT_TRUE(form);
  auto confirmed = VerifySelfConfirm(*form);
  ASSERT_FALSE(confirmed);
  EXPECT_EQ(confirmed.error().rule, "confirm-self-required");
}

// ---- memory -------------------------------------------------------------------------

long PeakRssKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

TEST(AnUploadForm, KeepsMemoryFlatForA64MiBTarballStreamedIn64KiBChunks) {
  SpoolDir dir;
  std::string chunk(64 * 1024, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 2654435761u >> 13);
  const std::string head =
      "--decnet-form-boundary\r\nContent-Disposition: form-data; name=\"tarball\"; "
      "filename=\"big.tgz\"\r\n\r\n";
  const long before = PeakRssKiB();
  ASSERT_GT(before, 0);
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
  ASSERT_TRUE(reader);
  UploadForm form(dir.fd(), uint64_t{64} << 20);
  ASSERT_TRUE(reader->Feed(head, form));
  for (int i = 0; i < 1024; ++i) ASSERT_TRUE(reader->Feed(chunk, form));
  ASSERT_TRUE(reader->Feed("\r\n--decnet-form-boundary--\r\n", form));
  ASSERT_TRUE(reader->Finish());
  auto done = form.Finish();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->tarball->size, uint64_t{64} << 20);
  EXPECT_EQ(done->tarball->sha256.size(), 64u);
  EXPECT_LT(PeakRssKiB() - before, 16 * 1024) << "VmHWM grew while uploading";
}

// --- release authenticity fields (descriptor, signature, downgrade) ------------------------

// Reads `parts` as the API does (signature repeatable), with `hook` on the tarball's head.
Result<UploadedForm> ReadAuthForm(const std::vector<FormPart>& parts, int dir_fd,
                                  UploadForm::TarballHook hook = nullptr) {
  MultipartLimits limits;
  limits.max_parts = 22;
  limits.repeatable_fields = {"signature"};
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary), limits);
  if (!reader) return tl::make_unexpected(reader.error());
  UploadForm form(dir_fd, 1 << 20);
  if (hook) form.SetTarballHook(std::move(hook));
  if (auto fed = reader->Feed(EncodeMultipart(parts, kBoundary), form); !fed)
    return tl::make_unexpected(fed.error());
  if (auto done = reader->Finish(); !done) return tl::make_unexpected(done.error());
  return form.Finish();
}

TEST(AnUploadForm, KeepsTheAuthenticityFieldsAtTheirCapsAndShowsThemToTheTarballHook) {
  SpoolDir dir;
  std::vector<FormPart> parts = {{"descriptor", std::string(2048, 'd')}, {"downgrade", "true"}};
  for (int i = 0; i < 16; ++i) parts.push_back({"signature", std::string(256, 'a' + i)});
  parts.push_back({"sha256", std::string(64, 'a')});
  parts.push_back({"tarball", "bytes", "t"});
  size_t seen_signatures = 0;
  auto form = ReadAuthForm(parts, dir.fd(), [&](const UploadedForm& f) -> Result<void> {
    seen_signatures = f.signatures.size();
    EXPECT_TRUE(f.descriptor && f.downgrade && f.sha256);
    return {};
  });
  ASSERT_TRUE(form) << form.error().message;
  EXPECT_EQ(seen_signatures, 16u);
  EXPECT_EQ(form->descriptor->size(), 2048u);
  EXPECT_EQ(form->signatures.size(), 16u);
  EXPECT_EQ(form->signatures[15], std::string(256, 'p'));
}

TEST(AnUploadForm, RefusesAuthenticityFieldsOverTheirCapsTwiceOrAfterTheTarball) {
  const struct {
    const char* why;
    std::vector<FormPart> parts;
    const char* rule;
  } rows[] = {
      {"descriptor over 2048", {{"descriptor", std::string(2049, 'd')}}, "multipart-field-size"},
      {"signature over 256", {{"signature", std::string(257, 's')}}, "multipart-field-size"},
      {"downgrade over 16", {{"downgrade", std::string(17, 't')}}, "multipart-field-size"},
      {"descriptor twice", {{"descriptor", "a"}, {"descriptor", "b"}}, "multipart-duplicate-field"},
      {"downgrade twice", {{"downgrade", "a"}, {"downgrade", "b"}}, "multipart-duplicate-field"},
      {"descriptor as a file", {{"descriptor", "{}", "d.json"}}, "multipart-field-kind"},
      {"signature after the tarball",
       {{"tarball", "x", "t"}, {"signature", "s"}},
       "multipart-field-order"},
      {"descriptor after the tarball",
       {{"tarball", "x", "t"}, {"descriptor", "d"}},
       "multipart-field-order"},
      {"downgrade after the tarball",
       {{"tarball", "x", "t"}, {"downgrade", "true"}},
       "multipart-field-order"},
  };
  for (const auto& row : rows) {
    SpoolDir dir;
    auto form = ReadAuthForm(row.parts, dir.fd());
    ASSERT_FALSE(form) << row.why;
    EXPECT_EQ(form.error().rule, row.rule) << row.why << ": " << form.error().message;
  }
  SpoolDir dir;
  std::vector<FormPart> seventeen;
  for (int i = 0; i < 17; ++i) seventeen.push_back({"signature", "s"});
  auto form = ReadAuthForm(seventeen, dir.fd());
  ASSERT_FALSE(form);
  EXPECT_EQ(form.error().rule, "multipart-field-count");
}

TEST(AnUploadForm, OpensNoSpoolFileWhenTheTarballHookRefuses) {
  SpoolDir dir;
  bool called = false;
  auto form = ReadAuthForm({{"sha256", "x"}, {"tarball", std::string(4096, 'z'), "t"}}, dir.fd(),
                           [&](const UploadedForm&) -> Result<void> {
                             called = true;
                             return Fail(ErrorCode::kDenied, "signature-required", "unsigned");
                           });
  ASSERT_FALSE(form);
  EXPECT_TRUE(called);
  EXPECT_EQ(form.error().rule, "signature-required");
  EXPECT_TRUE(dir.Empty());
}

}  // namespace
}  // namespace decnet::daemon
