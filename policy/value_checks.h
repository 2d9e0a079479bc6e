// Checks of single directive values that need no more than the value, the policy and the
// unit's name: directory modes, the stop/kill/timeout/rate-limit/resource bounds, condition
// paths and syslog settings. Internal to the policy library; CheckUnitContent calls it for
// every assignment of a directive whose table row names one of these checks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/directive_table.h"
#include "policy/policy.h"
#include "proto/values.h"

namespace decnet::helper {

// Why a value is refused: a rule of policy/rules.h and the reason (without the directive).
struct ValueRefusal {
  std::string rule;
  std::string why;
};

// The updater's own names, which *Directory= names and SyslogIdentifier= may neither equal
// nor begin with: the policy's reserved_directory_names, the daemon's user and group, the
// basename of the helper's state_dir and the stem of self_unit.
std::vector<std::string> ReservedNames(const Policy& policy);

// Judges a non-empty `value` of a directive whose check is `check` (one of the checks
// above). Returns nullopt when the value is within the policy, else the refusal; a check
// this function does not know is refused ("unit-directive-refused").
std::optional<ValueRefusal> CheckValue(const Policy& policy, const UnitName& unit, Check check,
                                       std::string_view value);

}  // namespace decnet::helper
