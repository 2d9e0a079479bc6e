// The curated directive table of the unit policy: every [Section] Key= a unit
// may use, and which check its value goes through. Internal to the policy library; the
// printable form for helperctl is DirectiveTable() in policy/unit_policy.h.
#pragma once

#include <string_view>

namespace decnet::helper {

// What is checked of a directive's value (the Checker in unit_policy.cc dispatches on it).
enum class Check {
  kAllowed,             // any value
  kUser,                // User=
  kGroup,               // Group=
  kSupplementary,       // SupplementaryGroups=
  kCapabilities,        // AmbientCapabilities=, CapabilityBoundingSet=
  kExec,                // Exec*=
  kNoNewPrivileges,     // NoNewPrivileges=
  kStdInput,            // StandardInput=
  kStdOutput,           // StandardOutput=, StandardError=
  kEnvironmentFile,     // EnvironmentFile=
  kDirectoryName,       // StateDirectory= and friends
  kDirectoryMode,       // StateDirectoryMode= and friends
  kDependsOn,           // acts on this unit only: allow-listed or system units
  kActsOnOther,         // stops, starts, delays or reloads another unit: allow-listed units only
  kTrigger,             // OnFailure=, OnSuccess=: allow-listed services only
  kAlias,               // Alias=: names the unit policy allows
  kHostAction,          // FailureAction= and friends: "none" only
  kKillMode,            // KillMode=: control-group or mixed
  kKillSignal,          // SendSIGKILL=, FinalKillSignal=: the final SIGKILL stays
  kManualStop,          // RefuseManualStop=: never yes
  kStartTimeout,        // TimeoutStartSec=
  kStopTimeout,         // TimeoutStopSec=, TimeoutAbortSec=
  kBothTimeouts,        // TimeoutSec=: sets start and stop
  kStartLimitInterval,  // StartLimitIntervalSec=
  kStartLimitBurst,     // StartLimitBurst=
  kLimitNofile,         // LimitNOFILE=
  kLimitNproc,          // LimitNPROC=
  kLimitSize,           // LimitCORE=
  kTasksMax,            // TasksMax=
  kMemory,              // MemoryMax=, MemoryHigh=
  kConditionPath,       // ConditionPath*=, AssertPath*=, ConditionFileNotEmpty=
  kSyslogIdentifier,    // SyslogIdentifier=
  kSyslogFacility,      // SyslogFacility=
  kRefused,             // known and refused outright
};

struct Directive {
  const char* section;
  const char* key;
  Check check;
  const char* why = "";  // for kRefused: what it would allow
};

// The table's row for [section] key=, or nullptr when the table does not list it (the
// caller refuses the unit with "unit-directive-unknown"). Case-sensitive, as systemd is.
const Directive* FindDirective(std::string_view section, std::string_view key);

// The stable name of a check, as printed by `helperctl policy` ("user-allowlist", ...).
std::string_view CheckName(Check check);

}  // namespace decnet::helper
