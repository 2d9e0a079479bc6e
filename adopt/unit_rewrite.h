// DECNET's unit files made into units the hardened policy accepts. Pure functions: the text in,
// the text out, with a sentence for every change, then the policy's own verdict.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"
#include "policy/unit_policy.h"
#include "proto/result.h"

namespace decnet::adopt {

struct RewriteOptions {
  std::string install_dir = "/opt/decnet";  // as the units see it
  std::string units_user = "decnet";
  std::string units_group = "decnet";
};

struct RewrittenUnit {
  std::string content;
  std::vector<std::string> changes;  // one sentence per change, for the plan
};

// Rebuilds the unit from the assignments systemd would apply (policy/unit_file.h), in their
// sections and order, with: User=/Group= set to the units' user and group; NoNewPrivileges=yes;
// every Exec*= command's INSTALL_DIR/venv/bin/ replaced by INSTALL_DIR/current/.venv/bin/ (the
// active release's own environment); an EnvironmentFile= beneath INSTALL_DIR dropped (the
// daemon writes that tree: systemd would read it as root on the unit's behalf); StandardOutput=
// and StandardError= to a file dropped (the journal instead). Comments are not kept.
// Refuses (kDenied "adopt-unit-syntax") a file whose structure systemd itself would not load.
[[nodiscard]] Result<RewrittenUnit> RewriteDecnetUnit(std::string_view name,
                                                      std::string_view content,
                                                      const RewriteOptions& options);

// The policy's verdict on a rewritten unit: empty when accepted; else one line per refusal,
// "LINE: RULE: MESSAGE".
std::vector<std::string> PolicyRefusals(const helper::Policy& policy, std::string_view name,
                                        std::string_view content,
                                        const helper::PathChainCheck& path_check);

// True when the unit file is DECNET's own updater (its ExecStart runs `decnet updater`).
bool IsDecnetUpdaterUnit(std::string_view content);

}  // namespace decnet::adopt
