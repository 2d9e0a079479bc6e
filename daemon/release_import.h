// `decnet-updaterd --import-release DIR --slot active|previous [--config PATH]`: a one-shot
// mode, run as the decnet-updater user, that turns a release tree already on the host (the
// trees DECNET's own updater left at releases/active and releases/prev) into a release of
// this daemon's store, the way a pushed release becomes one: the tree is copied into
// releases/<id>/ (regular files and directories only), installed there by the release
// install (release_install.h: for a Python project, its own .venv), marked complete, and
// recorded as active (or, imported first, as the release the active one will replace).
//
// The id is derived from the tree's digest: SHA-256 over every copied entry in path order
// (kind, executable bit, size, path, content), so importing the same tree twice is a no-op.
// Not copied: DECNET's per-release sidecar `.decnet-release.json` (its `sha` becomes the
// record's `sha`; its format is not this store's manifest), an environment the tree carries
// (`.venv`, `venv` at its root: it belongs to another path and is rebuilt), `__pycache__`
// anywhere, and symbolic links (DECNET's master never packs them). A device, FIFO or socket
// refuses the import.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/release_store.h"
#include "proto/result.h"

namespace decnet::daemon {

// Where an imported release goes.
enum class ImportSlot {
  kActive,    // becomes active; the release active before becomes previous
  kPrevious,  // imported first, into a store with no active release: the next kActive import
              // makes it previous
};

// What was imported (or found already imported).
struct ImportedRelease {
  ReleaseId id;
  std::string version;
  std::string digest;            // the tree digest (64 hex), the record's sha256
  bool already_present = false;  // the release was complete before this call
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t skipped_links = 0;
  std::string install_output;  // the install's output (empty when nothing ran)
};

// The digest of the tree at `source_dir` as described above, with its file and byte counts.
// Refuses (kDenied "import-special-file") a device, FIFO or socket, (kDenied "import-too-deep")
// more than 128 levels, (kDenied "import-too-many") more than 200 000 entries, (kNotFound
// "import-source") a source that is not a directory; other failures are kFailed "import-io".
struct TreeDigest {
  std::string sha256;
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t skipped_links = 0;
};
[[nodiscard]] Result<TreeDigest> DigestReleaseTree(const std::string& source_dir);

// Imports `source_dir` into `store` (recovered) as `slot`. Refuses kDenied "import-order" a
// kPrevious import into a store that already has another active release; fails as
// DigestReleaseTree, the store (its rules), and InstallRelease (its rules, the message carrying
// the install output); on failure the half-made release directory is removed and nothing is
// recorded.
[[nodiscard]] Result<ImportedRelease> ImportReleaseTree(const DaemonConfig& config,
                                                        ReleaseStore& store,
                                                        const std::string& source_dir,
                                                        ImportSlot slot);

// True when argv asks for this mode (its first argument is --import-release).
bool IsImportReleaseInvocation(int argc, const char* const* argv);

// The whole mode (decnet-updaterd calls it after refusing root, "daemon-root"): parses
// `--import-release DIR --slot active|previous [--config PATH]`, loads the configuration, opens and
// recovers the store at install_dir, imports, prints one line naming the release, returns the exit
// code (0 on success, 2 on bad arguments, 1 on any other failure, its rule printed on stderr).
int RunImportRelease(int argc, const char* const* argv);

}  // namespace decnet::daemon
