// The enrolment plan: everything the command will change, computed in full before the first
// change, from the options and what the host holds now. --dry-run prints it; a real run prints
// and applies it; an empty plan means the worker is already enrolled as asked.
//
// Where things go:
//   /etc/decnet-updater/helper.json, daemon.json   merged: keys the options set, the rest kept;
//                                                  both accepted by the real parsers first
//   the TLS files named by daemon.json             tls_ca/tls_cert/tls_key, probe.ca/cert/key
//   /etc/decnet-updater/ca/ca.{crt,key}            a CA made here (root only, 0700/0600)
//   /etc/systemd/system/decnet-updater.service.d/50-enrol.conf
//                                                  ReadWritePaths= for each directory outside
//                                                  the shipped unit's, IPAddressAllow= for the
//                                                  master's addresses
//   /etc/polkit-1/rules.d/50-decnet-updater.rules  the operators' rule (the package's
//                                                  conffile), rendered again in place when the
//                                                  group, the prefix or the users differ from
//                                                  the shipped ones, and the shipped rendering
//                                                  again when they return to them; never removed
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "enrol/enrol_configs.h"
#include "enrol/enrol_options.h"
#include "proto/result.h"

namespace decnet::enrol {

inline constexpr char kDropInPath[] = "/etc/systemd/system/decnet-updater.service.d/50-enrol.conf";
inline constexpr char kPolkitRulePath[] = "/etc/polkit-1/rules.d/50-decnet-updater.rules";
inline constexpr char kLocalCaDir[] = "/etc/decnet-updater/ca";

// Owners by name: accounts the plan creates have no id until it runs.
struct Owner {
  std::string user = "root";
  std::string group = "root";
};

// How a file or directory is to be protected.
enum class Protection {
  kPlain,      // the mode alone
  kDaemonKey,  // root-owned, 0600 plus read for the daemon's user by ACL (shows as 0640)
};

struct AccountStep {
  enum class Kind { kGroup, kUser } kind = Kind::kGroup;
  std::string name;
  std::string group;  // users: their primary group
  std::string home;   // users: their home (not created)
};

struct DirStep {
  enum class Kind { kCreate, kFix, kGrantSearch } kind = Kind::kCreate;
  std::string path;  // as the host sees it (no --root)
  Owner owner;
  mode_t mode = 0755;
};

struct FileStep {
  enum class Kind { kCreate, kReplace, kFix, kRemove } kind = Kind::kCreate;
  std::string path;  // as the host sees it (no --root)
  std::string content;
  std::string old_content;  // kReplace of a configuration: for the diff
  Owner owner;
  mode_t mode = 0644;
  Protection protection = Protection::kPlain;
  bool secret = false;  // key material: never printed
  std::string why;      // e.g. "--rotate"
};

// What the master needs to know, printed after the plan.
struct Facts {
  std::string updater_cert;                        // path
  std::string updater_ca;                          // path
  std::optional<std::string> updater_fingerprint;  // unknown until made
  std::optional<std::string> local_ca_key;         // path, when the CA was made here
  std::vector<std::string> master_pins;
  std::string master_cn;
};

struct Plan {
  std::vector<AccountStep> accounts;
  std::vector<DirStep> dirs;
  std::vector<FileStep> files;
  bool reload = false;      // systemctl daemon-reload after the changes
  std::string daemon_user;  // for the key ACLs
  Facts facts;
  std::vector<std::string> notes;  // printed, change nothing

  bool empty() const { return accounts.empty() && dirs.empty() && files.empty(); }
};

// Builds the plan. Reads (beneath options.root) the configuration files, the TLS files, the
// drop-in and the rule; looks users and groups up in the host's database. Refuses with the
// rule of the first check that fails: the parsers' own ("config-*", "policy-*", and
// "polkit-*" of the rule's renderer), and
//   "enrol-config-existing"   a configuration file there is not a JSON object;
//   "enrol-dir-unsafe"        a directory the daemon would own is "/", a top-level directory,
//                             or beneath /etc, /usr, /boot, /dev, /proc, /sys, /run or /tmp;
//   "enrol-dir-overlap"       two of the install, updater and state directories nest, or one
//                             of them holds the configuration, the keys or the helper's state;
//   "enrol-dir-not-directory" a path that must be a directory is something else;
//   "enrol-symlink"           a link where a file or directory is expected;
//   "enrol-tls-dir-unsafe"    a directory holding keys is not root's or is group/world-writable;
//   "enrol-user-missing"      a user or group does not exist (only refused with --root; on a
//                             host the plan creates it);
//   "enrol-user-root"         a named account has id 0;
//   "enrol-same-user"         the daemon and the units share a user or a group;
//   "enrol-units-in-daemon-group" a units' user is a member of the daemon's group;
//   "enrol-admin-group"       the operators' group is the daemon's or the units' group;
//   "enrol-tls-missing"       no material in place and neither --create nor --from supplies it;
//   "enrol-tls-partial"       some files of a bundle are there and some not (--rotate replaces);
//   "enrol-tls-exists"        --from material differs from what is in place (--rotate replaces);
//   "enrol-tls-parse", "enrol-tls-key-mismatch", "enrol-tls-chain", "enrol-tls-not-ca"
//                             material that does not check out (tls_material.h);
//   "enrol-ca-key-missing"    --rotate --create with a CA in place whose key is not here;
//   "enrol-master-identity"   no --master-pin, --master-cert or --master-cn, and none configured;
//   "enrol-master-chain"      the master's certificate does not chain to the updater's CA.
[[nodiscard]] Result<Plan> BuildPlan(const EnrolOptions& options);

// `path` beneath `root` ("/" leaves it as it is).
std::string Beneath(const std::string& root, const std::string& path);

}  // namespace decnet::enrol
