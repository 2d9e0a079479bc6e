// The curated directive table. A directive earns a row only when its whole effect is known:
// either harmless for any value, or covered by a named check in unit_policy.cc. Everything
// else (including directives systemd adds later) refuses the unit, so the table fails closed.
#include "policy/directive_table.h"

#include <initializer_list>
#include <string>
#include <vector>

#include "policy/unit_policy.h"

namespace decnet::helper {
namespace {

// The curated table. A key not listed here refuses the unit ("unit-directive-unknown").
const std::vector<Directive>& Directives() {
  static const std::vector<Directive> table = [] {
    std::vector<Directive> t;
    auto add = [&t](const char* section, std::initializer_list<const char*> keys, Check check,
                    const char* why = "") {
      for (const char* k : keys) t.push_back({section, k, check, why});
    };
    add("Unit",
        {"Description", "Documentation", "JobTimeoutSec", "DefaultDependencies", "StopWhenUnneeded",
         "RefuseManualStart", "IgnoreOnIsolate", "CollectMode"},
        Check::kAllowed);
    add("Unit", {"StartLimitIntervalSec"}, Check::kStartLimitInterval);
    add("Unit", {"StartLimitBurst"}, Check::kStartLimitBurst);
    add("Unit", {"RefuseManualStop"}, Check::kManualStop);
    add("Unit",
        {"ConditionPathExists", "ConditionPathIsDirectory", "ConditionFileNotEmpty",
         "AssertPathExists"},
        Check::kConditionPath);
    // What a directive does to the OTHER unit decides its check: these only order, pull in or
    // tie this unit to others ...
    add("Unit",
        {"After", "Wants", "Requires", "Requisite", "BindsTo", "PartOf", "ReloadPropagatedFrom"},
        Check::kDependsOn);
    // ... these stop, start, delay or reload the other unit, or join its namespaces.
    add("Unit", {"Before", "Conflicts", "Upholds", "PropagatesReloadTo", "JoinsNamespaceOf"},
        Check::kActsOnOther);
    add("Unit", {"OnFailure", "OnSuccess"}, Check::kTrigger);
    add("Unit", {"FailureAction", "SuccessAction", "StartLimitAction", "JobTimeoutAction"},
        Check::kHostAction);
    add("Unit", {"RebootArgument"}, Check::kRefused, "arguments to a host reboot");
    add("Service", {"User"}, Check::kUser);
    add("Service", {"Group"}, Check::kGroup);
    add("Service", {"SupplementaryGroups"}, Check::kSupplementary);
    add("Service", {"AmbientCapabilities", "CapabilityBoundingSet"}, Check::kCapabilities);
    add("Service", {"NoNewPrivileges"}, Check::kNoNewPrivileges);
    add("Service",
        {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop",
         "ExecStopPost"},
        Check::kExec);
    add("Service", {"StandardInput"}, Check::kStdInput);
    add("Service", {"StandardOutput", "StandardError"}, Check::kStdOutput);
    add("Service", {"EnvironmentFile"}, Check::kEnvironmentFile);
    add("Service",
        {"StateDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory",
         "RuntimeDirectory"},
        Check::kDirectoryName);
    add("Service",
        {"StateDirectoryMode", "CacheDirectoryMode", "LogsDirectoryMode",
         "ConfigurationDirectoryMode", "RuntimeDirectoryMode"},
        Check::kDirectoryMode);
    add("Service", {"KillMode"}, Check::kKillMode);
    add("Service", {"SendSIGKILL", "FinalKillSignal"}, Check::kKillSignal);
    add("Service", {"TimeoutStartSec"}, Check::kStartTimeout);
    add("Service", {"TimeoutStopSec", "TimeoutAbortSec"}, Check::kStopTimeout);
    add("Service", {"TimeoutSec"}, Check::kBothTimeouts);
    add("Service", {"LimitNOFILE"}, Check::kLimitNofile);
    add("Service", {"LimitNPROC"}, Check::kLimitNproc);
    add("Service", {"LimitCORE"}, Check::kLimitSize);
    add("Service", {"TasksMax"}, Check::kTasksMax);
    add("Service", {"MemoryMax", "MemoryHigh"}, Check::kMemory);
    add("Service", {"SyslogIdentifier"}, Check::kSyslogIdentifier);
    add("Service", {"SyslogFacility"}, Check::kSyslogFacility);
    add("Service",
        {"Type",
         "Restart",
         "RestartSec",
         "RestartPreventExitStatus",
         "RestartForceExitStatus",
         "SuccessExitStatus",
         "RuntimeMaxSec",
         "WatchdogSec",
         "NotifyAccess",
         "RemainAfterExit",
         "KillSignal",
         "SendSIGHUP",
         "UMask",
         "WorkingDirectory",
         "Environment",
         "PassEnvironment",
         "UnsetEnvironment",
         "SyslogLevel",
         "LogLevelMax",
         "RuntimeDirectoryPreserve",
         "ProtectSystem",
         "ProtectHome",
         "ProtectKernelTunables",
         "ProtectKernelModules",
         "ProtectKernelLogs",
         "ProtectControlGroups",
         "ProtectClock",
         "ProtectHostname",
         "ProtectProc",
         "ProcSubset",
         "PrivateTmp",
         "PrivateDevices",
         "PrivateNetwork",
         "PrivateUsers",
         "PrivateIPC",
         "PrivateMounts",
         "RestrictNamespaces",
         "RestrictRealtime",
         "RestrictSUIDSGID",
         "RestrictAddressFamilies",
         "RestrictFileSystems",
         "LockPersonality",
         "MemoryDenyWriteExecute",
         "SystemCallFilter",
         "SystemCallArchitectures",
         "SystemCallErrorNumber",
         "RemoveIPC",
         "KeyringMode",
         "ReadWritePaths",
         "ReadOnlyPaths",
         "InaccessiblePaths",
         "NoExecPaths",
         "ExecPaths",
         "DevicePolicy",
         "DeviceAllow",
         "IPAddressAllow",
         "IPAddressDeny",
         "CPUQuota"},
        Check::kAllowed);
    add("Service", {"DynamicUser"}, Check::kRefused, "a user allocated outside the policy");
    add("Service", {"PermissionsStartOnly"}, Check::kRefused, "exec commands run as root");
    add("Service",
        {"LoadCredential", "LoadCredentialEncrypted", "SetCredential", "SetCredentialEncrypted",
         "ImportCredential"},
        Check::kRefused, "files read by systemd as root");
    add("Service", {"PAMName"}, Check::kRefused, "a PAM session opened as root");
    add("Service",
        {"RootDirectory", "RootImage", "RootImageOptions", "RootHash", "RootVerity", "MountImages",
         "ExtensionImages", "ExtensionDirectories", "BindPaths", "BindReadOnlyPaths",
         "RootDirectoryStartOnly"},
        Check::kRefused, "a filesystem the unit controls, set up as root");
    add("Service",
        {"SecureBits", "TTYPath", "PIDFile", "Sockets", "Slice", "Delegate", "NetworkNamespacePath",
         "OOMScoreAdjust", "Nice", "CPUSchedulingPolicy"},
        Check::kRefused, "privileges or root actions the policy does not grant");
    add("Install", {"WantedBy"}, Check::kDependsOn);
    add("Install", {"RequiredBy", "Also"}, Check::kActsOnOther);
    add("Install", {"Alias"}, Check::kAlias);
    add("Install", {"DefaultInstance"}, Check::kRefused, "templates");
    return t;
  }();
  return table;
}

}  // namespace

const Directive* FindDirective(std::string_view section, std::string_view key) {
  for (const Directive& d : Directives()) {
    if (section == d.section && key == d.key) return &d;
  }
  return nullptr;
}

std::string_view CheckName(Check c) {
  switch (c) {
    case Check::kAllowed:
      return "allowed";
    case Check::kUser:
      return "user-allowlist";
    case Check::kGroup:
      return "group-allowlist";
    case Check::kSupplementary:
      return "supplementary-groups-allowance";
    case Check::kCapabilities:
      return "capabilities-allowance";
    case Check::kExec:
      return "exec-unprivileged-absolute";
    case Check::kNoNewPrivileges:
      return "must-be-yes";
    case Check::kStdInput:
      return "null-or-file-the-unit-could-read";
    case Check::kStdOutput:
      return "journal-or-file-the-unit-could-write";
    case Check::kEnvironmentFile:
      return "file-the-unit-could-read";
    case Check::kDirectoryName:
      return "one-component-under-prefix-not-reserved";
    case Check::kDirectoryMode:
      return "octal-no-setid-sticky-or-other-write";
    case Check::kDependsOn:
      return "allowlisted-or-system-unit";
    case Check::kActsOnOther:
      return "allowlisted-unit";
    case Check::kTrigger:
      return "allowlisted-service";
    case Check::kAlias:
      return "unit-name-policy";
    case Check::kHostAction:
      return "none-only";
    case Check::kKillMode:
      return "control-group-or-mixed";
    case Check::kKillSignal:
      return "final-sigkill-kept";
    case Check::kManualStop:
      return "must-be-no";
    case Check::kStartTimeout:
      return "span-within-max_start_timeout_sec";
    case Check::kStopTimeout:
      return "span-within-max_stop_timeout_sec";
    case Check::kBothTimeouts:
      return "span-within-start-and-stop-caps";
    case Check::kStartLimitInterval:
      return "span-at-least-min_start_limit_interval_sec";
    case Check::kStartLimitBurst:
      return "count-within-max_start_limit_burst";
    case Check::kLimitNofile:
      return "rlimit-within-max_limit_nofile";
    case Check::kLimitNproc:
      return "rlimit-within-max_limit_nproc";
    case Check::kLimitSize:
      return "rlimit-within-max_limit_core_bytes";
    case Check::kTasksMax:
      return "count-within-max_tasks";
    case Check::kMemory:
      return "size-within-max_memory_bytes";
    case Check::kConditionPath:
      return "path-beneath-condition_dirs";
    case Check::kSyslogIdentifier:
      return "own-name-or-prefix";
    case Check::kSyslogFacility:
      return "daemon-user-or-local";
    case Check::kRefused:
      return "refused";
  }
  return "refused";
}

const std::vector<DirectiveRow>& DirectiveTable() {
  static const std::vector<DirectiveRow> rows = [] {
    std::vector<DirectiveRow> out;
    for (const Directive& d : Directives()) {
      out.push_back({d.section, d.key, std::string(CheckName(d.check))});
    }
    return out;
  }();
  return rows;
}

}  // namespace decnet::helper
