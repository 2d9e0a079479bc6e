#include "daemon/extract_stream.h"

#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace decnet::daemon {
namespace {

constexpr size_t kTailKept = 4096;  // more than the tar reader ever looks ahead at its end

tl::unexpected<Error> Corrupt(std::string message) {
  return Fail(ErrorCode::kMalformed, "archive-corrupt", std::move(message));
}

std::string LibarchiveMessage(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

bool AllZero(std::span<const char> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

}  // namespace

Result<size_t> GzipStage::ReadSome(char* into, size_t size) {
  for (;;) {
    const ssize_t n = read(fd_, into, size);
    if (n >= 0) {
      compressed_ += static_cast<uint64_t>(n);
      return static_cast<size_t>(n);
    }
    if (errno != EINTR) {
      return Fail(ErrorCode::kFailed, "extract-io",
                  std::string("cannot read the archive: ") + std::strerror(errno));
    }
  }
}

la_ssize_t GzipStage::ReadCallback(archive* a, void* self, const void** out) {
  auto* stage = static_cast<GzipStage*>(self);
  *out = stage->buffer_.data();
  if (stage->primed_ > 0) {
    const size_t n = stage->primed_;
    stage->primed_ = 0;
    return static_cast<la_ssize_t>(n);
  }
  auto n = stage->ReadSome(stage->buffer_.data(), stage->buffer_.size());
  if (!n) {
    stage->error_ = n.error();
    archive_set_error(a, EIO, "%s", n.error().message.c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(*n);
}

Result<void> GzipStage::Open() {
  // Read enough to see the gzip header before libarchive does, so that input that is not gzip
  // gets its own rule instead of the raw pass-through silently accepting it.
  size_t have = 0;
  while (have < 3) {
    auto n = ReadSome(buffer_.data() + have, buffer_.size() - have);
    if (!n) return tl::make_unexpected(n.error());
    if (*n == 0) break;
    have += *n;
  }
  primed_ = have;
  if (have == 0) return Fail(ErrorCode::kDenied, "archive-empty", "the archive file is empty");
  const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
  if (have < 3 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8) {
    return Fail(ErrorCode::kDenied, "archive-not-gzip", "the archive is not gzip-compressed");
  }
  reader_.reset(archive_read_new());
  if (!reader_) return Fail(ErrorCode::kFailed, "extract-io", "libarchive: out of memory");
  archive* a = reader_.get();
  // SECURITY: gzip is the only filter and the raw format only carries its output to TarStage;
  // no other decompressor or format parser is reachable from the network.
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
      archive_read_support_format_raw(a) != ARCHIVE_OK ||
      archive_read_open(a, this, nullptr, &GzipStage::ReadCallback, nullptr) != ARCHIVE_OK) {
    if (error_) return tl::make_unexpected(*error_);
    // Opening already decompresses the first block. The raw format bids on any non-empty
    // input, so "unrecognized" here means the gzip stream holds no bytes at all.
    const std::string message = LibarchiveMessage(a);
    if (message.find("Unrecognized archive format") != std::string::npos) {
      return Fail(ErrorCode::kDenied, "archive-empty", "the gzip stream decompresses to nothing");
    }
    return Corrupt("gzip stream: " + message);
  }
  // libarchive re-bids after each filter: a gzip inside the gzip shows up as a third filter.
  if (archive_filter_count(a) > 2) {
    return Fail(ErrorCode::kDenied, "archive-format", "nested compression inside the gzip stream");
  }
  if (archive_filter_count(a) != 2 || archive_filter_code(a, 0) != ARCHIVE_FILTER_GZIP) {
    return Fail(ErrorCode::kDenied, "archive-not-gzip",
                "libarchive did not accept the gzip header");
  }
  archive_entry* entry = nullptr;
  if (archive_read_next_header(a, &entry) != ARCHIVE_OK) {
    if (error_) return tl::make_unexpected(*error_);
    return Corrupt("gzip stream: " + LibarchiveMessage(a));
  }
  return {};
}

Result<std::span<const char>> GzipStage::Next() {
  const void* data = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  const int r = archive_read_data_block(reader_.get(), &data, &size, &offset);
  if (r == ARCHIVE_EOF) return std::span<const char>();
  if (r != ARCHIVE_OK) {
    if (error_) return tl::make_unexpected(*error_);
    return Corrupt("gzip stream: " + LibarchiveMessage(reader_.get()));
  }
  return std::span<const char>(static_cast<const char*>(data), size);
}

uint64_t GzipStage::consumed_bytes() const {
  if (!reader_) return 0;
  return static_cast<uint64_t>(archive_filter_bytes(reader_.get(), -1));
}

Result<void> GzipStage::CheckNothingFollows() {
  // The gzip filter stops without consuming anything that is not another gzip member, so bytes
  // read from the file but not consumed by it are trailing data; so is anything still unread.
  const auto consumed = static_cast<uint64_t>(archive_filter_bytes(reader_.get(), -1));
  char probe[1];
  auto more = ReadSome(probe, sizeof probe);
  if (!more) return tl::make_unexpected(more.error());
  if (consumed < compressed_ || *more > 0) {
    return Fail(ErrorCode::kDenied, "archive-trailing-data",
                "bytes follow the gzip stream at offset " + std::to_string(consumed));
  }
  return {};
}

la_ssize_t TarStage::ReadCallback(archive* a, void* self, const void** out) {
  auto* stage = static_cast<TarStage*>(self);
  auto block = stage->NextBlock();
  if (!block) {
    stage->error_ = block.error();
    archive_set_error(a, EINVAL, "%s", block.error().message.c_str());
    return -1;
  }
  *out = block->data();
  return static_cast<la_ssize_t>(block->size());
}

// Pulls the next decompressed block, keeping the end of the previous one (GzipStage reuses its
// buffer) so the bytes after the end-of-archive mark can be inspected, and applies the ratio.
Result<std::span<const char>> TarStage::NextBlock() {
  const size_t keep = std::min(last_block_.size(), kTailKept);
  previous_tail_.assign(last_block_.data() + last_block_.size() - keep, keep);
  last_block_ = {};
  auto block = gzip_.Next();
  if (!block) return block;
  last_block_ = *block;
  handed_ += block->size();
  // SECURITY: checked on every decompressed block, before it reaches the writer, both for the
  // current entry and for the whole stream: a bomb is refused once it exceeds the ratio, not
  // once it has filled the disk.
  const uint64_t consumed = gzip_.consumed_bytes();
  if (auto r = CheckRatio(handed_ - entry_handed_, consumed - entry_consumed_,
                          limits_.entry_ratio_grace_bytes, "of this entry");
      !r) {
    return tl::make_unexpected(r.error());
  }
  if (auto r = CheckRatio(handed_, consumed, limits_.ratio_grace_bytes, "of the archive"); !r) {
    return tl::make_unexpected(r.error());
  }
  return block;
}

Result<void> TarStage::CheckRatio(uint64_t decompressed, uint64_t consumed, uint64_t grace,
                                  std::string_view scope) const {
  if (decompressed <= grace || decompressed / limits_.max_ratio <= consumed) return {};
  return Fail(ErrorCode::kDenied, "archive-ratio",
              "entry \"" + current_path_ + "\": " + std::to_string(decompressed) + " bytes " +
                  std::string(scope) + " decompressed from " + std::to_string(consumed) +
                  " exceed the compression ratio cap of " + std::to_string(limits_.max_ratio) +
                  ":1");
}

void TarStage::BeginEntry(std::string escaped) {
  current_path_ = std::move(escaped);
  entry_handed_ = handed_;
  entry_consumed_ = gzip_.consumed_bytes();
}

Result<void> TarStage::Open() {
  reader_.reset(archive_read_new());
  if (!reader_) return Fail(ErrorCode::kFailed, "extract-io", "libarchive: out of memory");
  archive* a = reader_.get();
  // SECURITY: tar variants only (ustar, pax, GNU, v7), and no filter: the stream is already
  // decompressed, and a second layer of compression is refused as "archive-format".
  if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_support_format_gnutar(a) != ARCHIVE_OK ||
      archive_read_open(a, this, nullptr, &TarStage::ReadCallback, nullptr) != ARCHIVE_OK) {
    if (error_) return tl::make_unexpected(*error_);
    return Fail(ErrorCode::kDenied, "archive-format", "not a tar archive: " + LibarchiveMessage(a));
  }
  return {};
}

Error TarStage::MapError(int status, bool first) {
  if (error_) return *error_;
  const std::string message = LibarchiveMessage(reader_.get());
  // libarchive 3.6 refuses a pax or GNU long-name record over 1 MiB before reading it.
  if (message.find("too large") != std::string::npos ||
      message.find("too long") != std::string::npos) {
    return Error{ErrorCode::kDenied, "archive-header-size",
                 "after entry \"" + current_path_ + "\": " + message +
                     " (libarchive's cap of 1 MiB on special headers)"};
  }
  if (first && handed_ == 0) {
    return Error{ErrorCode::kDenied, "archive-empty", "the gzip stream decompresses to nothing"};
  }
  if (first && status != ARCHIVE_WARN) {
    return Error{ErrorCode::kDenied, "archive-format", "not a tar archive: " + message};
  }
  return Error{ErrorCode::kMalformed, "archive-corrupt",
               "after entry \"" + current_path_ + "\": " + message};
}

Result<archive_entry*> TarStage::NextHeader(bool first) {
  archive* a = reader_.get();
  const auto before = static_cast<uint64_t>(archive_filter_bytes(a, -1));
  archive_entry* entry = nullptr;
  const int r = archive_read_next_header(a, &entry);
  if (r == ARCHIVE_EOF) {
    if (error_) return tl::make_unexpected(*error_);
    if (first && handed_ == 0) {
      return Fail(ErrorCode::kDenied, "archive-empty", "the gzip stream decompresses to nothing");
    }
    return nullptr;
  }
  // ARCHIVE_WARN (an unconvertible name, an unknown header field) and ARCHIVE_RETRY (a damaged
  // header libarchive would skip) are refusals too: we never guess around a damaged header.
  if (r != ARCHIVE_OK) return tl::make_unexpected(MapError(r, first));
  const auto after = static_cast<uint64_t>(archive_filter_bytes(a, -1));
  // The span also holds the previous entry's padding (< 512 bytes), well under any sane cap.
  if (after - before > limits_.max_header_bytes) {
    const char* path = archive_entry_pathname(entry);
    return Fail(
        ErrorCode::kDenied, "archive-header-size",
        "entry \"" + std::string(path ? path : "?") + "\": " + std::to_string(after - before) +
            " bytes of headers exceed the cap of " + std::to_string(limits_.max_header_bytes));
  }
  return entry;
}

Result<std::span<const char>> TarStage::NextData() {
  const void* data = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  const int r = archive_read_data_block(reader_.get(), &data, &size, &offset);
  if (r == ARCHIVE_EOF) return std::span<const char>();
  if (r != ARCHIVE_OK) return tl::make_unexpected(MapError(r, false));
  if (size == 0) return Corrupt("entry \"" + current_path_ + "\": empty data block");
  return std::span<const char>(static_cast<const char*>(data), size);
}

Result<void> TarStage::CheckTrailingData() {
  auto trailing = [&](const std::string& where) {
    return Fail(ErrorCode::kDenied, "archive-trailing-data",
                "non-zero bytes after the end-of-archive blocks (" + where + ")");
  };
  // What the tar reader was handed but did not consume lies at the end of the last block, and
  // possibly of the one before it.
  const auto consumed = static_cast<uint64_t>(archive_filter_bytes(reader_.get(), -1));
  uint64_t unconsumed = handed_ - consumed;
  const uint64_t in_last = std::min<uint64_t>(unconsumed, last_block_.size());
  if (!AllZero(last_block_.last(in_last))) return trailing("in the last block read");
  unconsumed -= in_last;
  if (unconsumed > previous_tail_.size()) {
    return Corrupt("cannot inspect the end of the archive (" + std::to_string(unconsumed) +
                   " bytes unaccounted)");
  }
  if (!AllZero(std::span<const char>(previous_tail_).last(unconsumed))) {
    return trailing("in the block before the last");
  }
  // The rest of the stream: GNU tar pads with zeros to its record size, nothing else may come.
  for (;;) {
    auto block = NextBlock();
    if (!block) return tl::make_unexpected(block.error());
    if (block->empty()) break;
    if (!AllZero(*block)) return trailing("at offset " + std::to_string(handed_ - block->size()));
  }
  return gzip_.CheckNothingFollows();
}

}  // namespace decnet::daemon
