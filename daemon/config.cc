#include "daemon/config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet::daemon {
namespace {

using nlohmann::json;

Error Bad(const std::string& rule, const std::string& key, const std::string& what) {
  return Error{ErrorCode::kMalformed, rule, "configuration key \"" + key + "\" " + what};
}

// One setter per key: checks the JSON type and the value, stores it.
using Setter = std::function<Result<void>(const json&, const std::string&, DaemonConfig&)>;

Setter String(std::string DaemonConfig::*field, bool (*valid)(const std::string&),
              const char* what) {
  return [=](const json& v, const std::string& key, DaemonConfig& c) -> Result<void> {
    if (!v.is_string()) return tl::make_unexpected(Bad("config-type", key, "must be a string"));
    std::string s = v.get<std::string>();
    if (!valid(s))
      return tl::make_unexpected(Bad("config-value", key, std::string("must be ") + what));
    c.*field = std::move(s);
    return {};
  };
}

template <typename Int>
Setter Integer(Int DaemonConfig::*field, int64_t min, int64_t max) {
  return [=](const json& v, const std::string& key, DaemonConfig& c) -> Result<void> {
    if (!v.is_number_integer()) {
      return tl::make_unexpected(Bad("config-type", key, "must be an integer"));
    }
    int64_t n = v.get<int64_t>();
    if (n < min || n > max) {
      return tl::make_unexpected(
          Bad("config-value", key,
              "must be between " + std::to_string(min) + " and " + std::to_string(max)));
    }
    c.*field = static_cast<Int>(n);
    return {};
  };
}

Setter Boolean(bool DaemonConfig::*field) {
  return [=](const json& v, const std::string& key, DaemonConfig& c) -> Result<void> {
    if (!v.is_boolean()) return tl::make_unexpected(Bad("config-type", key, "must be a boolean"));
    c.*field = v.get<bool>();
    return {};
  };
}

Result<std::vector<std::string>> Strings(const json& v, const std::string& key,
                                         bool (*valid)(const std::string&), const char* what) {
  if (!v.is_array())
    return tl::make_unexpected(Bad("config-type", key, "must be a list of strings"));
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string())
      return tl::make_unexpected(Bad("config-type", key, "must be a list of strings"));
    if (!valid(e.get<std::string>())) {
      return tl::make_unexpected(Bad("config-value", key, std::string("entries must be ") + what));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Setter StringList(std::vector<std::string> DaemonConfig::*field, bool (*valid)(const std::string&),
                  const char* what) {
  return [=](const json& v, const std::string& key, DaemonConfig& c) -> Result<void> {
    auto list = Strings(v, key, valid, what);
    if (!list) return tl::make_unexpected(list.error());
    c.*field = std::move(*list);
    return {};
  };
}

bool IsAbsolute(const std::string& s) { return AbsPath::Parse(s).has_value(); }
bool IsNonEmpty(const std::string& s) { return !s.empty() && s.size() <= 4096; }
bool IsUnit(const std::string& s) { return UnitName::Parse(s).has_value(); }
bool IsFingerprint(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}
bool IsHttpsUrl(const std::string& s) { return s.starts_with("https://") && s.size() < 2048; }
// Empty, or an http(s) URL with a host (the Python installer reads its port).
bool IsIndexUrl(const std::string& s) {
  if (s.empty()) return true;
  if (s.size() >= 2048 || s.find_first_of(" \t\r\n{}") != std::string::npos) return false;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (s.starts_with(scheme) && s.size() > scheme.size() && s[scheme.size()] != '/') return true;
  }
  return false;
}
// A path inside a release: relative, normalised, no "..".
bool IsReleaseRelative(const std::string& s) {
  return !s.empty() && s.front() != '/' && AbsPath::Parse("/" + s).has_value();
}

Result<void> ParseLinks(const json& v, const std::string& key, DaemonConfig& c) {
  if (!v.is_array()) return tl::make_unexpected(Bad("config-type", key, "must be a list"));
  c.links.clear();
  for (const json& item : v) {
    if (!item.is_object()) {
      return tl::make_unexpected(Bad("config-type", key, "entries are {\"name\",\"target\"}"));
    }
    strict_json::StrictObject obj(item, key);
    auto name = obj.String("name");
    auto target = obj.String("target");
    if (!obj.Finish() || !name || !target) {
      return tl::make_unexpected(Bad("config-type", key, "entries are {\"name\",\"target\"}"));
    }
    if (!LinkName::Parse(*name) || !IsReleaseRelative(*target)) {
      return tl::make_unexpected(
          Bad("config-value", key, "needs a link name and a path relative to the release"));
    }
    c.links.push_back({*name, *target});
  }
  return {};
}

Result<void> ParseProbe(const json& v, const std::string& key, DaemonConfig& c) {
  if (!v.is_object()) return tl::make_unexpected(Bad("config-type", key, "must be an object"));
  for (const auto& [k, item] : v.items()) {
    const std::string sub = key + "." + k;
    ProbeConfig& p = c.probe;
    if (k == "url" || k == "ca" || k == "cert" || k == "key") {
      bool url = k == "url";
      if (!item.is_string() || !(url ? IsHttpsUrl : IsAbsolute)(item.get<std::string>())) {
        return tl::make_unexpected(
            Bad("config-value", sub, url ? "must be an https:// URL" : "must be an absolute path"));
      }
      (k == "url"    ? p.url
       : k == "ca"   ? p.ca
       : k == "cert" ? p.cert
                     : p.key) = item.get<std::string>();
    } else if (k == "attempts" || k == "interval_ms" || k == "timeout_ms") {
      if (!item.is_number_integer() || item.get<int64_t>() < 1 || item.get<int64_t>() > 600'000) {
        return tl::make_unexpected(Bad("config-value", sub, "must be an integer from 1 to 600000"));
      }
      (k == "attempts"      ? p.attempts
       : k == "interval_ms" ? p.interval_ms
                            : p.timeout_ms) = static_cast<int>(item.get<int64_t>());
    } else if (k == "check_version") {
      if (!item.is_boolean())
        return tl::make_unexpected(Bad("config-type", sub, "must be a boolean"));
      p.check_version = item.get<bool>();
    } else {
      return tl::make_unexpected(Bad("config-unknown-key", sub, "is not a configuration key"));
    }
  }
  return {};
}

const std::map<std::string, Setter>& Setters() {
  static const std::map<std::string, Setter> kSetters = {
      {"listen_address", String(&DaemonConfig::listen_address, IsNonEmpty, "an address")},
      {"port", Integer(&DaemonConfig::port, 1, 65535)},
      {"tls_ca", String(&DaemonConfig::tls_ca, IsAbsolute, "an absolute path")},
      {"tls_cert", String(&DaemonConfig::tls_cert, IsAbsolute, "an absolute path")},
      {"tls_key", String(&DaemonConfig::tls_key, IsAbsolute, "an absolute path")},
      {"master_pins", StringList(&DaemonConfig::master_pins, IsFingerprint,
                                 "64 lower-case hex digits (SHA-256 of the DER certificate)")},
      {"master_cn", String(&DaemonConfig::master_cn, IsNonEmpty, "a common name")},
      {"max_connections", Integer(&DaemonConfig::max_connections, 1, 65536)},
      {"max_pending_connections", Integer(&DaemonConfig::max_pending_connections, 1, 65536)},
      {"max_pending_per_source", Integer(&DaemonConfig::max_pending_per_source, 1, 65536)},
      {"io_threads", Integer(&DaemonConfig::io_threads, 1, 16)},
      {"install_dir", String(&DaemonConfig::install_dir, IsAbsolute, "an absolute path")},
      {"updater_dir", String(&DaemonConfig::updater_dir, IsAbsolute, "an absolute path")},
      {"state_dir", String(&DaemonConfig::state_dir, IsAbsolute, "an absolute path")},
      {"keep_releases", Integer(&DaemonConfig::keep_releases, 2, 100)},
      {"max_upload_bytes", Integer(&DaemonConfig::max_upload_bytes, 1, int64_t{1} << 40)},
      {"install_command", StringList(&DaemonConfig::install_command, IsNonEmpty, "non-empty")},
      {"install_timeout_ms", Integer(&DaemonConfig::install_timeout_ms, 1, 3'600'000)},
      {"package_index",
       String(&DaemonConfig::package_index, IsIndexUrl, "empty or an http:// or https:// URL")},
      {"units", StringList(&DaemonConfig::units, IsUnit, "unit names")},
      {"links", ParseLinks},
      {"helper_policy", String(&DaemonConfig::helper_policy, IsAbsolute, "an absolute path")},
      {"probe", ParseProbe},
      {"settle_ms", Integer(&DaemonConfig::settle_ms, 0, 600'000)},
      {"update_deadline_ms", Integer(&DaemonConfig::update_deadline_ms, 1000, 3'600'000)},
      {"require_signature", Boolean(&DaemonConfig::require_signature)},
      {"trusted_keys_dir", String(&DaemonConfig::trusted_keys_dir, IsAbsolute, "an absolute path")},
      {"signature_threshold", Integer(&DaemonConfig::signature_threshold, 1, 16)},
      {"allow_downgrade", Boolean(&DaemonConfig::allow_downgrade)},
  };
  return kSetters;
}

}  // namespace

Result<DaemonConfig> ParseDaemonConfig(std::string_view json_text) {
  // Comments (the shipped file explains each key) are white space; duplicate keys and depth
  // are refused as on the wire.
  auto parsed = strict_json::ParseObject(json_text, 4, strict_json::Comments::kIgnored);
  if (!parsed) {
    return Fail(ErrorCode::kMalformed, "config-json", "configuration: " + parsed.error().message);
  }
  DaemonConfig config;
  for (const auto& [key, value] : parsed->items()) {
    auto setter = Setters().find(key);
    if (setter == Setters().end()) {
      return tl::make_unexpected(Bad("config-unknown-key", key, "is not a configuration key"));
    }
    if (auto ok = setter->second(value, key, config); !ok) return tl::make_unexpected(ok.error());
  }
  if (config.units.empty()) {
    return tl::make_unexpected(
        Bad("config-value", "units", "must name at least the required unit"));
  }
  // Checked once every key is read, so the order of the keys does not matter. A per-source
  // cap left unset follows a smaller total down; one that was written must fit inside it.
  if (config.max_pending_per_source > config.max_pending_connections) {
    if (!parsed->contains("max_pending_per_source")) {
      config.max_pending_per_source = config.max_pending_connections;
    } else {
      return tl::make_unexpected(Bad("config-pending-per-source", "max_pending_per_source",
                                     "(" + std::to_string(config.max_pending_per_source) +
                                         ") must not exceed max_pending_connections (" +
                                         std::to_string(config.max_pending_connections) + ")"));
    }
  }
  return config;
}

Result<DaemonConfig> LoadDaemonConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return DaemonConfig::Defaults();
    return Fail(ErrorCode::kFailed, "config-read", path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto config = ParseDaemonConfig(text.str());
  if (!config) {
    config.error().message = path + ": " + config.error().message;
  }
  return config;
}

}  // namespace decnet::daemon
