// The writing half of extraction: a bounded queue of batched operations, fed by the thread that
// decompresses and parses the archive, and a TreeWriter that applies them beneath the release
// directory. Only this file creates anything on disk.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/extract.h"
#include "proto/result.h"

namespace decnet::daemon {

enum class WriteOpKind : uint8_t {
  kMakeDirectory,  // path: create it (and its parents) 0755; an existing directory is fine
  kCreateFile,     // path, mode: create a new file, which is then the open file
  kAppend,         // bytes [offset, offset + length) of the batch appended to the open file
  kCloseFile,      // the open file is complete
};

struct WriteOp {
  WriteOpKind kind = WriteOpKind::kAppend;
  mode_t mode = 0;
  size_t offset = 0;
  size_t length = 0;
  std::string path;  // validated relative path (see extract_path.h)
};

// Operations and the file bytes they refer to, moved between threads as one unit.
struct WriteBatch {
  std::vector<WriteOp> ops;
  std::vector<char> bytes;
  size_t Weight() const { return bytes.size() + ops.size() * 64; }
  void Clear() {
    ops.clear();
    bytes.clear();
  }
};

// A single-producer single-consumer queue of batches whose total weight is capped, so memory
// stays bounded whatever the archive. Either side can stop the other.
class WriteQueue {
 public:
  explicit WriteQueue(size_t max_weight) : max_weight_(max_weight) {}

  // Blocks while the queue is over its cap. Returns false (dropping the batch) once Abort()
  // was called.
  [[nodiscard]] bool Push(std::unique_ptr<WriteBatch> batch);
  // Blocks until a batch is available; nullptr once Close()d and drained, or Abort()ed.
  std::unique_ptr<WriteBatch> Pop();
  // The producer has no more batches.
  void Close();
  // Either side gave up: wakes both; later Push() returns false, Pop() nullptr.
  void Abort();

  // A recycled batch (or a new one), so steady state does not allocate.
  std::unique_ptr<WriteBatch> TakeFree();
  void GiveFree(std::unique_ptr<WriteBatch> batch);

 private:
  const size_t max_weight_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<WriteBatch>> queued_;
  std::vector<std::unique_ptr<WriteBatch>> free_;
  size_t weight_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
};

// Applies batches beneath dest_dir_fd. Files are created with openat2(O_CREAT | O_EXCL |
// O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); directories with mkdirat on a parent
// opened the same way. Modes are exactly those given (the umask is undone). Refuses
// "archive-duplicate" (a file path that already exists as a file), "archive-conflict" (a file
// where a directory is, or a directory where a file is) and fails "extract-io" on any other
// error of the filesystem.
class TreeWriter {
 public:
  TreeWriter(int dest_dir_fd, Durability durability);
  ~TreeWriter();
  TreeWriter(const TreeWriter&) = delete;
  TreeWriter& operator=(const TreeWriter&) = delete;

  [[nodiscard]] Result<void> Apply(const WriteBatch& batch);
  // Makes everything written durable (syncfs or the directories' fsyncs). Fails "extract-io".
  [[nodiscard]] Result<void> Finish();

 private:
  Result<void> MakeDirectory(const std::string& path);
  Result<void> CreateFile(const std::string& path, mode_t mode);
  Result<void> Append(const char* data, size_t length);
  Result<void> CloseFile();
  Result<void> ExplainExisting(const std::string& path, bool want_directory);

  const int dest_dir_fd_;
  const Durability durability_;
  const mode_t umask_;
  int open_fd_ = -1;
  std::string open_path_;
  std::vector<std::string> created_directories_;  // only kept for kFsyncEachFile
};

}  // namespace decnet::daemon
