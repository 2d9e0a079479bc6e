// The unit policy: which unit names the helper may touch and what unit files may contain.
// Pure functions over a Policy; the same code runs in the helper, in helperctl check-unit and
// in the daemon before it asks.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"
#include "proto/result.h"
#include "proto/values.h"

namespace decnet::helper {

enum class UnitUse {
  kWrite,    // write_unit / remove_unit: never the updater's own unit
  kRestart,  // restart_unit / unit_status: the updater's own unit allowed
};

// Name allow-list: PREFIX[a-z0-9][a-z0-9-]*.service, or a name in extra_units. Refuses
// (kDenied) with rule "unit-name-allowlist", or "unit-self" for the updater's own unit under
// kWrite.
[[nodiscard]] Result<void> CheckUnitName(const Policy& policy, const UnitName& name, UnitUse use);

// One reason a unit file is refused. `line` is 1-based (0 when it concerns the whole file).
struct UnitRefusal {
  int line = 0;
  std::string rule;     // stable id, e.g. "unit-user-root"
  std::string message;  // human sentence naming the directive and value
};

// Checks that a path which systemd opens as root for the unit (StandardOutput=file:...,
// EnvironmentFile=...) cannot be redirected: every directory on it owned by root and
// writable by root alone, no symlinks. Returns an error sentence, or "" when safe.
using PathChainCheck = std::function<std::string(std::string_view abs_path)>;

// The real PathChainCheck: resolves `abs_path` beneath the directory `root` (the unit's
// filesystem root, "/" on a host) component by component with O_NOFOLLOW.
PathChainCheck RootOnlyPathCheck(std::string root);

// Checks a unit file's content as systemd would read it. Returns every refusal (empty when
// the unit is accepted). Refuses content over proto::kMaxUnitContent ("unit-size-cap").
std::vector<UnitRefusal> CheckUnitContent(const Policy& policy, const UnitName& name,
                                          std::string_view content,
                                          const PathChainCheck& path_check);

// The reader's conclusion about who a service runs as, for the differential test against
// `systemd-analyze security`: true when [Service] has no effective User= (or it is "root",
// "0", or holds a specifier) and DynamicUser= is not effectively true. Targets run nothing
// and give false.
bool UnitRunsAsRoot(std::string_view unit_name, std::string_view content);

// One row of the curated directive table, for `helperctl policy`.
struct DirectiveRow {
  std::string section;  // "Unit", "Service", "Install"
  std::string key;
  std::string check;  // what is checked of its value ("allowed", "user-allowlist", ...)
};
const std::vector<DirectiveRow>& DirectiveTable();

}  // namespace decnet::helper
