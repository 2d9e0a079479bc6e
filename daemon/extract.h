// Safe extraction of a release tarball (gzip-compressed tar) beneath a release directory.
//
// libarchive only reads and parses; this code creates every file and directory itself,
// through openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and mkdirat beneath the destination.
// Only regular files and directories are extracted; everything else is refused with an Error
// whose `rule` names the check (see kExtractRules below) and whose message names the entry
// (escaped) and the cap that was hit.
//
// A refusal leaves the destination with whatever was extracted before it: the caller owns the
// destination and deletes the incomplete release. Nothing outside the destination is touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/result.h"

namespace decnet::daemon {

// How extracted data is made durable before ExtractRelease returns success.
enum class Durability {
  kSyncFilesystem,  // one syncfs(dest) at the end (the default: fastest, see docs/performance.md)
  kFsyncEachFile,   // fsync every file and directory as it is finished
  kNotDurable,      // nothing synced: only for fuzzing and throw-away trees, never a release
};

// Caps applied while reading. Every cap is checked as the stream goes, so a hostile archive is
// stopped at the cap, not after it has been expanded.
struct ExtractLimits {
  uint64_t max_total_bytes = uint64_t{4} << 30;  // sum of file sizes ("archive-total-bytes")
  uint64_t max_entries = 200'000;                // entries of any type ("archive-entries")
  size_t max_path_length = 1024;                 // bytes of an entry path ("archive-path-length")
  size_t max_component_length = 255;             // bytes of one path component (same rule)
  // Bytes of tar headers (ustar + pax / GNU long-name records) in front of one entry
  // ("archive-header-size"). libarchive 3.6 itself refuses special headers over 1 MiB before
  // reading them; this smaller cap is checked once libarchive has parsed the header.
  uint64_t max_header_bytes = 64 * 1024;
  // Decompressed / compressed bytes ("archive-ratio"), counted as the stream is decompressed
  // (compressed bytes are those the decompressor consumed), both over the whole stream once more
  // than ratio_grace_bytes were decompressed (tiny archives of empty files compress very well)
  // and per entry, from its header on, once more than entry_ratio_grace_bytes of it were: an
  // incompressible first file cannot buy room for a bomb behind it.
  uint64_t max_ratio = 200;
  uint64_t ratio_grace_bytes = 8u << 20;
  uint64_t entry_ratio_grace_bytes = 1u << 20;
  // Bytes of file data in flight between the decompressing thread and the writing thread.
  size_t queue_bytes = 8u << 20;
  Durability durability = Durability::kSyncFilesystem;
};

// What an extraction produced.
struct ExtractStats {
  uint64_t entries = 0;             // entries read (including "./")
  uint64_t files = 0;               // regular files created
  uint64_t directories = 0;         // directory entries in the archive (implicit ones not counted)
  uint64_t file_bytes = 0;          // bytes of file content written
  uint64_t uncompressed_bytes = 0;  // bytes of tar stream decompressed
  uint64_t compressed_bytes = 0;    // bytes read from archive_fd
};

// Every rule an extraction refusal can carry.
inline constexpr std::string_view kExtractRules[] = {
    "archive-not-gzip",    "archive-format",        "archive-corrupt",
    "archive-empty",       "archive-trailing-data", "archive-path-absolute",
    "archive-path-dotdot", "archive-path-invalid",  "archive-path-length",
    "archive-link",        "archive-entry-type",    "archive-total-bytes",
    "archive-entries",     "archive-header-size",   "archive-ratio",
    "archive-duplicate",   "archive-conflict",      "extract-io",
};

// Extracts the gzip tarball read sequentially from `archive_fd` (from its current offset; a pipe
// is fine) into the directory `dest_dir_fd`, which should be empty. Directories are created
// 0755, files 0644 (0755 if the archive gives any execute bit); set-id and sticky bits and the
// archive's owners are never applied; files belong to the calling user. Implicit parent
// directories are created. On success every file's data and metadata is durable.
//
// Refuses (Error.code kDenied unless noted, Error.rule as listed in kExtractRules): input that is
// not gzip, a gzip stream that is not a tar archive, corrupt or truncated input (kMalformed),
// an archive with no entries, non-zero bytes after the end-of-archive blocks or bytes after the
// gzip stream, absolute paths, ".." components, empty or "." components inside a path, control
// characters, paths or components over the cap, symlinks and hard links, devices, FIFOs,
// sockets and sparse files, any cap above, a path seen twice, a file where a directory is or
// the reverse; a failing write is kFailed "extract-io".
[[nodiscard]] Result<ExtractStats> ExtractRelease(int archive_fd, int dest_dir_fd,
                                                  const ExtractLimits& limits);

}  // namespace decnet::daemon
