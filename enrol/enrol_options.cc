#include "enrol/enrol_options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "proto/values.h"

namespace decnet::enrol {
namespace {

tl::unexpected<Error> Bad(const std::string& rule, const std::string& message) {
  return Fail(ErrorCode::kMalformed, rule, message);
}

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const bool ok = std::islower(static_cast<unsigned char>(c)) ||
                    std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && label > 0);
    if (!ok || ++label > 63) return false;
  }
  return s.back() != '-';
}

// An IP address, optionally with a /prefix within the family's width.
bool IsIpOrPrefix(const std::string& text) {
  const size_t slash = text.find('/');
  const std::string ip = text.substr(0, slash);
  if (!IsIpAddress(ip)) return false;
  if (slash == std::string::npos) return true;
  const std::string bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  return std::stoi(bits) <= (ip.find(':') == std::string::npos ? 32 : 128);
}

Result<std::string> NormalisePin(const std::string& text) {
  std::string pin;
  for (char c : text) {
    if (c == ':') continue;
    pin += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (pin.size() != 64 || !std::all_of(pin.begin(), pin.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      }))
    return Bad("enrol-master-pin",
               "--master-pin takes a SHA-256 fingerprint: 64 hex digits, got '" + text + "'");
  return pin;
}

Result<void> ParseListen(const std::string& text, EnrolOptions& o) {
  std::string host, port;
  if (text.starts_with("[")) {
    const size_t close = text.find("]:");
    if (close == std::string::npos) return Bad("enrol-listen", "--listen [IPv6]:PORT: " + text);
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string::npos) host.clear();
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos) return Bad("enrol-listen", "--listen ADDR:PORT: " + text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) host.clear();
  }
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (host.empty() || !IsIpAddress(host) || !digits || std::stoi(port) < 1 ||
      std::stoi(port) > 65535)
    return Bad("enrol-listen",
               "--listen takes IPv4:PORT or [IPv6]:PORT with PORT 1..65535, got '" + text + "'");
  o.listen_address = host;
  o.port = static_cast<uint16_t>(std::stoi(port));
  return {};
}

Result<std::string> PathValue(const std::string& option, const std::string& value) {
  if (!AbsPath::Parse(value))
    return Bad("enrol-path", option + " takes an absolute, normalised path, got '" + value + "'");
  return value;
}

Result<std::string> AccountValue(const std::string& option, const std::string& value) {
  if (!IsAccountName(value))
    return Bad(
        "enrol-account-name",
        option + " takes a non-root user or group name [a-z_][a-z0-9_-]*, got '" + value + "'");
  return value;
}

}  // namespace

bool IsAccountName(const std::string& name) {
  if (name.empty() || name.size() > 32 || name == "root") return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool IsIpAddress(const std::string& text) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, text.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::string EnrolUsage() {
  return "usage: decnet-updater-enrol [--help] [--dry-run] [--no-reload]\n"
         "         [--create [--ca-cert FILE --ca-key FILE] | --from DIR] [--rotate]\n"
         "         [--name DNS]... [--address IP]... [--days N]\n"
         "         [--master-cert FILE | --master-pin SHA256]... [--master-cn NAME]\n"
         "         [--install-dir DIR] [--updater-dir DIR] [--state-dir DIR]\n"
         "         [--user USER] [--group GROUP] [--units-user USER] [--units-group GROUP]\n"
         "         [--listen ADDR:PORT] [--master-address IP[/PREFIX]]... [--admin-group GROUP]\n"
         "         [--root DIR (tests only)]\n";
}

Result<EnrolOptions> ParseEnrolArgs(const std::vector<std::string>& args) {
  EnrolOptions o;
  bool create = false;
  using Take = std::function<Result<void>(const std::string&, const std::string&)>;
  auto path_into = [](std::optional<std::string>* field) -> Take {
    return [field](const std::string& opt, const std::string& v) -> Result<void> {
      auto p = PathValue(opt, v);
      if (!p) return tl::make_unexpected(p.error());
      *field = *p;
      return {};
    };
  };
  auto file_into = [](std::string* field) -> Take {
    return [field](const std::string& opt, const std::string& v) -> Result<void> {
      auto p = PathValue(opt, v);
      if (!p) return tl::make_unexpected(p.error());
      *field = *p;
      return {};
    };
  };
  auto account_into = [](std::optional<std::string>* field) -> Take {
    return [field](const std::string& opt, const std::string& v) -> Result<void> {
      auto a = AccountValue(opt, v);
      if (!a) return tl::make_unexpected(a.error());
      *field = *a;
      return {};
    };
  };
  const std::map<std::string, Take> values = {
      {"--from", file_into(&o.from_dir)},
      {"--ca-cert", file_into(&o.ca_cert)},
      {"--ca-key", file_into(&o.ca_key)},
      {"--master-cert", file_into(&o.master_cert)},
      {"--root", file_into(&o.root)},
      {"--install-dir", path_into(&o.install_dir)},
      {"--updater-dir", path_into(&o.updater_dir)},
      {"--state-dir", path_into(&o.state_dir)},
      {"--user", account_into(&o.user)},
      {"--group", account_into(&o.group)},
      {"--units-user", account_into(&o.units_user)},
      {"--units-group", account_into(&o.units_group)},
      {"--admin-group", account_into(&o.admin_group)},
      {"--listen", [&o](const std::string&, const std::string& v) { return ParseListen(v, o); }},
      {"--name",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         if (!IsDnsName(v)) return Bad("enrol-name", "--name takes a DNS name, got '" + v + "'");
         o.names.push_back(v);
         return {};
       }},
      {"--address",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         if (!IsIpAddress(v))
           return Bad("enrol-address", "--address takes an IP address, got '" + v + "'");
         o.addresses.push_back(v);
         return {};
       }},
      {"--master-address",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         if (!IsIpOrPrefix(v))
           return Bad("enrol-address",
                      "--master-address takes an IP address or IP/PREFIX, got '" + v + "'");
         o.master_addresses.push_back(v);
         return {};
       }},
      {"--master-pin",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         auto pin = NormalisePin(v);
         if (!pin) return tl::make_unexpected(pin.error());
         o.master_pins.push_back(*pin);
         return {};
       }},
      {"--master-cn",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         if (v.empty() || v.size() > 64)
           return Bad("enrol-master-cn", "--master-cn takes a common name of 1..64 bytes");
         o.master_cn = v;
         return {};
       }},
      {"--days",
       [&o](const std::string&, const std::string& v) -> Result<void> {
         const bool digits =
             !v.empty() && v.size() <= 4 &&
             std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
         if (!digits || std::stoi(v) < 1 || std::stoi(v) > 3650)
           return Bad("enrol-days", "--days takes 1..3650, got '" + v + "'");
         o.days = std::stoi(v);
         return {};
       }},
  };
  const std::map<std::string, std::function<void()>> flags = {
      {"--create", [&] { create = true; }},
      {"--rotate", [&] { o.rotate = true; }},
      {"--dry-run", [&] { o.dry_run = DryRun::kYes; }},
      {"--no-reload", [&] { o.reload = false; }},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (auto f = flags.find(arg); f != flags.end()) {
      f->second();
      continue;
    }
    const auto v = values.find(arg);
    if (v == values.end()) return Bad("enrol-usage", "unknown option: " + arg);
    if (i + 1 >= args.size()) return Bad("enrol-usage", arg + " needs a value");
    if (auto ok = v->second(arg, args[++i]); !ok) return tl::make_unexpected(ok.error());
  }
  if (create && !o.from_dir.empty())
    return Bad("enrol-tls-source", "--create and --from exclude each other");
  if ((o.ca_cert.empty() != o.ca_key.empty()) || (!o.ca_cert.empty() && !create))
    return Bad("enrol-tls-source", "--ca-cert and --ca-key go together, and only with --create");
  o.tls = create ? TlsSource::kCreate : !o.from_dir.empty() ? TlsSource::kFrom : TlsSource::kKeep;
  return o;
}

}  // namespace decnet::enrol
