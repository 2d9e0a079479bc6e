#include "fleet/release_file.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "fleet/worker_client.h"
#include "proto/release_auth.h"
#include "proto/release_manifest.h"

namespace decnet::fleet {

namespace {

constexpr std::size_t kMaxSignatures = 16;

tl::unexpected<Error> Denied(std::string rule, std::string message) {
  return Fail(ErrorCode::kDenied, std::move(rule), std::move(message));
}

bool IsUnitName(std::string_view name) {
  static constexpr std::array<std::string_view, 7> kSuffixes = {
      ".service", ".socket", ".timer", ".path", ".target", ".mount", ".slice"};
  if (name.empty() || name.find('/') != std::string_view::npos) return false;
  return std::any_of(kSuffixes.begin(), kSuffixes.end(), [&](std::string_view s) {
    return name.size() > s.size() && name.substr(name.size() - s.size()) == s;
  });
}

std::optional<std::string> ReadSmallFile(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(max + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

}  // namespace

Result<TarballListing> ListTarball(const std::string& path) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), path.c_str(), 64 * 1024) != ARCHIVE_OK)
    return Denied("release-file",
                  "cannot read " + path + " as a tarball: " + archive_error_string(a.get()));
  TarballListing out;
  archive_entry* entry = nullptr;
  int rc;
  while ((rc = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
    std::string_view name = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    while (name.substr(0, 2) == "./") name.remove_prefix(2);
    const bool regular = archive_entry_filetype(entry) == AE_IFREG;
    constexpr std::string_view kUnitDir = "etc/systemd/system/";
    if (name.substr(0, kUnitDir.size()) == kUnitDir ||
        name == kUnitDir.substr(0, kUnitDir.size() - 1))
      out.unit_dir = true;
    if (regular && name.substr(0, kUnitDir.size()) == kUnitDir &&
        IsUnitName(name.substr(kUnitDir.size())))
      out.units.emplace_back(name.substr(kUnitDir.size()));
    if (regular && name == kReleaseManifestName) {
      std::string bytes(kMaxReleaseManifestBytes + 1, '\0');
      const la_ssize_t got = archive_read_data(a.get(), bytes.data(), bytes.size());
      if (got < 0) return Denied("release-file", "cannot read the manifest in " + path);
      bytes.resize(static_cast<std::size_t>(got));
      out.manifest = std::move(bytes);
    }
  }
  if (rc != ARCHIVE_EOF)
    return Denied("release-file",
                  path + " is not a readable tarball: " + archive_error_string(a.get()));
  std::sort(out.units.begin(), out.units.end());
  out.units.erase(std::unique(out.units.begin(), out.units.end()), out.units.end());
  return out;
}

Result<ReleaseFile> LoadReleaseFile(const std::string& path) {
  ReleaseFile r;
  r.path = path;
  r.file_name = std::filesystem::path(path).filename().string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return Denied("release-file", path + " is not a regular file");
  auto digest = FileSha256(path, &r.size);
  if (!digest) return Denied("release-file", digest.error().message);
  r.sha256 = *digest;

  const std::string descriptor_path = path + ".manifest.json";
  if (std::filesystem::exists(descriptor_path, ec)) {
    auto bytes = ReadSmallFile(descriptor_path, kMaxReleaseDescriptorBytes);
    if (!bytes) return Denied("release-file", "cannot read " + descriptor_path);
    auto parsed = ParseReleaseDescriptor(*bytes);
    if (!parsed) return tl::make_unexpected(parsed.error());
    // SECURITY: a descriptor naming another tarball would be refused by every worker; say
    // so here, before any host is touched.
    if (parsed->sha256 != r.sha256 || parsed->size != r.size)
      return Denied("descriptor-mismatch", descriptor_path + " names another tarball (sha256 " +
                                               parsed->sha256 + ", " +
                                               std::to_string(parsed->size) + " bytes)");
    r.descriptor = std::move(*bytes);
    r.version = parsed->version.str();
    r.kind = std::string(ReleaseKindName(parsed->kind));
    if (parsed->commit) r.commit = *parsed->commit;

    const std::string sig_path = descriptor_path + ".sig";
    if (std::filesystem::exists(sig_path, ec)) {
      auto text = ReadSmallFile(sig_path, (kMaxSignatureLineBytes + 1) * (kMaxSignatures + 1));
      if (!text) return Denied("release-file", "cannot read " + sig_path);
      std::istringstream lines(*text);
      std::string line;
      while (std::getline(lines, line)) {
        if (line.empty()) continue;
        if (auto sig = ParseSignatureLine(line); !sig) return tl::make_unexpected(sig.error());
        r.signatures.push_back(line);
      }
      if (r.signatures.size() > kMaxSignatures)
        return Denied("signature-count", sig_path + " holds more than 16 signatures");
    }
  }

  auto listing = ListTarball(path);
  if (!listing) return tl::make_unexpected(listing.error());
  r.units = std::move(listing->units);
  r.ships_unit_dir = listing->unit_dir || !r.units.empty();
  if (listing->manifest) {
    if (auto m = ParseReleaseManifest(*listing->manifest); m) {
      if (r.version.empty()) r.version = m->version.str();
      if (r.kind.empty()) r.kind = std::string(ReleaseKindName(m->kind));
    }
  }
  return r;
}

nlohmann::json ReleaseFileJson(const ReleaseFile& r) {
  return {{"path", r.path},
          {"sha256", r.sha256},
          {"size", r.size},
          {"version", r.version.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.version)},
          {"kind", r.kind.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.kind)},
          {"signed", !r.signatures.empty()},
          {"units", r.units}};
}

}  // namespace decnet::fleet
