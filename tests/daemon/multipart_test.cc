#include "daemon/multipart.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/daemon/multipart_encoder.h"

namespace decnet::daemon {
namespace {

using testing::ContentTypeFor;
using testing::EncodeMultipart;
using testing::FormPart;

constexpr std::string_view kBoundary = "XbOuNdArY42";
constexpr char kFileData[] = "\x1f\x8b\x08\0data\r\n-\r\n--";
const std::string kFileBytes(kFileData, sizeof kFileData - 1);

struct Recorded {
  std::string name;
  std::optional<std::string> filename;
  std::optional<std::string> content_type;
  std::string data;
  bool ended = false;
  bool operator==(const Recorded&) const = default;
};

// Records what the reader delivers, and checks the callback order as it goes.
class Recorder : public MultipartHandler {
 public:
  Result<void> OnPartBegin(const PartHeaders& h) override {
    EXPECT_TRUE(parts.empty() || parts.back().ended) << "begin inside a part";
    parts.push_back({h.name, h.filename, h.content_type, {}, false});
    return {};
  }
  Result<void> OnPartData(std::string_view data) override {
    EXPECT_FALSE(data.empty());
    EXPECT_FALSE(parts.empty() || parts.back().ended) << "data outside a part";
    largest_piece = std::max(largest_piece, data.size());
    parts.back().data.append(data);
    return {};
  }
  Result<void> OnPartEnd() override {
    EXPECT_FALSE(parts.empty() || parts.back().ended) << "end outside a part";
    parts.back().ended = true;
    return {};
  }
  std::vector<Recorded> parts;
  size_t largest_piece = 0;
};

// Feeds `body` in chunks of `chunk` bytes (0: all at once) and finishes.
Result<std::vector<Recorded>> Parse(std::string_view body, size_t chunk = 0,
                                    std::string_view content_type = {},
                                    MultipartLimits limits = {}) {
  std::string type = content_type.empty() ? ContentTypeFor(kBoundary) : std::string(content_type);
  auto reader = MultipartReader::Create(type, limits);
  if (!reader) return tl::make_unexpected(reader.error());
  Recorder recorder;
  if (chunk == 0) chunk = std::max<size_t>(body.size(), 1);
  for (size_t at = 0; at < body.size(); at += chunk) {
    auto fed = reader->Feed(body.substr(at, chunk), recorder);
    if (!fed) return tl::make_unexpected(fed.error());
  }
  auto done = reader->Finish();
  if (!done) return tl::make_unexpected(done.error());
  return recorder.parts;
}

std::string SampleBody() {
  return EncodeMultipart({{"tarball", kFileBytes, "release.tar.gz", "application/gzip"},
                          {"sha", "0123abc"},
                          {"sha256", std::string(64, 'a')}},
                         kBoundary);
}

std::vector<Recorded> SampleParts() {
  return {{"tarball", "release.tar.gz", "application/gzip", kFileBytes, true},
          {"sha", std::nullopt, std::nullopt, "0123abc", true},
          {"sha256", std::nullopt, std::nullopt, std::string(64, 'a'), true}};
}

// ---- Content-Type -------------------------------------------------------------------

struct TypeRow {
  const char* content_type;
  const char* boundary;  // nullptr: refused
};

void PrintTo(const TypeRow& row, std::ostream* os) {
  *os << ::testing::PrintToString(std::string(row.content_type));
}

class AMultipartContentType : public ::testing::TestWithParam<TypeRow> {};

TEST_P(AMultipartContentType, YieldsItsBoundaryOrIsRefused) {
  const TypeRow& row = GetParam();
  auto reader = MultipartReader::Create(row.content_type);
  if (row.boundary == nullptr) {
    ASSERT_FALSE(reader) << row.content_type;
    EXPECT_EQ(reader.error().rule, "multipart-content-type");
    EXPECT_EQ(reader.error().code, ErrorCode::kMalformed);
  } else {
    ASSERT_TRUE(reader) << row.content_type << ": " << reader.error().message;
    EXPECT_EQ(reader->boundary(), row.boundary);
  }
}

const std::string k70(70, 'b');
const std::string k71(71, 'b');
const std::string kType70 = "multipart/form-data; boundary=" + k70;
const std::string kType71 = "multipart/form-data; boundary=" + k71;

INSTANTIATE_TEST_SUITE_P(
    Table, AMultipartContentType,
    ::testing::Values(
        TypeRow{"multipart/form-data; boundary=abc", "abc"},
        TypeRow{"multipart/form-data;boundary=abc", "abc"},
        TypeRow{"Multipart/Form-Data; BOUNDARY=abc", "abc"},
        TypeRow{"multipart/form-data; boundary=\"a b:c\"", "a b:c"},
        TypeRow{"multipart/form-data; charset=utf-8; boundary=x", "x"},
        TypeRow{"multipart/form-data; boundary=x ; charset=utf-8", "x"},
        TypeRow{"multipart/form-data; boundary====abc==", "===abc=="},
        TypeRow{"multipart/form-data; boundary=------------------------d74496d66958873e",
                "------------------------d74496d66958873e"},
        TypeRow{kType70.c_str(), k70.c_str()},
        // Refused.
        TypeRow{"", nullptr}, TypeRow{"text/plain", nullptr},
        TypeRow{"multipart/mixed; boundary=abc", nullptr}, TypeRow{"multipart/form-data", nullptr},
        TypeRow{"multipart/form-data;", nullptr},
        TypeRow{"multipart/form-data; boundary=", nullptr},
        TypeRow{"multipart/form-data; boundary=\"\"", nullptr}, TypeRow{kType71.c_str(), nullptr},
        TypeRow{"multipart/form-data; boundary=\"abc \"", nullptr},
        TypeRow{"multipart/form-data; boundary=a@b", nullptr},
        TypeRow{"multipart/form-data; boundary=\"a\\\"b\"", nullptr},
        TypeRow{"multipart/form-data; boundary=\"abc", nullptr},
        TypeRow{"multipart/form-data; boundary=a; boundary=b", nullptr},
        TypeRow{"multipart/form-data; BOUNDARY=a; boundary=a", nullptr},
        TypeRow{"multipart/form-data; boundary=a b", nullptr},
        TypeRow{"multipart/form-data boundary=abc", nullptr},
        TypeRow{"multipart/form-data; boundary = abc", nullptr},
        TypeRow{"multipart/form-data; boundary=\"a\rb\"", nullptr},
        TypeRow{"multipart/form-data; =abc", nullptr}));

// ---- well-formed bodies -------------------------------------------------------------

TEST(AMultipartReader, DeliversEveryPartOfAWholeBody) {
  auto parts = Parse(SampleBody());
  ASSERT_TRUE(parts) << parts.error().message;
  EXPECT_EQ(*parts, SampleParts());
}

TEST(AMultipartReader, GivesTheSameResultForASplitAtEveryOffset) {
  const std::string body = SampleBody();
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
    ASSERT_TRUE(reader);
    Recorder recorder;
    ASSERT_TRUE(reader->Feed(std::string_view(body).substr(0, cut), recorder)) << cut;
    ASSERT_TRUE(reader->Feed(std::string_view(body).substr(cut), recorder)) << cut;
    ASSERT_TRUE(reader->Finish()) << cut;
    EXPECT_EQ(recorder.parts, SampleParts()) << "cut at " << cut;
  }
}

TEST(AMultipartReader, GivesTheSameResultForEveryChunkSize) {
  const std::string body = SampleBody();
  for (size_t chunk = 1; chunk <= body.size(); ++chunk) {
    auto parts = Parse(body, chunk);
    ASSERT_TRUE(parts) << chunk << ": " << parts.error().message;
    EXPECT_EQ(*parts, SampleParts()) << "chunk " << chunk;
  }
}

TEST(AMultipartReader, PassesBoundaryLookalikesInFileContentThrough) {
  const std::vector<std::string> lookalikes = {"\r\n--XbOuNdArY4",
                                               "\r\n--XbOuNdArY4\r\n",
                                               "--XbOuNdArY42\r\n",
                                               "\r\n-",
                                               "\r\r\n--XbOuNdArY",
                                               "x\r\n--XbOuNdAr",
                                               "\r\n--xbOuNdArY42",
                                               "\r",
                                               "\r\n",
                                               "\r\n--",
                                               "\r\n\r\n--XbOuNdArY4\r\n--XbOuNdArY4"};
  for (const std::string& data : lookalikes) {
    const std::string body = EncodeMultipart({{"tarball", data, "t.tgz"}}, kBoundary);
    for (size_t chunk : {size_t{0}, size_t{1}, size_t{2}, size_t{7}}) {
      auto parts = Parse(body, chunk);
      ASSERT_TRUE(parts) << chunk << ": " << parts.error().message;
      ASSERT_EQ(parts->size(), 1u);
      EXPECT_EQ((*parts)[0].data, data) << "chunk " << chunk;
    }
  }
}

TEST(AMultipartReader, AcceptsPreambleEpilogueAndTransportPadding) {
  const std::string body =
      "preamble line\r\nmore\r\n--XbOuNdArY42 \t\r\n"
      "content-disposition: form-data; name=a\r\n\r\nA\r\n"
      "--XbOuNdArY42\r\nContent-Disposition: form-data; name=\"b\"\r\n"
      "\r\n\r\n--XbOuNdArY42--  trailing epilogue\r\nstuff";
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
    auto parts = Parse(body, chunk);
    ASSERT_TRUE(parts) << parts.error().message;
    ASSERT_EQ(parts->size(), 2u);
    EXPECT_EQ((*parts)[0].name, "a");
    EXPECT_EQ((*parts)[0].data, "A");
    EXPECT_EQ((*parts)[1].name, "b");
    EXPECT_EQ((*parts)[1].data, "");
  }
}

TEST(AMultipartReader, ReadsABodyWithAQuotedBoundaryContainingSpaces) {
  const std::string boundary = "a b'()+_,-./:=?c";
  const std::string body = EncodeMultipart({{"sha", "v1"}}, boundary);
  auto parts = Parse(body, 1, "multipart/form-data; boundary=\"" + boundary + "\"");
  ASSERT_TRUE(parts) << parts.error().message;
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, "v1");
}

TEST(AMultipartReader, UnquotesNameAndFilenameAndKeepsFilenameUntouched) {
  const std::string body =
      "--XbOuNdArY42\r\nContent-Disposition: form-data; filename=\"../../etc/pa\\\"ss wd\"; "
      "name=\"tar;ball\"\r\n\r\nx\r\n--XbOuNdArY42--";
  auto parts = Parse(body);
  ASSERT_TRUE(parts) << parts.error().message;
  EXPECT_EQ((*parts)[0].name, "tar;ball");
  EXPECT_EQ((*parts)[0].filename, "../../etc/pa\"ss wd");
}

TEST(AMultipartReader, AcceptsExactlyTheMaximumNumberOfParts) {
  std::vector<FormPart> parts;
  for (int i = 0; i < 16; ++i) parts.push_back({"f" + std::to_string(i), "v"});
  auto ok = Parse(EncodeMultipart(parts, kBoundary));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->size(), 16u);
  parts.push_back({"f16", "v"});
  auto refused = Parse(EncodeMultipart(parts, kBoundary));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "multipart-parts");
}

TEST(AMultipartReader, AcceptsAHeaderBlockExactlyAtItsCap) {
  MultipartLimits limits;
  limits.max_header_bytes = 100;
  // Header block: disposition line + CRLF + final CRLF.
  std::string line = "Content-Disposition: form-data; name=a";
  std::string filler = "X-Pad: ";
  filler += std::string(100 - line.size() - 2 - 2 - filler.size() - 2, 'p');
  std::string body = "--XbOuNdArY42\r\n" + line + "\r\n" + filler + "\r\n\r\nv\r\n--XbOuNdArY42--";
  auto ok = Parse(body, 1, {}, limits);
  ASSERT_TRUE(ok) << ok.error().message;
  body.insert(body.find("X-Pad: ") + 7, "p");
  auto refused = Parse(body, 1, {}, limits);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "multipart-header-size");
}

TEST(AMultipartReader, StreamsALargePartInBoundedPieces) {
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 9));
  const std::string body = EncodeMultipart({{"tarball", data, "t"}}, kBoundary);
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
  ASSERT_TRUE(reader);
  Recorder recorder;
  ASSERT_TRUE(reader->Feed(body, recorder));  // one 3 MiB chunk
  ASSERT_TRUE(reader->Finish());
  ASSERT_EQ(recorder.parts.size(), 1u);
  EXPECT_TRUE(recorder.parts[0].data == data);
  EXPECT_LE(recorder.largest_piece, 64u * 1024);
}

TEST(AMultipartReader, ReportsTruncationAtEveryCutBeforeTheClosingDelimiter) {
  const std::string body = SampleBody();  // ends "--\r\n"
  for (size_t cut = 0; cut + 2 < body.size(); ++cut) {
    auto parts = Parse(std::string_view(body).substr(0, cut));
    ASSERT_FALSE(parts) << "cut at " << cut;
    EXPECT_EQ(parts.error().rule, "multipart-truncated") << "cut at " << cut;
  }
  EXPECT_TRUE(Parse(std::string_view(body).substr(0, body.size() - 2)));
}

// ---- refused bodies -----------------------------------------------------------------

struct BodyRow {
  const char* what;
  std::string body;
  const char* rule;
};

void PrintTo(const BodyRow& row, std::ostream* os) { *os << row.what; }

class AMalformedBody : public ::testing::TestWithParam<BodyRow> {};

TEST_P(AMalformedBody, IsRefusedWithItsRuleWhateverTheChunking) {
  const BodyRow& row = GetParam();
  MultipartLimits limits;
  limits.max_preamble_bytes = 64;
  limits.max_epilogue_bytes = 64;
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{3}}) {
    auto parts = Parse(row.body, chunk, {}, limits);
    ASSERT_FALSE(parts) << row.what << " (chunk " << chunk << ")";
    EXPECT_EQ(parts.error().rule, row.rule) << row.what << ": " << parts.error().message;
    EXPECT_EQ(parts.error().code, ErrorCode::kMalformed);
  }
}

const std::string kB = "--XbOuNdArY42";
const std::string kCd = "Content-Disposition: form-data; name=";

std::string Part(const std::string& headers, const std::string& data = "v") {
  return kB + "\r\n" + headers + "\r\n\r\n" + data + "\r\n";
}
std::string Close() { return kB + "--\r\n"; }

INSTANTIATE_TEST_SUITE_P(
    Table, AMalformedBody,
    ::testing::Values(
        BodyRow{"bare LF after the boundary", kB + "\n" + kCd + "a\r\n\r\nv\r\n" + Close(),
                "multipart-syntax"},
        BodyRow{"bare LF ending a header", kB + "\r\n" + kCd + "a\n\r\nv\r\n" + Close(),
                "multipart-syntax"},
        BodyRow{"bare LF header block", kB + "\r\n" + kCd + "a\n\nv\n" + kB + "--\n",
                "multipart-syntax"},
        BodyRow{"bare CR inside a header", kB + "\r\n" + kCd + "a\rb\r\n\r\nv\r\n" + Close(),
                "multipart-syntax"},
        BodyRow{"no closing delimiter", Part(kCd + "a"), "multipart-truncated"},
        BodyRow{"nothing at all", "", "multipart-truncated"},
        BodyRow{"only a preamble", "hello\r\n", "multipart-truncated"},
        BodyRow{"closing boundary without its CRLF prefix",
                kB + "\r\n" + kCd + "a\r\n\r\nv" + Close(), "multipart-truncated"},
        BodyRow{"header block over 8 KiB",
                Part(kCd + "a\r\nX-Big: " + std::string(8200, 'x')) + Close(),
                "multipart-header-size"},
        BodyRow{"header block of many small lines",
                [] {
                  std::string h = kCd + "a";
                  for (int i = 0; i < 2000; ++i) h += "\r\nX: y";
                  return Part(h) + Close();
                }(),
                "multipart-header-size"},
        BodyRow{"17 parts",
                [] {
                  std::string b;
                  for (int i = 0; i < 17; ++i) b += Part(kCd + "f" + std::to_string(i));
                  return b + Close();
                }(),
                "multipart-parts"},
        BodyRow{"duplicate field", Part(kCd + "a") + Part(kCd + "\"a\"") + Close(),
                "multipart-duplicate-field"},
        BodyRow{"no Content-Disposition", Part("Content-Type: text/plain") + Close(),
                "multipart-field-name"},
        BodyRow{"empty header block", kB + "\r\n\r\nv\r\n" + Close(), "multipart-field-name"},
        BodyRow{"disposition without name", Part("Content-Disposition: form-data") + Close(),
                "multipart-field-name"},
        BodyRow{"empty name", Part(kCd + "\"\"") + Close(), "multipart-field-name"},
        BodyRow{"only a filename", Part("Content-Disposition: form-data; filename=\"x\"") + Close(),
                "multipart-field-name"},
        BodyRow{"name* parameter", Part(kCd + "a; name*=UTF-8''b") + Close(), "multipart-syntax"},
        BodyRow{"repeated name parameter", Part(kCd + "a; name=b") + Close(), "multipart-syntax"},
        BodyRow{"not form-data", Part("Content-Disposition: attachment; name=a") + Close(),
                "multipart-syntax"},
        BodyRow{"repeated Content-Disposition", Part(kCd + "a\r\n" + kCd + "b") + Close(),
                "multipart-syntax"},
        BodyRow{"repeated Content-Type",
                Part(kCd + "a\r\nContent-Type: a/b\r\nContent-Type: c/d") + Close(),
                "multipart-syntax"},
        BodyRow{"base64 transfer encoding",
                Part(kCd + "a\r\nContent-Transfer-Encoding: base64") + Close(), "multipart-syntax"},
        BodyRow{"folded header", Part(kCd + "a\r\n X-Folded: y") + Close(), "multipart-syntax"},
        BodyRow{"header without colon", Part(kCd + "a\r\nNoColon") + Close(), "multipart-syntax"},
        BodyRow{"header with empty name", Part(kCd + "a\r\n: v") + Close(), "multipart-syntax"},
        BodyRow{"space in header name", Part(kCd + "a\r\nX Y: v") + Close(), "multipart-syntax"},
        BodyRow{"NUL in header value", Part(kCd + std::string("a\0b", 3)) + Close(),
                "multipart-syntax"},
        BodyRow{"unterminated quoted name", Part(kCd + "\"a") + Close(), "multipart-syntax"},
        BodyRow{"junk after a quoted name", Part(kCd + "\"a\"b") + Close(), "multipart-syntax"},
        BodyRow{"boundary followed by junk", kB + "X\r\n" + kCd + "a\r\n\r\nv\r\n" + Close(),
                "multipart-syntax"},
        BodyRow{"boundary inside data followed by junk",
                Part(kCd + "a", "v\r\n" + kB + "junk") + Close(), "multipart-syntax"},
        BodyRow{"closed before any part", Close(), "multipart-syntax"},
        BodyRow{"padding before the closing dashes", Part(kCd + "a") + kB + " --\r\n",
                "multipart-syntax"},
        BodyRow{"endless transport padding", kB + std::string(100, ' ') + "\r\n",
                "multipart-syntax"},
        BodyRow{"preamble over its cap", std::string(100, 'p') + "\r\n" + Part(kCd + "a") + Close(),
                "multipart-preamble-size"},
        BodyRow{"preamble without a boundary", std::string(1000, 'p'), "multipart-preamble-size"},
        BodyRow{"epilogue over its cap", Part(kCd + "a") + Close() + std::string(100, 'e'),
                "multipart-epilogue-size"}));

// ---- handler errors -----------------------------------------------------------------

class RefusingHandler : public MultipartHandler {
 public:
  Result<void> OnPartBegin(const PartHeaders&) override { return {}; }
  Result<void> OnPartData(std::string_view) override {
    ++calls;
    return Fail(ErrorCode::kDenied, "test-refusal", "no");
  }
  Result<void> OnPartEnd() override { return {}; }
  int calls = 0;
};

TEST(AMultipartReader, StopsAtAHandlerErrorAndRepeatsItAfterwards) {
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
  ASSERT_TRUE(reader);
  RefusingHandler handler;
  const std::string body = SampleBody();
  auto fed = reader->Feed(body, handler);
  ASSERT_FALSE(fed);
  EXPECT_EQ(fed.error().rule, "test-refusal");
  EXPECT_EQ(fed.error().code, ErrorCode::kDenied);
  auto again = reader->Feed("more", handler);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().rule, "test-refusal");
  auto finished = reader->Finish();
  ASSERT_FALSE(finished);
  EXPECT_EQ(finished.error().rule, "test-refusal");
  EXPECT_EQ(handler.calls, 1);
}

TEST(AMultipartReader, RepeatsAGrammarErrorOnEveryLaterCall) {
  auto reader = MultipartReader::Create(ContentTypeFor(kBoundary));
  ASSERT_TRUE(reader);
  Recorder recorder;
  ASSERT_FALSE(reader->Feed(kB + "\n", recorder));
  auto again = reader->Feed(SampleBody(), recorder);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().rule, "multipart-syntax");
  EXPECT_TRUE(recorder.parts.empty());
}

}  // namespace
}  // namespace decnet::daemon
