// The unit generator of the unit-policy oracle. A unit starts from a service the policy
// should accept, then gains rows drawn from the directive table (with values from pools that
// lean towards the harmful ones) and a few attacks on the reader and on root's set-up.
#include "tests/integration/unit_generator.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

#include "policy/unit_policy.h"

namespace decnet::test {
namespace {

// splitmix64: small, fast, and the same stream on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }
  bool Percent(unsigned p) { return Below(100) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  uint64_t state_;
};

using Pool = std::vector<std::string>;

// A row of the directive table, copied once.
struct DirectiveRowView {
  std::string section;
  std::string key;
  std::string check;
};

// A unit as blocks of lines under headers; a header may repeat or be misspelt on purpose.
class UnitText {
 public:
  void Add(const std::string& section, std::string line) {
    for (auto& [header, lines] : blocks_) {
      if (header == "[" + section + "]") {
        lines.push_back(std::move(line));
        return;
      }
    }
    blocks_.push_back({"[" + section + "]", {std::move(line)}});
  }
  void AddBlock(std::string header, std::vector<std::string> lines) {
    blocks_.push_back({std::move(header), std::move(lines)});
  }
  void Preamble(std::string line) { preamble_.push_back(std::move(line)); }
  std::string Render(const std::string& eol) const {
    std::string out;
    for (const auto& line : preamble_) out += line + eol;
    for (const auto& [header, lines] : blocks_) {
      out += header + eol;
      for (const auto& line : lines) out += line + eol;
    }
    return out;
  }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> blocks_;
  std::vector<std::string> preamble_;
};

const Pool kUnitNames = {"decnet-agent.service",
                         "decnet-x.service",
                         "decnet.target",
                         "network.target",
                         "network-online.target",
                         "multi-user.target",
                         "docker.service",
                         "ssh.service",
                         "poweroff.target",
                         "reboot.target",
                         "shutdown.target",
                         "sysinit.target",
                         "emergency.target",
                         "decnet-updater.service",
                         "systemd-journald.service",
                         "dbus.service",
                         "basic.target",
                         "decnet-update-helper.service",
                         "decnet-x.target",
                         "decnet-agent.service ssh.service"};

const Pool kSystemUnits = {"network.target", "multi-user.target", "docker.service",
                           "ssh.service",    "reboot.target",     "decnet-updater.service",
                           "dbus.service",   "shutdown.target",   "systemd-journald.service"};

const Pool kDirNames = {"decnet-x",
                        "decnet",
                        "decnet-a/b",
                        "decnet/agent",
                        "decnet-updater",
                        "decnet-updater/x",
                        "decnet-update-helper",
                        "decnet-update-helper-x",
                        "decnet-updaterx",
                        "decnet-updater-x",
                        "decnet-x/../y",
                        "../x",
                        "decnet-x:decnet-y",
                        "decnet-a decnet-b",
                        "",
                        "DECNET-x",
                        "decnet-x/",
                        "./decnet-x",
                        "decnet-x//y",
                        "decnet-x/.",
                        "decnet-root",
                        "decnet.d",
                        "decnet-",
                        "decnet-%n",
                        "/decnet-x",
                        "decnet-x/decnet-updater",
                        "decnet-updater.service.d",
                        "decnet-x decnet-updater"};

const Pool kTimeSpans = {"10s",    "90s",   "infinity", "0",  "1h", "5min", "2min 30s",
                         "1.5min", "100ms", "",         "1y", "30", "3s"};
const Pool kLimits = {"1024", "infinity", "1024:infinity",    "0", "65536", "64:128", "",
                      "1K",   "64",       "infinity:infinity"};
const Pool kBools = {"yes", "no", "true", "1", "0", "", "on", "off"};

// Values for a table row, by key (what the directive means), falling back on its check.
const std::map<std::string, Pool>& KeyPools() {
  static const std::map<std::string, Pool> pools = {
      {"Description", {"oracle unit", "a %n b", ""}},
      {"Documentation", {"man:decnet(8)", "https://example.invalid/"}},
      {"StartLimitIntervalSec", {"10s", "0", "infinity", "1us", "5min", ""}},
      {"StartLimitBurst", {"5", "0", "1", "4294967295", ""}},
      {"JobTimeoutSec", {"10s", "infinity", "0"}},
      {"DefaultDependencies", {"yes", "no"}},
      {"RefuseManualStop", {"yes", "no", "true"}},
      {"CollectMode", {"inactive", "inactive-or-failed"}},
      {"ConditionPathExists",
       {"/etc/decnet/agent.env", "!/root/.ssh/id_rsa", "/etc/shadow",
        "|/etc/decnet/updater/worker.key", "", "/var/lib/decnet-update-helper/units.json"}},
      {"ConditionPathIsDirectory", {"/etc/decnet", "/root", "/var/lib/decnet-update-helper"}},
      {"ConditionFileNotEmpty", {"/etc/decnet/agent.env", "/etc/shadow", "/etc/decnet/secret.env"}},
      {"AssertPathExists", {"/etc/decnet", "/etc/shadow", "/var/lib/decnet-updater"}},
      {"User",
       {"decnet", "root", "0", "decnet-updater", "", "nobody", "990", "decnet ", "%u", "daemon",
        "65534", "decnet-update-helper"}},
      {"Group",
       {"decnet", "root", "0", "decnet-updater", "", "shadow", "990", "systemd-journal", "%g",
        "adm"}},
      {"SupplementaryGroups",
       {"", "decnet", "root", "docker", "decnet docker", "0", "shadow", "decnet-updater",
        "adm systemd-journal"}},
      {"AmbientCapabilities",
       {"CAP_NET_RAW", "CAP_NET_ADMIN CAP_NET_RAW", "CAP_SYS_ADMIN", "~CAP_NET_RAW", "",
        "cap_net_raw", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN CAP_SYS_PTRACE", "CAP_SETUID", "12"}},
      {"NoNewPrivileges", kBools},
      {"StandardInput",
       {"null", "tty", "socket", "file:/etc/shadow", "file:/etc/decnet/agent.env",
        "file:/etc/decnet/secret.env", "file:/etc/decnet/link.env",
        "file:/etc/decnet/linkdir/shadow", "fd:x", "data", ""}},
      {"StandardOutput",
       {"journal", "inherit", "null", "kmsg", "journal+console", "tty", "socket",
        "file:/var/log/decnet-root/x.log", "append:/var/log/decnet-root/x.log",
        "truncate:/var/log/decnet-root/x.log", "append:/etc/shadow",
        "append:/var/log/decnet-root/link.log", "append:/var/log/decnet-root/existing.log",
        "file:/var/log/decnet/x.log", "append:/var/log/decnet-root/../../../etc/shadow",
        "append:/var/log/decnet-root//y.log", "append:/var/log/decnet-root/linkdir/shadow", "fd:x",
        ""}},
      {"EnvironmentFile",
       {"/etc/decnet/agent.env", "-/etc/decnet/agent.env", "/etc/decnet/secret.env",
        "-/etc/decnet/secret.env", "/etc/decnet/link.env", "/etc/shadow",
        "-/etc/decnet/missing.env", "/etc/decnet/../shadow", "/etc/decnet/updater/worker.key",
        "-/etc/decnet/linkdir/shadow", "/etc/decnet//agent.env", ""}},
      {"FailureAction", {"none", "reboot", "poweroff", "exit", "reboot-force", "", "exit-force"}},
      {"Type", {"exec", "simple", "oneshot", "notify", "forking", "idle"}},
      {"Restart", {"no", "always", "on-failure"}},
      {"RestartSec", {"100ms", "0", "5s"}},
      {"TimeoutSec", kTimeSpans},
      {"TimeoutStartSec", kTimeSpans},
      {"TimeoutStopSec", kTimeSpans},
      {"TimeoutAbortSec", kTimeSpans},
      {"RuntimeMaxSec", {"10s", "infinity"}},
      {"WatchdogSec", {"0", "5s"}},
      {"NotifyAccess", {"none", "main", "all"}},
      {"KillMode", {"control-group", "mixed", "process", "none", ""}},
      {"KillSignal", {"SIGTERM", "SIGCONT", "SIGKILL", "SIGSTOP", "15", "SIGINT"}},
      {"SendSIGKILL", {"yes", "no", ""}},
      {"FinalKillSignal", {"SIGKILL", "SIGCONT", "SIGTERM", "9", "SIGSTOP"}},
      {"LimitNOFILE", kLimits},
      {"LimitNPROC", kLimits},
      {"LimitCORE", kLimits},
      {"UMask", {"0022", "0000", "0077"}},
      {"WorkingDirectory",
       {"/", "/root", "~", "-/tmp", "/etc/decnet/linkdir", "/var/lib/decnet-update-helper", ""}},
      {"Environment", {"A=1", "LD_PRELOAD=/tmp/x.so", "\"A=1 2\"", "PATH=/tmp", ""}},
      {"SyslogIdentifier", {"decnet-x", "sshd", "sudo", "%n", ""}},
      {"SyslogFacility", {"daemon", "auth", "authpriv", "local0", "kern", "user", "", "security"}},
      {"StateDirectoryMode", {"0700", "0755", "0777", "4755", "1777", "0750", "755", "07777"}},
      {"RuntimeDirectoryPreserve", {"yes", "no", "restart"}},
      {"ProtectSystem", {"strict", "full", "yes", "no"}},
      {"ProtectHome", {"yes", "read-only", "tmpfs", "no"}},
      {"ReadWritePaths",
       {"/var/lib/decnet-x", "/etc", "-/var/lib/decnet-updater", "/etc/shadow", "/", "+/etc"}},
      {"DeviceAllow", {"/dev/sda rw", "char-* rwm", "/dev/null r"}},
      {"MemoryMax", {"512M", "infinity", "50%"}},
      {"TasksMax", {"64", "infinity", "50%", "0", "4096", ""}},
      {"Alias", {"decnet-alias.service", "ssh.service", "decnet-x.target"}},
  };
  return pools;
}

// The key whose pool also serves `key` (CacheDirectoryMode= reads like StateDirectoryMode=).
std::string PoolKey(const std::string& key) {
  static const std::map<std::string, std::string> same = {
      {"CapabilityBoundingSet", "AmbientCapabilities"},
      {"StandardError", "StandardOutput"},
      {"CacheDirectoryMode", "StateDirectoryMode"},
      {"LogsDirectoryMode", "StateDirectoryMode"},
      {"ConfigurationDirectoryMode", "StateDirectoryMode"},
      {"RuntimeDirectoryMode", "StateDirectoryMode"},
      {"SuccessAction", "FailureAction"},
      {"StartLimitAction", "FailureAction"},
      {"JobTimeoutAction", "FailureAction"},
      {"ReadOnlyPaths", "ReadWritePaths"},
      {"InaccessiblePaths", "ReadWritePaths"},
      {"NoExecPaths", "ReadWritePaths"},
      {"ExecPaths", "ReadWritePaths"},
      {"MemoryHigh", "MemoryMax"},
      {"ConditionPathIsDirectory", "ConditionPathIsDirectory"},
  };
  auto it = same.find(key);
  return it == same.end() ? key : it->second;
}

bool IsExecKey(const std::string& key) { return key.starts_with("Exec") && key != "ExecPaths"; }

bool IsDirectoryKey(const std::string& key) {
  return key == "StateDirectory" || key == "CacheDirectory" || key == "LogsDirectory" ||
         key == "ConfigurationDirectory" || key == "RuntimeDirectory";
}

bool IsDependencyKey(const std::string& key) {
  static const Pool keys = {"After",
                            "Before",
                            "Wants",
                            "Requires",
                            "Requisite",
                            "BindsTo",
                            "PartOf",
                            "Upholds",
                            "Conflicts",
                            "OnFailure",
                            "OnSuccess",
                            "PropagatesReloadTo",
                            "ReloadPropagatedFrom",
                            "JoinsNamespaceOf",
                            "WantedBy",
                            "RequiredBy",
                            "Also"};
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

// An Exec*= value: every prefix and combination, in plain, quoted and escaped spellings.
std::string ExecValue(Rng& rng, std::vector<std::string>& traits) {
  static const Pool kPrefixes = {"",    "",   "",    "",   "@",  "-",  ":",  "@-",  "-@",
                                 ":-",  "+",  "!",   "!!", "|",  "-+", "+-", "@+",  "!-",
                                 "-!!", ":!", "@!!", "+!", "@@", "--", ":|", "!!!", "-:@"};
  std::string prefix = rng.Pick(kPrefixes);
  if (rng.Percent(10)) {
    prefix.clear();
    for (size_t n = 1 + rng.Below(3); n > 0; --n) prefix += "@-:+!|"[rng.Below(6)];
  }
  static const Pool kCommands = {"/bin/sleep 1000",
                                 "/bin/true",
                                 "/usr/bin/env true",
                                 "true",
                                 "/bin/sh -c id",
                                 "/bin/sleep 1000 ; +/bin/true",
                                 "/bin/true ; /bin/true",
                                 "/bin/sh -c %h",
                                 "%h/bin/x",
                                 "/bin/true \"a b\" 'c'"};
  std::string command = rng.Pick(kCommands);
  if (prefix.find('@') != std::string::npos) {
    // '@' takes the next word as argv[0].
    const size_t space = command.find(' ');
    command = space == std::string::npos ? command + " x" : command;
  }
  std::string value;
  switch (rng.Below(8)) {
    case 0: {  // the whole first word quoted: systemd unquotes before reading the prefix
      const size_t space = command.find(' ');
      const std::string first = command.substr(0, space);
      const std::string rest = space == std::string::npos ? "" : command.substr(space);
      const char q = rng.Percent(50) ? '"' : '\'';
      value = std::string(1, q) + prefix + first + q + rest;
      traits.push_back("exec-quoted");
      break;
    }
    case 1: {  // the prefix C-escaped
      std::string escaped;
      for (char c : prefix) {
        char buf[8];
        if (rng.Percent(50)) {
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
        } else {
          std::snprintf(buf, sizeof buf, "\\%03o", static_cast<unsigned char>(c));
        }
        escaped += buf;
      }
      value = escaped.empty() ? "\\x2b" + command : escaped + command;
      traits.push_back("exec-escaped");
      break;
    }
    case 2:  // leading white space
      value = " \t" + prefix + command;
      break;
    default:
      value = prefix + command;
  }
  traits.push_back("exec-prefix '" + prefix + "'");
  if (rng.Percent(4)) {
    traits.push_back("exec-reset");
    return "";
  }
  return value;
}

std::string NeighbourUnit(size_t index) {
  return "decnet-o" + std::to_string(index + 1) + ".service";
}

// A value for [section] key= drawn for an attacker.
std::string RowValue(Rng& rng, const DirectiveRowView& row, size_t index,
                     std::vector<std::string>& traits) {
  if (IsExecKey(row.key)) return ExecValue(rng, traits);
  if (IsDirectoryKey(row.key)) {
    std::string name = rng.Pick(kDirNames);
    if (rng.Percent(20)) name = "decnet-o" + std::to_string(index);
    return name;
  }
  if (IsDependencyKey(row.key)) {
    if (rng.Percent(20)) return NeighbourUnit(index);
    return rng.Pick(kUnitNames);
  }
  const auto& pools = KeyPools();
  if (auto it = pools.find(PoolKey(row.key)); it != pools.end()) {
    // The first value of each pool is a harmless one: units stay acceptable often enough
    // for the oracle to see the policy's accepting side.
    return rng.Percent(35) ? it->second.front() : rng.Pick(it->second);
  }
  if (row.key.starts_with("Protect") || row.key.starts_with("Private") ||
      row.key.starts_with("Restrict") || row.key.starts_with("Lock") ||
      row.key.starts_with("Memory") || row.key == "RemainAfterExit" || row.key == "SendSIGHUP" ||
      row.key == "RemoveIPC" || row.key == "StopWhenUnneeded" || row.key == "IgnoreOnIsolate" ||
      row.key == "RefuseManualStart") {
    return rng.Pick(kBools);
  }
  static const Pool kGeneric = {"yes", "no", "", "1", "infinity", "%h", "/etc/shadow", "x"};
  return rng.Pick(kGeneric);
}

const std::vector<DirectiveRowView>& Rows() {
  static const std::vector<DirectiveRowView> rows = [] {
    std::vector<DirectiveRowView> out;
    for (const auto& r : helper::DirectiveTable()) out.push_back({r.section, r.key, r.check});
    return out;
  }();
  return rows;
}

// One attack on the reader or on root's set-up; adds lines and names itself in `traits`.
void Attack(Rng& rng, UnitText& unit, bool service, std::vector<std::string>& traits) {
  static const Pool kBadUsers = {"root", "0", "decnet-updater", "decnet"};
  switch (rng.Below(22)) {
    case 0: {  // repeated keys: the last assignment wins
      const std::string bad = rng.Pick(kBadUsers);
      if (rng.Percent(50)) {
        unit.Add("Service", "User=" + bad);
      } else {
        unit.Add("Service", "User=" + bad);
        unit.Add("Service", "User=decnet");
      }
      traits.push_back("repeated-user " + bad);
      break;
    }
    case 1: {  // an empty assignment resets the list or value
      static const Pool kResets = {"User=",
                                   "Group=",
                                   "ExecStartPre=",
                                   "CapabilityBoundingSet=",
                                   "NoNewPrivileges=",
                                   "SupplementaryGroups=",
                                   "StateDirectory="};
      const std::string& line = rng.Pick(kResets);
      unit.Add("Service", line);
      if (line == "ExecStartPre=") unit.Add("Service", "ExecStartPre=/bin/true");
      traits.push_back("reset " + line);
      break;
    }
    case 2: {  // misspelt or differently cased sections
      static const Pool kHeaders = {"[service]", "[Service ]", "[ Service]", "[SERVICE]",
                                    "[Servcie]", "[Service",   "[Service]x", "[Unit]",
                                    "[Install]", "[X-Decnet]"};
      const std::string& header = rng.Pick(kHeaders);
      unit.AddBlock(header, {"User=" + rng.Pick(kBadUsers), "ExecStartPre=+/bin/true"});
      traits.push_back("section " + header);
      break;
    }
    case 3: {  // keys in other spellings
      static const Pool kLines = {"user=root",     "USER=root",         "User =root", " User=root",
                                  "User= root",    "User\t=root",       "User==root", "Us er=root",
                                  "\tUser=decnet", "User=decnet # root"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Service", line);
      traits.push_back("key-spelling '" + line + "'");
      break;
    }
    case 4: {  // a lone CR
      static const Pool kLines = {"User=decnet\rUser=root", "User=root\r", "\rUser=root",
                                  "Environment=A=1\r[Service]\rUser=root"};
      unit.Add("Service", rng.Pick(kLines));
      traits.push_back("lone-cr");
      break;
    }
    case 5: {  // NUL bytes
      static const Pool kLines = {std::string("User=decnet\0User=root", 21),
                                  std::string("\0User=root", 10), std::string("User=root\0", 10),
                                  std::string("Environment=A=\0\nUser=root", 25)};
      unit.Add("Service", rng.Pick(kLines));
      traits.push_back("nul");
      break;
    }
    case 6: {  // line continuations, with a comment inside
      static const Pool kLines = {"Environment=A=1 \\\nUser=root",
                                  "Environment=A=1 \\\n#c\nUser=root",
                                  "Environment=A=1 \\\n;c\nUser=root",
                                  "Description=x \\\n[Service]\nUser=root",
                                  "User=decnet \\\n  root",
                                  "ExecStartPre=/bin/true \\\n  ; +/bin/true"};
      unit.Add("Service", rng.Pick(kLines));
      traits.push_back("continuation");
      break;
    }
    case 7: {  // comments
      static const Pool kLines = {"#User=root", ";User=root", "  # User=root", "# \\\nUser=root",
                                  "#[Service]"};
      unit.Add("Service", rng.Pick(kLines));
      traits.push_back("comment");
      break;
    }
    case 8: {  // acting on system units
      static const Pool kKeys = {
          "Before", "Conflicts", "OnFailure", "OnSuccess", "Upholds", "PropagatesReloadTo",
          "After",  "Requires",  "BindsTo",   "PartOf"};
      const std::string& key = rng.Pick(kKeys);
      unit.Add("Unit", key + "=" + rng.Pick(kSystemUnits));
      traits.push_back("dependency " + key);
      break;
    }
    case 9: {  // cannot be stopped or bounded
      static const Pool kLines = {"KillMode=none",           "KillMode=process",
                                  "SendSIGKILL=no",          "FinalKillSignal=SIGCONT",
                                  "TimeoutStopSec=infinity", "TimeoutStopSec=0",
                                  "TimeoutStopSec=1h",       "TimeoutAbortSec=infinity",
                                  "LimitNPROC=infinity",     "LimitNOFILE=infinity",
                                  "TasksMax=infinity",       "LimitNOFILE=1024:infinity",
                                  "TasksMax=100%",           "ExecStop=/bin/sleep infinity"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Service", line);
      traits.push_back("unbounded " + line);
      break;
    }
    case 10: {  // restart without a rate limit
      static const Pool kLines = {"StartLimitIntervalSec=0", "StartLimitBurst=0",
                                  "RefuseManualStop=yes", "StartLimitIntervalSec=infinity"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Unit", line);
      unit.Add("Service", "Restart=always");
      traits.push_back("rate " + line);
      break;
    }
    case 11:
    case 12: {  // files systemd opens as root
      static const Pool kKeys = {"StandardOutput", "StandardError", "StandardInput",
                                 "EnvironmentFile"};
      const std::string& key = rng.Pick(kKeys);
      const std::string value = rng.Pick(KeyPools().at(PoolKey(key)));
      unit.Add("Service", key + "=" + value);
      traits.push_back("root-opened " + key + "=" + value);
      break;
    }
    case 13: {  // conditions evaluated as root
      static const Pool kLines = {"ConditionPathExists=/etc/shadow",
                                  "ConditionPathExists=/var/lib/decnet-update-helper/units.json",
                                  "AssertPathExists=/root", "ConditionFileNotEmpty=/etc/shadow"};
      unit.Add("Unit", rng.Pick(kLines));
      traits.push_back("condition");
      break;
    }
    case 14:
    case 15: {  // directories created, chowned and removed as root
      static const Pool kKeys = {"StateDirectory", "CacheDirectory", "LogsDirectory",
                                 "ConfigurationDirectory", "RuntimeDirectory"};
      const std::string& key = rng.Pick(kKeys);
      const std::string& name = rng.Pick(kDirNames);
      unit.Add("Service", key + "=" + name);
      if (rng.Percent(25)) unit.Add("Service", key + "Mode=0777");
      traits.push_back("directory " + key + "=" + name);
      break;
    }
    case 16: {  // privileged commands
      static const Pool kKeys = {"ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost",
                                 "ExecReload",   "ExecCondition", "ExecStart"};
      const std::string& key = rng.Pick(kKeys);
      unit.Add("Service", key + "=" + ExecValue(rng, traits));
      traits.push_back("exec " + key);
      break;
    }
    case 17: {  // identity
      static const Pool kLines = {"User=root",
                                  "User=0",
                                  "User=decnet-updater",
                                  "Group=root",
                                  "Group=0",
                                  "Group=decnet-updater",
                                  "DynamicUser=yes",
                                  "SupplementaryGroups=root",
                                  "SupplementaryGroups=docker",
                                  "NoNewPrivileges=no",
                                  "AmbientCapabilities=CAP_SYS_ADMIN",
                                  "CapabilityBoundingSet=~CAP_NET_RAW"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Service", line);
      traits.push_back("identity " + line);
      break;
    }
    case 18: {  // specifiers
      static const Pool kLines = {"User=%u",
                                  "StateDirectory=%n",
                                  "ExecStartPre=%h/x",
                                  "EnvironmentFile=%E/decnet/agent.env",
                                  "WorkingDirectory=%h",
                                  "StandardOutput=append:%L/decnet-root/x.log"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Service", line);
      traits.push_back("specifier " + line);
      break;
    }
    case 19: {  // directives in the wrong section
      static const Pool kLines = {"User=decnet", "User=root", "ExecStartPre=+/bin/true",
                                  "KillMode=none"};
      const std::string& line = rng.Pick(kLines);
      unit.Add(rng.Percent(50) ? "Unit" : "Install", line);
      traits.push_back("wrong-section " + line);
      break;
    }
    case 20: {  // lines before any section, and .include
      static const Pool kLines = {"User=root", ".include /etc/systemd/system/x.service",
                                  "ExecStartPre=+/bin/true"};
      const std::string& line = rng.Pick(kLines);
      unit.Preamble(line);
      traits.push_back("preamble " + line);
      break;
    }
    default: {  // syslog identity
      static const Pool kLines = {"SyslogFacility=authpriv", "SyslogFacility=auth",
                                  "SyslogIdentifier=sshd", "SyslogFacility=local3"};
      const std::string& line = rng.Pick(kLines);
      unit.Add("Service", line);
      traits.push_back("syslog " + line);
      break;
    }
  }
  if (!service) traits.push_back("(on a target)");
}

}  // namespace

GeneratedUnit GenerateUnit(uint64_t seed, size_t index) {
  GeneratedUnit g;
  g.seed = seed;
  g.index = index;
  Rng rng(seed * 0x9e3779b97f4a7c15ULL ^ (index + 1) * 0xd1b54a32d192ed03ULL);
  const size_t slot = index % kGeneratorRound;
  const bool target = slot == 41;
  if (slot == 7) {
    g.name = "decnet-agent.service";
  } else if (slot == 23) {
    g.name = "decnet-sniffer.service";
  } else if (target) {
    g.name = "decnet.target";
  } else {
    g.name = "decnet-o" + std::to_string(index) + ".service";
  }
  UnitText unit;
  unit.Add("Unit", "Description=oracle unit " + std::to_string(index));
  if (!target) {
    // A service the policy should accept; the rows and attacks below make it hostile.
    unit.Add("Service", "Type=exec");
    unit.Add("Service", "User=decnet");
    unit.Add("Service", "Group=decnet");
    unit.Add("Service", "NoNewPrivileges=yes");
    unit.Add("Service", "ExecStart=/bin/sleep 1000");
    if (rng.Percent(70)) {
      unit.Add("Service", "KillMode=" + std::string(rng.Percent(50) ? "mixed" : "control-group"));
      unit.Add("Service", "TimeoutStopSec=10s");
      unit.Add("Service", "LimitNOFILE=1024");
      unit.Add("Service", "LimitNPROC=64");
      unit.Add("Service", "TasksMax=64");
      unit.Add("Unit", "StartLimitIntervalSec=10s");
      unit.Add("Unit", "StartLimitBurst=5");
    }
    if ((slot == 7 || slot == 23) && rng.Percent(60)) {
      unit.Add("Service", "AmbientCapabilities=CAP_NET_RAW");
      unit.Add("Service", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW");
      g.traits.push_back("allowance");
    }
  }
  if (rng.Percent(50)) unit.Add("Install", "WantedBy=decnet.target");

  // Rows of the directive table, the refused ones seldom (each refuses the whole unit).
  const auto& rows = Rows();
  for (size_t n = 1 + rng.Below(4); n > 0; --n) {
    const DirectiveRowView* row = &rng.Pick(rows);
    for (int tries = 0; tries < 8; ++tries) {
      const bool fits = !target || row->section != "Service";
      const bool rare = row->check == "refused" && !rng.Percent(15);
      if (fits && !rare) break;
      row = &rng.Pick(rows);
    }
    if (target && row->section == "Service") continue;
    const std::string value = RowValue(rng, *row, index, g.traits);
    unit.Add(row->section, row->key + "=" + value);
    g.traits.push_back("row " + row->section + "." + row->key);
  }
  // Attacks: none in a third of the units, so that plain combinations are covered too.
  const size_t attacks = rng.Percent(35) ? 0 : 1 + rng.Below(3);
  for (size_t n = 0; n < attacks; ++n) Attack(rng, unit, !target, g.traits);

  std::string eol = "\n";
  if (rng.Percent(4)) {
    eol = "\r\n";
    g.traits.push_back("crlf");
  }
  g.content = unit.Render(eol);
  if (rng.Percent(3)) {
    g.content += "Environment=A=1 \\";  // a continuation at the end of the file
    g.traits.push_back("continuation-at-eof");
  }
  return g;
}

std::string Printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || (u >= 0x20 && u != 0x7f)) {
      out += c;
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\0') {
      out += "\\0";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

}  // namespace decnet::test
