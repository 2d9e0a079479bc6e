#include "fleet/inventory.h"

#include <algorithm>
#include <set>

#include "proto/json_strict.h"

namespace decnet::fleet {

using nlohmann::json;

namespace {

tl::unexpected<Error> Bad(std::string rule, std::string message) {
  return Fail(ErrorCode::kMalformed, std::move(rule), std::move(message));
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// An IP literal or a DNS name: printable ASCII without spaces, slashes or '@' (nothing that
// could turn the address into a URL with another host in it). IPv6 literals are bare.
bool ValidAddress(std::string_view address) {
  if (address.empty() || address.size() > 253) return false;
  return std::all_of(address.begin(), address.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '_';
  });
}

std::string Quoted(std::string_view text) {
  std::string out = "'";
  for (char c : text.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out + "'";
}

// Reads the "name" and "address" of host entry `h` (`where` in messages) into `t`; refuses a
// missing or invalid one.
Result<void> ReadNameAndAddress(const json& h, const std::string& where, Target& t) {
  auto name = h.find("name");
  if (name == h.end() || !name->is_string() || !ValidName(name->get<std::string>()))
    return Bad("inventory-name", where + ": \"name\" must be 1..64 of [A-Za-z0-9._-]");
  t.name = name->get<std::string>();
  auto address = h.find("address");
  if (address == h.end() || !address->is_string() || !ValidAddress(address->get<std::string>()))
    return Bad("inventory-address",
               "host " + Quoted(t.name) + ": \"address\" must be an IP address or DNS name");
  t.address = address->get<std::string>();
  return {};
}

}  // namespace

bool IsFingerprint(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), IsLowerHex);
}

std::string NormaliseFingerprint(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ':') {
      // Separators only between byte pairs.
      if (out.empty() || out.size() % 2 != 0 || i + 1 == text.size()) return "";
      continue;
    }
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!IsLowerHex(c)) return "";
    out += c;
  }
  return IsFingerprint(out) ? out : "";
}

Result<std::vector<Target>> ParseInventory(std::string_view text) {
  auto root = strict_json::ParseObject(text, 4);
  if (!root)
    return Bad("inventory-json", "the inventory is not one JSON object: " + root.error().message);
  strict_json::StrictObject top(*root, "inventory");
  const json* hosts = top.Array("hosts");
  if (auto done = top.Finish(); !done) {
    const bool unknown = done.error().rule.find("unknown") != std::string::npos;
    return Bad(unknown ? "inventory-unknown-key" : "inventory-json", done.error().message);
  }
  if (hosts == nullptr) return Bad("inventory-json", "the inventory has no \"hosts\" array");
  if (hosts->empty()) return Bad("inventory-empty", "the inventory names no host");

  std::vector<Target> out;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < hosts->size(); ++i) {
    const json& h = (*hosts)[i];
    const std::string where = "host #" + std::to_string(i + 1);
    if (!h.is_object()) return Bad("inventory-json", where + " is not an object");
    for (const auto& [key, value] : h.items()) {
      if (key != "name" && key != "address" && key != "port" && key != "fingerprint")
        return Bad("inventory-unknown-key", where + " has an unknown key " + Quoted(key));
    }
    Target t;
    if (auto named = ReadNameAndAddress(h, where, t); !named)
      return tl::make_unexpected(named.error());
    const std::string who = "host " + Quoted(t.name);
    auto port = h.find("port");
    if (port == h.end() || !port->is_number_unsigned() || port->get<uint64_t>() == 0 ||
        port->get<uint64_t>() > 65535)
      return Bad("inventory-port", who + ": \"port\" must be an integer 1..65535");
    t.port = static_cast<std::uint16_t>(port->get<uint64_t>());
    auto fp = h.find("fingerprint");
    if (fp == h.end() || !fp->is_string() || !IsFingerprint(fp->get<std::string>()))
      return Bad("inventory-fingerprint",
                 who +
                     ": \"fingerprint\" must be 64 lower-case hex digits (SHA-256 of the "
                     "updater's DER certificate)");
    t.fingerprint = fp->get<std::string>();
    if (!names.insert(t.name).second) return Bad("inventory-duplicate", who + " is named twice");
    out.push_back(std::move(t));
  }
  return out;
}

Result<Pins> ParsePins(std::string_view text) {
  auto root = strict_json::ParseObject(text, 2);
  if (!root)
    return Bad("pins-json", "the pins file is not one JSON object: " + root.error().message);
  Pins pins;
  for (const auto& [name, value] : root->items()) {
    if (!ValidName(name)) return Bad("pins-name", "pin for an invalid host name " + Quoted(name));
    std::string fp = value.is_string() ? NormaliseFingerprint(value.get<std::string>()) : "";
    if (fp.empty())
      return Bad("pins-fingerprint", "the pin of " + Quoted(name) + " is not a SHA-256 in hex");
    pins.emplace(name, std::move(fp));
  }
  return pins;
}

Result<DecnetHosts> ParseDecnetHosts(std::string_view text, const Pins& pins,
                                     std::uint16_t updater_port) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_array())
    return Bad("inventory-json", "DECNET's host list is not a JSON array");
  if (updater_port == 0) return Bad("inventory-port", "the updater port must be 1..65535");
  DecnetHosts out;
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < root.size(); ++i) {
    const json& h = root[i];
    const std::string where = "host #" + std::to_string(i + 1);
    if (!h.is_object()) return Bad("inventory-json", where + " is not an object");
    auto status = h.find("status");
    if (status != h.end() && status->is_string() && *status == "decommissioned") continue;
    Target t;
    if (auto named = ReadNameAndAddress(h, where, t); !named)
      return tl::make_unexpected(named.error());
    const std::string who = "host " + Quoted(t.name);
    t.port = updater_port;

    std::string listed;
    auto fp = h.find("updater_cert_fingerprint");
    if (fp != h.end() && !fp->is_null()) {
      listed = fp->is_string() ? NormaliseFingerprint(fp->get<std::string>()) : "";
      if (listed.empty())
        return Bad("inventory-fingerprint",
                   who + ": \"updater_cert_fingerprint\" is not a SHA-256 in hex");
    }
    auto pinned = pins.find(t.name);
    // SECURITY: a host is reached only under a pin; two sources that disagree are a
    // tampered list or a stale pin, and neither is trusted over the other.
    if (pinned != pins.end() && !listed.empty() && pinned->second != listed)
      return Bad("inventory-fingerprint",
                 who + ": the pins file and DECNET's host list name different fingerprints");
    if (pinned != pins.end())
      t.fingerprint = pinned->second;
    else if (!listed.empty())
      t.fingerprint = listed;
    else
      return Bad("inventory-fingerprint",
                 who + " has no updater fingerprint: give it in --pins FILE ({\"" + t.name +
                     "\":\"<sha256 of the updater's DER certificate>\"})");
    if (!names.insert(t.name).second) return Bad("inventory-duplicate", who + " is named twice");
    auto uuid = h.find("uuid");
    if (uuid != h.end() && uuid->is_string()) out.aliases.emplace(uuid->get<std::string>(), t.name);
    out.targets.push_back(std::move(t));
  }
  if (out.targets.empty()) return Bad("inventory-empty", "DECNET's host list names no live host");
  return out;
}

Result<std::vector<Target>> SelectTargets(
    const std::vector<Target>& inventory, const std::vector<std::string>& names, bool all,
    const std::map<std::string, std::string, std::less<>>& aliases) {
  if (all) return inventory;
  std::set<std::string, std::less<>> wanted;
  for (const std::string& n : names) {
    std::string name = n;
    if (auto alias = aliases.find(n); alias != aliases.end()) name = alias->second;
    const bool known = std::any_of(inventory.begin(), inventory.end(),
                                   [&](const Target& t) { return t.name == name; });
    if (!known)
      return Fail(ErrorCode::kNotFound, "inventory-unknown-host",
                  "no host " + Quoted(n) + " in the inventory");
    wanted.insert(name);
  }
  std::vector<Target> out;
  for (const Target& t : inventory)
    if (wanted.contains(t.name)) out.push_back(t);
  return out;
}

}  // namespace decnet::fleet
