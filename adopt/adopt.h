// decnet-adopt: turns a worker laid out by DECNET's own updater into one managed by this
// updater, and back. Run as root by the operator; it reads only local files (DECNET's unit
// files, its release trees, the updater's configuration) and parses no network input.
//
// Adoption, in order (each step checks what is already done, so a second run, or a run after
// an interruption, finishes the job and changes nothing more):
//   1. check the layout: INSTALL/releases/active and INSTALL/current -> releases/active
//      (INSTALL/releases/prev and INSTALL/venv when present), no store of ours yet; every
//      decnet-*.service in the unit directory rewritten (unit_rewrite.h) and accepted by the
//      unit policy that will be written; the users exist; our updater unit file exists;
//   2. record in BACKUP/adoption.json what it will change (states, owners, modes, ACLs);
//   3. stop and disable DECNET's updater unit, stop DECNET's units;
//   4. move INSTALL/{releases,current,venv} into BACKUP/decnet/ (renamed, never deleted);
//      copy the unit files and configuration it replaces into BACKUP/;
//   5. write the daemon's and the helper's configuration (merged into files already there);
//   6. hand INSTALL to the daemon's user; import releases/prev then releases/active as that
//      user (`decnet-updaterd --import-release`): each gets its own environment;
//   7. move DECNET's updater unit file into BACKUP, write the rewritten units, daemon-reload;
//   8. point LINKDIR/decnet at INSTALL/current/.venv/bin/decnet;
//   9. let the daemon's user read its TLS bundle and the agent's client bundle (POSIX ACLs,
//      search on their directories), nothing else changed on those files;
//  10. restart the adopted units; enable and start the updater's own unit.
// `--undo` reverses each step from BACKUP/adoption.json: DECNET's trees, units, link, ACLs,
// configuration and its updater back as they were; the updater's store is moved into BACKUP.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace decnet::adopt {

struct AdoptOptions {
  std::string install_dir = "/opt/decnet";
  std::string unit_install_dir;  // the install dir as units see it; "" = install_dir
  std::string unit_dir = "/etc/systemd/system";
  std::string unit_root = "/";
  std::string link_dir = "/usr/local/bin";
  std::string etc_dir = "/etc/decnet";
  std::string config_dir = "/etc/decnet-updater";
  std::string backup_dir = "/var/lib/decnet-adopt";
  std::string daemon_binary;  // "" = the helper policy's daemon_binary
  std::string daemon_user = "decnet-updater";
  std::string units_user = "decnet";
  std::string units_group = "decnet";
  std::string updater_unit = "decnet-updater.service";
  std::string updater_unit_file = "/lib/systemd/system/decnet-updater.service";
  bool grant_docker = false;
  bool dry_run = false;
  bool undo = false;
  int unit_timeout_sec = 60;
};

// Parses the command line (see Usage()). Returns false, with a message in `error`, on an
// unknown option or a missing value.
bool ParseAdoptArgs(int argc, const char* const* argv, AdoptOptions* options, std::string* error);
std::string Usage();

// Runs the adoption (or --undo, or either as a --dry-run that prints the plan and changes
// nothing). Prints each step to `out`, refusals to `err` as "refused: MESSAGE [RULE]".
// Returns 0 on success, 1 on a refusal or failure.
int RunAdopt(const AdoptOptions& options, FILE* out, FILE* err);

}  // namespace decnet::adopt
