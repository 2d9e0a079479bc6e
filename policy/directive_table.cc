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
        {"Description", "Documentation", "After", "Before", "StartLimitIntervalSec",
         "StartLimitBurst", "JobTimeoutSec", "DefaultDependencies", "StopWhenUnneeded",
         "RefuseManualStart", "RefuseManualStop", "IgnoreOnIsolate", "CollectMode",
         "ConditionPathExists", "ConditionPathIsDirectory", "ConditionFileNotEmpty",
         "AssertPathExists"},
        Check::kAllowed);
    add("Unit",
        {"Wants", "Requires", "Requisite", "BindsTo", "PartOf", "Upholds", "Conflicts", "OnFailure",
         "OnSuccess", "PropagatesReloadTo", "ReloadPropagatedFrom", "JoinsNamespaceOf"},
        Check::kDependency);
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
        {"Type",
         "Restart",
         "RestartSec",
         "RestartPreventExitStatus",
         "RestartForceExitStatus",
         "SuccessExitStatus",
         "TimeoutSec",
         "TimeoutStartSec",
         "TimeoutStopSec",
         "TimeoutAbortSec",
         "RuntimeMaxSec",
         "WatchdogSec",
         "NotifyAccess",
         "RemainAfterExit",
         "KillMode",
         "KillSignal",
         "SendSIGKILL",
         "SendSIGHUP",
         "FinalKillSignal",
         "LimitNOFILE",
         "LimitNPROC",
         "LimitCORE",
         "UMask",
         "WorkingDirectory",
         "Environment",
         "PassEnvironment",
         "UnsetEnvironment",
         "SyslogIdentifier",
         "SyslogFacility",
         "SyslogLevel",
         "LogLevelMax",
         "StateDirectoryMode",
         "CacheDirectoryMode",
         "LogsDirectoryMode",
         "ConfigurationDirectoryMode",
         "RuntimeDirectoryMode",
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
         "MemoryMax",
         "MemoryHigh",
         "CPUQuota",
         "TasksMax"},
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
    add("Install", {"WantedBy", "RequiredBy"}, Check::kDependency);
    add("Install", {"Also"}, Check::kInstallAlso);
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
      return "null-or-root-owned-file";
    case Check::kStdOutput:
      return "journal-or-root-owned-output-dir";
    case Check::kEnvironmentFile:
      return "root-owned-environment-dir";
    case Check::kDirectoryName:
      return "name-under-prefix";
    case Check::kDependency:
      return "allowlisted-or-system-unit";
    case Check::kInstallAlso:
      return "allowlisted-unit";
    case Check::kAlias:
      return "unit-name-policy";
    case Check::kHostAction:
      return "none-only";
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
