// The helper's policy file: strict JSON read without exceptions, validated field by field,
// and printed back canonically so that its digest identifies the policy in force.
#include "helper/policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "proto/sha256.h"

namespace decnet::helper {
namespace {

using nlohmann::json;

constexpr size_t kMaxPolicyFile = 256 * 1024;

// Linux capability names (capability.h, up to CAP_CHECKPOINT_RESTORE).
const std::set<std::string>& KnownCapabilities() {
  static const std::set<std::string> caps = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
      "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
      "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
      "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
      "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
  return caps;
}

Error Bad(std::string rule, const std::string& key, const std::string& why) {
  return Error{ErrorCode::kMalformed, std::move(rule), "policy key '" + key + "': " + why};
}

// A POSIX-ish account name: [a-z_][a-z0-9_-]*, at most 32 bytes.
bool IsAccountName(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Result<std::string> GetString(const json& v, const std::string& key) {
  if (!v.is_string()) return tl::make_unexpected(Bad("policy-type", key, "must be a string"));
  return v.get<std::string>();
}

Result<std::vector<std::string>> GetStrings(const json& v, const std::string& key) {
  if (!v.is_array()) return tl::make_unexpected(Bad("policy-type", key, "must be a list"));
  std::vector<std::string> out;
  for (const json& e : v) {
    auto s = GetString(e, key);
    if (!s) return tl::make_unexpected(s.error());
    out.push_back(*s);
  }
  return out;
}

// Checks each element with `valid`; `what` says what the element must be.
Result<void> EachValid(const std::vector<std::string>& items, const std::string& key,
                       const std::function<bool(const std::string&)>& valid,
                       const std::string& what) {
  for (const std::string& s : items) {
    if (!valid(s)) return Fail(ErrorCode::kMalformed, "policy-value", "policy key '" + key + "': '" + s + "' is not " + what);
  }
  return {};
}

bool IsUnitName(const std::string& s) { return UnitName::Parse(s).has_value(); }
bool IsAbsPath(const std::string& s) { return AbsPath::Parse(s).has_value(); }
bool IsUnitAccount(const std::string& s) { return IsAccountName(s) && s != "root"; }

Result<std::set<std::string>> GetNameSet(const json& v, const std::string& key,
                                         const std::function<bool(const std::string&)>& valid,
                                         const std::string& what) {
  auto list = GetStrings(v, key);
  if (!list) return tl::make_unexpected(list.error());
  if (auto ok = EachValid(*list, key, valid, what); !ok) return tl::make_unexpected(ok.error());
  return std::set<std::string>(list->begin(), list->end());
}

Result<UnitAllowance> ParseAllowance(const json& v, const std::string& key) {
  if (!v.is_object()) return tl::make_unexpected(Bad("policy-type", key, "must be an object"));
  UnitAllowance a;
  for (const auto& [k, item] : v.items()) {
    const std::string sub = key + "." + k;
    if (k == "capabilities") {
      auto caps = GetNameSet(item, sub, [](const std::string& c) {
        return KnownCapabilities().count(c) > 0;
      }, "a known CAP_ name");
      if (!caps) return tl::make_unexpected(caps.error());
      a.capabilities = *caps;
    } else if (k == "supplementary_groups") {
      auto groups = GetNameSet(item, sub, IsUnitAccount, "a non-root group name");
      if (!groups) return tl::make_unexpected(groups.error());
      a.supplementary_groups = *groups;
    } else if (k == "may_drop_no_new_privileges") {
      if (!item.is_boolean()) return tl::make_unexpected(Bad("policy-type", sub, "must be a boolean"));
      a.may_drop_no_new_privileges = item.get<bool>();
    } else {
      return tl::make_unexpected(Bad("policy-unknown-key", sub, "unknown key"));
    }
  }
  return a;
}

Result<void> ParseAllowances(const json& v, Policy& p) {
  if (!v.is_object()) return Fail(ErrorCode::kMalformed, "policy-type", "policy key 'allowances': must be an object");
  p.allowances.clear();
  for (const auto& [unit, item] : v.items()) {
    if (!IsUnitName(unit)) return tl::make_unexpected(Bad("policy-value", "allowances", "'" + unit + "' is not a unit name"));
    auto a = ParseAllowance(item, "allowances." + unit);
    if (!a) return tl::make_unexpected(a.error());
    p.allowances[unit] = *a;
  }
  return {};
}

Result<void> ParseLinks(const json& v, Policy& p) {
  if (!v.is_array()) return Fail(ErrorCode::kMalformed, "policy-type", "policy key 'links': must be a list");
  p.links.clear();
  for (const json& item : v) {
    if (!item.is_object() || item.size() != 2 || !item.contains("name") ||
        !item.contains("target_prefix") || !item["name"].is_string() ||
        !item["target_prefix"].is_string()) {
      return Fail(ErrorCode::kMalformed, "policy-type", "policy key 'links': each entry is {\"name\",\"target_prefix\"} strings");
    }
    LinkRule rule{item["name"].get<std::string>(), item["target_prefix"].get<std::string>()};
    if (!LinkName::Parse(rule.name) || !AbsPath::Parse(rule.target_prefix)) {
      return Fail(ErrorCode::kMalformed, "policy-value", "policy key 'links': invalid name or target_prefix '" + rule.name + "'");
    }
    p.links.push_back(std::move(rule));
  }
  return {};
}

Result<void> ParseInt(const json& v, const std::string& key, int& out) {
  if (!v.is_number_integer()) return tl::make_unexpected(Bad("policy-type", key, "must be an integer"));
  const auto n = v.get<int64_t>();
  if (n < 1 || n > 3'600'000) return tl::make_unexpected(Bad("policy-value", key, "must be 1..3600000"));
  out = static_cast<int>(n);
  return {};
}

}  // namespace

namespace {

using FieldParser = std::function<Result<void>(const json&, Policy&)>;

// A string field checked by `valid`.
FieldParser StringField(std::string Policy::*field, std::function<bool(const std::string&)> valid,
                        std::string what, std::string key) {
  return [=](const json& v, Policy& p) -> Result<void> {
    auto s = GetString(v, key);
    if (!s) return tl::make_unexpected(s.error());
    if (!valid(*s)) return tl::make_unexpected(Bad("policy-value", key, "'" + *s + "' is not " + what));
    p.*field = *s;
    return {};
  };
}

FieldParser SetField(std::set<std::string> Policy::*field,
                     std::function<bool(const std::string&)> valid, std::string what,
                     std::string key) {
  return [=](const json& v, Policy& p) -> Result<void> {
    auto s = GetNameSet(v, key, valid, what);
    if (!s) return tl::make_unexpected(s.error());
    p.*field = *s;
    return {};
  };
}

FieldParser ListField(std::vector<std::string> Policy::*field,
                      std::function<bool(const std::string&)> valid, std::string what,
                      std::string key) {
  return [=](const json& v, Policy& p) -> Result<void> {
    auto s = GetStrings(v, key);
    if (!s) return tl::make_unexpected(s.error());
    if (auto ok = EachValid(*s, key, valid, what); !ok) return ok;
    p.*field = *s;
    return {};
  };
}

bool IsUnitPrefix(const std::string& s) {
  if (s.size() < 2 || s.front() < 'a' || s.front() > 'z' || s.back() != '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsPrintableArg(const std::string& s) {
  return s.size() <= 4096 && std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7F;
  });
}

const std::map<std::string, FieldParser>& FieldParsers() {
  static const std::map<std::string, FieldParser> parsers = {
      {"unit_prefix", StringField(&Policy::unit_prefix, IsUnitPrefix, "[a-z][a-z0-9-]*-", "unit_prefix")},
      {"extra_units", SetField(&Policy::extra_units, IsUnitName, "a unit name", "extra_units")},
      {"self_unit", StringField(&Policy::self_unit, IsUnitName, "a unit name", "self_unit")},
      {"adoptable_units", SetField(&Policy::adoptable_units, IsUnitName, "a unit name", "adoptable_units")},
      {"unit_users", SetField(&Policy::unit_users, IsUnitAccount, "a non-root user name", "unit_users")},
      {"unit_groups", SetField(&Policy::unit_groups, IsUnitAccount, "a non-root group name", "unit_groups")},
      {"system_units", SetField(&Policy::system_units, IsUnitName, "a unit name", "system_units")},
      {"allowances", ParseAllowances},
      {"output_dirs", ListField(&Policy::output_dirs, IsAbsPath, "an absolute path", "output_dirs")},
      {"environment_dirs", ListField(&Policy::environment_dirs, IsAbsPath, "an absolute path", "environment_dirs")},
      {"links", ParseLinks},
      {"daemon_user", StringField(&Policy::daemon_user, IsUnitAccount, "a non-root user name", "daemon_user")},
      {"daemon_group", StringField(&Policy::daemon_group, IsUnitAccount, "a non-root group name", "daemon_group")},
      {"daemon_binary", StringField(&Policy::daemon_binary, IsAbsPath, "an absolute path", "daemon_binary")},
      {"daemon_args", ListField(&Policy::daemon_args, IsPrintableArg, "a printable argument", "daemon_args")},
      {"unit_dir", StringField(&Policy::unit_dir, IsAbsPath, "an absolute path", "unit_dir")},
      {"link_dir", StringField(&Policy::link_dir, IsAbsPath, "an absolute path", "link_dir")},
      {"state_dir", StringField(&Policy::state_dir, IsAbsPath, "an absolute path", "state_dir")},
      {"unit_root", StringField(&Policy::unit_root, IsAbsPath, "an absolute path", "unit_root")},
      {"restart_timeout_ms", [](const json& v, Policy& p) { return ParseInt(v, "restart_timeout_ms", p.restart_timeout_ms); }},
      {"hello_timeout_ms", [](const json& v, Policy& p) { return ParseInt(v, "hello_timeout_ms", p.hello_timeout_ms); }},
  };
  return parsers;
}

// Rules that tie fields together; checked after every field has been read.
Result<void> CheckCoherence(const Policy& p) {
  // SECURITY: units must never run as the daemon's user or group: a compromised unit could
  // then rewrite the daemon's state, and a compromised daemon could run code as a unit.
  if (p.unit_users.count(p.daemon_user) > 0) {
    return Fail(ErrorCode::kMalformed, "policy-value", "policy key 'unit_users': must not contain daemon_user '" + p.daemon_user + "'");
  }
  if (p.unit_groups.count(p.daemon_group) > 0) {
    return Fail(ErrorCode::kMalformed, "policy-value", "policy key 'unit_groups': must not contain daemon_group '" + p.daemon_group + "'");
  }
  for (const auto& [unit, a] : p.allowances) {
    if (a.supplementary_groups.count(p.daemon_group) > 0 || a.supplementary_groups.count(p.daemon_user) > 0) {
      return Fail(ErrorCode::kMalformed, "policy-value", "policy key 'allowances." + unit + "': must not grant the daemon's group");
    }
  }
  return {};
}

}  // namespace

Policy Policy::Defaults() {
  Policy p;
  const UnitAllowance net{{"CAP_NET_ADMIN", "CAP_NET_RAW"}, {}, false};
  p.allowances["decnet-agent.service"] = net;
  p.allowances["decnet-sniffer.service"] = net;
  p.links = {{"decnet", "/opt/decnet/current"}};
  return p;
}

Result<Policy> ParsePolicy(std::string_view json_text) {
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) return Fail(ErrorCode::kMalformed, "policy-json", "policy is not valid JSON");
  if (!doc.is_object()) return Fail(ErrorCode::kMalformed, "policy-json", "policy must be a JSON object");
  Policy p = Policy::Defaults();
  for (const auto& [key, value] : doc.items()) {
    const auto it = FieldParsers().find(key);
    if (it == FieldParsers().end()) {
      return tl::make_unexpected(Bad("policy-unknown-key", key, "unknown key"));
    }
    if (auto ok = it->second(value, p); !ok) return tl::make_unexpected(ok.error());
  }
  if (auto ok = CheckCoherence(p); !ok) return tl::make_unexpected(ok.error());
  return p;
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  // SECURITY: O_NOFOLLOW and fstat on the opened file: no link or race swaps in another file.
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Policy::Defaults();
    if (errno == ELOOP) return Fail(ErrorCode::kDenied, "policy-file-owner", path + " is a symbolic link");
    return Fail(ErrorCode::kFailed, "policy-file-read", "cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string why;
  if (fstat(fd, &st) != 0) why = std::string("cannot stat: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) why = "not a regular file";
  // SECURITY: only root may have written the policy that decides what root will do.
  else if (st.st_uid != 0) why = "not owned by root";
  else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) why = "writable by group or others";
  else if (static_cast<size_t>(st.st_size) > kMaxPolicyFile) why = "larger than 256 KiB";
  if (!why.empty()) {
    close(fd);
    return Fail(ErrorCode::kDenied, "policy-file-owner", path + " is refused: " + why);
  }
  std::string text;
  char buf[8192];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxPolicyFile) text.append(buf, static_cast<size_t>(n));
  const int read_errno = errno;
  close(fd);
  if (n < 0) return Fail(ErrorCode::kFailed, "policy-file-read", "cannot read " + path + ": " + std::strerror(read_errno));
  return ParsePolicy(text);
}

std::string PolicyToJson(const Policy& p) {
  json allowances = json::object();
  for (const auto& [unit, a] : p.allowances) {
    allowances[unit] = {{"capabilities", a.capabilities},
                        {"supplementary_groups", a.supplementary_groups},
                        {"may_drop_no_new_privileges", a.may_drop_no_new_privileges}};
  }
  json links = json::array();
  for (const LinkRule& l : p.links) links.push_back({{"name", l.name}, {"target_prefix", l.target_prefix}});
  const json doc = {
      {"unit_prefix", p.unit_prefix}, {"extra_units", p.extra_units}, {"self_unit", p.self_unit},
      {"adoptable_units", p.adoptable_units}, {"unit_users", p.unit_users},
      {"unit_groups", p.unit_groups}, {"system_units", p.system_units},
      {"allowances", allowances}, {"output_dirs", p.output_dirs},
      {"environment_dirs", p.environment_dirs}, {"links", links},
      {"daemon_user", p.daemon_user}, {"daemon_group", p.daemon_group},
      {"daemon_binary", p.daemon_binary}, {"daemon_args", p.daemon_args},
      {"unit_dir", p.unit_dir}, {"link_dir", p.link_dir}, {"state_dir", p.state_dir},
      {"unit_root", p.unit_root}, {"restart_timeout_ms", p.restart_timeout_ms},
      {"hello_timeout_ms", p.hello_timeout_ms}};
  return doc.dump();
}

std::string PolicyDigest(const Policy& policy) { return Sha256Hex(PolicyToJson(policy)); }

}  // namespace decnet::helper
