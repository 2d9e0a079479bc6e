// The unit policy's refusal rules: one row per stable rule id that CheckUnitName and
// CheckUnitContent can name. The single source for `helperctl policy` and for the tests that
// check every refusal names a listed rule.
#pragma once

#include <string_view>
#include <vector>

namespace decnet::helper {

// One refusal rule of the unit policy.
struct PolicyRule {
  std::string_view id;       // stable id, as refusals name it ("unit-user-root")
  std::string_view defends;  // the class of harm it closes ("root-identity", "root-set-up", ...)
  std::string_view summary;  // one sentence: what is refused and why
};

// Every rule of the unit policy, sorted by id. Never empty; ids are unique.
const std::vector<PolicyRule>& UnitPolicyRules();

// The row for `id`, or nullptr when no rule has that id.
const PolicyRule* FindUnitPolicyRule(std::string_view id);

// Every rule of the loaded-view check (policy/loaded_view.h): what systemd really loaded for
// a unit, judged before each restart and after each reload. Sorted by id, ids unique.
const std::vector<PolicyRule>& LoadedViewRules();

// The loaded-view row for `id`, or nullptr.
const PolicyRule* FindLoadedViewRule(std::string_view id);

}  // namespace decnet::helper
