// Writing a release tarball reproducibly: the same entries with the same contents give the
// same bytes, whatever the files' times, owners, modes beyond the execute bit, or the clock.
//
//   * the release manifest (.decnet-release.json) first, then the entries in the given order;
//   * pax (restricted: a pax header only for what ustar cannot hold, such as a long name; never
//     access or change times, extended attributes, ACLs or file flags);
//   * every mtime 0, owner and group 0 with empty names, directories and executables 0755,
//     other files 0644;
//   * gzip without a time stamp or a file name, level 9.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/pack_tree.h"
#include "proto/result.h"

namespace decnet::fleet {

// What was written.
struct PackedTarball {
  std::string sha256;  // 64 lower-case hex of the file's bytes
  uint64_t size = 0;   // bytes of the file
};

// A file entry's contents are read from `source_root` / (its source, or its path when the
// source is empty).
struct TarballMember {
  PackEntry entry;
  std::string source;
};

// Writes the tarball to `out` atomically: a temporary file beside it, synced, renamed over
// `out` (mode 0644). Reads each file without following a symbolic link anywhere beneath
// `source_root`. Refuses: a file that is no longer a regular file or whose size changed since
// it was selected ("pack-changed"); libarchive, read or write failures ("pack-io"). On failure
// `out` is untouched and the temporary file removed.
[[nodiscard]] Result<PackedTarball> WriteReleaseTarball(const std::filesystem::path& source_root,
                                                        std::string_view manifest_bytes,
                                                        const std::vector<TarballMember>& members,
                                                        const std::filesystem::path& out);

// Writes `bytes` to `path` atomically (temporary file beside it, fsync, rename), with `mode`.
// Fails with "pack-io" and leaves `path` as it was.
[[nodiscard]] Result<void> WriteFileAtomically(const std::filesystem::path& path,
                                               std::string_view bytes, unsigned mode);

}  // namespace decnet::fleet
