// helperctl policy and helperctl check-unit: printed from the same tables the helper uses.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ctl/ctl.h"
#include "helper/confine.h"
#include "helper/dispatch.h"
#include "policy/rules.h"
#include "policy/unit_policy.h"
#include "proto/helper_protocol.h"

namespace decnet::helper::ctl {
namespace {

using nlohmann::json;

json RequestsJson() {
  json out = json::array();
  for (const auto& row : DispatchTable()) {
    out.push_back({{"type", proto::RequestTypeName(row.type)},
                   {"phase", PhaseName(row.phase)},
                   {"once", row.once},
                   {"checks", row.checks}});
  }
  return out;
}

void PrintRules(const std::vector<PolicyRule>& rules) {
  for (const auto& r : rules) {
    std::printf("    %-32.*s %-14.*s %.*s\n", static_cast<int>(r.id.size()), r.id.data(),
                static_cast<int>(r.defends.size()), r.defends.data(),
                static_cast<int>(r.summary.size()), r.summary.data());
  }
}

json UnitsJson(const Policy& p) {
  json policy = json::parse(PolicyToJson(p));
  json directives = json::array();
  for (const auto& d : DirectiveTable()) {
    directives.push_back({{"section", d.section}, {"key", d.key}, {"check", d.check}});
  }
  json rules = json::array();
  for (const auto& r : UnitPolicyRules()) {
    rules.push_back({{"id", r.id}, {"defends", r.defends}, {"summary", r.summary}});
  }
  json loaded_rules = json::array();
  for (const auto& r : LoadedViewRules()) {
    loaded_rules.push_back({{"id", r.id}, {"defends", r.defends}, {"summary", r.summary}});
  }
  json bounds = json::object();
  for (const char* key :
       {"max_start_timeout_sec", "max_stop_timeout_sec", "min_start_limit_interval_sec",
        "max_start_limit_burst", "max_limit_nofile", "max_limit_nproc", "max_limit_core_bytes",
        "max_tasks", "max_memory_bytes"}) {
    bounds[key] = policy[key];
  }
  return {{"name_pattern", p.unit_prefix + "[a-z0-9][a-z0-9-]*.service"},
          {"reserved_directory_names", p.reserved_directory_names},
          {"protected_paths", p.protected_paths},
          {"condition_dirs", p.condition_dirs},
          {"bounds", bounds},
          {"rules", rules},
          {"loaded_view_rules", loaded_rules},
          {"extra_units", p.extra_units},
          {"self_unit", p.self_unit},
          {"adoptable_units", p.adoptable_units},
          {"unit_users", p.unit_users},
          {"unit_groups", p.unit_groups},
          {"system_units", p.system_units},
          {"allowances", policy["allowances"]},
          {"directives", directives}};
}

json PolicyJson(const Policy& p) {
  json links = json::array();
  for (const auto& l : p.links)
    links.push_back({{"name", l.name}, {"target_prefix", l.target_prefix}});
  return {{"protocol_version", proto::kProtocolVersion},
          {"policy_digest", PolicyDigest(p)},
          {"requests", RequestsJson()},
          {"units", UnitsJson(p)},
          {"links", links},
          {"seccomp", SeccompAllowList()}};
}

void PrintText(const Policy& p) {
  std::printf("protocol version %d, policy digest %s\n\n", proto::kProtocolVersion,
              PolicyDigest(p).c_str());
  std::printf("REQUESTS (one at a time; anything else ends the session)\n");
  for (const auto& row : DispatchTable()) {
    std::printf("  %-14s %-12s %-5s %.*s\n", std::string(proto::RequestTypeName(row.type)).c_str(),
                std::string(PhaseName(row.phase)).c_str(), row.once ? "once" : "",
                static_cast<int>(row.checks.size()), row.checks.data());
  }
  std::printf("\nUNITS\n  names: %s[a-z0-9][a-z0-9-]*.service", p.unit_prefix.c_str());
  for (const auto& u : p.extra_units) std::printf(", %s", u.c_str());
  std::printf("\n  never written or removed: %s\n  users: ", p.self_unit.c_str());
  for (const auto& u : p.unit_users) std::printf("%s ", u.c_str());
  std::printf("\n  groups: ");
  for (const auto& g : p.unit_groups) std::printf("%s ", g.c_str());
  std::printf("\n  system units that may be named: ");
  for (const auto& u : p.system_units) std::printf("%s ", u.c_str());
  std::printf("\n  allowances:\n");
  for (const auto& [unit, a] : p.allowances) {
    std::printf("    %s:", unit.c_str());
    for (const auto& c : a.capabilities) std::printf(" %s", c.c_str());
    for (const auto& g : a.supplementary_groups) std::printf(" group:%s", g.c_str());
    if (a.may_drop_no_new_privileges) std::printf(" no-new-privileges-optional");
    std::printf("\n");
  }
  std::printf("  directives (anything else refuses the unit):\n");
  for (const auto& d : DirectiveTable()) {
    std::printf("    [%s] %-32s %s\n", d.section.c_str(), d.key.c_str(), d.check.c_str());
  }
  std::printf("  directory names never equal to or beginning with:");
  for (const auto& n : p.reserved_directory_names) std::printf(" %s", n.c_str());
  std::printf(" (and the daemon's user and group, the helper's state directory)\n");
  std::printf("  files systemd opens for a unit never beneath:");
  for (const auto& d : p.protected_paths) std::printf(" %s", d.c_str());
  std::printf(" (and state_dir, daemon_store)\n  conditions only beneath:");
  for (const auto& d : p.condition_dirs) std::printf(" %s", d.c_str());
  std::printf(
      "\n  bounds: start timeout <= %llds, stop timeout <= %llds, start limit interval >= "
      "%llds, burst <= %lld, LimitNOFILE <= %lld, LimitNPROC <= %lld, LimitCORE <= %lld, "
      "TasksMax <= %lld, MemoryMax/High <= %lld\n",
      static_cast<long long>(p.max_start_timeout_sec),
      static_cast<long long>(p.max_stop_timeout_sec),
      static_cast<long long>(p.min_start_limit_interval_sec),
      static_cast<long long>(p.max_start_limit_burst), static_cast<long long>(p.max_limit_nofile),
      static_cast<long long>(p.max_limit_nproc), static_cast<long long>(p.max_limit_core_bytes),
      static_cast<long long>(p.max_tasks), static_cast<long long>(p.max_memory_bytes));
  std::printf("  refusal rules (each refusal names one):\n");
  PrintRules(UnitPolicyRules());
  std::printf(
      "  loaded-view rules (what systemd loaded, checked before each restart and after each "
      "reload):\n");
  PrintRules(LoadedViewRules());
  std::printf("\nLINKS (in %s)\n", p.link_dir.c_str());
  for (const auto& l : p.links)
    std::printf("  %s -> beneath %s\n", l.name.c_str(), l.target_prefix.c_str());
  std::printf("\nSECCOMP (default: kill the process)\n ");
  size_t col = 1;
  for (const auto& s : SeccompAllowList()) {
    if (col + s.size() > 90) {
      std::printf("\n ");
      col = 1;
    }
    std::printf(" %s", s.c_str());
    col += s.size() + 1;
  }
  std::printf("\n");
}

// Reads a regular file whole; false for a directory, a device, or any read error.
bool ReadRegularFile(const std::string& path, std::ostringstream& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out << in.rdbuf();
  return !in.bad();
}

}  // namespace

int RunPolicy(const Policy& policy, bool as_json) {
  if (as_json) {
    std::printf("%s\n", PolicyJson(policy).dump(2).c_str());
  } else {
    PrintText(policy);
  }
  return 0;
}

int RunCheckUnit(const Policy& policy, const std::vector<std::string>& files) {
  int status = 0;
  auto path_check = RootOnlyPathCheck(policy.unit_root);
  for (const auto& file : files) {
    std::ostringstream content;
    if (!ReadRegularFile(file, content)) {
      std::fprintf(stderr, "%s: cannot read (not a readable regular file)\n", file.c_str());
      return 2;
    }
    std::string base = file.substr(file.rfind('/') + 1);
    auto name = UnitName::Parse(base);
    if (!name) {
      std::printf("%s:0: %s: %s\n", file.c_str(), name.error().rule.c_str(),
                  name.error().message.c_str());
      status = 1;
      continue;
    }
    if (auto ok = CheckUnitName(policy, *name, UnitUse::kWrite); !ok) {
      std::printf("%s:0: %s: %s\n", file.c_str(), ok.error().rule.c_str(),
                  ok.error().message.c_str());
      status = 1;
    }
    for (const auto& r : CheckUnitContent(policy, *name, content.str(), path_check)) {
      std::printf("%s:%d: %s: %s\n", file.c_str(), r.line, r.rule.c_str(), r.message.c_str());
      status = 1;
    }
  }
  return status;
}

}  // namespace decnet::helper::ctl
