// Errors as values, shared by every library in the project.
#pragma once

#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace decnet {

// How a well-formed request failed. These are the typed replies of the helper protocol
// (docs/protocol.md); structural protocol violations are not errors of this kind, they end
// the session.
enum class ErrorCode {
  kMalformed,  // a value does not parse as its type
  kDenied,     // a value parses but policy refuses it
  kNotFound,   // the named thing does not exist
  kFailed,     // systemd or the disk said no
  kTimeout,    // a wait ran out
};

// Wire name of an ErrorCode ("malformed", "denied", ...).
std::string_view ErrorCodeName(ErrorCode code);

// An error: its class, the rule that produced it (a stable kebab-case identifier that names
// the check, e.g. "unit-user-root"), and a human sentence with the details.
struct Error {
  ErrorCode code = ErrorCode::kFailed;
  std::string rule;
  std::string message;
};

template <typename T>
using Result = tl::expected<T, Error>;

// Shorthand for `tl::make_unexpected(Error{...})`.
inline tl::unexpected<Error> Fail(ErrorCode code, std::string rule, std::string message) {
  return tl::make_unexpected(Error{code, std::move(rule), std::move(message)});
}

}  // namespace decnet
