// The loaded-view check: what systemd actually loaded for a unit (its fragment, drop-ins,
// source, and the resolved settings it will apply as root before each Exec*=), judged
// against the policy. The helper's own parse of the file it wrote is not enough: systemd also
// reads drop-ins (NAME.d/, prefix drop-ins such as decnet-.service.d/, the type-level
// service.d/) and other search paths (/run/systemd/system, *.control, /usr/lib/systemd/system,
// transient units). The helper reads the view over D-Bus before every restart_unit and after
// every daemon_reload and refuses a unit whose view this file refuses.
//
// JudgeLoadedView is pure: the view, the facts about the helper's file and a file check are
// its inputs. RootOwnedFileCheck is the one part that reads the filesystem.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/policy.h"
#include "proto/values.h"

namespace decnet::helper {

// One Exec*= command as systemd loaded it (the Exec*Ex properties).
struct LoadedExec {
  std::string directive;           // "ExecStartPre", "ExecStart", ...
  std::string path;                // the binary
  std::vector<std::string> flags;  // "ignore-failure", "privileged", "no-setuid", "ambient", ...
};

// What systemd loaded for one unit (org.freedesktop.systemd1.Unit and .Service properties).
// Settings of the Service interface are meaningful only when is_service.
struct LoadedView {
  std::string load_state;  // "loaded", "not-found", "bad-setting", "error", "masked"
  std::string fragment_path;
  std::string source_path;  // set for generated units
  std::vector<std::string> drop_in_paths;
  bool transient = false;
  uint64_t start_limit_interval_usec = 0;  // Unit.StartLimitIntervalUSec

  bool is_service = false;
  std::string user;
  std::string group;
  bool dynamic_user = false;
  std::vector<std::string> supplementary_groups;
  std::vector<LoadedExec> exec;
  // "StateDirectory", "CacheDirectory", "LogsDirectory", "RuntimeDirectory",
  // "ConfigurationDirectory" with the names systemd creates for each.
  std::vector<std::pair<std::string, std::vector<std::string>>> directories;
  std::string kill_mode;
  bool send_sigkill = true;
  uint64_t timeout_stop_usec = 0;
  uint64_t limit_nproc = 0;
  uint64_t limit_nofile = 0;
  uint64_t tasks_max = 0;
  uint64_t ambient_capabilities = 0;     // bit n: capability n
  uint64_t capability_bounding_set = 0;  // bit n: capability n
  bool no_new_privileges = false;
  std::string root_directory;
  std::string root_image;
  std::string pam_name;
  // "null", "journal", "file", "append", "truncate", "socket", "fd", ... per stream.
  std::string standard_input;
  std::string standard_output;
  std::string standard_error;
  std::vector<std::string> environment_files;  // paths (a leading "-" is not part of them)
  std::vector<std::string> credentials;        // ids of LoadCredential*= and SetCredential*=
};

// systemd's "infinity" for limits and timeouts.
inline constexpr uint64_t kLoadedInfinity = UINT64_MAX;

// What the helper itself knows of UNIT_DIR/NAME, read through its unit directory's
// descriptor (never by path).
struct FragmentFacts {
  bool exists = false;
  bool regular = false;
  uint32_t uid = 0;
  uint32_t mode = 0;
  uint64_t nlink = 0;
  bool recorded = false;        // the helper's record names this unit (it wrote it)
  bool matches_record = false;  // the file's digest is the recorded (or pending) content
};

// One reason a loaded view is refused. `rule` is a stable id (unit-loaded-*).
struct LoadedViewRefusal {
  std::string rule;
  std::string message;  // names what systemd loaded
};

// What a file check found for a path systemd named.
struct OperatorFile {
  std::string resolved;  // the path with its root-made directory symlinks resolved
  std::string why;       // why it is not an operator's own; "" when it is
};

// Judges the file systemd names by `abs_path`: `why` says why it is not an operator's own
// (missing, not a regular file, not root's, more than one link, on a path someone other than
// root could change), "" when it is root's alone. The caller judges where `resolved` lies.
using OperatorFileCheck = std::function<OperatorFile(std::string_view abs_path)>;

// The real OperatorFileCheck: the directory symlinks of the path are resolved by
// ResolveTrustedSymlinks(unit_root) (only root's links, in directories root's alone; the
// file itself is never followed), then the resolved path must pass RootOnlyPathCheck(unit_root)
// (every directory root's alone, no symlink, a root-owned regular file with one link that
// only root can write) and the file must exist.
OperatorFileCheck RootOwnedFileCheck(std::string unit_root);

// The helper's unit directory as systemd names it: policy.unit_dir with policy.unit_root
// removed (unit_root "/" on a host leaves it unchanged). A unit directory outside the unit
// root (a container whose /etc/systemd/system is bound from elsewhere) is taken to be the
// directory systemd's search path has first, /etc/systemd/system.
std::string SystemdUnitDir(const Policy& policy);

// The directories in which a drop-in may be an operator's own: systemd's system search path
// without the generator, transient and credential directories.
const std::vector<std::string>& OperatorDropInDirs();

// For each drop-in systemd loaded, in order: its path and why it is foreign ("" when it is
// an operator's own: DIR/UNIT.d/FILE with DIR in OperatorDropInDirs(), both as systemd named
// it and as resolved by `file_check`, and passing `file_check`).
std::vector<std::pair<std::string, std::string>> JudgeDropIns(const LoadedView& view,
                                                              const OperatorFileCheck& file_check);

// Judges `view`, what systemd loaded for `name`, against the policy. Empty when the view is
// what the policy approved:
//  * loaded (unit-loaded-state), not transient (unit-loaded-transient), not generated
//    (unit-loaded-source);
//  * its fragment is the helper's file SystemdUnitDir/NAME (unit-loaded-fragment), with the
//    content the helper recorded (unit-loaded-fragment-changed), or, for a file the helper
//    did not write, root's alone (unit-loaded-fragment-owner); for the updater's own unit, a
//    file in the helper's unit directory or another system unit directory, root's alone,
//    whose resolved path (root's directory symlinks followed: merged /usr) is also in a
//    system unit directory (unit-loaded-fragment);
//  * every drop-in is an operator's own (unit-loaded-dropin);
//  * for services other than the updater's own (which runs as root by design): the user
//    (unit-loaded-user), group (unit-loaded-group), DynamicUser= (unit-loaded-dynamic-user),
//    supplementary groups (unit-loaded-supplementary-groups), exec flags
//    (unit-loaded-exec-flags), capabilities (unit-loaded-capabilities), NoNewPrivileges=
//    (unit-loaded-no-new-privileges), directory names (unit-loaded-directory), KillMode=
//    and SendSIGKILL= (unit-loaded-kill-mode), TimeoutStopSec= (unit-loaded-stop-timeout),
//    limits (unit-loaded-limit), start rate limit (unit-loaded-start-limit), RootDirectory=,
//    RootImage=, PAMName= (unit-loaded-root-settings), credentials
//    (unit-loaded-credentials), environment files (unit-loaded-environment-file), and
//    file-backed standard streams next to drop-ins (unit-loaded-stdio-file).
// Every refusal is returned, the first being the one a reply names.
std::vector<LoadedViewRefusal> JudgeLoadedView(const Policy& policy, const UnitName& name,
                                               const LoadedView& view, const FragmentFacts& facts,
                                               const OperatorFileCheck& file_check);

// True when nothing at all is loaded for the unit: not-found with no fragment, source or
// drop-in. A reload check passes over such a unit (nothing of it can run).
bool NothingLoaded(const LoadedView& view);

// The bitmask of capability names ("CAP_NET_ADMIN"); unknown names are ignored.
uint64_t CapabilityMask(const std::set<std::string>& names);
// The names of the capabilities in `mask` (bit n without a name: "cap_n").
std::vector<std::string> CapabilityNames(uint64_t mask);

}  // namespace decnet::helper
