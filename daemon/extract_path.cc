#include "daemon/extract_path.h"

#include <cstdio>

namespace decnet::daemon {
namespace {

constexpr size_t kMaxEscapedInput = 200;

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }

tl::unexpected<Error> Refuse(std::string rule, std::string_view raw, std::string_view why) {
  return Fail(ErrorCode::kDenied, std::move(rule),
              "entry \"" + EscapeEntryPath(raw) + "\": " + std::string(why));
}

// Calls `visit(component)` for each '/'-separated component of `path`, stopping at the first
// refusal it returns.
template <typename Visit>
Result<void> ForEachComponent(std::string_view path, Visit visit) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (auto r = visit(path.substr(start, end - start)); !r) return r;
    start = end + 1;
  }
  return {};
}

}  // namespace

std::string EscapeEntryPath(std::string_view raw) {
  std::string out;
  const size_t n = raw.size() < kMaxEscapedInput ? raw.size() : kMaxEscapedInput;
  out.reserve(n + 8);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (raw.size() > n) out += "...";
  return out;
}

Result<EntryPath> ParseEntryPath(std::string_view raw, const ExtractLimits& limits) {
  if (raw.size() > limits.max_path_length) {
    return Refuse("archive-path-length", raw,
                  "path of " + std::to_string(raw.size()) + " bytes exceeds the cap of " +
                      std::to_string(limits.max_path_length));
  }
  if (raw.empty()) return Refuse("archive-path-invalid", raw, "empty path");
  if (raw.front() == '/') return Refuse("archive-path-absolute", raw, "absolute path");
  std::string_view rest = raw;
  if (rest == "." || rest == "./") return EntryPath{};
  if (rest.starts_with("./")) rest.remove_prefix(2);
  if (rest.ends_with('/')) rest.remove_suffix(1);

  // SECURITY: ".." is refused wherever it appears, before any other oddity, so no entry names
  // anything outside the destination even before openat2's RESOLVE_BENEATH re-checks it.
  auto dotdot = ForEachComponent(rest, [&](std::string_view c) -> Result<void> {
    if (c == "..") return Refuse("archive-path-dotdot", raw, "\"..\" component");
    return {};
  });
  if (!dotdot) return tl::make_unexpected(dotdot.error());

  auto odd = ForEachComponent(rest, [&](std::string_view c) -> Result<void> {
    // Oddities are refused rather than normalised: "a//b" or "a/./b" has no honest producer.
    if (c.empty()) return Refuse("archive-path-invalid", raw, "empty path component");
    if (c == ".") return Refuse("archive-path-invalid", raw, "\".\" path component");
    if (c.size() > limits.max_component_length) {
      return Refuse("archive-path-length", raw,
                    "component of " + std::to_string(c.size()) + " bytes exceeds the cap of " +
                        std::to_string(limits.max_component_length));
    }
    for (const char ch : c) {
      if (IsControl(static_cast<unsigned char>(ch))) {
        return Refuse("archive-path-invalid", raw, "control character in path");
      }
    }
    return {};
  });
  if (!odd) return tl::make_unexpected(odd.error());
  return EntryPath{std::string(rest)};
}

}  // namespace decnet::daemon
