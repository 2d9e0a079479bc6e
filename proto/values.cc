#include "proto/values.h"

#include <algorithm>

namespace decnet {
namespace {

constexpr size_t kMaxUnitStem = 200;
constexpr size_t kMaxLinkName = 64;
constexpr size_t kMaxPath = 1024;

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

std::string QuotePrintable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (text.size() > 80) out += "...";
  return "\"" + out + "\"";
}

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kDenied:
      return "denied";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kFailed:
      return "failed";
    case ErrorCode::kTimeout:
      return "timeout";
  }
  return "failed";
}

Result<UnitName> UnitName::Parse(std::string_view text) {
  std::string_view stem;
  if (text.ends_with(".service")) {
    stem = text.substr(0, text.size() - 8);
  } else if (text.ends_with(".target")) {
    stem = text.substr(0, text.size() - 7);
  } else {
    return Fail(ErrorCode::kMalformed, "unit-name-suffix",
                "unit name " + QuotePrintable(text) + " must end in .service or .target");
  }
  if (stem.empty() || stem.size() > kMaxUnitStem) {
    return Fail(
        ErrorCode::kMalformed, "unit-name-length",
        "unit name " + QuotePrintable(text) + " must have 1 to 200 characters before its suffix");
  }
  // SECURITY: no '/', '@', '\\' or '%': a name can never be a path, a template instance,
  // an escape sequence or a specifier.
  for (char c : stem) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
      return Fail(ErrorCode::kMalformed, "unit-name-charset",
                  "unit name " + QuotePrintable(text) + " has a character outside [A-Za-z0-9:_.-]");
    }
  }
  if (stem.front() == '.' || stem.front() == '-' || stem.find("..") != std::string_view::npos) {
    return Fail(
        ErrorCode::kMalformed, "unit-name-charset",
        "unit name " + QuotePrintable(text) + " starts with '.' or '-', or contains \"..\"");
  }
  return UnitName(std::string(text));
}

std::string_view UnitName::stem() const {
  return std::string_view(value_).substr(0, value_.rfind('.'));
}

bool UnitName::is_service() const { return value_.ends_with(".service"); }

Result<LinkName> LinkName::Parse(std::string_view text) {
  if (text.empty() || text.size() > kMaxLinkName) {
    return Fail(ErrorCode::kMalformed, "link-name-length",
                "link name " + QuotePrintable(text) + " must have 1 to 64 characters");
  }
  // SECURITY: a link name is one path component: no '/', no "." or "..", no hidden names.
  bool ok = std::all_of(text.begin(), text.end(),
                        [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
  if (!ok || text.front() == '.' || text.front() == '-') {
    return Fail(ErrorCode::kMalformed, "link-name-charset",
                "link name " + QuotePrintable(text) +
                    " must be [A-Za-z0-9._-] and not start with '.' or '-'");
  }
  return LinkName(std::string(text));
}

Result<AbsPath> AbsPath::Parse(std::string_view text) {
  if (text.empty() || text.front() != '/' || text.size() > kMaxPath) {
    return Fail(ErrorCode::kMalformed, "path-absolute",
                "path " + QuotePrintable(text) + " must be absolute and at most 1024 bytes");
  }
  if (text == "/") return AbsPath("/");
  if (text.back() == '/') {
    return Fail(ErrorCode::kMalformed, "path-normalised",
                "path " + QuotePrintable(text) + " must not end in '/'");
  }
  size_t pos = 1;
  while (pos <= text.size()) {
    size_t end = text.find('/', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(pos, end - pos);
    // SECURITY: no empty, "." or ".." components: prefix checks are component-wise and
    // cannot be walked out of.
    if (part.empty() || part == "." || part == "..") {
      return Fail(ErrorCode::kMalformed, "path-normalised",
                  "path " + QuotePrintable(text) + " has an empty, \".\" or \"..\" component");
    }
    for (char c : part) {
      if (!IsAlnum(c) && std::string_view("._+@=:,-").find(c) == std::string_view::npos) {
        return Fail(
            ErrorCode::kMalformed, "path-charset",
            "path " + QuotePrintable(text) + " has a character outside [A-Za-z0-9._+@=:,-/]");
      }
    }
    pos = end + 1;
  }
  return AbsPath(std::string(text));
}

bool AbsPath::IsBeneath(const AbsPath& prefix) const {
  if (prefix.value_ == "/") return true;
  if (!value_.starts_with(prefix.value_)) return false;
  return value_.size() == prefix.value_.size() || value_[prefix.value_.size()] == '/';
}

}  // namespace decnet
