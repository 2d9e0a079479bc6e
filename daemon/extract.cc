// Extraction pipeline: this (the calling) thread reads, decompresses, parses and validates;
// a writer thread creates the files. They are joined by a WriteQueue capped in bytes, so on
// two cores decompression overlaps file creation while memory stays bounded.
#include "daemon/extract.h"

#include <archive.h>
#include <archive_entry.h>

#include <optional>
#include <thread>
#include <unordered_set>

#include "daemon/extract_path.h"
#include "daemon/extract_stream.h"
#include "daemon/extract_writer.h"

namespace decnet::daemon {
namespace {

constexpr size_t kBatchBytes = 1u << 20;
constexpr size_t kBatchOps = 512;

tl::unexpected<Error> Refuse(std::string rule, const std::string& escaped, std::string why) {
  return Fail(ErrorCode::kDenied, std::move(rule), "entry \"" + escaped + "\": " + why);
}

// Files get 0755 if the archive gave any execute bit, else 0644; directories 0755.
// SECURITY: set-id, sticky and group/world write bits never come from the archive.
mode_t NormalisedFileMode(mode_t archive_mode) { return (archive_mode & 0111) ? 0755 : 0644; }

// Runs the writer thread for the lifetime of one extraction and always joins it.
class WriterThread {
 public:
  WriterThread(WriteQueue& queue, TreeWriter& writer)
      : queue_(queue), thread_([this, &writer] { Run(writer); }) {}
  ~WriterThread() {
    queue_.Abort();
    if (thread_.joinable()) thread_.join();
  }
  WriterThread(const WriterThread&) = delete;
  WriterThread& operator=(const WriterThread&) = delete;

  // Waits for every queued batch to be applied; the writer's error, if it had one.
  Result<void> Drain() {
    queue_.Close();
    thread_.join();
    if (error_) return tl::make_unexpected(*error_);
    return {};
  }
  // The writer's error after a refused Push().
  Error Failure() {
    queue_.Abort();
    thread_.join();
    return error_.value_or(Error{ErrorCode::kFailed, "extract-io", "the writer stopped"});
  }

 private:
  void Run(TreeWriter& writer) {
    while (auto batch = queue_.Pop()) {
      auto r = writer.Apply(*batch);
      queue_.GiveFree(std::move(batch));
      if (!r) {
        error_ = r.error();
        queue_.Abort();
        return;
      }
    }
  }

  WriteQueue& queue_;
  std::optional<Error> error_;
  std::thread thread_;
};

class Extraction {
 public:
  Extraction(int archive_fd, int dest_dir_fd, const ExtractLimits& limits)
      : limits_(limits),
        gzip_(archive_fd),
        tar_(gzip_, limits_),
        queue_(limits.queue_bytes),
        writer_(dest_dir_fd, limits.durability) {}

  Result<ExtractStats> Run() {
    if (auto r = gzip_.Open(); !r) return tl::make_unexpected(r.error());
    if (auto r = tar_.Open(); !r) return tl::make_unexpected(r.error());
    batch_ = queue_.TakeFree();
    WriterThread thread(queue_, writer_);
    if (auto r = ReadEntries(); !r) {
      // A refused Push() means the writer failed first; its error is the cause.
      if (writer_failed_) return tl::make_unexpected(thread.Failure());
      return tl::make_unexpected(r.error());
    }
    if (stats_.entries == 0) {
      return Fail(ErrorCode::kDenied, "archive-empty", "the archive has no entries");
    }
    if (auto r = tar_.CheckTrailingData(); !r) return tl::make_unexpected(r.error());
    if (!batch_->ops.empty() && !queue_.Push(std::move(batch_))) {
      return tl::make_unexpected(thread.Failure());
    }
    if (auto r = thread.Drain(); !r) return tl::make_unexpected(r.error());
    if (auto r = writer_.Finish(); !r) return tl::make_unexpected(r.error());
    stats_.uncompressed_bytes = tar_.uncompressed_bytes();
    stats_.compressed_bytes = gzip_.compressed_bytes();
    return stats_;
  }

 private:
  Result<void> ReadEntries() {
    for (;;) {
      auto entry = tar_.NextHeader(stats_.entries == 0);
      if (!entry) return tl::make_unexpected(entry.error());
      if (*entry == nullptr) return {};
      if (auto r = HandleEntry(*entry); !r) return r;
    }
  }

  Result<void> HandleEntry(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    const std::string escaped = EscapeEntryPath(raw != nullptr ? raw : "");
    tar_.BeginEntry(escaped);
    if (++stats_.entries > limits_.max_entries) {
      return Refuse("archive-entries", escaped,
                    "more than the cap of " + std::to_string(limits_.max_entries) + " entries");
    }
    if (raw == nullptr) return Refuse("archive-path-invalid", escaped, "no usable path");
    auto path = ParseEntryPath(raw, limits_);
    if (!path) return tl::make_unexpected(path.error());
    // SECURITY: links of either kind could point a later write outside the release.
    if (archive_entry_hardlink(entry) != nullptr) {
      return Refuse("archive-link", escaped, "hard links are not extracted");
    }
    switch (archive_entry_filetype(entry)) {
      case AE_IFREG:
        return HandleFile(entry, *path, escaped);
      case AE_IFDIR:
        return HandleDirectory(*path, escaped);
      case AE_IFLNK:
        return Refuse("archive-link", escaped, "symbolic links are not extracted");
      default:
        return Refuse("archive-entry-type", escaped,
                      "only regular files and directories are extracted");
    }
  }

  Result<void> HandleDirectory(const EntryPath& path, const std::string& escaped) {
    if (path.IsRoot()) return {};  // "./": the destination itself
    if (!explicit_directories_.insert(path.relative).second) {
      return Refuse("archive-duplicate", escaped, "path appears twice in the archive");
    }
    ++stats_.directories;
    return AddOp(WriteOp{WriteOpKind::kMakeDirectory, 0, 0, 0, path.relative});
  }

  Result<void> HandleFile(archive_entry* entry, const EntryPath& path, const std::string& escaped) {
    if (path.IsRoot()) return Refuse("archive-conflict", escaped, "a file named \".\"");
    if (archive_entry_sparse_count(entry) > 0) {
      return Refuse("archive-entry-type", escaped, "sparse files are not extracted");
    }
    const la_int64_t declared = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    const uint64_t size = declared > 0 ? static_cast<uint64_t>(declared) : 0;
    if (size > limits_.max_total_bytes - stats_.file_bytes) {
      return Refuse("archive-total-bytes", escaped,
                    "its " + std::to_string(size) + " bytes take the release over the cap of " +
                        std::to_string(limits_.max_total_bytes) + " bytes");
    }
    if (auto r = AddOp(WriteOp{WriteOpKind::kCreateFile,
                               NormalisedFileMode(archive_entry_mode(entry)), 0, 0, path.relative});
        !r) {
      return r;
    }
    uint64_t written = 0;
    for (;;) {
      auto data = tar_.NextData();
      if (!data) return tl::make_unexpected(data.error());
      if (data->empty()) break;
      written += data->size();
      if (written > size) {
        return Fail(ErrorCode::kMalformed, "archive-corrupt",
                    "entry \"" + escaped + "\": more data than its declared size");
      }
      if (auto r = AddData(*data); !r) return r;
    }
    stats_.file_bytes += written;
    ++stats_.files;
    return AddOp(WriteOp{WriteOpKind::kCloseFile, 0, 0, 0, {}});
  }

  Result<void> AddData(std::span<const char> data) {
    const size_t offset = batch_->bytes.size();
    batch_->bytes.insert(batch_->bytes.end(), data.begin(), data.end());
    return AddOp(WriteOp{WriteOpKind::kAppend, 0, offset, data.size(), {}});
  }

  Result<void> AddOp(WriteOp op) {
    batch_->ops.push_back(std::move(op));
    if (batch_->bytes.size() < kBatchBytes && batch_->ops.size() < kBatchOps) return {};
    if (!queue_.Push(std::move(batch_))) {
      writer_failed_ = true;
      return Fail(ErrorCode::kFailed, "extract-io", "the writer stopped");
    }
    batch_ = queue_.TakeFree();
    return {};
  }

  const ExtractLimits limits_;
  GzipStage gzip_;
  TarStage tar_;
  WriteQueue queue_;
  TreeWriter writer_;
  std::unique_ptr<WriteBatch> batch_;
  std::unordered_set<std::string> explicit_directories_;
  ExtractStats stats_;
  bool writer_failed_ = false;
};

}  // namespace

Result<ExtractStats> ExtractRelease(int archive_fd, int dest_dir_fd, const ExtractLimits& limits) {
  Extraction extraction(archive_fd, dest_dir_fd, limits);
  return extraction.Run();
}

}  // namespace decnet::daemon
