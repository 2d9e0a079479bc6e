// The merge works on JSON values so that the keys an operator wrote by hand survive; the
// result is then handed to the same parsers the helper and the daemon run at start-up, and
// refused with their rule, so enrolment never writes a file that would stop the unit.
#include "enrol/enrol_configs.h"

#include <algorithm>
#include <sstream>

#include "polkit/polkit_rule.h"
#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet::enrol {
namespace {

using nlohmann::json;

Result<json> ReadObject(const std::string& text, const std::string& name) {
  if (text.empty()) return json::object();
  auto parsed = strict_json::ParseObject(text, 8, strict_json::Comments::kIgnored);
  if (!parsed)
    return Fail(ErrorCode::kMalformed, "enrol-config-existing",
                name + " is there but is not one JSON object (" + parsed.error().message +
                    "): fix or remove it first");
  return *parsed;
}

// Writes `value` under `key` when the key is already there or `value` is not the default.
void SetKey(json& object, const std::string& key, const json& value, const json& default_value) {
  if (object.contains(key) || value != default_value) object[key] = value;
}

json DaemonDefaults() {
  const daemon::DaemonConfig d;
  return {{"listen_address", d.listen_address},
          {"port", d.port},
          {"install_dir", d.install_dir},
          {"updater_dir", d.updater_dir},
          {"state_dir", d.state_dir},
          {"master_pins", d.master_pins},
          {"master_cn", d.master_cn}};
}

bool IsBeneathAny(const std::string& path, const std::vector<std::string>& dirs) {
  auto p = AbsPath::Parse(path);
  if (!p) return false;
  return std::any_of(dirs.begin(), dirs.end(), [&](const std::string& d) {
    auto dir = AbsPath::Parse(d);
    return dir && p->IsBeneath(*dir);
  });
}

void MergeHelper(const EnrolOptions& o, const json& defaults, json& h) {
  auto current = [&](const char* key) { return h.contains(key) ? h[key] : defaults[key]; };
  if (o.user) SetKey(h, "daemon_user", *o.user, defaults["daemon_user"]);
  if (o.group) SetKey(h, "daemon_group", *o.group, defaults["daemon_group"]);
  if (o.units_user) SetKey(h, "unit_users", json::array({*o.units_user}), defaults["unit_users"]);
  if (o.units_group)
    SetKey(h, "unit_groups", json::array({*o.units_group}), defaults["unit_groups"]);
  if (o.install_dir) {
    json links = current("links");
    bool found = false;
    for (json& l : links)
      if (l.is_object() && l.value("name", "") == "decnet") {
        l["target_prefix"] = *o.install_dir + "/current";
        found = true;
      }
    if (!found)
      links.push_back({{"name", "decnet"}, {"target_prefix", *o.install_dir + "/current"}});
    SetKey(h, "links", links, defaults["links"]);
  }
  json protect = current("protected_paths");
  std::vector<std::string> listed;
  for (const json& p : protect)
    if (p.is_string()) listed.push_back(p.get<std::string>());
  if (o.updater_dir) {
    const std::string store = *o.updater_dir + "/updater";
    SetKey(h, "daemon_store", store, defaults["daemon_store"]);
    SetKey(h, "daemon_binary", store + "/current/bin/decnet-updaterd", defaults["daemon_binary"]);
  }
  // SECURITY: the daemon's own store and state stay out of every unit's reach when moved.
  for (const auto* dir : {&o.updater_dir, &o.state_dir})
    if (*dir && !IsBeneathAny(**dir, listed)) {
      protect.push_back(**dir);
      listed.push_back(**dir);
    }
  SetKey(h, "protected_paths", protect, defaults["protected_paths"]);
}

void MergeDaemon(const EnrolOptions& o, const std::vector<std::string>& pins, json& d) {
  const json defaults = DaemonDefaults();
  if (o.listen_address) SetKey(d, "listen_address", *o.listen_address, defaults["listen_address"]);
  if (o.port) SetKey(d, "port", *o.port, defaults["port"]);
  if (o.install_dir) SetKey(d, "install_dir", *o.install_dir, defaults["install_dir"]);
  if (o.updater_dir) SetKey(d, "updater_dir", *o.updater_dir + "/updater", defaults["updater_dir"]);
  if (o.state_dir) SetKey(d, "state_dir", *o.state_dir, defaults["state_dir"]);
  if (!pins.empty()) SetKey(d, "master_pins", pins, defaults["master_pins"]);
  // Written even when it is the default: it records who the master is.
  if (o.master_cn) d["master_cn"] = *o.master_cn;
}

}  // namespace

Result<Configs> MergeConfigs(const EnrolOptions& options, const std::string& helper_text,
                             const std::string& daemon_text,
                             const std::vector<std::string>& master_pins) {
  auto helper = ReadObject(helper_text, std::string(kConfigDir) + "/helper.json");
  if (!helper) return tl::make_unexpected(helper.error());
  auto daemon = ReadObject(daemon_text, std::string(kConfigDir) + "/daemon.json");
  if (!daemon) return tl::make_unexpected(daemon.error());
  const json policy_defaults = json::parse(helper::PolicyToJson(helper::Policy::Defaults()));
  MergeHelper(options, policy_defaults, *helper);
  MergeDaemon(options, master_pins, *daemon);
  Configs out;
  out.helper_json = helper->dump(2) + "\n";
  out.daemon_json = daemon->dump(2) + "\n";
  auto policy = helper::ParsePolicy(out.helper_json);
  if (!policy) return tl::make_unexpected(policy.error());
  auto config = daemon::ParseDaemonConfig(out.daemon_json);
  if (!config) return tl::make_unexpected(config.error());
  out.policy = *policy;
  out.daemon = *config;
  return out;
}

bool SameJson(const std::string& a, const std::string& b) {
  auto x = strict_json::ParseObject(a, 8, strict_json::Comments::kIgnored);
  auto y = strict_json::ParseObject(b, 8, strict_json::Comments::kIgnored);
  return x && y && *x == *y;
}

const std::vector<std::string>& ShippedWritablePaths() {
  static const std::vector<std::string> kPaths = {
      "/etc/systemd/system",     "/usr/local/bin", "/var/lib/decnet-update-helper",
      "/var/lib/decnet-updater", "/opt/decnet",    "/opt/decnet-updater"};
  return kPaths;
}

std::vector<std::string> ExtraWritablePaths(const Configs& c) {
  std::string updater = c.daemon.updater_dir;
  if (updater.ends_with("/updater") && updater.size() > 9)
    updater = updater.substr(0, updater.size() - 8);
  std::vector<std::string> out;
  for (const std::string& dir : {c.daemon.install_dir, updater, c.daemon.state_dir,
                                 c.policy.unit_dir, c.policy.link_dir, c.policy.state_dir})
    if (!IsBeneathAny(dir, ShippedWritablePaths()) &&
        std::find(out.begin(), out.end(), dir) == out.end())
      out.push_back(dir);
  return out;
}

std::vector<std::string> DropInAddresses(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("IPAddressAllow=")) {
      std::istringstream words(line.substr(15));
      for (std::string w; words >> w;) out.push_back(w);
    }
  return out;
}

std::string RenderDropIn(const std::vector<std::string>& writable,
                         const std::vector<std::string>& addresses) {
  if (writable.empty() && addresses.empty()) return "";
  std::string out =
      "# Written by decnet-updater-enrol for this worker's layout and master. Run the command\n"
      "# again (it keeps what it is not told) rather than editing this file.\n"
      "[Service]\n";
  for (const std::string& w : writable) out += "ReadWritePaths=" + w + "\n";
  for (const std::string& a : addresses) out += "IPAddressAllow=" + a + "\n";
  return out;
}

std::optional<std::string> RuleAdminGroup(const std::string& rule_text) {
  static constexpr std::string_view kLine = "\n    var admin_group = \"";
  const size_t at = rule_text.find(kLine);
  if (at == std::string::npos) return std::nullopt;
  const size_t begin = at + kLine.size();
  const size_t end = rule_text.find("\";\n", begin);
  if (end == std::string::npos) return std::nullopt;
  std::string group = rule_text.substr(begin, end - begin);
  if (!IsAccountName(group)) return std::nullopt;
  return group;
}

std::string AdminGroup(const EnrolOptions& options, const std::string& rule_now) {
  if (options.admin_group) return *options.admin_group;
  return RuleAdminGroup(rule_now).value_or(polkit::PolkitRuleParams{}.admin_group);
}

Result<std::optional<std::string>> RenderRule(const EnrolOptions& options, const Configs& c,
                                              const std::string& rule_now) {
  polkit::PolkitRuleParams params;
  const polkit::PolkitRuleParams shipped;
  params.admin_group = AdminGroup(options, rule_now);
  params.unit_prefix = c.policy.unit_prefix;
  params.self_unit = c.policy.self_unit;
  params.never_users = {c.policy.daemon_user};
  for (const std::string& u : c.policy.unit_users) params.never_users.push_back(u);
  const bool fits =
      params.admin_group == shipped.admin_group && params.unit_prefix == shipped.unit_prefix &&
      params.self_unit == shipped.self_unit && params.never_users == shipped.never_users;
  if (fits) return std::optional<std::string>();
  auto rule = polkit::RenderPolkitRule(params);
  if (!rule) return tl::make_unexpected(rule.error());
  return std::optional<std::string>(*rule);
}

}  // namespace decnet::enrol
