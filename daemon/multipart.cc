#include "daemon/multipart.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace decnet::daemon {
namespace {

// The smallest window, so that a large network chunk is handed on in few, large pieces.
constexpr size_t kMinWindow = 64 * 1024;
constexpr size_t kMaxBoundary = 70;          // RFC 2046 §5.1.1
constexpr size_t kMaxTransportPadding = 64;  // blanks between a delimiter and its CRLF

Error Syntax(std::string message) {
  return Error{ErrorCode::kMalformed, "multipart-syntax", std::move(message)};
}

// Quotes untrusted text for an error message, control bytes and non-ASCII escaped.
std::string Quoted(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// RFC 9110 tchar.
bool IsTchar(char c) {
  return IsAlnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars, space included (the caller refuses a trailing one).
bool IsBchar(char c) {
  return IsAlnum(c) || std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u < 0x20 && c != '\t') || u == 0x7f;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsBlank(text.back())) text.remove_suffix(1);
  return text;
}

struct Param {
  std::string name;  // lower-cased
  std::string value;
};

// Reads a quoted-string starting at text[i] == '"'; leaves i after the closing quote.
Result<std::string> ReadQuoted(std::string_view text, size_t& i) {
  std::string value;
  for (++i;; ++i) {
    if (i >= text.size()) return tl::make_unexpected(Syntax("unterminated quoted string"));
    char c = text[i];
    if (c == '"') {
      ++i;
      return value;
    }
    if (c == '\\') {
      if (++i >= text.size()) return tl::make_unexpected(Syntax("unterminated quoted string"));
      c = text[i];
    }
    if (IsControl(c)) return tl::make_unexpected(Syntax("control character in quoted string"));
    value += c;
  }
}

// Reads an unquoted value: visible ASCII up to ';' or a blank. Looser than a token because
// deployed clients send boundaries with '=' or '/' unquoted; bchars are checked later.
Result<std::string> ReadBare(std::string_view text, size_t& i) {
  size_t start = i;
  while (i < text.size()) {
    auto u = static_cast<unsigned char>(text[i]);
    if (u <= 0x20 || u >= 0x7f || text[i] == ';' || text[i] == '"' || text[i] == '\\') break;
    ++i;
  }
  if (i == start) return tl::make_unexpected(Syntax("empty or invalid parameter value"));
  return std::string(text.substr(start, i - start));
}

// Parses `*( OWS ";" OWS name "=" value ) OWS`, the parameters after a header's main value.
// Refuses a repeated parameter name, so a client cannot say two things at once.
Result<std::vector<Param>> ParseParams(std::string_view text) {
  std::vector<Param> out;
  size_t i = 0;
  auto skip_blanks = [&] {
    while (i < text.size() && IsBlank(text[i])) ++i;
  };
  for (;;) {
    skip_blanks();
    if (i == text.size()) return out;
    if (text[i] != ';') return tl::make_unexpected(Syntax("expected ';' between parameters"));
    ++i;
    skip_blanks();
    if (i == text.size()) return out;
    size_t start = i;
    while (i < text.size() && IsTchar(text[i])) ++i;
    if (i == start || i == text.size() || text[i] != '=') {
      return tl::make_unexpected(Syntax("malformed parameter"));
    }
    Param param{Lower(text.substr(start, i - start)), {}};
    ++i;
    auto value = (i < text.size() && text[i] == '"') ? ReadQuoted(text, i) : ReadBare(text, i);
    if (!value) return tl::make_unexpected(value.error());
    param.value = std::move(*value);
    for (const Param& seen : out) {
      if (seen.name == param.name) {
        return tl::make_unexpected(Syntax("repeated parameter " + Quoted(param.name)));
      }
    }
    out.push_back(std::move(param));
  }
}

// Splits `type; params` and parses the params.
Result<std::pair<std::string, std::vector<Param>>> ParseHeaderValue(std::string_view value) {
  size_t semi = std::min(value.find(';'), value.size());
  std::string type = Lower(Trim(value.substr(0, semi)));
  auto params = ParseParams(value.substr(semi));
  if (!params) return tl::make_unexpected(params.error());
  return std::make_pair(std::move(type), std::move(*params));
}

Result<std::string> ParseBoundary(std::string_view content_type) {
  auto fail = [&](std::string why) {
    return Fail(ErrorCode::kMalformed, "multipart-content-type",
                "Content-Type " + Quoted(content_type) + ": " + why);
  };
  auto parsed = ParseHeaderValue(content_type);
  if (!parsed) return fail(parsed.error().message);
  if (parsed->first != "multipart/form-data") return fail("not multipart/form-data");
  const Param* boundary = nullptr;
  for (const Param& p : parsed->second) {
    if (p.name == "boundary") boundary = &p;
  }
  if (boundary == nullptr) return fail("no boundary parameter");
  const std::string& b = boundary->value;
  if (b.empty() || b.size() > kMaxBoundary) return fail("boundary must have 1 to 70 characters");
  if (!std::all_of(b.begin(), b.end(), IsBchar) || b.back() == ' ') {
    return fail("boundary has a character outside RFC 2046's set, or ends in a space");
  }
  return b;
}

// The disposition of one part: `form-data; name="..."[; filename="..."]`.
Result<PartHeaders> ParseDisposition(std::string_view value) {
  auto parsed = ParseHeaderValue(value);
  if (!parsed) return tl::make_unexpected(parsed.error());
  if (parsed->first != "form-data") {
    return tl::make_unexpected(Syntax("Content-Disposition is not form-data"));
  }
  PartHeaders headers;
  bool has_name = false;
  for (Param& p : parsed->second) {
    // SECURITY: RFC 7578 forbids the RFC 5987 forms; accepting them would let one header
    // carry two names for the same part.
    if (p.name == "name*" || p.name == "filename*") {
      return tl::make_unexpected(Syntax("extended parameter " + Quoted(p.name) + " is refused"));
    }
    if (p.name == "name") {
      headers.name = std::move(p.value);
      has_name = true;
    } else if (p.name == "filename") {
      headers.filename = std::move(p.value);
    }
  }
  if (!has_name || headers.name.empty()) {
    return Fail(ErrorCode::kMalformed, "multipart-field-name", "a part has no field name");
  }
  return headers;
}

}  // namespace

Result<MultipartReader> MultipartReader::Create(std::string_view content_type,
                                                MultipartLimits limits) {
  auto boundary = ParseBoundary(content_type);
  if (!boundary) return tl::make_unexpected(boundary.error());
  return MultipartReader(std::move(*boundary), limits);
}

MultipartReader::MultipartReader(std::string boundary, MultipartLimits limits)
    : boundary_(std::move(boundary)), delimiter_("\r\n--" + boundary_), limits_(limits) {
  window_ = std::max(kMinWindow, limits_.max_header_bytes + delimiter_.size() + 8);
  // The first dash-boundary need not follow a CRLF; a virtual one lets a single search
  // find the first delimiter and every later one alike.
  buf_ = "\r\n";
}

Result<void> MultipartReader::Poison(Result<void> result) {
  if (!result && !error_) error_ = result.error();
  return result;
}

Result<void> MultipartReader::Feed(std::string_view chunk, MultipartHandler& handler) {
  if (error_) return tl::make_unexpected(*error_);
  for (;;) {
    buf_.erase(0, pos_);
    pos_ = 0;
    size_t take = std::min(chunk.size(), window_ - buf_.size());
    buf_.append(chunk.data(), take);
    chunk.remove_prefix(take);
    for (;;) {
      auto progress = Step(handler);
      if (!progress) return Poison(tl::make_unexpected(progress.error()));
      if (*progress == Progress::kNeedMore) break;
    }
    if (chunk.empty()) return {};
    // Every state asks for more only while it holds less than the window; anything else
    // would be a reader bug that must not turn into an unbounded buffer.
    if (buf_.size() - pos_ >= window_) {
      return Poison(tl::make_unexpected(Syntax("reader window exhausted")));
    }
  }
}

Result<void> MultipartReader::Finish() {
  if (error_) return tl::make_unexpected(*error_);
  if (state_ != State::kEpilogue) {
    return Poison(Fail(ErrorCode::kMalformed, "multipart-truncated",
                       "the body ended before its closing boundary"));
  }
  return {};
}

Result<MultipartReader::Progress> MultipartReader::Step(MultipartHandler& handler) {
  switch (state_) {
    case State::kPreamble:
      return StepPreamble();
    case State::kAfterDelimiter:
      return StepAfterDelimiter();
    case State::kHeaders:
      return StepHeaders(handler);
    case State::kData:
      return StepData(handler);
    case State::kEpilogue:
      return StepEpilogue();
  }
  return tl::make_unexpected(Syntax("unknown reader state"));
}

Result<MultipartReader::Progress> MultipartReader::StepPreamble() {
  std::string_view v = std::string_view(buf_).substr(pos_);
  size_t found = v.find(delimiter_);
  size_t discard = found != std::string_view::npos
                       ? found
                       : v.size() - std::min(v.size(), delimiter_.size() - 1);
  preamble_seen_ += discard;
  // The virtual CRLF is not the client's preamble.
  if (preamble_seen_ > limits_.max_preamble_bytes + 2) {
    return Fail(ErrorCode::kMalformed, "multipart-preamble-size",
                "the preamble exceeds " + std::to_string(limits_.max_preamble_bytes) + " bytes");
  }
  if (found == std::string_view::npos) {
    pos_ += discard;
    return Progress::kNeedMore;
  }
  pos_ += found + delimiter_.size();
  state_ = State::kAfterDelimiter;
  padding_seen_ = 0;
  return Progress::kAdvanced;
}

Result<MultipartReader::Progress> MultipartReader::StepAfterDelimiter() {
  std::string_view v = std::string_view(buf_).substr(pos_);
  if (v.empty()) return Progress::kNeedMore;
  if (IsBlank(v[0])) {
    if (++padding_seen_ > kMaxTransportPadding) {
      return tl::make_unexpected(Syntax("too much padding after a boundary"));
    }
    ++pos_;
    return Progress::kAdvanced;
  }
  if (v[0] != '-' && v[0] != '\r') {
    return tl::make_unexpected(Syntax("a boundary must be followed by CRLF or \"--\""));
  }
  if (v.size() < 2) return Progress::kNeedMore;
  if (v[0] == '-' && v[1] == '-') {
    if (padding_seen_ > 0) return tl::make_unexpected(Syntax("padding before a closing \"--\""));
    if (parts_ == 0) return tl::make_unexpected(Syntax("the body closes before any part"));
    pos_ += 2;
    state_ = State::kEpilogue;
    return Progress::kAdvanced;
  }
  if (v[0] != '\r' || v[1] != '\n') {
    return tl::make_unexpected(Syntax("a boundary must be followed by CRLF or \"--\""));
  }
  pos_ += 2;
  if (parts_ >= limits_.max_parts) {
    return Fail(ErrorCode::kMalformed, "multipart-parts",
                "the body has more than " + std::to_string(limits_.max_parts) + " parts");
  }
  ++parts_;
  state_ = State::kHeaders;
  header_bytes_ = 0;
  line_checked_ = 0;
  disposition_.reset();
  part_content_type_.reset();
  saw_transfer_encoding_ = false;
  return Progress::kAdvanced;
}

Result<MultipartReader::Progress> MultipartReader::StepHeaders(MultipartHandler& handler) {
  std::string_view v = std::string_view(buf_).substr(pos_);
  auto too_big = [&] {
    return Fail(ErrorCode::kMalformed, "multipart-header-size",
                "a part's headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
  };
  // Only the bytes not yet checked are scanned, so a header fed one byte at a time costs
  // linear time, not quadratic.
  // The size is checked byte by byte, before the byte's own checks, so the verdict on a
  // body does not depend on how it was split into chunks.
  for (size_t i = line_checked_; i < v.size(); ++i) {
    if (header_bytes_ + i + 1 > limits_.max_header_bytes) return too_big();
    if (v[i] == '\n') {
      // SECURITY: line ends are CRLF only; a bare LF is how request smuggling between
      // lenient and strict parsers starts.
      if (i == 0 || v[i - 1] != '\r') return tl::make_unexpected(Syntax("bare LF in headers"));
      header_bytes_ += i + 1;
      std::string_view line = v.substr(0, i - 1);
      pos_ += i + 1;
      line_checked_ = 0;
      auto done = line.empty() ? EndOfHeaders(handler) : HeaderLine(line);
      if (!done) return tl::make_unexpected(done.error());
      return Progress::kAdvanced;
    }
    if (v[i] == '\r' && i + 1 < v.size() && v[i + 1] != '\n') {
      return tl::make_unexpected(Syntax("bare CR in headers"));
    }
  }
  // A trailing CR is checked again once its successor arrives.
  line_checked_ = (!v.empty() && v.back() == '\r') ? v.size() - 1 : v.size();
  return Progress::kNeedMore;
}

Result<void> MultipartReader::HeaderLine(std::string_view line) {
  if (IsBlank(line.front())) return tl::make_unexpected(Syntax("folded header line"));
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return tl::make_unexpected(Syntax("header line without a name"));
  }
  std::string_view name = line.substr(0, colon);
  if (!std::all_of(name.begin(), name.end(), IsTchar)) {
    return tl::make_unexpected(Syntax("bad header name " + Quoted(name)));
  }
  std::string_view value = Trim(line.substr(colon + 1));
  if (std::any_of(value.begin(), value.end(), IsControl)) {
    return tl::make_unexpected(Syntax("control character in header " + Quoted(name)));
  }
  std::string lower = Lower(name);
  if (lower == "content-disposition") {
    if (disposition_) return tl::make_unexpected(Syntax("repeated Content-Disposition"));
    disposition_ = std::string(value);
  } else if (lower == "content-type") {
    if (part_content_type_) return tl::make_unexpected(Syntax("repeated Content-Type"));
    part_content_type_ = std::string(value);
  } else if (lower == "content-transfer-encoding") {
    // A decoded body would hash differently from what the client sent; only identity
    // encodings are accepted, so the bytes spooled are the bytes on the wire.
    std::string encoding = Lower(value);
    if (saw_transfer_encoding_ ||
        (encoding != "7bit" && encoding != "8bit" && encoding != "binary")) {
      return tl::make_unexpected(Syntax("Content-Transfer-Encoding " + Quoted(value)));
    }
    saw_transfer_encoding_ = true;
  }
  return {};
}

Result<void> MultipartReader::EndOfHeaders(MultipartHandler& handler) {
  if (!disposition_) {
    return Fail(ErrorCode::kMalformed, "multipart-field-name", "a part has no Content-Disposition");
  }
  auto headers = ParseDisposition(*disposition_);
  if (!headers) return tl::make_unexpected(headers.error());
  const auto& repeatable = limits_.repeatable_fields;
  if (!names_.insert(headers->name).second &&
      std::find(repeatable.begin(), repeatable.end(), headers->name) == repeatable.end()) {
    return Fail(ErrorCode::kMalformed, "multipart-duplicate-field",
                "field " + Quoted(headers->name) + " appears twice");
  }
  headers->content_type = part_content_type_;
  state_ = State::kData;
  in_part_ = true;
  return handler.OnPartBegin(*headers);
}

Result<MultipartReader::Progress> MultipartReader::StepData(MultipartHandler& handler) {
  std::string_view v = std::string_view(buf_).substr(pos_);
  size_t found = v.find(delimiter_);
  if (found != std::string_view::npos) {
    if (found > 0) {
      auto sent = handler.OnPartData(v.substr(0, found));
      if (!sent) return tl::make_unexpected(sent.error());
    }
    pos_ += found + delimiter_.size();
    in_part_ = false;
    state_ = State::kAfterDelimiter;
    padding_seen_ = 0;
    auto ended = handler.OnPartEnd();
    if (!ended) return tl::make_unexpected(ended.error());
    return Progress::kAdvanced;
  }
  // Hold back only a tail that could still grow into a delimiter.
  size_t keep = 0;
  size_t from = v.size() - std::min(v.size(), delimiter_.size() - 1);
  for (size_t r = v.find('\r', from); r != std::string_view::npos; r = v.find('\r', r + 1)) {
    if (std::string_view(delimiter_).starts_with(v.substr(r))) {
      keep = v.size() - r;
      break;
    }
  }
  size_t deliver = v.size() - keep;
  if (deliver > 0) {
    auto sent = handler.OnPartData(v.substr(0, deliver));
    if (!sent) return tl::make_unexpected(sent.error());
    pos_ += deliver;
  }
  return Progress::kNeedMore;
}

Result<MultipartReader::Progress> MultipartReader::StepEpilogue() {
  epilogue_seen_ += buf_.size() - pos_;
  pos_ = buf_.size();
  if (epilogue_seen_ > limits_.max_epilogue_bytes) {
    return Fail(ErrorCode::kMalformed, "multipart-epilogue-size",
                "the epilogue exceeds " + std::to_string(limits_.max_epilogue_bytes) + " bytes");
  }
  return Progress::kNeedMore;
}

}  // namespace decnet::daemon
