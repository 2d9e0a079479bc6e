#include "fleet/pack_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "proto/release_manifest.h"
#include "proto/unique_fd.h"

namespace decnet::fleet {
namespace fs = std::filesystem;

namespace {

Error IoError(const std::string& what) {
  return Error{ErrorCode::kFailed, "pack-io", what + ": " + std::strerror(errno)};
}

// A temporary file beside `target`, removed unless committed by renaming it over `target`.
class TempFile {
 public:
  static Result<TempFile> Create(const fs::path& target) {
    std::string tmpl =
        (target.parent_path() / ("." + target.filename().string() + ".XXXXXX")).string();
    const int fd = mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0)
      return tl::make_unexpected(IoError("cannot create a file beside " + target.string()));
    return TempFile(fd, tmpl, target);
  }
  TempFile(TempFile&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), target_(o.target_) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    if (!path_.empty()) unlink(path_.c_str());
  }
  int fd() const { return fd_; }

  Result<void> Commit(unsigned mode) {
    if (fchmod(fd_, mode) != 0 || fsync(fd_) != 0) return tl::make_unexpected(IoError(path_));
    if (close(std::exchange(fd_, -1)) != 0) return tl::make_unexpected(IoError(path_));
    if (rename(path_.c_str(), target_.c_str()) != 0) {
      return tl::make_unexpected(IoError("cannot rename " + path_ + " to " + target_.string()));
    }
    path_.clear();
    // The rename is durable once the directory is.
    UniqueFd dir(open(target_.parent_path().empty() ? "." : target_.parent_path().c_str(),
                      O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) fsync(dir.get());
    return {};
  }

 private:
  TempFile(int fd, std::string path, fs::path target)
      : fd_(fd), path_(std::move(path)), target_(std::move(target)) {}
  int fd_;
  std::string path_;
  fs::path target_;
};

Result<void> WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::make_unexpected(IoError(what));
    p += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

// The libarchive sink: every compressed byte goes to the file and into the digest.
struct Sink {
  int fd = -1;
  std::string path;
  EVP_MD_CTX* sha = nullptr;
  uint64_t size = 0;
  std::optional<Error> error;
};

la_ssize_t SinkWrite(struct archive*, void* opaque, const void* buffer, size_t length) {
  auto* sink = static_cast<Sink*>(opaque);
  if (auto ok = WriteAll(sink->fd, buffer, length, sink->path); !ok) {
    sink->error = ok.error();
    return -1;
  }
  EVP_DigestUpdate(sink->sha, buffer, length);
  sink->size += length;
  return static_cast<la_ssize_t>(length);
}

using ArchivePtr = std::unique_ptr<struct archive, decltype(&archive_write_free)>;
using EntryPtr = std::unique_ptr<struct archive_entry, decltype(&archive_entry_free)>;

Error ArchiveError(struct archive* a, const Sink& sink, const std::string& what) {
  if (sink.error) return *sink.error;
  const char* msg = archive_error_string(a);
  return Error{ErrorCode::kFailed, "pack-io", what + ": " + (msg ? msg : "libarchive failed")};
}

// The fixed header of every entry: nothing of the file's owner, times or extra mode bits.
EntryPtr NormalisedEntry(const std::string& path, PackEntryType type, bool executable,
                         uint64_t size) {
  EntryPtr e(archive_entry_new(), &archive_entry_free);
  archive_entry_set_pathname(e.get(), path.c_str());
  archive_entry_set_filetype(e.get(), type == PackEntryType::kDirectory ? AE_IFDIR : AE_IFREG);
  archive_entry_set_perm(e.get(), type == PackEntryType::kDirectory || executable ? 0755 : 0644);
  archive_entry_set_size(e.get(),
                         type == PackEntryType::kDirectory ? 0 : static_cast<la_int64_t>(size));
  archive_entry_set_mtime(e.get(), 0, 0);
  archive_entry_set_uid(e.get(), 0);
  archive_entry_set_gid(e.get(), 0);
  return e;
}

// Opens a member's source beneath the source root, following no symbolic link on the way.
Result<int> OpenSource(int root_fd, const std::string& rel, const fs::path& root) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
  if (fd < 0) {
    if (errno == ELOOP || errno == EXDEV) {
      return Fail(ErrorCode::kDenied, "pack-changed",
                  (root / rel).string() + " became a symbolic link while packing");
    }
    return tl::make_unexpected(IoError((root / rel).string()));
  }
  return static_cast<int>(fd);
}

Result<void> CopyFile(struct archive* a, Sink& sink, int root_fd, const fs::path& root,
                      const TarballMember& m) {
  const std::string& rel = m.source.empty() ? m.entry.path : m.source;
  auto opened = OpenSource(root_fd, rel, root);
  if (!opened) return tl::make_unexpected(opened.error());
  UniqueFd fd(*opened);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return tl::make_unexpected(IoError((root / rel).string()));
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != m.entry.size) {
    return Fail(ErrorCode::kDenied, "pack-changed",
                (root / rel).string() + " changed while packing; pack again");
  }
  EntryPtr e =
      NormalisedEntry(m.entry.path, PackEntryType::kFile, m.entry.executable, m.entry.size);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) {
    return tl::make_unexpected(ArchiveError(a, sink, m.entry.path));
  }
  std::array<char, 64 * 1024> buffer;
  uint64_t copied = 0;
  for (;;) {
    const ssize_t n = read(fd.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return tl::make_unexpected(IoError((root / rel).string()));
    if (n == 0) break;
    copied += static_cast<uint64_t>(n);
    // A file that grew would overrun its header's size; libarchive would silently cut it.
    if (copied > m.entry.size) break;
    if (archive_write_data(a, buffer.data(), static_cast<size_t>(n)) != n) {
      return tl::make_unexpected(ArchiveError(a, sink, m.entry.path));
    }
  }
  if (copied != m.entry.size) {
    return Fail(ErrorCode::kDenied, "pack-changed",
                (root / rel).string() + " changed while packing; pack again");
  }
  return {};
}

Result<void> WriteMembers(struct archive* a, Sink& sink, const fs::path& root,
                          std::string_view manifest, const std::vector<TarballMember>& members) {
  EntryPtr me = NormalisedEntry(std::string(kReleaseManifestName), PackEntryType::kFile, false,
                                manifest.size());
  if (archive_write_header(a, me.get()) != ARCHIVE_OK ||
      archive_write_data(a, manifest.data(), manifest.size()) !=
          static_cast<la_ssize_t>(manifest.size())) {
    return tl::make_unexpected(ArchiveError(a, sink, std::string(kReleaseManifestName)));
  }
  UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root_fd.get() < 0) return tl::make_unexpected(IoError(root.string()));
  for (const TarballMember& m : members) {
    if (m.entry.type == PackEntryType::kDirectory) {
      EntryPtr e = NormalisedEntry(m.entry.path, PackEntryType::kDirectory, true, 0);
      if (archive_write_header(a, e.get()) != ARCHIVE_OK) {
        return tl::make_unexpected(ArchiveError(a, sink, m.entry.path));
      }
      continue;
    }
    if (auto ok = CopyFile(a, sink, root_fd.get(), root, m); !ok) return ok;
  }
  return {};
}

}  // namespace

Result<PackedTarball> WriteReleaseTarball(const fs::path& source_root, std::string_view manifest,
                                          const std::vector<TarballMember>& members,
                                          const fs::path& out) {
  auto temp = TempFile::Create(out);
  if (!temp) return tl::make_unexpected(temp.error());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1) {
    return Fail(ErrorCode::kFailed, "pack-io", "OpenSSL cannot digest");
  }
  Sink sink{temp->fd(), out.string(), sha.get(), 0, std::nullopt};

  ArchivePtr a(archive_write_new(), &archive_write_free);
  // SECURITY: restricted pax writes no access/change times, xattrs or ACLs: nothing of the
  // master's filesystem beyond the names and contents it was asked to ship.
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_write_set_filter_option(a.get(), "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
      archive_write_set_filter_option(a.get(), "gzip", "compression-level", "9") != ARCHIVE_OK ||
      // The gzip stream ends the file: libarchive would pad it to a 10 KiB block, and a
      // worker refuses bytes after the stream ("bytes follow the gzip stream").
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open(a.get(), &sink, nullptr, SinkWrite, nullptr) != ARCHIVE_OK) {
    return tl::make_unexpected(ArchiveError(a.get(), sink, "cannot start " + out.string()));
  }
  if (auto ok = WriteMembers(a.get(), sink, source_root, manifest, members); !ok) {
    return tl::make_unexpected(ok.error());
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return tl::make_unexpected(ArchiveError(a.get(), sink, "cannot finish " + out.string()));
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned digest_len = 0;
  EVP_DigestFinal_ex(sha.get(), digest.data(), &digest_len);
  if (auto ok = temp->Commit(0644); !ok) return tl::make_unexpected(ok.error());
  PackedTarball result;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned i = 0; i < digest_len; ++i) {
    result.sha256 += kHex[digest[i] >> 4];
    result.sha256 += kHex[digest[i] & 0xf];
  }
  result.size = sink.size;
  return result;
}

Result<void> WriteFileAtomically(const fs::path& path, std::string_view bytes, unsigned mode) {
  auto temp = TempFile::Create(path);
  if (!temp) return tl::make_unexpected(temp.error());
  if (auto ok = WriteAll(temp->fd(), bytes.data(), bytes.size(), path.string()); !ok) return ok;
  return temp->Commit(mode);
}

}  // namespace decnet::fleet
