// Every field of the daemon's configuration as one JSON value, so tests compare two
// configurations whole (a parsed file against the built-in defaults, a documented default
// against the parser's) and list the keys a configuration has. A field added to DaemonConfig
// and not here leaves those comparisons blind to it: add it in this one place.
#pragma once

#include <nlohmann/json.hpp>

#include "daemon/config.h"

namespace decnet::test {

// The configuration's fields under their file keys ("probe" nested as in the file), plus
// trusted_keys_owner, which the daemon fills in and no file sets.
inline nlohmann::json DaemonConfigFields(const daemon::DaemonConfig& c) {
  nlohmann::json links = nlohmann::json::array();
  for (const daemon::LinkConfig& l : c.links) {
    links.push_back({{"name", l.name}, {"target", l.target}});
  }
  return {{"listen_address", c.listen_address},
          {"port", c.port},
          {"tls_ca", c.tls_ca},
          {"tls_cert", c.tls_cert},
          {"tls_key", c.tls_key},
          {"master_pins", c.master_pins},
          {"master_cn", c.master_cn},
          {"max_connections", c.max_connections},
          {"max_pending_connections", c.max_pending_connections},
          {"max_pending_per_source", c.max_pending_per_source},
          {"io_threads", c.io_threads},
          {"install_dir", c.install_dir},
          {"updater_dir", c.updater_dir},
          {"state_dir", c.state_dir},
          {"keep_releases", c.keep_releases},
          {"max_upload_bytes", c.max_upload_bytes},
          {"install_command", c.install_command},
          {"install_timeout_ms", c.install_timeout_ms},
          {"package_index", c.package_index},
          {"units", c.units},
          {"links", links},
          {"helper_policy", c.helper_policy},
          {"probe",
           {{"url", c.probe.url},
            {"ca", c.probe.ca},
            {"cert", c.probe.cert},
            {"key", c.probe.key},
            {"attempts", c.probe.attempts},
            {"interval_ms", c.probe.interval_ms},
            {"timeout_ms", c.probe.timeout_ms},
            {"check_version", c.probe.check_version}}},
          {"settle_ms", c.settle_ms},
          {"update_deadline_ms", c.update_deadline_ms},
          {"require_signature", c.require_signature},
          {"trusted_keys_dir", c.trusted_keys_dir},
          {"signature_threshold", c.signature_threshold},
          {"allow_downgrade", c.allow_downgrade},
          {"trusted_keys_owner", c.trusted_keys_owner}};
}

}  // namespace decnet::test
