// The spool: where an uploaded tarball lands, on disk in the daemon's state directory,
// hashed with SHA-256 as it is written so that nothing has to read it twice before the
// digest is known. The file is anonymous (O_TMPFILE), so a crash leaves nothing behind;
// where the filesystem lacks O_TMPFILE, a named file is unlinked right after its creation,
// and one that a crash left in between is removed at the next start (RemoveStaleSpoolFiles).
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "proto/result.h"
#include "proto/unique_fd.h"

namespace decnet::daemon {

// A finished spool: a read-only descriptor positioned at offset 0, the byte count and the
// lower-case hex SHA-256 of exactly those bytes.
struct SpoolResult {
  UniqueFd fd;
  uint64_t size = 0;
  std::string sha256;

  // Gives the spooled file the name `name` in `dir_fd` (see Spool::Link).
  [[nodiscard]] Result<void> Link(int dir_fd, std::string_view name) const;
};

// How Spool::Create makes its file.
enum class SpoolFileKind {
  kAnonymous,  // O_TMPFILE, falling back to kUnlinked where the filesystem lacks it
  kUnlinked,   // a random name created with O_EXCL and unlinked at once (tests use this)
};

// Writes one upload to disk, hashing as it goes. Memory use is constant: bytes are gathered
// into one buffer of kSpoolWriteBatch and written when it fills (and by Finish and Link), so
// a body arriving in TLS-record-sized pieces costs one write(2) per MiB, not per 16 KiB: each
// write to a file also updates its times through the filesystem's journal.
inline constexpr size_t kSpoolWriteBatch = 1 << 20;

class Spool {
 public:
  // Creates an empty spool file in `spool_dir_fd`, mode 0600, close-on-exec, that will
  // accept at most `max_bytes`. Fails (kFailed, "spool-create") when the directory refuses
  // both an O_TMPFILE file and a randomly named one, or when the digest cannot be set up.
  [[nodiscard]] static Result<Spool> Create(int spool_dir_fd, uint64_t max_bytes,
                                            SpoolFileKind kind = SpoolFileKind::kAnonymous);

  Spool(Spool&&) noexcept = default;
  Spool& operator=(Spool&&) noexcept = default;

  // Appends `data` and hashes it. Refuses (kDenied, "upload-too-large") when the total
  // would exceed max_bytes, before writing any of `data`; fails (kFailed, "spool-write") on
  // an I/O error such as a full disk. After any failure the spool refuses further use.
  [[nodiscard]] Result<void> Write(std::string_view data);

  // Ends the upload: returns a read-only descriptor of the same file at offset 0 (reopened
  // through /proc/self/fd, or a dup when /proc is unavailable), the size and the digest.
  // Fails (kFailed, "spool-finish") after a failed Write, a second Finish, or when neither
  // a reopen nor a dup works.
  [[nodiscard]] Result<SpoolResult> Finish();

  // Gives the file a name: links it as `name` in `dir_fd` through /proc/self/fd/N with
  // AT_SYMLINK_FOLLOW (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH). Refuses (kMalformed,
  // "spool-link-name") a name that is empty, ".", "..", longer than 255 bytes or holds '/'
  // or NUL; fails (kFailed, "spool-link") when the name exists, the spool was made with
  // kUnlinked (a file whose last name is gone cannot be linked again) or after Finish.
  [[nodiscard]] Result<void> Link(int dir_fd, std::string_view name);

  // Bytes written so far.
  uint64_t size() const { return size_; }

 private:
  struct DigestFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };

  Spool(UniqueFd fd, std::unique_ptr<EVP_MD_CTX, DigestFree> digest, uint64_t max_bytes)
      : fd_(std::move(fd)), digest_(std::move(digest)), max_bytes_(max_bytes) {}

  // Writes what is gathered; marks the spool broken on failure.
  Result<void> Flush();

  UniqueFd fd_;
  std::unique_ptr<EVP_MD_CTX, DigestFree> digest_;
  uint64_t max_bytes_ = 0;
  uint64_t size_ = 0;
  bool broken_ = false;
  std::string pending_;  // accepted and hashed, not yet written; < kSpoolWriteBatch
};

// Removes, from `spool_dir_fd`, the files Spool::Create names while it makes an unlinked
// file (".decnet-spool-" and a random suffix): one is left behind only when the process died
// between creating and unlinking it. Run at start-up, before any upload, by the one process
// that owns the directory. Other names, and directories, are left alone. Returns how many were
// removed; fails (kFailed, "spool-clean") when the directory cannot be read or a name cannot be
// removed.
[[nodiscard]] Result<size_t> RemoveStaleSpoolFiles(int spool_dir_fd);

}  // namespace decnet::daemon
