// The daemon's configuration: a JSON file whose every key is optional and defaults to
// the value DECNET's own updater uses. Unknown keys, wrong types and invalid values are
// refused with an error naming the key.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::daemon {

// The agent health probe of the health gate.
struct ProbeConfig {
  std::string url = "https://127.0.0.1:8765/health";
  std::string ca = "/etc/decnet/agent/ca.crt";
  std::string cert = "/etc/decnet/agent/worker.crt";
  std::string key = "/etc/decnet/agent/worker.key";
  int attempts = 10;
  int interval_ms = 1000;
  int timeout_ms = 3000;
  bool check_version = false;  // the body's "version" must equal the release's version
};

// A link the update keeps pointing into the active release: LINK_DIR/name ->
// install_dir/current/target (target relative to the release root).
struct LinkConfig {
  std::string name;
  std::string target;
};

struct DaemonConfig {
  // --- API
  std::string listen_address = "0.0.0.0";
  uint16_t port = 8766;
  std::string tls_ca = "/etc/decnet/updater/ca.crt";
  std::string tls_cert = "/etc/decnet/updater/updater.crt";
  std::string tls_key = "/etc/decnet/updater/updater.key";
  std::vector<std::string> master_pins;     // SHA-256 fingerprints of the master's DER leaf
  std::string master_cn = "decnet-master";  // used only when master_pins is empty
  int max_connections = 512;                // authenticated clients other than the master
  // Connections before a completed TLS handshake: in all, and from one IPv4 address or
  // IPv6 /64. Over either, the oldest such connection is shed for the newcomer. Each is
  // 1..65536. A per-source cap written over the total is refused (rule
  // "config-pending-per-source"); one left unset is lowered to a smaller total.
  int max_pending_connections = 256;
  int max_pending_per_source = 16;
  int io_threads = 2;
  // --- releases
  std::string install_dir = "/opt/decnet";
  std::string updater_dir = "/opt/decnet-updater/updater";  // the daemon's own release store
  std::string state_dir = "/var/lib/decnet-updater";        // spool, journal, audit log
  int keep_releases = 3;
  uint64_t max_upload_bytes = 1ull << 30;
  std::vector<std::string> install_command;  // argv template; empty: nothing to install
  int install_timeout_ms = 120'000;
  // A simple package index (http:// or https:// URL) the built-in Python installer may reach
  // for what the wheelhouse lacks; empty: air-gapped, every requirement must be in it.
  std::string package_index;
  // --- units and links
  std::vector<std::string> units = {"decnet-agent.service", "decnet-forwarder.service",
                                    "decnet-collector.service", "decnet-prober.service",
                                    "decnet-sniffer.service"};  // restart order; first required
  std::vector<LinkConfig> links = {{"decnet", ".venv/bin/decnet"}};  // the release's own env
  std::string helper_policy = "/etc/decnet-updater/helper.json";
  // --- health gate and deadlines
  ProbeConfig probe;
  int settle_ms = 3000;              // units must stay active with no restarts this long
  int update_deadline_ms = 150'000;  // every update answers within this
  // --- release authenticity and the never-older floor (daemon/release_guard.h)
  bool require_signature = false;  // refuse a release without a descriptor signed by enough keys
  // The `*.pub` Ed25519 keys trusted to sign releases, read again for every upload so a key
  // rotation needs no restart. Root-owned, writable by nobody else.
  std::string trusted_keys_dir = "/etc/decnet-updater/trusted-keys";
  int signature_threshold = 1;   // how many distinct trusted keys must sign (1..16)
  bool allow_downgrade = false;  // honour a push's downgrade=true below the version floor
  // Not a configuration key (never read from JSON): the owner the trusted keys and their
  // directory must have. Root in production; only tests set their own uid here.
  uid_t trusted_keys_owner = 0;

  static DaemonConfig Defaults() { return {}; }
};

// Parses the configuration's JSON text (kMalformed, rule "config-*", naming the key). `//` and
// `/* */` comments are read as white space; duplicate keys and nesting deeper than four are
// refused (rule "config-json").
[[nodiscard]] Result<DaemonConfig> ParseDaemonConfig(std::string_view json_text);

// Loads the file at `path`; a missing file gives the defaults.
[[nodiscard]] Result<DaemonConfig> LoadDaemonConfig(const std::string& path);

}  // namespace decnet::daemon
