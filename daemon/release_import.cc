// The tree is walked twice through directory fds, never following a symlink: once to learn its
// id (the release directory's name), once to copy it while digesting again, so a tree that
// changed in between is caught rather than recorded under a digest it does not have.
#include "daemon/release_import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string_view>

#include "daemon/python_env.h"
#include "daemon/release_install.h"
#include "proto/release_manifest.h"
#include "proto/sha256.h"

namespace decnet::daemon {
namespace {

constexpr int kMaxDepth = 128;
constexpr uint64_t kMaxEntries = 200'000;

tl::unexpected<Error> ImportIo(const std::string& what) {
  return Fail(ErrorCode::kFailed, "import-io", what + ": " + std::strerror(errno));
}

std::string Hex(const std::array<uint8_t, 32>& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Entries this import never copies (see the header).
bool Skipped(std::string_view name, int depth) {
  if (name == "__pycache__") return true;
  return depth == 0 && (name == kReleaseManifestName || name == kReleaseVenvDir || name == "venv");
}

// The names in a directory, sorted, without "." and "..".
Result<std::vector<std::string>> ListDir(int dir_fd, const std::string& path) {
  const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ImportIo("open " + path);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    ::close(fd);
    return ImportIo("read " + path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) {
    errno = err;
    return ImportIo("read " + path);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// One walk: digests every entry and, when `dst` is a directory fd (not -1), copies it there.
class TreeWalk {
 public:
  explicit TreeWalk(int dst) : copy_(dst >= 0) {}

  Result<void> Dir(int src, int dst, const std::string& prefix, int depth) {
    if (depth > kMaxDepth)
      return Fail(
          ErrorCode::kDenied, "import-too-deep",
          "the tree nests deeper than " + std::to_string(kMaxDepth) + " levels at " + prefix);
    auto names = ListDir(src, prefix.empty() ? "." : prefix);
    if (!names) return tl::make_unexpected(names.error());
    for (const std::string& name : *names) {
      if (Skipped(name, depth)) continue;
      if (++entries_ > kMaxEntries)
        return Fail(ErrorCode::kDenied, "import-too-many",
                    "the tree holds more than " + std::to_string(kMaxEntries) + " entries");
      const std::string path = prefix.empty() ? name : prefix + "/" + name;
      struct stat st {};
      if (::fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return ImportIo("stat " + path);
      if (S_ISLNK(st.st_mode)) {
        ++out_.skipped_links;
        continue;
      }
      if (S_ISDIR(st.st_mode)) {
        if (auto ok = Subdir(src, dst, name, path, depth); !ok) return ok;
      } else if (S_ISREG(st.st_mode)) {
        if (auto ok = File(src, dst, name, path, st); !ok) return ok;
      } else {
        return Fail(ErrorCode::kDenied, "import-special-file",
                    path + " is neither a regular file, a directory nor a symbolic link");
      }
    }
    return {};
  }

  TreeDigest Finish() {
    out_.sha256 = Hex(hash_.Finish());
    return out_;
  }

 private:
  void Record(std::string_view kind, const std::string& path, std::string_view extra) {
    hash_.Update(kind);
    hash_.Update(std::string_view("\0", 1));
    hash_.Update(extra);
    hash_.Update(std::string_view("\0", 1));
    hash_.Update(path);
    hash_.Update(std::string_view("\0", 1));
  }

  Result<void> Subdir(int src, int dst, const std::string& name, const std::string& path,
                      int depth) {
    Record("d", path, "");
    const int sub = ::openat(src, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) return ImportIo("open " + path);
    int sub_dst = -1;
    if (copy_) {
      if (::mkdirat(dst, name.c_str(), 0755) != 0 && errno != EEXIST) {
        ::close(sub);
        return ImportIo("mkdir " + path);
      }
      sub_dst = ::openat(dst, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub_dst < 0 || ::fchmod(sub_dst, 0755) != 0) {
        if (sub_dst >= 0) ::close(sub_dst);
        ::close(sub);
        return ImportIo("open " + path);
      }
    }
    auto ok = Dir(sub, sub_dst, path, depth + 1);
    ::close(sub);
    if (sub_dst >= 0) ::close(sub_dst);
    return ok;
  }

  Result<void> File(int src, int dst, const std::string& name, const std::string& path,
                    const struct stat& st) {
    const bool exec = (st.st_mode & 0111) != 0;
    Record("f", path, std::string(exec ? "x" : "-") + std::to_string(st.st_size));
    const int in = ::openat(src, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) return ImportIo("open " + path);
    int out = -1;
    if (copy_) {
      // SECURITY: modes normalised as the extractor does: no set-id bits, nothing writable by
      // others.
      const mode_t mode = exec ? 0755 : 0644;
      out = ::openat(dst, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
      if (out < 0 || ::fchmod(out, mode) != 0) {
        if (out >= 0) ::close(out);
        ::close(in);
        return ImportIo("create " + path);
      }
    }
    std::string buf(1 << 16, '\0');
    uint64_t total = 0;
    ssize_t n;
    while ((n = ::read(in, buf.data(), buf.size())) > 0) {
      hash_.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
      total += static_cast<uint64_t>(n);
      for (ssize_t done = 0; out >= 0 && done < n;) {
        const ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0) {
          n = -1;
          break;
        }
        done += w;
      }
      if (n < 0) break;
    }
    const bool failed = n < 0;
    ::close(in);
    if (out >= 0) ::close(out);
    if (failed) return ImportIo("copy " + path);
    if (total != static_cast<uint64_t>(st.st_size))
      return Fail(ErrorCode::kFailed, "import-changed", path + " changed while it was read");
    ++out_.files;
    out_.bytes += total;
    return {};
  }

  bool copy_;
  Sha256 hash_;
  TreeDigest out_;
  uint64_t entries_ = 0;
};

Result<int> OpenSource(const std::string& source_dir) {
  const int fd = ::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Fail(ErrorCode::kNotFound, "import-source",
                source_dir + " is not a directory this user can read: " + std::strerror(errno));
  return fd;
}

Result<TreeDigest> Walk(int src, int dst) {
  TreeWalk walk(dst);
  if (auto ok = walk.Dir(src, dst, "", 0); !ok) return tl::make_unexpected(ok.error());
  return walk.Finish();
}

// DECNET's sidecar names the git commit the release was pushed with; anything unreadable there
// is simply no commit.
std::optional<std::string> DecnetSha(int src) {
  auto text = ReadFileAt(src, kReleaseManifestName, kMaxReleaseManifestBytes);
  if (!text) return std::nullopt;
  auto json = nlohmann::json::parse(*text, nullptr, false);
  if (!json.is_object() || !json.contains("sha") || !json["sha"].is_string()) return std::nullopt;
  std::string sha = json["sha"].get<std::string>();
  if (sha.empty() || !VersionWithoutManifest(sha, std::string(64, '0'))) return std::nullopt;
  return sha;
}

Result<void> Place(ReleaseStore& store, const ReleaseId& id, ImportSlot slot) {
  const auto active = store.Active();
  if (active && *active == id) return {};
  if (slot == ImportSlot::kPrevious) {
    const auto previous = store.Previous();
    if (previous && *previous == id) return {};
    if (active)
      return Fail(ErrorCode::kDenied, "import-order",
                  "the store already has an active release (" + active->str() +
                      "): import the previous release first, then the active one");
  }
  if (auto ok = store.Activate(id); !ok) return ok;
  return store.Commit();
}

}  // namespace

Result<TreeDigest> DigestReleaseTree(const std::string& source_dir) {
  auto src = OpenSource(source_dir);
  if (!src) return tl::make_unexpected(src.error());
  UniqueFd owned(*src);
  return Walk(owned.get(), -1);
}

Result<ImportedRelease> ImportReleaseTree(const DaemonConfig& config, ReleaseStore& store,
                                          const std::string& source_dir, ImportSlot slot) {
  auto src_fd = OpenSource(source_dir);
  if (!src_fd) return tl::make_unexpected(src_fd.error());
  UniqueFd src(*src_fd);
  auto digest = Walk(src.get(), -1);
  if (!digest) return tl::make_unexpected(digest.error());
  auto id = ReleaseId::FromSha256Hex(digest->sha256);
  if (!id) return tl::make_unexpected(id.error());
  const std::optional<std::string> sha = DecnetSha(src.get());
  auto version = VersionWithoutManifest(sha, digest->sha256);
  if (!version) return tl::make_unexpected(version.error());

  ImportedRelease out{*id,           version->str(), digest->sha256,        store.IsComplete(*id),
                      digest->files, digest->bytes,  digest->skipped_links, ""};
  if (slot == ImportSlot::kPrevious && store.Active() && *store.Active() != *id &&
      !(store.Previous() && *store.Previous() == *id))
    return Fail(ErrorCode::kDenied, "import-order",
                "the store already has an active release (" + store.Active()->str() +
                    "): import the previous release first, then the active one");
  if (!out.already_present) {
    auto fail = [&](const Error& e) -> Result<ImportedRelease> {
      (void)store.RemoveIncomplete();
      return tl::make_unexpected(e);
    };
    auto dir = store.BeginRelease(*id);
    if (!dir) return fail(dir.error());
    auto copied = Walk(src.get(), dir->get());
    if (!copied) return fail(copied.error());
    if (copied->sha256 != digest->sha256)
      return fail(Error{ErrorCode::kFailed, "import-changed",
                        source_dir + " changed while it was imported"});
    const InstallVars vars{store.root() + "/releases/" + id->str(), id->str(), out.version,
                           digest->sha256};
    auto installed = InstallRelease(config, store.root(), vars, dir->get());
    if (!installed) return fail(installed.error());
    out.install_output = installed->output;
    ReleaseRecord record{
        digest->sha256,       sha, *version, ReleaseKind::kService, digest->bytes, "",
        ReleaseState::kReady, 0};
    if (auto ok = store.MarkComplete(*id, record); !ok) return fail(ok.error());
  }
  if (auto placed = Place(store, *id, slot); !placed) return tl::make_unexpected(placed.error());
  return out;
}

bool IsImportReleaseInvocation(int argc, const char* const* argv) {
  if (argc < 2) return false;
  const std::string_view first = argv[1];
  return first == "--import-release" || first.starts_with("--import-release=");
}

int RunImportRelease(int argc, const char* const* argv) {
  constexpr char kUsage[] =
      "usage: decnet-updaterd --import-release DIR --slot active|previous [--config PATH]";
  std::string source, slot_text, config_path = "/etc/decnet-updater/daemon.json";
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string* target = nullptr;
    for (auto [name, field] : {std::pair{std::string_view("--import-release"), &source},
                               std::pair{std::string_view("--slot"), &slot_text},
                               std::pair{std::string_view("--config"), &config_path}}) {
      if (arg == name && i + 1 < argc) {
        *field = argv[++i];
      } else if (arg.starts_with(std::string(name) + "=")) {
        *field = std::string(arg.substr(name.size() + 1));
      } else {
        continue;
      }
      target = field;
      break;
    }
    if (target == nullptr || target->empty()) {
      std::fprintf(stderr, "decnet-updaterd: bad argument '%s' [daemon-args]\n%s\n",
                   std::string(arg).c_str(), kUsage);
      return 2;
    }
  }
  if (source.empty() || (slot_text != "active" && slot_text != "previous")) {
    std::fprintf(stderr, "decnet-updaterd: %s [daemon-args]\n", kUsage);
    return 2;
  }
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "decnet-updaterd: %s [%s]\n", e.message.c_str(), e.rule.c_str());
    return 1;
  };
  auto config = LoadDaemonConfig(config_path);
  if (!config) return fail(config.error());
  auto store = ReleaseStore::Open(config->install_dir, static_cast<size_t>(config->keep_releases));
  if (!store) return fail(store.error());
  if (auto recovered = store->Recover(); !recovered) return fail(recovered.error());
  const ImportSlot slot = slot_text == "active" ? ImportSlot::kActive : ImportSlot::kPrevious;
  auto imported = ImportReleaseTree(*config, *store, source, slot);
  if (!imported) return fail(imported.error());
  std::printf("%s release %s (version %s, %llu files) from %s: %s/releases/%s\n",
              imported->already_present ? "already imported:" : "imported",
              imported->id.str().c_str(), imported->version.c_str(),
              static_cast<unsigned long long>(imported->files), source.c_str(),
              config->install_dir.c_str(), imported->id.str().c_str());
  return 0;
}

}  // namespace decnet::daemon
