// The command line of decnet-updater-enrol: what the operator asks for, parsed and checked
// for form before anything is looked at on the host. Options left out keep what the
// configuration files already say (or the defaults when there are none), so a second run with
// the same arguments, or a run that changes one thing, leaves the rest as it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::enrol {

// Where the TLS material comes from.
enum class TlsSource {
  kKeep,    // neither --create nor --from: what is in place must be complete and valid
  kCreate,  // --create: made here, for whatever is missing (or all of it with --rotate)
  kFrom,    // --from DIR: DIR/updater/{ca.crt,updater.crt,updater.key}, DIR/agent/{...}
};

enum class DryRun { kNo, kYes };

struct EnrolOptions {
  TlsSource tls = TlsSource::kKeep;
  std::string from_dir;                  // --from
  std::string ca_cert, ca_key;           // --ca-cert/--ca-key: sign with this CA (--create)
  std::vector<std::string> names;        // --name: DNS names of the updater (the first is its CN)
  std::vector<std::string> addresses;    // --address: IP addresses of the updater
  int days = 825;                        // --days: validity of the certificates made here
  std::vector<std::string> master_pins;  // --master-pin, normalised to 64 lower-case hex
  std::string master_cert;               // --master-cert: its pin is added to master_pins
  std::optional<std::string> master_cn;  // --master-cn: who the master is without a pin
  bool rotate = false;                   // --rotate: replace TLS material that is in place

  std::optional<std::string> install_dir;  // --install-dir (daemon: install_dir)
  std::optional<std::string> updater_dir;  // --updater-dir (daemon: updater_dir = DIR/updater)
  std::optional<std::string> state_dir;    // --state-dir (daemon: state_dir)
  std::optional<std::string> user, group;  // --user/--group: the daemon's
  std::optional<std::string> units_user, units_group;  // --units-user/--units-group
  std::optional<std::string> listen_address;           // --listen ADDR:PORT
  std::optional<uint16_t> port;
  std::vector<std::string> master_addresses;  // --master-address: IPAddressAllow= of the unit
  std::optional<std::string> admin_group;     // --admin-group: operators (the polkit rule)

  std::string root = "/";  // --root: operate beneath this directory (tests only)
  DryRun dry_run = DryRun::kNo;
  bool reload = true;  // --no-reload: do not run systemctl daemon-reload
};

// Parses argv[1..]. Refuses (kMalformed) with the rule naming what is wrong:
//   "enrol-usage"          an unknown option, a missing value, or --help;
//   "enrol-tls-source"     both --create and --from, or --ca-cert/--ca-key without --create or
//                          one without the other;
//   "enrol-path"           a path option that is not an absolute, normalised path;
//   "enrol-account-name"   a user or group name that is not [a-z_][a-z0-9_-]* (1..32), or root;
//   "enrol-listen"         --listen that is not IPv4:PORT or [IPv6]:PORT with PORT 1..65535;
//   "enrol-address"        an --address or --master-address that is not an IP address
//                          (--master-address may carry a /prefix);
//   "enrol-name"           a --name that is not a DNS name;
//   "enrol-master-pin"     a pin that is not 64 hex digits (':' separators and upper case are
//                          accepted and normalised);
//   "enrol-master-cn"      an empty or over-long --master-cn;
//   "enrol-days"           --days outside 1..3650.
[[nodiscard]] Result<EnrolOptions> ParseEnrolArgs(const std::vector<std::string>& args);

// The usage text.
std::string EnrolUsage();

// The checks ParseEnrolArgs applies, for the plan's own use on values read from files.
bool IsAccountName(const std::string& name);
bool IsIpAddress(const std::string& text);

}  // namespace decnet::enrol
