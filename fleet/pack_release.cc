#include "fleet/pack_release.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

extern char** environ;

namespace decnet::fleet {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSecondsPerDay = 86400;

bool IsCommit(std::string_view text) {
  if (text.size() < 7 || text.size() > 64) return false;
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

fs::path DescriptorPathFor(const fs::path& tarball) {
  return fs::path(tarball.string() + ".manifest.json");
}

fs::path SignaturesPathFor(const fs::path& descriptor) {
  return fs::path(descriptor.string() + ".sig");
}

std::optional<std::string> DetectGitCommit(const fs::path& dir) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return std::nullopt;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::string dir_arg = dir.string();
  const char* argv[] = {"git",      "-C", dir_arg.c_str(), "rev-parse",
                        "--verify", "-q", "HEAD",          nullptr};
  pid_t pid = -1;
  const int spawned =
      posix_spawnp(&pid, "git", &actions, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  std::string out;
  if (spawned == 0) {
    char buffer[256];
    for (;;) {
      const ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (out.size() < 1024) out.append(buffer, static_cast<size_t>(n));
    }
  }
  close(pipe_fds[0]);
  if (spawned != 0) return std::nullopt;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (!IsCommit(out)) return std::nullopt;
  return out;
}

Result<PackedRelease> PackRelease(const ReleaseToPack& release) {
  // The workers' own parser is the check: what it would refuse is never written.
  const std::string manifest = SerializeReleaseManifest(release.manifest);
  if (auto parsed = ParseReleaseManifest(manifest); !parsed) {
    return tl::make_unexpected(parsed.error());
  }
  PackedRelease packed;
  packed.descriptor_path = DescriptorPathFor(release.out);
  // Signatures over an earlier descriptor would sit beside a new one and verify nothing; an
  // operator who re-packs removes them knowingly.
  const fs::path signatures = SignaturesPathFor(packed.descriptor_path);
  std::error_code ec;
  if (fs::symlink_status(signatures, ec).type() != fs::file_type::not_found) {
    return Fail(ErrorCode::kDenied, "pack-signatures-present",
                signatures.string() +
                    " exists: it signs an earlier pack of this file; remove it, or pack to "
                    "another --out");
  }
  if (release.valid_days == 0) {
    return Fail(ErrorCode::kMalformed, "descriptor-expires", "a release must be valid a day");
  }

  auto describe = [&](const std::string& sha256, uint64_t size) {
    const ReleaseDescriptor descriptor{
        .sha256 = sha256,
        .size = size,
        .kind = release.manifest.kind,
        .version = release.manifest.version,
        .commit = release.manifest.commit,
        .created = release.created,
        .expires = release.created + static_cast<int64_t>(release.valid_days) * kSecondsPerDay,
    };
    return SerializeReleaseDescriptor(descriptor);
  };
  // Checked before the tarball is written, so that a refused time leaves nothing behind.
  if (auto parsed = ParseReleaseDescriptor(describe(std::string(64, '0'), 1)); !parsed) {
    return tl::make_unexpected(parsed.error());
  }

  auto tarball = WriteReleaseTarball(release.source_root, manifest, release.members, release.out);
  if (!tarball) return tl::make_unexpected(tarball.error());
  packed.tarball = *tarball;
  packed.descriptor_bytes = describe(tarball->sha256, tarball->size);
  if (auto parsed = ParseReleaseDescriptor(packed.descriptor_bytes); !parsed) {
    return tl::make_unexpected(parsed.error());
  }
  if (auto ok = WriteFileAtomically(packed.descriptor_path, packed.descriptor_bytes, 0644); !ok) {
    return tl::make_unexpected(ok.error());
  }
  return packed;
}

}  // namespace decnet::fleet
