// The text of the files enrolment writes besides the TLS material, as pure functions of the
// options and of what the files hold now: the helper's policy and the daemon's configuration
// (merged, then accepted by the real parsers), the unit drop-in and the polkit rule.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "enrol/enrol_options.h"
#include "policy/policy.h"
#include "proto/result.h"

namespace decnet::enrol {

inline constexpr char kConfigDir[] = "/etc/decnet-updater";

// The two configuration files after the merge, as text and as the parsers read them.
struct Configs {
  std::string helper_json;
  std::string daemon_json;
  helper::Policy policy;
  daemon::DaemonConfig daemon;
};

// Merges the options into the files' current text ("" for a file that is not there). A key
// an option sets is written when it differs from the default or is already in the file;
// every other key is kept as it is. `master_pins` (from --master-pin and --master-cert)
// replaces the daemon's list when not empty. Refuses "enrol-config-existing" when a current
// text is not a JSON object, and any rule of helper::ParsePolicy or daemon::ParseDaemonConfig
// on the result (nothing is written that the helper or the daemon would refuse).
[[nodiscard]] Result<Configs> MergeConfigs(const EnrolOptions& options,
                                           const std::string& helper_text,
                                           const std::string& daemon_text,
                                           const std::vector<std::string>& master_pins);

// True when two configuration texts hold the same JSON value (formatting aside); false when
// either does not parse.
bool SameJson(const std::string& a, const std::string& b);

// The directories the shipped unit already lets the helper and the daemon write.
const std::vector<std::string>& ShippedWritablePaths();

// The directories the configuration puts outside ShippedWritablePaths(), each once: the
// daemon's install_dir, updater_dir (its parent when that is the updater's own top
// directory) and state_dir, the helper's unit_dir, link_dir and state_dir.
std::vector<std::string> ExtraWritablePaths(const Configs& configs);

// The addresses on the IPAddressAllow= lines of a drop-in this tool wrote.
std::vector<std::string> DropInAddresses(const std::string& drop_in_text);

// The drop-in for `writable` and `addresses`; "" when both are empty (no drop-in needed).
std::string RenderDropIn(const std::vector<std::string>& writable,
                         const std::vector<std::string>& addresses);

// The polkit rule for this layout, or nullopt when the shipped rule already fits (operators'
// group decnet-admin, prefix decnet-, self unit, the daemon's user decnet-updater and the
// units' user decnet). `rule_now` is the rule file as it is (see AdminGroup). Refuses the
// renderer's "polkit-*" rules.
[[nodiscard]] Result<std::optional<std::string>> RenderRule(const EnrolOptions& options,
                                                            const Configs& configs,
                                                            const std::string& rule_now = "");

// The operators' group the rule is rendered for: --admin-group; without it the group of the
// rule in place (RuleAdminGroup of `rule_now`), so that a run keeps what it is not told;
// else the shipped rule's decnet-admin.
std::string AdminGroup(const EnrolOptions& options, const std::string& rule_now = "");

// The operators' group a rendered rule names (its `var admin_group = "NAME";` line); nullopt
// when `rule_text` has no such line or the value is not an account name (not a rendering).
std::optional<std::string> RuleAdminGroup(const std::string& rule_text);

}  // namespace decnet::enrol
