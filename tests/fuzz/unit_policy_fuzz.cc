// Fuzz target: the unit policy over arbitrary unit text, with a path check that never
// touches the disk. Beyond "no crash, no sanitizer report, no hang", every unit the policy
// accepts must keep the policy's invariants, re-derived here from what systemd applies (the
// reader of policy/unit_file.h) rather than from the checks themselves; a breach aborts:
//  * a service runs as an allowed, non-root user and group, never the daemon's, never
//    DynamicUser=;
//  * no Exec line holds a privileged prefix ('+', '!', '!!');
//  * every *Directory= name is one [a-z0-9._-] component under the prefix, not reserved;
//  * directives that act on other units name only allow-listed units; OnFailure=/OnSuccess=
//    only allow-listed services;
//  * the unit stays stoppable: no KillMode=none/process, SendSIGKILL=no, RefuseManualStop=yes,
//    and no infinite stop timeout.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "policy/unit_file.h"
#include "policy/unit_policy.h"

namespace {

using namespace decnet::helper;

// Aborts naming the invariant and the unit it broke, so a crash report says what failed.
#define Require(ok) RequireAt((ok), #ok, __LINE__)
std::string_view g_unit_name;
void RequireAt(bool ok, const char* what, int line) {
  if (ok) return;
  std::fprintf(stderr, "unit_policy_fuzz: %s accepted, but invariant at line %d broken: %s\n",
               std::string(g_unit_name).c_str(), line, what);
  std::abort();
}

bool IsAllowListed(const Policy& p, std::string_view word, bool service_only) {
  auto name = decnet::UnitName::Parse(word);
  if (!name || !CheckUnitName(p, *name, UnitUse::kWrite)) return false;
  return !service_only || name->is_service();
}

void CheckInvariants(const Policy& p, std::string_view unit_name, std::string_view text) {
  g_unit_name = unit_name;
  const ParsedUnitFile unit = ReadUnitFile(text, SystemdSectionsFor(unit_name));
  if (unit_name.ends_with(".service")) {
    const auto user = EffectiveValue(unit, "Service", "User");
    const auto group = EffectiveValue(unit, "Service", "Group");
    Require(user && p.unit_users.count(*user) == 1 && *user != "root" && *user != p.daemon_user);
    Require(group && p.unit_groups.count(*group) == 1 && *group != "root" &&
            *group != p.daemon_group);
    const auto dynamic = EffectiveValue(unit, "Service", "DynamicUser");
    Require(!dynamic || !ParseSystemdBool(*dynamic).value_or(true));
  }
  for (const UnitAssignment& a : unit.assignments) {
    const std::string& k = a.key;
    if (k.starts_with("Exec")) {
      const size_t end = a.value.find_first_not_of("@-:+!| \t");
      const std::string prefix = a.value.substr(0, end);
      Require(prefix.find_first_of("+!") == std::string::npos);
    }
    // The per-unit directories systemd creates and chowns as root; not WorkingDirectory=,
    // RootDirectory= or ConditionPathIsDirectory=, which only name a path.
    static const std::set<std::string, std::less<>> kCreated = {
        "StateDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory",
        "RuntimeDirectory"};
    if (kCreated.count(k) == 1) {
      for (const std::string& w : SplitWords(a.value)) {
        Require(w.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") ==
                std::string::npos);
        Require(w == "decnet" || w.starts_with(p.unit_prefix));
        for (const char* reserved : {"decnet-updater", "decnet-update-helper"}) {
          Require(!w.starts_with(reserved));
        }
      }
    }
    const bool acts_on_other = k == "Before" || k == "Conflicts" || k == "Upholds" ||
                               k == "PropagatesReloadTo" || k == "JoinsNamespaceOf" ||
                               k == "RequiredBy" || k == "Also";
    const bool trigger = k == "OnFailure" || k == "OnSuccess";
    if (acts_on_other || trigger) {
      for (const std::string& w : SplitWords(a.value)) Require(IsAllowListed(p, w, trigger));
    }
    if (k == "KillMode") Require(a.value != "none" && a.value != "process");
    if (k == "SendSIGKILL") Require(ParseSystemdBool(a.value).value_or(true));
    // An empty assignment resets to the default (no), which is stoppable.
    if (k == "RefuseManualStop" && !a.value.empty()) {
      Require(!ParseSystemdBool(a.value).value_or(true));
    }
    if (k == "TimeoutStopSec" || k == "TimeoutSec" || k == "TimeoutAbortSec") {
      Require(a.value.find("infinity") == std::string::npos && a.value != "0");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Policy policy = Policy::Defaults();
  static const auto service = decnet::UnitName::Parse("decnet-agent.service");
  static const auto target = decnet::UnitName::Parse("decnet.target");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const PathChainCheck no_disk = [](const OpenedFile&) { return std::optional<PathRefusal>(); };
  if (CheckUnitContent(policy, *service, text, no_disk).empty()) {
    CheckInvariants(policy, service->str(), text);
  }
  if (CheckUnitContent(policy, *target, text, no_disk).empty()) {
    CheckInvariants(policy, target->str(), text);
  }
  return 0;
}
