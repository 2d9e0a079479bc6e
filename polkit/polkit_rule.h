// The polkit rule that lets an operator group start, stop and restart the units the updater
// manages, rendered from the group's name and the unit prefix. The package ships the default
// rendering (polkit/50-decnet-updater.rules); enrolment renders another for a host whose group
// or prefix differs.
#pragma once

#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::polkit {

// What the rule is rendered from. The defaults give the shipped file.
struct PolkitRuleParams {
  // Members of this group may start, stop and restart the allowed units without a password.
  std::string admin_group = "decnet-admin";
  // Allowed units are PREFIX[a-z0-9][a-z0-9-]*.service, the helper policy's name allow-list.
  std::string unit_prefix = "decnet-";
  // The updater's own unit: never allowed, though it matches the prefix.
  std::string self_unit = "decnet-updater.service";
  // Users the rule never answers for, even when they are members of admin_group: the daemon's
  // user and the units' user.
  std::vector<std::string> never_users = {"decnet-updater", "decnet"};
};

// Renders the rule file (JavaScript for polkitd) for `params`: it answers YES to
// org.freedesktop.systemd1.manage-units when the verb is exactly start, stop or restart, the
// unit matches ^PREFIX[a-z0-9][a-z0-9-]*\.service$ and is not self_unit, the caller is in
// admin_group and is none of never_users; it answers nothing otherwise, so polkit's defaults
// (administrator authentication) decide.
//
// Every value is validated before it is written into the script, so none can inject
// JavaScript or widen the match. Refuses (ErrorCode::kMalformed) with rule:
//   "polkit-group-name"   admin_group is not a POSIX-ish name [a-z_][a-z0-9_-]*, 1..32 bytes;
//   "polkit-unit-prefix"  unit_prefix breaks the helper policy's unit_prefix rule
//                         ([a-z][a-z0-9-]*-);
//   "polkit-self-unit"    self_unit is not a valid unit name (the policy's self_unit rule);
//   "polkit-user-name"    an entry of never_users is not a POSIX-ish name;
//   "polkit-never-users"  never_users is empty or has more than 64 entries.
[[nodiscard]] Result<std::string> RenderPolkitRule(const PolkitRuleParams& params);

}  // namespace decnet::polkit
