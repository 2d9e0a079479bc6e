// The helper's policy and configuration: which units and links it may touch, what unit
// files may contain, which users things run as, and where its directories are. Loaded once
// at start-up from a root-owned JSON file; the daemon and helperctl load the same file.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "proto/result.h"
#include "proto/values.h"

namespace decnet::helper {

// Extra rights one unit may hold beyond the default (none).
struct UnitAllowance {
  std::set<std::string> capabilities;          // e.g. "CAP_NET_ADMIN"
  std::set<std::string> supplementary_groups;  // e.g. "docker" (root-equivalent!)
  bool may_drop_no_new_privileges = false;     // NoNewPrivileges= need not be yes
};

// A link the helper may repoint: LINK_DIR/name -> a path beneath target_prefix.
struct LinkRule {
  std::string name;
  std::string target_prefix;
};

struct Policy {
  // --- unit names
  std::string unit_prefix = "decnet-";                    // NAME must be PREFIX[a-z0-9][a-z0-9-]*
  std::set<std::string> extra_units = {"decnet.target"};  // allowed besides the pattern
  std::string self_unit = "decnet-updater.service";       // never written or removed
  std::set<std::string> adoptable_units;  // may overwrite/remove files the helper did not write
  // --- unit content
  std::set<std::string> unit_users = {"decnet"};   // allowed User=
  std::set<std::string> unit_groups = {"decnet"};  // allowed Group=
  std::set<std::string> system_units = {"network.target", "network-online.target",
                                        "multi-user.target", "docker.service"};
  std::map<std::string, UnitAllowance> allowances;  // by unit name
  // Directories beneath which StandardOutput=/StandardError= file:, append: and truncate:
  // paths may lie (systemd opens them as root). Empty by default: units log to the journal.
  std::vector<std::string> output_dirs;
  // Directories beneath which EnvironmentFile= and StandardInput=file: paths may lie
  // (systemd reads them as root and hands their content to the unit).
  std::vector<std::string> environment_dirs = {"/etc/decnet"};
  // --- links
  std::vector<LinkRule> links;
  // --- processes
  std::string daemon_user = "decnet-updater";
  std::string daemon_group = "decnet-updater";
  std::string daemon_binary = "/opt/decnet-updater/updater/current/bin/decnet-updaterd";
  // The daemon's own release store (update-self, helper/self_update.h). The start-up revert
  // applies when daemon_binary lies beneath DAEMON_STORE/current/; "" turns it off.
  std::string daemon_store = "/opt/decnet-updater/updater";
  std::vector<std::string> daemon_args;  // argv[1..] for the daemon
  // --- directories
  std::string unit_dir = "/etc/systemd/system";
  std::string link_dir = "/usr/local/bin";
  std::string state_dir = "/var/lib/decnet-update-helper";
  // Root of the filesystem the units run in; paths inside unit files are checked relative to
  // it. "/" on a host; a container's root filesystem in tests.
  std::string unit_root = "/";
  // --- timing
  int restart_timeout_ms = 90'000;  // wait for a restart/stop job
  int hello_timeout_ms = 30'000;    // the daemon must say hello within this
  // A freshly self-updated daemon that fails within this long after its hello is reverted.
  int self_update_probation_ms = 60'000;

  // The built-in DECNET defaults (decnet-agent and decnet-sniffer may hold CAP_NET_ADMIN and
  // CAP_NET_RAW; link "decnet" -> /opt/decnet/current/).
  static Policy Defaults();
};

// Parses a policy file's JSON text. Every key is optional (defaults above); unknown keys,
// wrong types and invalid values are refused with kMalformed naming the key.
[[nodiscard]] Result<Policy> ParsePolicy(std::string_view json_text);

// Loads the policy file at `path`. A missing file gives Policy::Defaults(). Refuses
// (kDenied, rule "policy-file-owner") a file not owned by root or writable by group or
// others, or not a regular file.
[[nodiscard]] Result<Policy> LoadPolicyFile(const std::string& path);

// Canonical JSON of the effective policy (sorted keys, every field present).
std::string PolicyToJson(const Policy& policy);

// Hex SHA-256 of PolicyToJson(policy): what `hello` reports.
std::string PolicyDigest(const Policy& policy);

}  // namespace decnet::helper
