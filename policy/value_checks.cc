// Value checks of the unit policy. Decisions, for an operator who must be able to stop and
// bound every unit and keep what root evaluates from leaking:
//  * A unit that leaves a bound unset keeps the manager's default (DefaultTimeoutStopSec=,
//    DefaultStartLimitIntervalSec=, DefaultTasksMax=, ...: the host's own configuration);
//    what a unit sets explicitly must lie within the policy's caps. "infinity", 0 where
//    systemd reads it as "off", percentages and anything that does not parse are refused.
//  * Restart=always stays allowed: the start rate limit cannot be switched off
//    (StartLimitIntervalSec= is at least the policy's minimum, StartLimitBurst= is 1..cap),
//    so a crashing unit stops being restarted after BURST starts per interval.
//  * KillMode= control-group (the default) or mixed; none and process leave processes
//    running after a stop. The final SIGKILL stays (SendSIGKILL=yes, FinalKillSignal=SIGKILL).
//  * Condition/Assert paths are tested by PID 1 as root and their outcome shows in
//    unit_status: only beneath condition_dirs.
//  * SyslogIdentifier= is the unit's own stem or starts with the unit prefix;
//    SyslogFacility= is daemon, user or local0..7 (never auth/authpriv/kern/... nor a number).
#include "policy/value_checks.h"

#include <algorithm>
#include <array>

#include "policy/systemd_values.h"
#include "policy/unit_file.h"

namespace decnet::helper {
namespace {

constexpr uint64_t kUsecPerSec = 1'000'000;

ValueRefusal Refusal(std::string rule, std::string why) {
  return ValueRefusal{std::move(rule), std::move(why)};
}

// A timeout: a span in (0, cap] seconds. 0 and infinity switch the timeout off.
std::optional<ValueRefusal> Timeout(std::string_view value, int64_t cap_sec,
                                    std::string_view cap_name) {
  const auto usec = ParseTimeSpanUsec(value);
  // SECURITY: a stop that never times out leaves remove_unit waiting and the unit running.
  if (!usec) return Refusal("unit-timeout", "not a time span systemd reads the same way");
  if (*usec == 0 || *usec == kInfinity) {
    return Refusal("unit-timeout", "0 and infinity never time out");
  }
  if (*usec > static_cast<uint64_t>(cap_sec) * kUsecPerSec) {
    return Refusal("unit-timeout", "over the policy's " + std::string(cap_name) + " of " +
                                       std::to_string(cap_sec) + "s");
  }
  return std::nullopt;
}

// A number within 0..cap (1..cap unless zero_ok); "infinity" never.
std::optional<ValueRefusal> Capped(std::optional<uint64_t> n, int64_t cap,
                                   std::string_view cap_name, bool zero_ok = true) {
  // SECURITY: infinity or an unbounded resource lets one unit exhaust the host.
  if (!n) return Refusal("unit-resource-limit", "not a plain number or size (no percentages)");
  if (*n == kInfinity) return Refusal("unit-resource-limit", "infinity is refused");
  if (*n == 0 && !zero_ok) return Refusal("unit-resource-limit", "0 is refused");
  if (*n > static_cast<uint64_t>(cap)) {
    return Refusal("unit-resource-limit",
                   "over the policy's " + std::string(cap_name) + " of " + std::to_string(cap));
  }
  return std::nullopt;
}

std::optional<uint64_t> CountOrInfinity(std::string_view v) { return ParseCount(v, true); }

std::optional<ValueRefusal> DirectoryMode(std::string_view value) {
  const bool octal = (value.size() == 3 || value.size() == 4) &&
                     value.find_first_not_of("01234567") == std::string_view::npos;
  if (!octal) return Refusal("unit-directory-mode", "not 3 or 4 octal digits");
  unsigned mode = 0;
  for (char c : value) mode = mode * 8 + static_cast<unsigned>(c - '0');
  // SECURITY: root chmods the directory: no set-id or sticky bits, and no one else may write
  // into a tree systemd later chowns recursively as root.
  if (mode > 0777) return Refusal("unit-directory-mode", "set-id and sticky bits are refused");
  if ((mode & 0002) != 0) return Refusal("unit-directory-mode", "writable by others");
  return std::nullopt;
}

std::optional<ValueRefusal> ConditionPath(const Policy& policy, std::string_view value) {
  std::string_view v = value;
  auto skip = [&v](char mark) {
    if (!v.starts_with(mark)) return;
    v.remove_prefix(1);
    v.remove_prefix(std::min(v.size(), v.find_first_not_of(" \t")));
  };
  skip('|');
  skip('!');
  auto path = AbsPath::Parse(v);
  if (!path) return Refusal("unit-condition-path", "not an absolute, normalised path");
  const bool beneath = std::any_of(policy.condition_dirs.begin(), policy.condition_dirs.end(),
                                   [&path](const std::string& d) {
                                     auto dir = AbsPath::Parse(d);
                                     return dir && path->IsBeneath(*dir);
                                   });
  // SECURITY: PID 1 tests the path as root; unit_status would tell a root-only file exists.
  if (!beneath) return Refusal("unit-condition-path", "not beneath the policy's condition_dirs");
  return std::nullopt;
}

std::optional<ValueRefusal> SyslogIdentifier(const Policy& policy, const UnitName& unit,
                                             std::string_view value) {
  constexpr std::string_view kChars =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
  const bool charset =
      value.size() <= 64 && value.find_first_not_of(kChars) == std::string_view::npos;
  // SECURITY: a unit logging as sshd or as the updater forges other programs' records.
  if (!charset || (value != unit.stem() && !value.starts_with(policy.unit_prefix))) {
    return Refusal("unit-syslog-identifier",
                   "must be " + std::string(unit.stem()) + " or begin with " + policy.unit_prefix);
  }
  for (const std::string& r : ReservedNames(policy)) {
    if (value.starts_with(r)) {
      return Refusal("unit-syslog-identifier", "begins with the updater's own name '" + r + "'");
    }
  }
  return std::nullopt;
}

std::optional<ValueRefusal> SyslogFacility(std::string_view value) {
  static constexpr std::array<std::string_view, 10> kAllowed = {
      "daemon", "user",   "local0", "local1", "local2",
      "local3", "local4", "local5", "local6", "local7"};
  // SECURITY: auth, authpriv, kern and the rest feed security logs and their alerting.
  if (std::find(kAllowed.begin(), kAllowed.end(), value) == kAllowed.end()) {
    return Refusal("unit-syslog-facility", "only daemon, user and local0..local7");
  }
  return std::nullopt;
}

std::optional<ValueRefusal> StartLimitInterval(const Policy& p, std::string_view value) {
  const auto usec = ParseTimeSpanUsec(value);
  // SECURITY: 0 or infinity switches the start rate limit off; a tiny interval makes it
  // meaningless (BURST restarts per millisecond).
  if (!usec || *usec == kInfinity ||
      *usec < static_cast<uint64_t>(p.min_start_limit_interval_sec) * kUsecPerSec) {
    return Refusal("unit-start-limit", "must be a span of at least " +
                                           std::to_string(p.min_start_limit_interval_sec) +
                                           "s (0 and infinity switch the rate limit off)");
  }
  return std::nullopt;
}

std::optional<ValueRefusal> StartLimitBurst(const Policy& p, std::string_view value) {
  const auto n = ParseCount(value, false);
  // SECURITY: a burst of 0 switches the rate limit off; a huge one is no limit.
  if (!n || *n == 0 || *n > static_cast<uint64_t>(p.max_start_limit_burst)) {
    return Refusal("unit-start-limit", "must be 1.." + std::to_string(p.max_start_limit_burst));
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> ReservedNames(const Policy& policy) {
  std::vector<std::string> out(policy.reserved_directory_names.begin(),
                               policy.reserved_directory_names.end());
  out.push_back(policy.daemon_user);
  out.push_back(policy.daemon_group);
  out.push_back(policy.state_dir.substr(policy.state_dir.rfind('/') + 1));
  if (auto self = UnitName::Parse(policy.self_unit)) out.emplace_back(self->stem());
  out.erase(std::remove(out.begin(), out.end(), std::string()), out.end());
  return out;
}

std::optional<ValueRefusal> CheckValue(const Policy& p, const UnitName& unit, Check check,
                                       std::string_view value) {
  switch (check) {
    case Check::kDirectoryMode:
      return DirectoryMode(value);
    case Check::kKillMode:
      // SECURITY: none and process leave the unit's other processes running after a stop.
      if (value == "control-group" || value == "mixed") return std::nullopt;
      return Refusal("unit-kill-mode", "only control-group or mixed");
    case Check::kKillSignal: {
      // SendSIGKILL= (a boolean) and FinalKillSignal= (a signal) share the row.
      if (value == "SIGKILL" || value == "KILL" || value == "9") return std::nullopt;
      if (const auto b = ParseSystemdBool(value); b && *b) return std::nullopt;
      // SECURITY: without the final SIGKILL a process that ignores SIGTERM outlives the stop.
      return Refusal("unit-kill-signal", "the final SIGKILL must stay");
    }
    case Check::kManualStop:
      // SECURITY: a unit the helper cannot stop outlives remove_unit.
      if (const auto b = ParseSystemdBool(value); b && !*b) return std::nullopt;
      return Refusal("unit-manual-stop", "the helper must be able to stop every unit");
    case Check::kStartTimeout:
      return Timeout(value, p.max_start_timeout_sec, "max_start_timeout_sec");
    case Check::kStopTimeout:
      return Timeout(value, p.max_stop_timeout_sec, "max_stop_timeout_sec");
    case Check::kBothTimeouts:
      return Timeout(value, std::min(p.max_start_timeout_sec, p.max_stop_timeout_sec),
                     "start and stop timeout caps");
    case Check::kStartLimitInterval:
      return StartLimitInterval(p, value);
    case Check::kStartLimitBurst:
      return StartLimitBurst(p, value);
    case Check::kLimitNofile:
      return Capped(ParseRlimitHard(value, CountOrInfinity), p.max_limit_nofile,
                    "max_limit_nofile");
    case Check::kLimitNproc:
      return Capped(ParseRlimitHard(value, CountOrInfinity), p.max_limit_nproc, "max_limit_nproc");
    case Check::kLimitSize:
      return Capped(ParseRlimitHard(value, ParseSizeBytes), p.max_limit_core_bytes,
                    "max_limit_core_bytes");
    case Check::kTasksMax:
      return Capped(ParseCount(value, true), p.max_tasks, "max_tasks", false);
    case Check::kMemory:
      return Capped(ParseSizeBytes(value), p.max_memory_bytes, "max_memory_bytes", false);
    case Check::kConditionPath:
      return ConditionPath(p, value);
    case Check::kSyslogIdentifier:
      return SyslogIdentifier(p, unit, value);
    case Check::kSyslogFacility:
      return SyslogFacility(value);
    default:
      // SECURITY: a row whose check this function does not know refuses rather than passes.
      return Refusal("unit-directive-refused", "no value check for this directive");
  }
}

}  // namespace decnet::helper
