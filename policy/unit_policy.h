// The unit policy: which unit names the helper may touch and what unit files may contain.
// Pure functions over a Policy; the same code runs in the helper, in helperctl check-unit and
// in the daemon before it asks.
#pragma once

#include <functional>
#include <optional>
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

// A file systemd opens as root on a unit's behalf (StandardInput=file:, StandardOutput=
// append:, EnvironmentFile=, ...) and the credentials the unit will run with.
enum class OpenFor { kRead, kWrite };
struct OpenedFile {
  std::string path;  // absolute, as the unit names it (beneath the unit root)
  OpenFor access = OpenFor::kRead;
  std::string user;                               // User= in force ("" when none)
  std::string group;                              // Group= in force ("" when none)
  std::vector<std::string> supplementary_groups;  // SupplementaryGroups= in force
};

// Why an opened file is refused: a rule of policy/rules.h and a sentence.
struct PathRefusal {
  std::string rule;
  std::string message;
};

// Judges a file systemd would open as root for a unit. Returns nullopt when it may be
// opened, else the refusal.
using PathChainCheck = std::function<std::optional<PathRefusal>(const OpenedFile& file)>;

// The real PathChainCheck. Resolves the path beneath the directory `root` (the unit's
// filesystem root, "/" on a host) one component at a time with O_NOFOLLOW and refuses:
//  * "unit-root-opened-path": a symlink, a missing or non-directory component, a directory
//    not owned by root or writable by anyone but root (someone else could redirect it);
//  * "unit-opened-file-access": the unit's user or groups unknown (read from ROOT/etc/passwd
//    and ROOT/etc/group, never through NSS), a directory on the path they cannot search, a
//    missing final file, not a regular file, more than one link, owned by neither root nor
//    the unit's user, or not readable (kRead) / writable (kWrite) by the unit's uid and
//    groups per mode bits and POSIX ACL (an ACL it cannot read or parse refuses).
// Needs only openat (O_PATH and O_RDONLY), fstat, read and fgetxattr.
PathChainCheck RootOnlyPathCheck(std::string root);

// Checks a unit file's content as systemd would read it. Returns every refusal (empty when
// the unit is accepted). Refuses content over proto::kMaxUnitContent ("unit-size-cap").
std::vector<UnitRefusal> CheckUnitContent(const Policy& policy, const UnitName& name,
                                          std::string_view content,
                                          const PathChainCheck& path_check);

// One row of the curated directive table, for `helperctl policy`.
struct DirectiveRow {
  std::string section;  // "Unit", "Service", "Install"
  std::string key;
  std::string check;  // what is checked of its value ("allowed", "user-allowlist", ...)
};
const std::vector<DirectiveRow>& DirectiveTable();

}  // namespace decnet::helper
