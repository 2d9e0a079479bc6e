// decnet-rollout pack and pack-self: the commands around pack_tree (what is taken),
// pack_archive (how it is written) and pack_release (the manifest and the descriptor).
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <system_error>

#include "fleet/commands.h"
#include "fleet/pack_args.h"
#include "fleet/pack_release.h"
#include "fleet/pack_tree.h"
#include "proto/helper_protocol.h"

namespace decnet::fleet {
namespace fs = std::filesystem;

namespace {

constexpr char kPackUsage[] =
    "usage: decnet-rollout pack --root DIR --out FILE.tgz --version V [--commit HEX]\n"
    "         [--kind service] [--include PATH]... [--exclude PATTERN]...\n"
    "         [--created YYYY-MM-DDTHH:MM:SSZ] [--valid-for DAYS] [--verbose]\n"
    "\n"
    "Packs the allow-list of DIR (default: pyproject.toml LICENSE README.md decnet; --include\n"
    "replaces it) minus the hygiene deny-list and --exclude, reproducibly, with the release\n"
    "manifest first; writes FILE.tgz and its descriptor FILE.tgz.manifest.json.\n";

constexpr char kPackSelfUsage[] =
    "usage: decnet-rollout pack-self --build DIR --out FILE.tgz --version V [--commit HEX]\n"
    "         [--arch A] [--created YYYY-MM-DDTHH:MM:SSZ] [--valid-for DAYS] [--verbose]\n"
    "\n"
    "Packs the decnet-updaterd of a build directory (DIR/daemon, DIR/bin or DIR itself) as\n"
    "update-self takes it: bin/decnet-updaterd with an \"updater\" manifest.\n";

constexpr OptionSpec kCommonOptions[] = {
    {"--out"}, {"--version"}, {"--commit"}, {"--created"}, {"--valid-for"}, {"--verbose", false},
};

std::vector<OptionSpec> Specs(std::initializer_list<OptionSpec> own) {
  std::vector<OptionSpec> specs(std::begin(kCommonOptions), std::end(kCommonOptions));
  specs.insert(specs.end(), own);
  return specs;
}

int UsageError(const char* command, const std::string& message, const char* usage) {
  std::fprintf(stderr, "decnet-rollout %s: %s\n%s", command, message.c_str(), usage);
  return 2;
}

int Refused(const char* command, const Error& error) {
  std::fprintf(stderr, "decnet-rollout %s: %s: %s\n", command, error.rule.c_str(),
               error.message.c_str());
  return 1;
}

// The options pack and pack-self share, checked. Returns the exit code on a usage error.
struct CommonOptions {
  fs::path out;
  ReleaseManifest manifest;
  int64_t created = 0;
  uint64_t valid_days = 30;
  bool verbose = false;
};

Result<CommonOptions> ReadCommon(const ParsedArgs& args, const fs::path& commit_dir) {
  auto usage = [](std::string m) { return Fail(ErrorCode::kMalformed, "usage", std::move(m)); };
  if (!args.Has("--out")) return usage("--out is required");
  if (!args.Has("--version")) return usage("--version is required");
  auto version = ReleaseVersion::Parse(args.Get("--version"));
  if (!version) return usage("--version: " + version.error().message);
  CommonOptions common{.out = args.Get("--out"),
                       .manifest = ReleaseManifest{.version = *version,
                                                   .kind = ReleaseKind::kService,
                                                   .arch = std::nullopt,
                                                   .helper_protocol = std::nullopt,
                                                   .commit = std::nullopt}};
  if (args.Has("--commit")) {
    common.manifest.commit = args.Get("--commit");
  } else {
    common.manifest.commit = DetectGitCommit(commit_dir);
  }
  if (args.Has("--created")) {
    auto created = ParseUtcTime(args.Get("--created"));
    if (!created) return usage("--created: " + created.error().message);
    common.created = *created;
  } else {
    common.created = static_cast<int64_t>(std::time(nullptr));
  }
  if (args.Has("--valid-for")) {
    auto days = ParseCount("--valid-for", args.Get("--valid-for"), 1, 3650);
    if (!days) return tl::make_unexpected(days.error());
    common.valid_days = *days;
  }
  common.verbose = args.Has("--verbose");
  return common;
}

void PrintPacked(const PackedRelease& packed, const CommonOptions& common, uint64_t files,
                 uint64_t bytes) {
  std::printf("packed %s: %llu files, %llu bytes of content, %llu bytes compressed\n",
              common.out.c_str(), static_cast<unsigned long long>(files),
              static_cast<unsigned long long>(bytes),
              static_cast<unsigned long long>(packed.tarball.size));
  std::printf("  sha256   %s\n", packed.tarball.sha256.c_str());
  std::printf("  kind     %s\n", std::string(ReleaseKindName(common.manifest.kind)).c_str());
  std::printf("  version  %s\n", common.manifest.version.str().c_str());
  std::printf("  commit   %s\n",
              common.manifest.commit ? common.manifest.commit->c_str() : "(none)");
  const int64_t expires = common.created + static_cast<int64_t>(common.valid_days) * 86400;
  std::printf("  created  %s, expires %s\n", FormatUtcTime(common.created).c_str(),
              FormatUtcTime(expires).c_str());
  std::printf("  descriptor %s\n", packed.descriptor_path.c_str());
}

void PrintList(const char* what, const std::vector<std::string>& paths) {
  for (const std::string& p : paths) std::printf("  %s %s\n", what, p.c_str());
}

}  // namespace

int RunPack(Args args) {
  const auto specs =
      Specs({{"--root"}, {"--kind"}, {"--include", true, true}, {"--exclude", true, true}});
  auto parsed = ParseArgs(args, specs, 0);
  if (!parsed) return UsageError("pack", parsed.error().message, kPackUsage);
  if (parsed->help) {
    std::fputs(kPackUsage, stdout);
    return 0;
  }
  if (!parsed->Has("--root")) return UsageError("pack", "--root is required", kPackUsage);
  const fs::path root = parsed->Get("--root");
  auto common = ReadCommon(*parsed, root);
  if (!common) return UsageError("pack", common.error().message, kPackUsage);
  // An updater release carries an architecture and a helper protocol: pack-self's business.
  if (parsed->Get("--kind", "service") != "service") {
    return UsageError("pack", "--kind must be \"service\" (pack-self packs the updater)",
                      kPackUsage);
  }
  common->manifest.kind = ReleaseKind::kService;

  PackTreeOptions tree;
  tree.includes = parsed->All("--include");
  tree.excludes = parsed->All("--exclude");
  auto selection = SelectReleaseTree(root, tree);
  if (!selection) return Refused("pack", selection.error());
  // Never silent: a link the operator may have meant to ship is named whatever --verbose says.
  for (const std::string& link : selection->symlinks) {
    std::fprintf(stderr, "decnet-rollout pack: skipped symbolic link %s\n", link.c_str());
  }
  for (const std::string& special : selection->special) {
    std::fprintf(stderr, "decnet-rollout pack: skipped special file %s\n", special.c_str());
  }

  ReleaseToPack release{.manifest = common->manifest};
  release.source_root = root;
  release.out = common->out;
  release.created = common->created;
  release.valid_days = common->valid_days;
  for (const PackEntry& entry : selection->entries) release.members.push_back({entry, {}});
  auto packed = PackRelease(release);
  if (!packed) return Refused("pack", packed.error());

  PrintPacked(*packed, *common, selection->file_count, selection->file_bytes);
  std::printf("  skipped  %zu symbolic links, %zu denied, %zu excluded, %zu special files\n",
              selection->symlinks.size(), selection->denied.size(), selection->excluded.size(),
              selection->special.size());
  if (common->verbose) {
    for (const PackEntry& e : selection->entries) {
      if (e.type == PackEntryType::kFile) {
        std::printf("  packed   %s%s\n", e.path.c_str(), e.executable ? " (0755)" : "");
      }
    }
    PrintList("denied  ", selection->denied);
    PrintList("excluded", selection->excluded);
    PrintList("absent  ", selection->missing);
  }
  return 0;
}

namespace {

// Where a build keeps decnet-updaterd: a CMake build directory, a staged tree, or the
// binary's own directory. The first regular executable file found wins; links are not taken.
constexpr std::string_view kUpdaterBinaryPlaces[] = {
    "daemon/decnet-updaterd",
    "bin/decnet-updaterd",
    "decnet-updaterd",
};

Result<std::string> FindUpdaterBinary(const fs::path& build) {
  for (std::string_view place : kUpdaterBinaryPlaces) {
    const fs::path path = build / place;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((st.st_mode & 0111) == 0) {
      return Fail(ErrorCode::kDenied, "pack-self-binary", path.string() + " is not executable");
    }
    char magic[4] = {};
    std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
    if (std::string_view(magic, 4) !=
        "\x7f"
        "ELF") {
      return Fail(ErrorCode::kDenied, "pack-self-binary", path.string() + " is not an ELF file");
    }
    return std::string(place);
  }
  return Fail(ErrorCode::kNotFound, "pack-self-binary",
              "no decnet-updaterd under " + build.string() +
                  " (looked in daemon/, bin/ and the directory itself)");
}

std::string MachineArch() {
  struct utsname u {};
  return uname(&u) == 0 ? std::string(u.machine) : std::string();
}

}  // namespace

int RunPackSelf(Args args) {
  const auto specs = Specs({{"--build"}, {"--arch"}});
  auto parsed = ParseArgs(args, specs, 0);
  if (!parsed) return UsageError("pack-self", parsed.error().message, kPackSelfUsage);
  if (parsed->help) {
    std::fputs(kPackSelfUsage, stdout);
    return 0;
  }
  if (!parsed->Has("--build")) {
    return UsageError("pack-self", "--build is required", kPackSelfUsage);
  }
  const fs::path build = parsed->Get("--build");
  auto common = ReadCommon(*parsed, build);
  if (!common) return UsageError("pack-self", common.error().message, kPackSelfUsage);
  common->manifest.kind = ReleaseKind::kUpdater;
  common->manifest.arch = parsed->Get("--arch", MachineArch());
  common->manifest.helper_protocol = static_cast<uint64_t>(proto::kProtocolVersion);

  auto binary = FindUpdaterBinary(build);
  if (!binary) return Refused("pack-self", binary.error());
  std::error_code ec;
  const uint64_t size = fs::file_size(build / *binary, ec);
  if (ec) return Refused("pack-self", Error{ErrorCode::kFailed, "pack-io", ec.message()});

  // The layout update-self installs: bin/ and the daemon in it, both 0755.
  ReleaseToPack release{.manifest = common->manifest};
  release.source_root = build;
  release.out = common->out;
  release.created = common->created;
  release.valid_days = common->valid_days;
  release.members.push_back({{"bin", PackEntryType::kDirectory, true, 0}, {}});
  release.members.push_back({{"bin/decnet-updaterd", PackEntryType::kFile, true, size}, *binary});
  auto packed = PackRelease(release);
  if (!packed) return Refused("pack-self", packed.error());
  PrintPacked(*packed, *common, 1, size);
  std::printf("  arch     %s, helper protocol %d, binary %s\n", common->manifest.arch->c_str(),
              proto::kProtocolVersion, (build / *binary).c_str());
  return 0;
}

}  // namespace decnet::fleet
