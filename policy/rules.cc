// The rule table. Each id here is produced by exactly one kind of check in unit_policy.cc,
// unit_file.cc or root_path_check.cc; tests fail when a refusal names an id not listed here.
#include "policy/rules.h"

#include <algorithm>

namespace decnet::helper {

const std::vector<PolicyRule>& UnitPolicyRules() {
  static const std::vector<PolicyRule> rules = [] {
    std::vector<PolicyRule> r = {
        // Names and structure.
        {"unit-name-allowlist", "unit-names",
         "Only PREFIX[a-z0-9][a-z0-9-]*.service and the policy's extra units are managed."},
        {"unit-self", "unit-names", "The updater's own unit is never written or removed."},
        {"unit-size-cap", "parsing", "Unit content over the protocol's size cap is refused."},
        {"unit-syntax", "parsing",
         "Lines systemd would ignore or misread (no '=', control bytes, NUL, bad UTF-8) are "
         "refused, so the policy reads what systemd applies."},
        {"unit-section", "parsing",
         "Only [Unit], [Install] and, for services, [Service] may appear."},
        {"unit-include", "parsing", "The obsolete .include line is refused."},
        {"unit-directive-unknown", "fail-closed",
         "A directive not in the curated table refuses the unit."},
        {"unit-directive-refused", "fail-closed",
         "Directives whose effect is set up as root (credentials, PAM, root images, ...) are "
         "refused outright."},
        {"unit-specifier", "root-identity",
         "'%' specifiers in checked values are refused: they resolve to root's values."},
        // Identity.
        {"unit-user-root", "root-identity", "User=root or 0 is refused."},
        {"unit-user-daemon", "root-identity",
         "User= the updater daemon's user is refused: a unit could rewrite the daemon's state."},
        {"unit-user-allowlist", "root-identity",
         "User= must name a user in the policy's unit_users; numeric ids are refused."},
        {"unit-user-missing", "root-identity",
         "A service without User= in force would run as root."},
        {"unit-group-root", "root-identity", "Group=root or 0 is refused."},
        {"unit-group-daemon", "root-identity", "Group= the updater daemon's group is refused."},
        {"unit-group-allowlist", "root-identity",
         "Group= must name a group in the policy's unit_groups; numeric ids are refused."},
        {"unit-group-missing", "root-identity", "A service must set Group=."},
        {"unit-supplementary-group", "root-identity",
         "SupplementaryGroups= only as granted to the unit by its allowance."},
        {"unit-capability", "root-identity",
         "Capabilities only as granted to the unit by its allowance."},
        {"unit-capability-inverted", "root-identity",
         "Inverted ('~') capability lists would grant every capability not named."},
        {"unit-capability-bounding", "root-identity",
         "Without NoNewPrivileges=yes the bounding set must be narrowed."},
        {"unit-no-new-privileges", "root-identity",
         "NoNewPrivileges=yes is required unless the allowance waives it."},
        // Exec lines.
        {"unit-exec-escape", "root-exec",
         "Backslashes in commands are refused: an escape could smuggle a prefix."},
        {"unit-exec-separator", "root-exec",
         "One command per Exec line: a second command's prefix would go unchecked."},
        {"unit-exec-privileged", "root-exec",
         "The '+', '!' and '!!' prefixes run commands with root's privileges."},
        {"unit-exec-missing", "parsing",
         "A service with no ExecStart= in force is one systemd refuses to load: the policy "
         "does not judge a unit systemd reads differently."},
        {"unit-exec-path", "root-exec",
         "A command is an absolute plain path with at most the prefixes @ - :."},
        // Class 1: directories systemd creates, chowns and removes as root.
        {"unit-directory-name", "root-set-up",
         "*Directory= names are one component of [a-z0-9._-] under the unit prefix: a deeper "
         "name lets the unit swap a middle component for a symlink that root follows."},
        {"unit-directory-reserved", "root-set-up",
         "*Directory= names equal to or beginning with the updater's own directory names "
         "would hand the daemon's or the helper's state to the unit."},
        {"unit-directory-handover", "root-set-up",
         "*Directory= may not name, or hold, a directory the policy trusts as root's (where "
         "systemd opens files or tests conditions for units, the unit, link and state "
         "directories, protected paths): systemd would chown it to the unit's user."},
        {"unit-directory-mode", "root-set-up",
         "*DirectoryMode= is 3 or 4 octal digits without set-id, sticky or other-write bits."},
        // Class 3: other units.
        {"unit-dependency", "other-units",
         "Directives that only affect this unit (After=, Wants=, Requires=, PartOf=, "
         "WantedBy=, ...) name allow-listed or configured system units."},
        {"unit-dependency-other", "other-units",
         "Directives that stop, start, delay or reload another unit (Before=, Conflicts=, "
         "Upholds=, PropagatesReloadTo=, JoinsNamespaceOf=, RequiredBy=, Also=) name "
         "allow-listed units only, never system units."},
        {"unit-dependency-trigger", "other-units",
         "OnFailure= and OnSuccess= name allow-listed services only, never targets."},
        {"unit-alias", "other-units", "Alias= names a unit the policy allows, of the same type."},
        {"unit-host-action", "other-units",
         "FailureAction= and friends are 'none': reboot or poweroff act on the host."},
        // Class 4: stoppable and bounded.
        {"unit-kill-mode", "bounded",
         "KillMode=none or process lets processes outlive a stop and remove_unit."},
        {"unit-kill-signal", "bounded",
         "SendSIGKILL=no or a FinalKillSignal= other than SIGKILL lets a stop end with "
         "processes still running."},
        {"unit-manual-stop", "bounded", "RefuseManualStop=yes makes the unit unstoppable."},
        {"unit-timeout", "bounded",
         "Start, stop and abort timeouts are time spans in 1 s..the policy's caps; infinity, "
         "0 and unparsable spans are refused."},
        {"unit-start-limit", "bounded",
         "The start rate limit stays on: StartLimitIntervalSec= at least the policy's "
         "minimum (never 0 or infinity), StartLimitBurst= 1..the policy's cap."},
        {"unit-resource-limit", "bounded",
         "LimitNOFILE=, LimitNPROC=, LimitCORE=, TasksMax=, MemoryMax=, MemoryHigh= are "
         "numbers within the policy's caps; infinity, percentages and unparsable values are "
         "refused."},
        // Class 5: files systemd opens as root for the unit.
        {"unit-root-opened-path", "root-set-up",
         "A file systemd opens as root lies beneath the configured directories on a chain of "
         "root-owned directories no one else can write, without symlinks."},
        {"unit-opened-file-access", "root-set-up",
         "A file systemd opens as root exists, is a regular file with one link, is owned by "
         "root or the unit's user, and the unit's own user and groups could open it "
         "themselves (mode bits and POSIX ACLs, every directory searchable)."},
        {"unit-opened-file-protected", "root-set-up",
         "Nothing beneath the updater's keys, configuration or state (protected_paths, the "
         "helper's state_dir and the daemon's store) is opened for a unit."},
        {"unit-standard-stream", "root-set-up",
         "Standard streams are null, the journal, kmsg, inherit or a checked file: never a "
         "tty, socket or named descriptor."},
        // Class 6: smaller leaks.
        {"unit-condition-path", "leaks",
         "Condition*= and Assert*= paths (tested as root) lie beneath the policy's "
         "condition_dirs, so unit status cannot probe root-only paths."},
        {"unit-syslog-identifier", "leaks",
         "SyslogIdentifier= is the unit's own name or begins with the unit prefix: a unit "
         "cannot log as sshd."},
        {"unit-syslog-facility", "leaks",
         "SyslogFacility= is daemon, user or local0..local7: never auth, authpriv, kern or "
         "other system facilities."},
    };
    std::sort(r.begin(), r.end(),
              [](const PolicyRule& a, const PolicyRule& b) { return a.id < b.id; });
    return r;
  }();
  return rules;
}

namespace {

const PolicyRule* FindIn(const std::vector<PolicyRule>& rules, std::string_view id) {
  const auto it =
      std::lower_bound(rules.begin(), rules.end(), id,
                       [](const PolicyRule& r, std::string_view v) { return r.id < v; });
  return it != rules.end() && it->id == id ? &*it : nullptr;
}

}  // namespace

const PolicyRule* FindUnitPolicyRule(std::string_view id) { return FindIn(UnitPolicyRules(), id); }

const std::vector<PolicyRule>& LoadedViewRules() {
  static const std::vector<PolicyRule> rules = [] {
    std::vector<PolicyRule> r = {
        {"unit-loaded-state", "loaded-view",
         "The unit must be loaded (not masked, not-found or bad-setting): a restart would load "
         "whatever is on disk by then."},
        {"unit-loaded-transient", "loaded-view", "A transient unit is never the helper's file."},
        {"unit-loaded-source", "loaded-view",
         "A unit generated from another file (SourcePath=) is not the helper's file."},
        {"unit-loaded-fragment", "loaded-view",
         "systemd loaded the unit from the helper's own file in its unit directory (the "
         "updater's own unit: from a system unit directory), not from a file that shadows it."},
        {"unit-loaded-fragment-changed", "loaded-view",
         "The file systemd loaded still has the digest the helper recorded when it wrote it."},
        {"unit-loaded-fragment-owner", "loaded-view",
         "A fragment the helper did not write is root's, with one link, writable by root alone."},
        {"unit-loaded-dropin", "loaded-view",
         "Every drop-in is an operator's own: a root-owned regular file with one link in a "
         "directory chain only root can write."},
        {"unit-loaded-user", "loaded-view",
         "The user systemd runs the unit as is an allowed unit user: never root or the daemon."},
        {"unit-loaded-group", "loaded-view", "The group systemd uses is an allowed unit group."},
        {"unit-loaded-dynamic-user", "loaded-view", "DynamicUser= is off."},
        {"unit-loaded-supplementary-groups", "loaded-view",
         "Supplementary groups only as granted to the unit."},
        {"unit-loaded-exec-flags", "loaded-view",
         "No command runs with the privileged, no-setuid or ambient flags ('+', '!', '!!')."},
        {"unit-loaded-capabilities", "loaded-view",
         "Ambient and bounding capabilities within the unit's allowance."},
        {"unit-loaded-no-new-privileges", "loaded-view",
         "NoNewPrivileges= is on unless the allowance waives it."},
        {"unit-loaded-directory", "loaded-view",
         "Every *Directory= systemd creates is one component, under the prefix, not one of the "
         "updater's own."},
        {"unit-loaded-kill-mode", "loaded-view",
         "KillMode= is control-group or mixed and SendSIGKILL= is on."},
        {"unit-loaded-stop-timeout", "loaded-view",
         "The stop timeout is finite and within the helper's own wait."},
        {"unit-loaded-limit", "loaded-view", "Tasks and process limits are finite."},
        {"unit-loaded-start-limit", "loaded-view", "The start rate limit is on."},
        {"unit-loaded-root-settings", "loaded-view",
         "No PermissionsStartOnly=, RootDirectory=, RootImage= or PAMName=."},
        {"unit-loaded-credentials", "loaded-view", "No credentials loaded by systemd as root."},
        {"unit-loaded-environment-file", "loaded-view",
         "Environment files are ones the helper's own file named and the policy checked."},
        {"unit-loaded-stdio", "loaded-view",
         "Standard streams are null, inherit, the journal, kmsg or a file the policy checked."},
        {"unit-loaded-stdio-file", "loaded-view",
         "A file-backed standard stream comes only from the helper's own checked file."},
    };
    std::sort(r.begin(), r.end(),
              [](const PolicyRule& a, const PolicyRule& b) { return a.id < b.id; });
    return r;
  }();
  return rules;
}

const PolicyRule* FindLoadedViewRule(std::string_view id) { return FindIn(LoadedViewRules(), id); }

}  // namespace decnet::helper
