// A release tarball on the master's disk, with what travels beside it: its descriptor
// (FILE.tgz.manifest.json) and signature lines (FILE.tgz.manifest.json.sig), both optional.
// Read once before a rollout; the tarball itself is streamed from disk for each host.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::fleet {

struct ReleaseFile {
  std::string path;
  std::string file_name;  // the last path component, sent as the part's filename
  std::uint64_t size = 0;
  std::string sha256;                     // computed here, 64 lower-case hex
  std::optional<std::string> descriptor;  // its exact bytes
  std::vector<std::string> signatures;    // one line each, without the newline
  std::string version;  // the descriptor's, else the tarball's manifest's; "" when neither
  std::string kind;     // "service" | "updater" | "" (no descriptor, no manifest)
  std::string commit;   // the descriptor's commit, when it names one
  std::vector<std::string> units;  // unit files the tarball ships under etc/systemd/system/
  // Whether the tarball has etc/systemd/system/ at all: a release without it leaves the
  // installed units alone, one with it (even empty) replaces them.
  bool ships_unit_dir = false;
};

// Reads `path` (hashing it in chunks), its descriptor and signatures when present, and
// lists the tarball's entries (libarchive) for its manifest and units. Refuses (kDenied):
// a descriptor that does not parse (its rule) or does not name this tarball's digest and
// size ("descriptor-mismatch"); a bad signature line (its rule) or more than 16
// ("signature-count"); an unreadable file or archive ("release-file").
[[nodiscard]] Result<ReleaseFile> LoadReleaseFile(const std::string& path);

// The release as the JSON report shows it: {"path","sha256","size","version","kind",
// "signed","units"}.
nlohmann::json ReleaseFileJson(const ReleaseFile& release);

// The units a tarball ships: regular entries directly under etc/systemd/system/ named
// *.service, *.socket, *.timer, *.path, *.target, *.mount, *.slice; sorted. Also returns the
// tarball's `.decnet-release.json` bytes when it has one (at most 4096 bytes read).
struct TarballListing {
  std::vector<std::string> units;
  bool unit_dir = false;  // any entry at or beneath etc/systemd/system/
  std::optional<std::string> manifest;
};
[[nodiscard]] Result<TarballListing> ListTarball(const std::string& path);

}  // namespace decnet::fleet
