// The helper's policy and configuration: which units and links it may touch, what unit
// files may contain, which users things run as, and where its directories are. Loaded once
// at start-up from a root-owned JSON file; the daemon and helperctl load the same file.
#pragma once

#include <cstdint>
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
  // Directory names StateDirectory= and friends may neither equal nor begin with (systemd
  // creates and chowns them for the unit as root). The daemon's user and group, the basename
  // of state_dir and the stem of self_unit are reserved as well without being listed.
  std::set<std::string> reserved_directory_names = {"decnet-updater", "decnet-update-helper"};
  // Paths beneath which nothing systemd opens for a unit may lie: the updater's keys,
  // configuration and state (state_dir and daemon_store are protected without being listed).
  std::vector<std::string> protected_paths = {
      "/etc/decnet-updater", "/etc/decnet/updater", "/var/lib/decnet-updater",
      "/var/lib/decnet-update-helper", "/opt/decnet-updater"};
  // Directories beneath which ConditionPath*=/Assert*= paths may lie (tested as root, their
  // result shows in unit_status). Only root's own configuration by default: the release
  // tree is written by the daemon, which could plant a symlink to a root-only path there.
  std::vector<std::string> condition_dirs = {"/etc/decnet"};
  // --- unit bounds: a unit stays stoppable, rate-limited and capped. Values a unit sets
  // explicitly must lie within these; what it leaves unset keeps the manager's defaults.
  int64_t max_start_timeout_sec = 60;         // TimeoutStartSec=, TimeoutSec=
  int64_t max_stop_timeout_sec = 60;          // TimeoutStopSec=, TimeoutAbortSec=, TimeoutSec=
  int64_t min_start_limit_interval_sec = 10;  // StartLimitIntervalSec=
  int64_t max_start_limit_burst = 10;         // StartLimitBurst=
  int64_t max_limit_nofile = 524'288;         // LimitNOFILE= (hard limit)
  int64_t max_limit_nproc = 4'096;            // LimitNPROC= (hard limit)
  int64_t max_limit_core_bytes = 1LL << 30;   // LimitCORE= (hard limit)
  int64_t max_tasks = 4'096;                  // TasksMax=
  int64_t max_memory_bytes = 16LL << 30;      // MemoryMax=, MemoryHigh=
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
  // --- the helper's own resources
  // How many unit files the helper keeps written at once (its record's entries); a write of
  // a further unit is refused ("unit-count-cap"). 1..4096.
  int64_t max_units = 64;

  // The built-in DECNET defaults (decnet-agent and decnet-sniffer may hold CAP_NET_ADMIN and
  // CAP_NET_RAW; link "decnet" -> /opt/decnet/current/).
  static Policy Defaults();
};

// Parses a policy file's JSON text. Every key is optional (defaults above); unknown keys,
// wrong types and invalid values are refused with kMalformed naming the key. `//` and `/* */`
// comments are read as white space; duplicate keys and nesting deeper than four are refused.
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
