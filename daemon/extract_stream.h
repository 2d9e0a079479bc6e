// The reading half of extraction: the compressed file decompressed by libarchive's gzip filter,
// then parsed as tar by a second libarchive reader, with the ratio cap and the trailing-data
// check applied to the decompressed stream between the two.
//
// Why two readers: libarchive's tar reader stops at the first end-of-archive block and its gzip
// filter silently ignores bytes after the last gzip member, so one reader cannot see trailing
// data. The first reader (gzip filter + the "raw" format, used only as a pass-through) hands
// the decompressed bytes to this code, which feeds them to the second (tar formats only, no
// filter) and can therefore inspect every byte after the end-of-archive blocks.
#pragma once

#include <archive.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/extract.h"
#include "proto/result.h"

namespace decnet::daemon {

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadFree>;

// Decompresses a gzip file read from a file descriptor, block by block.
class GzipStage {
 public:
  explicit GzipStage(int fd) : fd_(fd), buffer_(kReadChunk) {}

  // Refuses "archive-empty" (no bytes at all), "archive-not-gzip" (no gzip header), and fails
  // "extract-io" when the file cannot be read.
  [[nodiscard]] Result<void> Open();
  // The next block of decompressed bytes, valid until the next call; empty at the end.
  // Refuses "archive-corrupt" (truncated or damaged gzip).
  [[nodiscard]] Result<std::span<const char>> Next();
  // After Next() returned empty: refuses "archive-trailing-data" if any byte of the file
  // follows the gzip stream.
  [[nodiscard]] Result<void> CheckNothingFollows();
  uint64_t compressed_bytes() const { return compressed_; }
  // Compressed bytes the decompressor has consumed so far (at most compressed_bytes(): the
  // rest is read ahead). The ratio cap counts these, so a read-ahead buys no room.
  uint64_t consumed_bytes() const;

 private:
  static constexpr size_t kReadChunk = 64 * 1024;
  static la_ssize_t ReadCallback(archive* a, void* self, const void** out);
  Result<size_t> ReadSome(char* into, size_t size);

  const int fd_;
  std::vector<char> buffer_;
  size_t primed_ = 0;  // bytes read by Open() to check the header, handed out first
  uint64_t compressed_ = 0;
  std::optional<Error> error_;
  ArchiveReader reader_;
};

// Parses the decompressed stream as tar (ustar, pax, GNU) and enforces the ratio cap.
class TarStage {
 public:
  TarStage(GzipStage& gzip, const ExtractLimits& limits) : gzip_(gzip), limits_(limits) {}

  [[nodiscard]] Result<void> Open();
  // The next entry, or nullptr at the end-of-archive mark. Refuses "archive-header-size",
  // "archive-format" (the first header is not tar), "archive-corrupt" and what GzipStage
  // refuses.
  [[nodiscard]] Result<archive_entry*> NextHeader(bool first);
  // The next block of the current entry's data; empty at its end.
  [[nodiscard]] Result<std::span<const char>> NextData();
  // After NextHeader() returned nullptr: every remaining byte must be zero (tar's record
  // padding), and nothing may follow the gzip stream. Refuses "archive-trailing-data".
  [[nodiscard]] Result<void> CheckTrailingData();
  // An entry's header was read: names it in ratio refusals and starts its own ratio count.
  void BeginEntry(std::string escaped);
  uint64_t uncompressed_bytes() const { return handed_; }

 private:
  static la_ssize_t ReadCallback(archive* a, void* self, const void** out);
  Result<std::span<const char>> NextBlock();
  Result<void> CheckRatio(uint64_t decompressed, uint64_t consumed, uint64_t grace,
                          std::string_view scope) const;
  Error MapError(int status, bool first);

  GzipStage& gzip_;
  const ExtractLimits& limits_;
  ArchiveReader reader_;
  std::optional<Error> error_;
  uint64_t handed_ = 0;
  uint64_t entry_handed_ = 0;    // handed_ when the current entry's header was read
  uint64_t entry_consumed_ = 0;  // the gzip stage's consumed_bytes() then
  std::span<const char> last_block_;
  std::string previous_tail_;  // the end of the block before last_block_
  std::string current_path_;
};

}  // namespace decnet::daemon
