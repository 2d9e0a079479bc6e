// What `decnet-rollout pack` takes from a tree: an allow-list of paths (DECNET's own by
// default), minus a hygiene deny-list matched on every path component at any depth, minus the
// operator's --exclude patterns. Symbolic links and special files are never taken.
//
// The selection is pure policy over a directory walk; writing the tarball is pack_archive.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace decnet::fleet {

// DECNET's package surface, what its master ships by default: the importable package and
// the metadata `pip install .` needs. Everything else in a working tree stays home.
inline constexpr std::string_view kDefaultPackIncludes[] = {
    "pyproject.toml",
    "LICENSE",
    "README.md",
    "decnet",
};

// One hygiene rule: an fnmatch pattern on a single path component (a file or directory name)
// and the family it belongs to, for messages and docs/fleet.md.
struct PackDenyRule {
  std::string_view pattern;
  std::string_view family;
};

// The hygiene deny-list. A name matching any pattern is never packed, whichever directory it
// sits in and whatever --include names; a matching directory is not entered.
inline constexpr PackDenyRule kPackDenyList[] = {
    // Private keys and key stores.
    {"*.key", "private key"},
    {"*.pem", "private key"},
    {"id_rsa*", "private key"},
    {"id_dsa*", "private key"},
    {"id_ecdsa*", "private key"},
    {"id_ed25519*", "private key"},
    {"*.p12", "private key"},
    {"*.pfx", "private key"},
    {"*.jks", "private key"},
    {"*.keystore", "private key"},
    // Certificates and requests: a release never carries a host's identity.
    {"*.crt", "certificate"},
    {"*.cer", "certificate"},
    {"*.der", "certificate"},
    {"*.csr", "certificate"},
    // Environment and credential files.
    {".env", "environment file"},
    {".env.*", "environment file"},
    {"*.env", "environment file"},
    {".netrc", "credentials"},
    {".pgpass", "credentials"},
    // Databases and their journals.
    {"*.db", "database"},
    {"*.sqlite", "database"},
    {"*.sqlite3", "database"},
    {"*-journal", "database journal"},
    {"*-wal", "database journal"},
    {"*-shm", "database journal"},
    // Caches and virtual environments.
    {"__pycache__", "cache"},
    {".pytest_cache", "cache"},
    {".mypy_cache", "cache"},
    {".ruff_cache", "cache"},
    {".cache", "cache"},
    {".tox", "cache"},
    {".venv", "cache"},
    {"node_modules", "cache"},
    // Bytecode.
    {"*.pyc", "bytecode"},
    {"*.pyo", "bytecode"},
    // Logs.
    {"*.log", "log"},
    // Version control.
    {".git", "version control"},
    {".hg", "version control"},
    {".svn", "version control"},
};

// The deny rule a single path component (no '/') matches, or nullptr when it matches none.
const PackDenyRule* MatchPackDenyList(std::string_view name);

// True when the --exclude `pattern` (fnmatch, '*' also crossing '/') matches the relative
// path `rel` or its last component `name`. The walk asks this of every directory on the way
// down, so a pattern naming a directory removes its whole subtree.
bool MatchesPackExclude(std::string_view pattern, std::string_view rel, std::string_view name);

// Checks an --include path: relative, '/'-separated, no empty, "." or ".." component (a
// trailing '/' is dropped). Returns it normalised; refuses anything else ("pack-include").
[[nodiscard]] Result<std::string> NormalisePackInclude(std::string_view path);

enum class PackEntryType { kDirectory, kFile };

// One entry of the release, its path relative to the root.
struct PackEntry {
  std::string path;
  PackEntryType type = PackEntryType::kFile;
  bool executable = false;  // any execute bit on the file: packed 0755, else 0644
  uint64_t size = 0;        // file bytes at selection time
};

// What a walk found.
struct PackSelection {
  // Sorted by path (bytewise); a directory is listed only when it holds a packed file, and
  // always before its contents.
  std::vector<PackEntry> entries;
  uint64_t file_count = 0;
  uint64_t file_bytes = 0;
  std::vector<std::string> symlinks;  // skipped: never followed, never packed
  std::vector<std::string> denied;    // "path (family)": the deny-list dropped them
  std::vector<std::string> excluded;  // --exclude dropped them
  std::vector<std::string> special;   // sockets, FIFOs, devices: skipped
  std::vector<std::string> missing;   // allow-list entries that do not exist
};

struct PackTreeOptions {
  // Relative paths to take; empty means kDefaultPackIncludes.
  std::vector<std::string> includes;
  std::vector<std::string> excludes;
};

// Walks `root` along the allow-list. Refuses: a root that is not a directory ("pack-root"); a
// bad include path ("pack-include"); an include the operator named (not a default one) that
// does not exist ("pack-include-missing"); a root holding its own release manifest, which pack
// writes itself ("pack-manifest-present"); a path the workers' extraction would refuse, over
// 1024 bytes, a component over 255 or a control character ("pack-path"); a tree that
// yields no file at all ("pack-empty"); a directory that cannot be read ("pack-io").
[[nodiscard]] Result<PackSelection> SelectReleaseTree(const std::filesystem::path& root,
                                                      const PackTreeOptions& options);

}  // namespace decnet::fleet
