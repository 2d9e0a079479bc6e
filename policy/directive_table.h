// The curated directive table of the unit policy (DESIGN.md §5): every [Section] Key= a unit
// may use, and which check its value goes through. Internal to the policy library; the
// printable form for helperctl is DirectiveTable() in policy/unit_policy.h.
#pragma once

#include <string_view>

namespace decnet::helper {

// What is checked of a directive's value (the Checker in unit_policy.cc dispatches on it).
enum class Check {
  kAllowed,          // any value
  kUser,             // User=
  kGroup,            // Group=
  kSupplementary,    // SupplementaryGroups=
  kCapabilities,     // AmbientCapabilities=, CapabilityBoundingSet=
  kExec,             // Exec*=
  kNoNewPrivileges,  // NoNewPrivileges=
  kStdInput,         // StandardInput=
  kStdOutput,        // StandardOutput=, StandardError=
  kEnvironmentFile,  // EnvironmentFile=
  kDirectoryName,    // StateDirectory= and friends
  kDependency,       // names allow-listed or system units
  kInstallAlso,      // Also=: allow-listed units only
  kAlias,            // Alias=: names the unit policy allows
  kHostAction,       // FailureAction= and friends: "none" only
  kRefused,          // known and refused outright
};

struct Directive {
  const char* section;
  const char* key;
  Check check;
  const char* why = "";  // for kRefused: what it would allow
};

// The table's row for [section] key=, or nullptr when the table does not list it (the
// caller refuses the unit with "unit-directive-unknown"). Case-sensitive, as systemd is.
const Directive* FindDirective(std::string_view section, std::string_view key);

// The stable name of a check, as printed by `helperctl policy` ("user-allowlist", ...).
std::string_view CheckName(Check check);

}  // namespace decnet::helper
