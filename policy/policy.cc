// The helper's policy file: strict JSON read without exceptions, validated field by field,
// and printed back canonically so that its digest identifies the policy in force.
#include "policy/policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "proto/json_strict.h"
#include "proto/sha256.h"

namespace decnet::helper {
namespace {

using nlohmann::json;

constexpr size_t kMaxPolicyFile = 256 * 1024;
// The deepest policy value is allowances -> unit -> capabilities -> name: four containers.
constexpr int kMaxPolicyDepth = 4;

// Linux capability names (capability.h, up to CAP_CHECKPOINT_RESTORE).
const std::set<std::string>& KnownCapabilities() {
  static const std::set<std::string> caps = {"CAP_CHOWN",
                                             "CAP_DAC_OVERRIDE",
                                             "CAP_DAC_READ_SEARCH",
                                             "CAP_FOWNER",
                                             "CAP_FSETID",
                                             "CAP_KILL",
                                             "CAP_SETGID",
                                             "CAP_SETUID",
                                             "CAP_SETPCAP",
                                             "CAP_LINUX_IMMUTABLE",
                                             "CAP_NET_BIND_SERVICE",
                                             "CAP_NET_BROADCAST",
                                             "CAP_NET_ADMIN",
                                             "CAP_NET_RAW",
                                             "CAP_IPC_LOCK",
                                             "CAP_IPC_OWNER",
                                             "CAP_SYS_MODULE",
                                             "CAP_SYS_RAWIO",
                                             "CAP_SYS_CHROOT",
                                             "CAP_SYS_PTRACE",
                                             "CAP_SYS_PACCT",
                                             "CAP_SYS_ADMIN",
                                             "CAP_SYS_BOOT",
                                             "CAP_SYS_NICE",
                                             "CAP_SYS_RESOURCE",
                                             "CAP_SYS_TIME",
                                             "CAP_SYS_TTY_CONFIG",
                                             "CAP_MKNOD",
                                             "CAP_LEASE",
                                             "CAP_AUDIT_WRITE",
                                             "CAP_AUDIT_CONTROL",
                                             "CAP_SETFCAP",
                                             "CAP_MAC_OVERRIDE",
                                             "CAP_MAC_ADMIN",
                                             "CAP_SYSLOG",
                                             "CAP_WAKE_ALARM",
                                             "CAP_BLOCK_SUSPEND",
                                             "CAP_AUDIT_READ",
                                             "CAP_PERFMON",
                                             "CAP_BPF",
                                             "CAP_CHECKPOINT_RESTORE"};
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

bool IsUnitName(const std::string& s) { return UnitName::Parse(s).has_value(); }
bool IsAbsPath(const std::string& s) { return AbsPath::Parse(s).has_value(); }
bool IsUnitAccount(const std::string& s) { return IsAccountName(s) && s != "root"; }
bool IsCapability(const std::string& s) { return KnownCapabilities().count(s) > 0; }

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

// What a string value must be: the check, and how a refusal describes it.
struct StringRule {
  bool (*valid)(const std::string&);
  const char* what;
};

constexpr StringRule kUnitPrefixRule{IsUnitPrefix, "[a-z][a-z0-9-]*-"};
constexpr StringRule kUnitNameRule{IsUnitName, "a unit name"};
constexpr StringRule kUserRule{IsUnitAccount, "a non-root user name"};
constexpr StringRule kGroupRule{IsUnitAccount, "a non-root group name"};
constexpr StringRule kAbsPathRule{IsAbsPath, "an absolute path"};
bool IsAbsPathOrEmpty(const std::string& s) { return s.empty() || IsAbsPath(s); }
constexpr StringRule kAbsPathOrEmptyRule{IsAbsPathOrEmpty, "an absolute path or \"\""};
constexpr StringRule kArgRule{IsPrintableArg, "a printable argument"};
constexpr StringRule kCapabilityRule{IsCapability, "a known CAP_ name"};

Result<std::string> GetString(const json& v, const std::string& key, StringRule rule) {
  if (!v.is_string()) return tl::make_unexpected(Bad("policy-type", key, "must be a string"));
  std::string s = v.get<std::string>();
  if (!rule.valid(s)) {
    return tl::make_unexpected(Bad("policy-value", key, "'" + s + "' is not " + rule.what));
  }
  return s;
}

Result<std::vector<std::string>> GetStrings(const json& v, const std::string& key,
                                            StringRule rule) {
  if (!v.is_array()) return tl::make_unexpected(Bad("policy-type", key, "must be a list"));
  std::vector<std::string> out;
  for (const json& e : v) {
    auto s = GetString(e, key, rule);
    if (!s) return tl::make_unexpected(s.error());
    out.push_back(std::move(*s));
  }
  return out;
}

Result<std::set<std::string>> GetNameSet(const json& v, const std::string& key, StringRule rule) {
  auto list = GetStrings(v, key, rule);
  if (!list) return tl::make_unexpected(list.error());
  return std::set<std::string>(list->begin(), list->end());
}

Result<UnitAllowance> ParseAllowance(const json& v, const std::string& key) {
  if (!v.is_object()) return tl::make_unexpected(Bad("policy-type", key, "must be an object"));
  UnitAllowance a;
  for (const auto& [k, item] : v.items()) {
    const std::string sub = key + "." + k;
    if (k == "capabilities" || k == "supplementary_groups") {
      const bool caps = k == "capabilities";
      auto names = GetNameSet(item, sub, caps ? kCapabilityRule : kGroupRule);
      if (!names) return tl::make_unexpected(names.error());
      (caps ? a.capabilities : a.supplementary_groups) = std::move(*names);
    } else if (k == "may_drop_no_new_privileges") {
      if (!item.is_boolean())
        return tl::make_unexpected(Bad("policy-type", sub, "must be a boolean"));
      a.may_drop_no_new_privileges = item.get<bool>();
    } else {
      return tl::make_unexpected(Bad("policy-unknown-key", sub, "unknown key"));
    }
  }
  return a;
}

Result<void> ParseAllowances(const json& v, const std::string& key, Policy& p) {
  if (!v.is_object()) return tl::make_unexpected(Bad("policy-type", key, "must be an object"));
  p.allowances.clear();
  for (const auto& [unit, item] : v.items()) {
    if (!IsUnitName(unit))
      return tl::make_unexpected(Bad("policy-value", key, "'" + unit + "' is not a unit name"));
    auto a = ParseAllowance(item, key + "." + unit);
    if (!a) return tl::make_unexpected(a.error());
    p.allowances[unit] = *a;
  }
  return {};
}

Result<void> ParseLinks(const json& v, const std::string& key, Policy& p) {
  if (!v.is_array()) return tl::make_unexpected(Bad("policy-type", key, "must be a list"));
  p.links.clear();
  for (const json& item : v) {
    if (!item.is_object() || item.size() != 2 || !item.contains("name") ||
        !item.contains("target_prefix") || !item["name"].is_string() ||
        !item["target_prefix"].is_string()) {
      return tl::make_unexpected(
          Bad("policy-type", key, "each entry is {\"name\",\"target_prefix\"} strings"));
    }
    LinkRule rule{item["name"].get<std::string>(), item["target_prefix"].get<std::string>()};
    if (!LinkName::Parse(rule.name) || !AbsPath::Parse(rule.target_prefix)) {
      return tl::make_unexpected(
          Bad("policy-value", key, "invalid name or target_prefix '" + rule.name + "'"));
    }
    p.links.push_back(std::move(rule));
  }
  return {};
}

// Reads one top-level key into the policy; the key is passed for error messages.
using FieldParser = std::function<Result<void>(const json&, const std::string& key, Policy&)>;

// A field read by `get` (GetString, GetStrings or GetNameSet) with every string checked by
// `rule`.
template <typename T>
FieldParser Field(T Policy::*field, Result<T> (*get)(const json&, const std::string&, StringRule),
                  StringRule rule) {
  return [=](const json& v, const std::string& key, Policy& p) -> Result<void> {
    auto value = get(v, key, rule);
    if (!value) return tl::make_unexpected(value.error());
    p.*field = std::move(*value);
    return {};
  };
}

// A timeout in milliseconds: an integer in 1..3600000.
FieldParser MillisField(int Policy::*field) {
  return [=](const json& v, const std::string& key, Policy& p) -> Result<void> {
    if (!v.is_number_integer())
      return tl::make_unexpected(Bad("policy-type", key, "must be an integer"));
    const auto n = v.get<int64_t>();
    if (n < 1 || n > 3'600'000)
      return tl::make_unexpected(Bad("policy-value", key, "must be 1..3600000"));
    p.*field = static_cast<int>(n);
    return {};
  };
}

// A bound: an integer in min..max.
FieldParser BoundField(int64_t Policy::*field, int64_t min, int64_t max) {
  return [=](const json& v, const std::string& key, Policy& p) -> Result<void> {
    if (!v.is_number_integer())
      return tl::make_unexpected(Bad("policy-type", key, "must be an integer"));
    const auto n = v.get<int64_t>();
    if (n < min || n > max) {
      return tl::make_unexpected(
          Bad("policy-value", key, "must be " + std::to_string(min) + ".." + std::to_string(max)));
    }
    p.*field = n;
    return {};
  };
}

// A directory name as *Directory= takes one: [a-z0-9._-]+, not "." or "..".
bool IsDirectoryName(const std::string& s) {
  return !s.empty() && s.size() <= 255 && s != "." && s != ".." &&
         s.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") == std::string::npos;
}
constexpr StringRule kDirectoryNameRule{IsDirectoryName, "a one-component name of [a-z0-9._-]"};

const std::map<std::string, FieldParser>& FieldParsers() {
  static const std::map<std::string, FieldParser> parsers = {
      {"unit_prefix", Field(&Policy::unit_prefix, GetString, kUnitPrefixRule)},
      {"extra_units", Field(&Policy::extra_units, GetNameSet, kUnitNameRule)},
      {"self_unit", Field(&Policy::self_unit, GetString, kUnitNameRule)},
      {"adoptable_units", Field(&Policy::adoptable_units, GetNameSet, kUnitNameRule)},
      {"unit_users", Field(&Policy::unit_users, GetNameSet, kUserRule)},
      {"unit_groups", Field(&Policy::unit_groups, GetNameSet, kGroupRule)},
      {"system_units", Field(&Policy::system_units, GetNameSet, kUnitNameRule)},
      {"allowances", ParseAllowances},
      {"output_dirs", Field(&Policy::output_dirs, GetStrings, kAbsPathRule)},
      {"environment_dirs", Field(&Policy::environment_dirs, GetStrings, kAbsPathRule)},
      {"reserved_directory_names",
       Field(&Policy::reserved_directory_names, GetNameSet, kDirectoryNameRule)},
      {"protected_paths", Field(&Policy::protected_paths, GetStrings, kAbsPathRule)},
      {"condition_dirs", Field(&Policy::condition_dirs, GetStrings, kAbsPathRule)},
      {"max_start_timeout_sec", BoundField(&Policy::max_start_timeout_sec, 1, 3600)},
      {"max_stop_timeout_sec", BoundField(&Policy::max_stop_timeout_sec, 1, 3600)},
      {"min_start_limit_interval_sec", BoundField(&Policy::min_start_limit_interval_sec, 1, 86400)},
      {"max_start_limit_burst", BoundField(&Policy::max_start_limit_burst, 1, 1000)},
      {"max_limit_nofile", BoundField(&Policy::max_limit_nofile, 1, 1LL << 30)},
      {"max_limit_nproc", BoundField(&Policy::max_limit_nproc, 1, 1LL << 22)},
      {"max_limit_core_bytes", BoundField(&Policy::max_limit_core_bytes, 0, 1LL << 50)},
      {"max_tasks", BoundField(&Policy::max_tasks, 1, 1LL << 22)},
      {"max_memory_bytes", BoundField(&Policy::max_memory_bytes, 1LL << 20, 1LL << 50)},
      {"links", ParseLinks},
      {"daemon_user", Field(&Policy::daemon_user, GetString, kUserRule)},
      {"daemon_group", Field(&Policy::daemon_group, GetString, kGroupRule)},
      {"daemon_binary", Field(&Policy::daemon_binary, GetString, kAbsPathRule)},
      {"daemon_store", Field(&Policy::daemon_store, GetString, kAbsPathOrEmptyRule)},
      {"daemon_args", Field(&Policy::daemon_args, GetStrings, kArgRule)},
      {"unit_dir", Field(&Policy::unit_dir, GetString, kAbsPathRule)},
      {"link_dir", Field(&Policy::link_dir, GetString, kAbsPathRule)},
      {"state_dir", Field(&Policy::state_dir, GetString, kAbsPathRule)},
      {"unit_root", Field(&Policy::unit_root, GetString, kAbsPathRule)},
      {"restart_timeout_ms", MillisField(&Policy::restart_timeout_ms)},
      {"hello_timeout_ms", MillisField(&Policy::hello_timeout_ms)},
      {"self_update_probation_ms", MillisField(&Policy::self_update_probation_ms)},
      {"max_units", BoundField(&Policy::max_units, 1, 4096)},
  };
  return parsers;
}

// Rules that tie fields together; checked after every field has been read.
Result<void> CheckCoherence(const Policy& p) {
  // SECURITY: units must never run as the daemon's user or group: a compromised unit could
  // then rewrite the daemon's state, and a compromised daemon could run code as a unit.
  if (p.unit_users.count(p.daemon_user) > 0) {
    return tl::make_unexpected(
        Bad("policy-value", "unit_users", "must not contain daemon_user '" + p.daemon_user + "'"));
  }
  if (p.unit_groups.count(p.daemon_group) > 0) {
    return tl::make_unexpected(Bad("policy-value", "unit_groups",
                                   "must not contain daemon_group '" + p.daemon_group + "'"));
  }
  for (const auto& [unit, a] : p.allowances) {
    if (a.supplementary_groups.count(p.daemon_group) > 0 ||
        a.supplementary_groups.count(p.daemon_user) > 0) {
      return tl::make_unexpected(
          Bad("policy-value", "allowances." + unit, "must not grant the daemon's group"));
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
  // SECURITY: the same strict reader as the wire: with duplicate keys, a reviewer reading the
  // first "unit_users" and nlohmann keeping the last could disagree about what is granted.
  // Comments (the shipped file explains each key) are white space: they never reach the
  // effective policy, so its digest is the same with or without them.
  auto doc = strict_json::ParseObject(json_text, kMaxPolicyDepth, strict_json::Comments::kIgnored);
  if (!doc) {
    return Fail(ErrorCode::kMalformed, "policy-json",
                "policy is refused (" + doc.error().rule + "): " + doc.error().message);
  }
  Policy p = Policy::Defaults();
  for (const auto& [key, value] : doc->items()) {
    const auto it = FieldParsers().find(key);
    if (it == FieldParsers().end()) {
      return tl::make_unexpected(Bad("policy-unknown-key", key, "unknown key"));
    }
    if (auto ok = it->second(value, key, p); !ok) return tl::make_unexpected(ok.error());
  }
  if (auto ok = CheckCoherence(p); !ok) return tl::make_unexpected(ok.error());
  return p;
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  // SECURITY: O_NOFOLLOW and fstat on the opened file: no link or race swaps in another file.
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Policy::Defaults();
    if (errno == ELOOP)
      return Fail(ErrorCode::kDenied, "policy-file-owner", path + " is a symbolic link");
    return Fail(ErrorCode::kFailed, "policy-file-read",
                "cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string why;
  if (fstat(fd, &st) != 0)
    why = std::string("cannot stat: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  // SECURITY: only root may have written the policy that decides what root will do.
  else if (st.st_uid != 0)
    why = "not owned by root";
  else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    why = "writable by group or others";
  else if (static_cast<size_t>(st.st_size) > kMaxPolicyFile)
    why = "larger than 256 KiB";
  if (!why.empty()) {
    close(fd);
    return Fail(ErrorCode::kDenied, "policy-file-owner", path + " is refused: " + why);
  }
  std::string text;
  char buf[8192];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxPolicyFile)
    text.append(buf, static_cast<size_t>(n));
  const int read_errno = errno;
  close(fd);
  if (n < 0)
    return Fail(ErrorCode::kFailed, "policy-file-read",
                "cannot read " + path + ": " + std::strerror(read_errno));
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
  for (const LinkRule& l : p.links)
    links.push_back({{"name", l.name}, {"target_prefix", l.target_prefix}});
  const json doc = {{"unit_prefix", p.unit_prefix},
                    {"extra_units", p.extra_units},
                    {"self_unit", p.self_unit},
                    {"adoptable_units", p.adoptable_units},
                    {"unit_users", p.unit_users},
                    {"unit_groups", p.unit_groups},
                    {"system_units", p.system_units},
                    {"allowances", allowances},
                    {"output_dirs", p.output_dirs},
                    {"environment_dirs", p.environment_dirs},
                    {"reserved_directory_names", p.reserved_directory_names},
                    {"protected_paths", p.protected_paths},
                    {"condition_dirs", p.condition_dirs},
                    {"max_start_timeout_sec", p.max_start_timeout_sec},
                    {"max_stop_timeout_sec", p.max_stop_timeout_sec},
                    {"min_start_limit_interval_sec", p.min_start_limit_interval_sec},
                    {"max_start_limit_burst", p.max_start_limit_burst},
                    {"max_limit_nofile", p.max_limit_nofile},
                    {"max_limit_nproc", p.max_limit_nproc},
                    {"max_limit_core_bytes", p.max_limit_core_bytes},
                    {"max_tasks", p.max_tasks},
                    {"max_memory_bytes", p.max_memory_bytes},
                    {"links", links},
                    {"daemon_user", p.daemon_user},
                    {"daemon_group", p.daemon_group},
                    {"daemon_binary", p.daemon_binary},
                    {"daemon_store", p.daemon_store},
                    {"daemon_args", p.daemon_args},
                    {"unit_dir", p.unit_dir},
                    {"link_dir", p.link_dir},
                    {"state_dir", p.state_dir},
                    {"unit_root", p.unit_root},
                    {"restart_timeout_ms", p.restart_timeout_ms},
                    {"hello_timeout_ms", p.hello_timeout_ms},
                    {"self_update_probation_ms", p.self_update_probation_ms},
                    {"max_units", p.max_units}};
  return doc.dump();
}

std::string PolicyDigest(const Policy& policy) { return Sha256Hex(PolicyToJson(policy)); }

}  // namespace decnet::helper
