// Typed values of the helper protocol. Each has a private constructor and a validating
// Parse: code that holds one holds a valid value. Parse failures are ErrorCode::kMalformed
// with a rule naming the check; policy (which of the valid names are allowed) is the
// helper's business, not these types'.
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "proto/result.h"

namespace decnet {

// `text` in double quotes for an error message: at most 80 bytes, control and non-ASCII
// bytes as \xNN, "..." when cut. Whatever a peer sent, the message stays one clean line.
std::string QuotePrintable(std::string_view text);

// A systemd unit name of a kind the updater manages: `NAME.service` or `NAME.target`,
// where NAME is 1..200 characters of [A-Za-z0-9:_.-] (systemd's unit-name alphabet without
// `@`, `\`, so no templates, instances or escapes), not starting with '.' or '-'.
// Refuses: empty, over-long, other suffixes, '/', NUL, '@', "..", control characters.
class UnitName {
 public:
  static Result<UnitName> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  // The part before the suffix ("decnet-agent" for "decnet-agent.service").
  std::string_view stem() const;
  bool is_service() const;
  auto operator<=>(const UnitName&) const = default;

 private:
  explicit UnitName(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// The name of a link in the link directory (e.g. "decnet"): 1..64 characters of
// [A-Za-z0-9._-], not starting with '.' or '-'. Refuses '/', NUL and anything else.
class LinkName {
 public:
  static Result<LinkName> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  auto operator<=>(const LinkName&) const = default;

 private:
  explicit LinkName(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

// An absolute, normalised path: starts with '/', at most 1024 bytes, components of
// [A-Za-z0-9._+@=:,-] only, no empty, "." or ".." components, no trailing '/'.
class AbsPath {
 public:
  static Result<AbsPath> Parse(std::string_view text);
  const std::string& str() const { return value_; }
  // True when this path equals `prefix` or lies beneath it (component-wise).
  bool IsBeneath(const AbsPath& prefix) const;
  auto operator<=>(const AbsPath&) const = default;

 private:
  explicit AbsPath(std::string v) : value_(std::move(v)) {}
  std::string value_;
};

}  // namespace decnet
