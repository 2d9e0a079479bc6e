// The unit policy (docs/security-review.md §5). The unit text comes from the daemon, which the
// helper does not trust: assume an attacker wrote every byte of it. Everything here works on what
// systemd will apply (policy/unit_file.h), never on a looser reading of the text.
//
// Two kinds of check run over a unit:
//  * per assignment: every assignment of a checked directive is validated, even ones a later
//    assignment overrides, so "which one wins" never decides a refusal;
//  * per effective value: User=, Group=, NoNewPrivileges= must be in force at the end.
//
// Specifiers: every value this policy checks is refused if it holds '%' at all (a specifier
// such as %u or %h resolves to root's values in a system unit, and "%%" buys nothing).
#include "policy/unit_policy.h"

#include <algorithm>

#include "policy/directive_table.h"
#include "policy/unit_file.h"
#include "policy/value_checks.h"
#include "proto/helper_protocol.h"

namespace decnet::helper {
namespace {

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Everything CheckUnitContent needs while it walks the assignments.
struct Checker {
  const Policy& policy;
  const UnitName& name;
  const PathChainCheck& path_check;
  UnitAllowance allowance;
  OpenedFile identity;  // User=, Group=, SupplementaryGroups= in force (path unset)
  std::vector<UnitRefusal> refusals;

  void Refuse(int line, std::string rule, std::string message) {
    refusals.push_back({line, std::move(rule), std::move(message)});
  }
  bool RefuseSpecifier(const UnitAssignment& a);
  void Identity(const UnitAssignment& a, bool is_user);
  void Supplementary(const UnitAssignment& a);
  void Capabilities(const UnitAssignment& a);
  void Exec(const UnitAssignment& a);
  void RootOpenedPath(const UnitAssignment& a, std::string_view path,
                      const std::vector<std::string>& dirs, std::string_view dirs_name,
                      OpenFor access);
  void StdStream(const UnitAssignment& a, bool input);
  void DirectoryNames(const UnitAssignment& a);
  // The path systemd would create for `word` under `key` when it is, or holds, a directory
  // the policy trusts as root's; "" otherwise.
  std::string TrustedDirectoryHandedOver(std::string_view key, const std::string& word) const;
  void UnitNames(const UnitAssignment& a, Check check);
  void Assignment(const UnitAssignment& a);
  void Effective(const ParsedUnitFile& unit);
};

std::string Describe(const UnitAssignment& a) { return a.key + "=" + a.value; }

bool Checker::RefuseSpecifier(const UnitAssignment& a) {
  if (a.value.find('%') == std::string::npos) return false;
  // SECURITY: specifiers resolve to root's values (%u, %h, ...) in a system unit.
  Refuse(a.line, "unit-specifier", Describe(a) + ": specifiers ('%') are refused here");
  return true;
}

// User= and Group=: one name from the allowed set; never root, a number, or the daemon's.
void Checker::Identity(const UnitAssignment& a, bool is_user) {
  if (a.value.empty() || RefuseSpecifier(a)) return;
  const std::string kind = is_user ? "user" : "group";
  const std::string& daemon = is_user ? policy.daemon_user : policy.daemon_group;
  const auto& allowed = is_user ? policy.unit_users : policy.unit_groups;
  // SECURITY: a unit running as root (or as the daemon, which could then rewrite the
  // daemon's own state) is exactly what a compromised daemon would ask for.
  if (a.value == "root" || a.value == "0") {
    Refuse(a.line, "unit-" + kind + "-root", Describe(a) + ": units never run as root");
  } else if (a.value == daemon) {
    Refuse(a.line, "unit-" + kind + "-daemon",
           Describe(a) + ": units never run as the updater daemon's " + kind);
  } else if (IsAllDigits(a.value)) {
    Refuse(a.line, "unit-" + kind + "-allowlist", Describe(a) + ": numeric ids are refused");
  } else if (allowed.count(a.value) == 0) {
    Refuse(a.line, "unit-" + kind + "-allowlist",
           Describe(a) + ": " + kind + " is not in the policy's allowed set");
  }
}

void Checker::Supplementary(const UnitAssignment& a) {
  if (RefuseSpecifier(a)) return;
  for (const std::string& g : SplitWords(a.value)) {
    // SECURITY: groups such as docker are root-equivalent; only a per-unit grant allows one.
    if (allowance.supplementary_groups.count(g) == 0 || g == "root" || g == "0") {
      Refuse(a.line, "unit-supplementary-group",
             Describe(a) + ": group '" + g + "' is not granted to " + name.str());
    }
  }
}

void Checker::Capabilities(const UnitAssignment& a) {
  if (RefuseSpecifier(a)) return;
  for (const std::string& cap : SplitWords(a.value)) {
    // SECURITY: "~" inverts the list, granting every capability not named.
    if (cap.starts_with("~")) {
      Refuse(a.line, "unit-capability-inverted",
             Describe(a) + ": inverted ('~') capability lists are refused");
    } else if (allowance.capabilities.count(cap) == 0) {
      Refuse(a.line, "unit-capability",
             Describe(a) + ": " + cap + " is not in the allowance of " + name.str());
    }
  }
}

// Exec lines: one absolute command per line, prefixes limited to '@', '-', ':'.
void Checker::Exec(const UnitAssignment& a) {
  if (a.value.empty() || RefuseSpecifier(a)) return;
  // SECURITY: systemd unquotes and C-unescapes the first word before reading its prefix
  // ("\x2b" is '+'); no backslash means no escape can smuggle a prefix or a separator.
  if (a.value.find('\\') != std::string::npos) {
    Refuse(a.line, "unit-exec-escape", Describe(a) + ": backslashes are refused in commands");
    return;
  }
  const std::vector<std::string> words = SplitWords(a.value);
  if (std::find(words.begin(), words.end(), ";") != words.end()) {
    // SECURITY: " ; " starts a second command, whose prefix would go unchecked.
    Refuse(a.line, "unit-exec-separator", Describe(a) + ": one command per line");
    return;
  }
  std::string_view first = words.front();
  std::string seen;
  while (!first.empty() &&
         std::string_view("@-:+!|").find(first.front()) != std::string_view::npos) {
    seen.push_back(first.front());
    first.remove_prefix(1);
  }
  // SECURITY: '+' runs the command as root, '!'/'!!' skip the user switch.
  if (seen.find_first_of("+!") != std::string::npos) {
    Refuse(a.line, "unit-exec-privileged", Describe(a) + ": privileged prefix '" + seen + "'");
    return;
  }
  const bool repeated = std::any_of(seen.begin(), seen.end(), [&seen](char c) {
    return std::count(seen.begin(), seen.end(), c) > 1;
  });
  if (repeated || seen.find('|') != std::string::npos || !AbsPath::Parse(first)) {
    Refuse(a.line, "unit-exec-path",
           Describe(a) + ": the command must be an absolute, plain path with prefixes @ - : only");
  }
}

// The paths nothing systemd opens for a unit may lie beneath.
std::vector<std::string> ProtectedPaths(const Policy& policy) {
  std::vector<std::string> out = policy.protected_paths;
  out.push_back(policy.state_dir);
  if (!policy.daemon_store.empty()) out.push_back(policy.daemon_store);
  return out;
}

bool IsBeneathAny(const AbsPath& path, const std::vector<std::string>& dirs) {
  return std::any_of(dirs.begin(), dirs.end(), [&path](const std::string& d) {
    auto dir = AbsPath::Parse(d);
    return dir && path.IsBeneath(*dir);
  });
}

// A path systemd opens as root for the unit: beneath a configured directory, never beneath
// the updater's own files, on a directory chain nobody but root can redirect, and a file the
// unit's own user could open itself.
void Checker::RootOpenedPath(const UnitAssignment& a, std::string_view path,
                             const std::vector<std::string>& dirs, std::string_view dirs_name,
                             OpenFor access) {
  auto parsed = AbsPath::Parse(path);
  if (!parsed) {
    Refuse(a.line, "unit-root-opened-path", Describe(a) + ": " + parsed.error().message);
    return;
  }
  // SECURITY: systemd opens these as root; outside the configured directories a unit could
  // append to /etc/shadow or read a secret.
  if (!IsBeneathAny(*parsed, dirs)) {
    Refuse(a.line, "unit-root-opened-path",
           Describe(a) + ": path is not beneath the policy's " + std::string(dirs_name));
    return;
  }
  // SECURITY: the updater's keys, configuration and state are never handed to a unit, even
  // where they lie beneath a configured directory (the TLS key under /etc/decnet).
  if (IsBeneathAny(*parsed, ProtectedPaths(policy))) {
    Refuse(a.line, "unit-opened-file-protected",
           Describe(a) + ": path is beneath the updater's own files (protected_paths)");
    return;
  }
  OpenedFile file = identity;
  file.path = parsed->str();
  file.access = access;
  // SECURITY: root opens the file, the unit gets the descriptor: only what the unit's own
  // user could open, on a chain no one else can redirect.
  if (auto refused = path_check(file)) {
    Refuse(a.line, refused->rule, Describe(a) + ": " + refused->message);
  }
}

void Checker::StdStream(const UnitAssignment& a, bool input) {
  if (a.value.empty() || RefuseSpecifier(a)) return;
  static const std::vector<std::string_view> kFilePrefixes = {"file:", "append:", "truncate:"};
  for (std::string_view prefix : kFilePrefixes) {
    if (!a.value.starts_with(prefix)) continue;
    if (input && prefix != "file:") break;
    const std::string_view path = std::string_view(a.value).substr(prefix.size());
    if (input)
      RootOpenedPath(a, path, policy.environment_dirs, "environment_dirs", OpenFor::kRead);
    else
      RootOpenedPath(a, path, policy.output_dirs, "output_dirs", OpenFor::kWrite);
    return;
  }
  static const std::vector<std::string_view> kOutputs = {
      "inherit", "null", "journal", "kmsg", "journal+console", "kmsg+console"};
  const bool ok = input ? a.value == "null"
                        : std::find(kOutputs.begin(), kOutputs.end(), a.value) != kOutputs.end();
  // SECURITY: ttys, sockets and named fds connect the unit to things opened as root.
  if (!ok) {
    Refuse(a.line, "unit-standard-stream", Describe(a) + ": stream kind is not allowed");
  }
}

// StateDirectory= and friends: systemd creates, chmods, chowns (recursively) and, for
// RuntimeDirectory=, removes these as root, following symlinks in every component but the
// last. One component beneath a root-owned base leaves the unit nothing to swap.
void Checker::DirectoryNames(const UnitAssignment& a) {
  if (RefuseSpecifier(a)) return;
  std::string bare_prefix = policy.unit_prefix;
  if (!bare_prefix.empty() && bare_prefix.back() == '-') bare_prefix.pop_back();
  const std::vector<std::string> reserved = ReservedNames(policy);
  for (const std::string& word : SplitWords(a.value)) {
    // SECURITY: no '/' (a middle component the unit owns could become a symlink), no ':'
    // (systemd 250+ reads SOURCE:DEST and links DEST to SOURCE), no quotes or escapes.
    const bool one_component =
        word.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
    if (!one_component || (word != bare_prefix && !word.starts_with(policy.unit_prefix))) {
      Refuse(a.line, "unit-directory-name",
             Describe(a) + ": '" + word + "' must be one name of [a-z0-9._-] that is '" +
                 bare_prefix + "' or begins with '" + policy.unit_prefix + "'");
      continue;
    }
    const bool is_reserved = std::any_of(reserved.begin(), reserved.end(),
                                         [&](const auto& r) { return word.starts_with(r); });
    // SECURITY: the updater's own directories would be chowned to the unit's user.
    if (is_reserved) {
      Refuse(a.line, "unit-directory-reserved",
             Describe(a) + ": '" + word + "' is or begins with one of the updater's own names");
      continue;
    }
    // SECURITY: a directory the policy trusts as root-only (where systemd opens files as
    // root, evaluates conditions, or keeps the updater's own files) would be handed over.
    if (auto trusted = TrustedDirectoryHandedOver(a.key, word); !trusted.empty()) {
      Refuse(a.line, "unit-directory-handover",
             Describe(a) + ": systemd would chown " + trusted +
                 " to the unit's user, and the policy trusts it as root's");
    }
  }
}

// The base directory systemd puts each kind of per-unit directory under (system manager).
std::string_view DirectoryBase(std::string_view key) {
  if (key == "StateDirectory") return "/var/lib";
  if (key == "CacheDirectory") return "/var/cache";
  if (key == "LogsDirectory") return "/var/log";
  if (key == "RuntimeDirectory") return "/run";
  return "/etc";  // ConfigurationDirectory
}

std::string Checker::TrustedDirectoryHandedOver(std::string_view key,
                                                const std::string& word) const {
  auto created = AbsPath::Parse(std::string(DirectoryBase(key)) + "/" + word);
  if (!created) return "";
  std::vector<std::string> trusted = ProtectedPaths(policy);
  for (const auto* list : {&policy.output_dirs, &policy.environment_dirs, &policy.condition_dirs}) {
    trusted.insert(trusted.end(), list->begin(), list->end());
  }
  trusted.insert(trusted.end(), {policy.unit_dir, policy.link_dir});
  for (const std::string& t : trusted) {
    auto path = AbsPath::Parse(t);
    if (path && path->IsBeneath(*created)) return created->str();
  }
  return "";
}

void Checker::UnitNames(const UnitAssignment& a, Check check) {
  if (RefuseSpecifier(a)) return;
  std::string rule = "unit-dependency";
  if (check == Check::kAlias) rule = "unit-alias";
  if (check == Check::kActsOnOther) rule = "unit-dependency-other";
  if (check == Check::kTrigger) rule = "unit-dependency-trigger";
  for (const std::string& word : SplitWords(a.value)) {
    auto parsed = UnitName::Parse(word);
    const bool listed =
        parsed.has_value() && CheckUnitName(policy, *parsed, UnitUse::kWrite).has_value();
    bool ok = listed;
    // SECURITY: only directives that act on this unit alone may name system units; ordering
    // before, conflicting with, upholding, reloading or joining a system unit acts on it.
    if (check == Check::kDependsOn) ok = ok || policy.system_units.count(word) > 0;
    // SECURITY: a failure trigger starting a target can pull in any of its dependencies.
    if (check == Check::kTrigger) ok = ok && parsed->is_service();
    if (check == Check::kAlias && parsed) ok = ok && parsed->is_service() == name.is_service();
    if (!ok) {
      Refuse(a.line, rule, Describe(a) + ": '" + word + "' is not a unit this policy allows here");
    }
  }
}

void Checker::Assignment(const UnitAssignment& a) {
  const Directive* d = FindDirective(a.section, a.key);
  if (d == nullptr) {
    Refuse(a.line, "unit-directive-unknown",
           "[" + a.section + "] " + a.key + "= is not in the policy's directive table");
    return;
  }
  switch (d->check) {
    case Check::kAllowed:
      return;
    case Check::kUser:
      return Identity(a, true);
    case Check::kGroup:
      return Identity(a, false);
    case Check::kSupplementary:
      return Supplementary(a);
    case Check::kCapabilities:
      return Capabilities(a);
    case Check::kExec:
      return Exec(a);
    case Check::kNoNewPrivileges:
      if (!a.value.empty() && !ParseSystemdBool(a.value)) {
        Refuse(a.line, "unit-no-new-privileges", Describe(a) + ": not a boolean");
      }
      return;
    case Check::kStdInput:
      return StdStream(a, true);
    case Check::kStdOutput:
      return StdStream(a, false);
    case Check::kEnvironmentFile: {
      if (a.value.empty() || RefuseSpecifier(a)) return;
      std::string_view path = a.value;
      if (path.starts_with("-")) path.remove_prefix(1);
      return RootOpenedPath(a, path, policy.environment_dirs, "environment_dirs", OpenFor::kRead);
    }
    case Check::kDirectoryName:
      return DirectoryNames(a);
    case Check::kDependsOn:
    case Check::kActsOnOther:
    case Check::kTrigger:
    case Check::kAlias:
      return UnitNames(a, d->check);
    case Check::kHostAction:
      // SECURITY: reboot/poweroff/exit actions act on the whole host.
      if (!a.value.empty() && a.value != "none") {
        Refuse(a.line, "unit-host-action", Describe(a) + ": only 'none' is allowed");
      }
      return;
    case Check::kRefused:
      Refuse(a.line, "unit-directive-refused", Describe(a) + ": refused (" + d->why + ")");
      return;
    default:
      break;
  }
  // The remaining checks judge one value each (policy/value_checks.cc); an empty assignment
  // resets to the manager's default and is always allowed.
  if (a.value.empty()) return;
  // SECURITY: paths and identifiers are expanded by systemd; the numeric values are not, and
  // their '%' is a percentage the value check refuses by its own rule.
  const bool expanded = d->check == Check::kConditionPath || d->check == Check::kSyslogIdentifier;
  if (expanded && RefuseSpecifier(a)) return;
  if (auto refused = CheckValue(policy, name, d->check, a.value)) {
    Refuse(a.line, refused->rule, Describe(a) + ": " + refused->why);
  }
}

// Requirements on what is in force once the whole file has been read.
void Checker::Effective(const ParsedUnitFile& unit) {
  if (!name.is_service()) return;
  // SECURITY: no User= means systemd runs the service as root.
  if (!EffectiveValue(unit, "Service", "User")) {
    Refuse(0, "unit-user-missing",
           "[Service] has no User= in force: the service would run as root");
  }
  if (!EffectiveValue(unit, "Service", "Group")) {
    Refuse(0, "unit-group-missing", "[Service] has no Group= in force");
  }
  // systemd refuses to load a service with no command in force (a trailing empty ExecStart=
  // resets the list): the policy must not judge a unit systemd reads differently.
  if (EffectiveAssignments(unit, "Service", "ExecStart").empty()) {
    Refuse(0, "unit-exec-missing", "[Service] has no ExecStart= in force");
  }
  const auto nnp = EffectiveValue(unit, "Service", "NoNewPrivileges");
  const bool nnp_on = nnp && ParseSystemdBool(*nnp).value_or(false);
  if (!nnp_on && !allowance.may_drop_no_new_privileges) {
    Refuse(0, "unit-no-new-privileges", "NoNewPrivileges=yes is required for " + name.str());
  }
  // SECURITY: without NoNewPrivileges a set-uid program could regain capabilities beyond
  // the allowance unless the bounding set is narrowed.
  if (!nnp_on && EffectiveAssignments(unit, "Service", "CapabilityBoundingSet").empty()) {
    Refuse(0, "unit-capability-bounding",
           "without NoNewPrivileges=yes, CapabilityBoundingSet= must be set");
  }
}

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

Result<void> CheckUnitName(const Policy& policy, const UnitName& name, UnitUse use) {
  // SECURITY: the updater's own unit is never written or removed through the helper.
  if (use == UnitUse::kWrite && name.str() == policy.self_unit) {
    return Fail(ErrorCode::kDenied, "unit-self", name.str() + " is the updater's own unit");
  }
  if (policy.extra_units.count(name.str()) > 0) return {};
  const std::string_view stem = name.stem();
  bool ok = name.is_service() && stem.starts_with(policy.unit_prefix) &&
            stem.size() > policy.unit_prefix.size();
  if (ok) {
    const std::string_view rest = stem.substr(policy.unit_prefix.size());
    ok = IsNameChar(rest.front()) &&
         std::all_of(rest.begin(), rest.end(), [](char c) { return IsNameChar(c) || c == '-'; });
  }
  if (!ok) {
    return Fail(
        ErrorCode::kDenied, "unit-name-allowlist",
        name.str() + " is not " + policy.unit_prefix + "[a-z0-9][a-z0-9-]*.service or listed");
  }
  return {};
}

std::vector<UnitRefusal> CheckUnitContent(const Policy& policy, const UnitName& name,
                                          std::string_view content,
                                          const PathChainCheck& path_check) {
  if (content.size() > proto::kMaxUnitContent) {
    return {{0, "unit-size-cap",
             "unit content is " + std::to_string(content.size()) + " bytes, over the cap of " +
                 std::to_string(proto::kMaxUnitContent)}};
  }
  Checker checker{policy, name, path_check, {}, {}, {}};
  if (auto it = policy.allowances.find(name.str()); it != policy.allowances.end()) {
    checker.allowance = it->second;
  }
  const ParsedUnitFile unit = ReadUnitFile(content, SystemdSectionsFor(name.str()));
  // Files are judged against the credentials in force at the end, whichever line opens them.
  checker.identity.user = EffectiveValue(unit, "Service", "User").value_or("");
  checker.identity.group = EffectiveValue(unit, "Service", "Group").value_or("");
  for (const UnitAssignment& a : EffectiveAssignments(unit, "Service", "SupplementaryGroups")) {
    for (std::string& g : SplitWords(a.value)) checker.identity.supplementary_groups.push_back(g);
  }
  for (const UnitProblem& p : unit.problems) checker.Refuse(p.line, p.rule, p.message);
  for (const std::string& section : unit.sections_seen) {
    // SECURITY: targets run nothing; a [Target] or any other section is refused outright.
    const bool ok =
        section == "Unit" || section == "Install" || (section == "Service" && name.is_service());
    if (!ok) checker.Refuse(0, "unit-section", "section [" + section + "] is not allowed here");
  }
  for (const UnitAssignment& a : unit.assignments) checker.Assignment(a);
  checker.Effective(unit);
  std::stable_sort(checker.refusals.begin(), checker.refusals.end(),
                   [](const UnitRefusal& x, const UnitRefusal& y) { return x.line < y.line; });
  return std::move(checker.refusals);
}

}  // namespace decnet::helper
