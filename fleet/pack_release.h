// The steps pack and pack-self share: the release's identity, the tarball and the descriptor
// beside it, and the summary. The commands themselves (argument parsing, messages) are in
// pack.cc.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/pack_archive.h"
#include "proto/release_auth.h"
#include "proto/release_manifest.h"
#include "proto/result.h"

namespace decnet::fleet {

// The descriptor's name beside a tarball, and the signatures' beside the descriptor.
std::filesystem::path DescriptorPathFor(const std::filesystem::path& tarball);
std::filesystem::path SignaturesPathFor(const std::filesystem::path& descriptor);

// `git -C dir rev-parse HEAD` when it succeeds with a commit in the manifest's form, else
// nullopt (not a checkout, git missing, an unborn branch). Never fails.
std::optional<std::string> DetectGitCommit(const std::filesystem::path& dir);

// Everything a release is packed from.
struct ReleaseToPack {
  ReleaseManifest manifest;
  std::filesystem::path source_root{};  // members' contents are read beneath it
  std::vector<TarballMember> members{};
  std::filesystem::path out{};  // the tarball
  int64_t created = 0;          // descriptor's creation time (seconds since the epoch)
  uint64_t valid_days = 30;     // expires = created + valid_days days
};

// What was written.
struct PackedRelease {
  PackedTarball tarball;
  std::filesystem::path descriptor_path;
  std::string descriptor_bytes;
};

// Writes the tarball (manifest first, then the members) and its descriptor, each atomically.
// Refuses: a manifest the workers would refuse (its "manifest-*" rule); signatures already
// beside the descriptor, which belong to an earlier pack ("pack-signatures-present"); a
// descriptor the workers would refuse ("descriptor-*"); and the tarball writer's refusals.
[[nodiscard]] Result<PackedRelease> PackRelease(const ReleaseToPack& release);

}  // namespace decnet::fleet
