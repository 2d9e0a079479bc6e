// The workers a push, status or rollback talks to: our inventory file, or DECNET's own host
// list (the JSON of its swarm controller's `GET /swarm/hosts`). Every target carries the
// pinned SHA-256 fingerprint of its updater's certificate: a host without one is refused,
// never contacted unpinned.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace decnet::fleet {

// One worker's updater.
struct Target {
  std::string name;         // 1..64 of [A-Za-z0-9._-], unique in its inventory
  std::string address;      // an IP address or a DNS name, 1..253 printable, no spaces
  std::uint16_t port = 0;   // 1..65535
  std::string fingerprint;  // 64 lower-case hex: SHA-256 of the updater's DER certificate
};

// DECNET's updater port, used for its host list (its hosts carry only the agent's port).
inline constexpr std::uint16_t kDecnetUpdaterPort = 8766;

// Parses our inventory: {"hosts":[{"name","address","port","fingerprint"}...]}, nothing else.
// Refuses (kMalformed): not JSON or another shape ("inventory-json"); an unknown key at either
// level ("inventory-unknown-key"); per host, a missing or invalid field ("inventory-name",
// "inventory-address", "inventory-port", "inventory-fingerprint": 64 lower-case hex only);
// two hosts of one name ("inventory-duplicate"); no host at all ("inventory-empty").
[[nodiscard]] Result<std::vector<Target>> ParseInventory(std::string_view text);

// A pins file for DECNET's host list: {"<name>":"<fingerprint>", ...}. Refuses anything else
// ("pins-json", "pins-name", "pins-fingerprint").
using Pins = std::map<std::string, std::string, std::less<>>;
[[nodiscard]] Result<Pins> ParsePins(std::string_view text);

// Parses DECNET's `GET /swarm/hosts` answer: a JSON array of host views, of which the fields
// `name`, `address`, `status` and, in newer masters, `updater_cert_fingerprint` are read (other
// fields are ignored; a host's `uuid` is accepted as another name for --host only through
// `aliases`). Hosts whose status is "decommissioned" are left out. The port is
// `updater_port` for every host. The fingerprint comes from `pins` (by name) or from the
// host's `updater_cert_fingerprint`; DECNET writes both as hex, upper- or lower-case, with
// or without ':' separators, normalised here to 64 lower-case hex. When both are present and
// differ, or neither is, the host is refused ("inventory-fingerprint", naming the host): a
// host is never reached unpinned. Other refusals as ParseInventory.
struct DecnetHosts {
  std::vector<Target> targets;
  std::map<std::string, std::string, std::less<>> aliases;  // uuid -> name
};
[[nodiscard]] Result<DecnetHosts> ParseDecnetHosts(std::string_view text, const Pins& pins,
                                                   std::uint16_t updater_port);

// The targets named by `names` (each must exist: "inventory-unknown-host"; a name given twice
// counts once), in the inventory's order, or every target when `all`. `aliases` maps other
// accepted names (DECNET's uuids) to names.
[[nodiscard]] Result<std::vector<Target>> SelectTargets(
    const std::vector<Target>& inventory, const std::vector<std::string>& names, bool all,
    const std::map<std::string, std::string, std::less<>>& aliases = {});

// Normalises a fingerprint written as hex (any case, optional ':' between bytes) to 64
// lower-case hex; an empty string when it is not 32 bytes of hex.
std::string NormaliseFingerprint(std::string_view text);

// True for 64 lower-case hex digits.
bool IsFingerprint(std::string_view text);

}  // namespace decnet::fleet
