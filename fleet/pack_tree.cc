#include "fleet/pack_tree.h"

#include <fnmatch.h>

#include <map>
#include <set>
#include <system_error>

#include "proto/release_manifest.h"

namespace decnet::fleet {
namespace fs = std::filesystem;

namespace {

// The workers' extraction caps (daemon defaults): a path they would refuse is refused here,
// where the operator can still rename it.
constexpr size_t kMaxPathBytes = 1024;
constexpr size_t kMaxComponentBytes = 255;

bool FnMatch(std::string_view pattern, std::string_view text) {
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

std::string_view LastComponent(std::string_view rel) {
  const size_t slash = rel.rfind('/');
  return slash == std::string_view::npos ? rel : rel.substr(slash + 1);
}

Result<void> CheckEntryPath(const std::string& rel) {
  if (rel.size() > kMaxPathBytes) {
    return Fail(ErrorCode::kDenied, "pack-path",
                rel.substr(0, 64) + "...: path of " + std::to_string(rel.size()) +
                    " bytes; workers refuse more than " + std::to_string(kMaxPathBytes));
  }
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    if (end - start > kMaxComponentBytes) {
      return Fail(ErrorCode::kDenied, "pack-path",
                  rel + ": a component over " + std::to_string(kMaxComponentBytes) + " bytes");
    }
    start = end + 1;
  }
  for (const char c : rel) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return Fail(ErrorCode::kDenied, "pack-path",
                  "a path under " + rel.substr(0, rel.find(c)) +
                      " holds a control character; workers refuse it");
    }
  }
  return {};
}

// One walk: the options, and what was found so far (maps and sets keep it sorted and free of
// duplicates when includes overlap).
class Walk {
 public:
  Walk(const fs::path& root, const PackTreeOptions& options) : root_(root), options_(options) {}

  // Takes one allow-list path; `named` when the operator gave it (a missing one is an error).
  Result<void> Include(const std::string& rel, bool named) {
    // Each ancestor passes the same checks as the path itself, without being entered.
    for (size_t slash = rel.find('/'); slash != std::string::npos;
         slash = rel.find('/', slash + 1)) {
      const std::string prefix = rel.substr(0, slash);
      if (Dropped(prefix)) return {};
      std::error_code ec;
      const fs::file_status st = fs::symlink_status(root_ / prefix, ec);
      if (st.type() == fs::file_type::symlink) {
        symlinks_.insert(prefix);
        return {};
      }
      if (st.type() != fs::file_type::directory) return Missing(rel, named);
    }
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(root_ / rel, ec);
    if (st.type() == fs::file_type::not_found) return Missing(rel, named);
    return Visit(rel);
  }

  PackSelection Finish() && {
    PackSelection out;
    for (auto& [path, entry] : entries_) {
      if (entry.type == PackEntryType::kFile) {
        ++out.file_count;
        out.file_bytes += entry.size;
      }
      out.entries.push_back(std::move(entry));
    }
    out.symlinks.assign(symlinks_.begin(), symlinks_.end());
    out.denied.assign(denied_.begin(), denied_.end());
    out.excluded.assign(excluded_.begin(), excluded_.end());
    out.special.assign(special_.begin(), special_.end());
    out.missing.assign(missing_.begin(), missing_.end());
    return out;
  }

 private:
  Result<void> Missing(const std::string& rel, bool named) {
    if (named) {
      return Fail(ErrorCode::kNotFound, "pack-include-missing",
                  "--include " + rel + ": no such file or directory under " + root_.string());
    }
    missing_.insert(rel);
    return {};
  }

  // True (and recorded) when the deny-list or an --exclude pattern drops `rel`.
  bool Dropped(const std::string& rel) {
    const std::string_view name = LastComponent(rel);
    if (const PackDenyRule* rule = MatchPackDenyList(name)) {
      denied_.insert(rel + " (" + std::string(rule->family) + ")");
      return true;
    }
    for (const std::string& pattern : options_.excludes) {
      if (MatchesPackExclude(pattern, rel, name)) {
        excluded_.insert(rel);
        return true;
      }
    }
    return false;
  }

  Result<void> Visit(const std::string& rel) {
    if (Dropped(rel)) return {};
    if (auto ok = CheckEntryPath(rel); !ok) return ok;
    const fs::path path = root_ / rel;
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(path, ec);
    if (ec) return Fail(ErrorCode::kFailed, "pack-io", path.string() + ": " + ec.message());
    switch (st.type()) {
      case fs::file_type::symlink:
        symlinks_.insert(rel);
        return {};
      case fs::file_type::regular: {
        const uintmax_t size = fs::file_size(path, ec);
        if (ec) return Fail(ErrorCode::kFailed, "pack-io", path.string() + ": " + ec.message());
        const bool exec = (st.permissions() & (fs::perms::owner_exec | fs::perms::group_exec |
                                               fs::perms::others_exec)) != fs::perms::none;
        AddFile(rel, exec, size);
        return {};
      }
      case fs::file_type::directory:
        return VisitDirectory(rel);
      default:
        special_.insert(rel);
        return {};
    }
  }

  Result<void> VisitDirectory(const std::string& rel) {
    const fs::path path = root_ / rel;
    std::error_code ec;
    std::set<std::string> names;  // sorted, so messages and errors come in a stable order
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      names.insert(it->path().filename().string());
    }
    if (ec) return Fail(ErrorCode::kFailed, "pack-io", path.string() + ": " + ec.message());
    for (const std::string& name : names) {
      if (auto ok = Visit(rel + "/" + name); !ok) return ok;
    }
    return {};
  }

  void AddFile(const std::string& rel, bool executable, uint64_t size) {
    entries_[rel] = PackEntry{rel, PackEntryType::kFile, executable, size};
    for (size_t slash = rel.find('/'); slash != std::string::npos;
         slash = rel.find('/', slash + 1)) {
      const std::string dir = rel.substr(0, slash);
      entries_.try_emplace(dir, PackEntry{dir, PackEntryType::kDirectory, true, 0});
    }
  }

  const fs::path& root_;
  const PackTreeOptions& options_;
  std::map<std::string, PackEntry> entries_;
  std::set<std::string> symlinks_, denied_, excluded_, special_, missing_;
};

}  // namespace

const PackDenyRule* MatchPackDenyList(std::string_view name) {
  for (const PackDenyRule& rule : kPackDenyList) {
    if (FnMatch(rule.pattern, name)) return &rule;
  }
  return nullptr;
}

bool MatchesPackExclude(std::string_view pattern, std::string_view rel, std::string_view name) {
  return FnMatch(pattern, rel) || FnMatch(pattern, name);
}

Result<std::string> NormalisePackInclude(std::string_view path) {
  std::string out(path);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  auto bad = [&](std::string_view why) {
    return Fail(ErrorCode::kMalformed, "pack-include",
                "--include '" + std::string(path) + "': " + std::string(why));
  };
  if (out.empty()) return bad("empty");
  if (out.front() == '/') return bad("must be relative to --root");
  size_t start = 0;
  while (start <= out.size()) {
    size_t end = out.find('/', start);
    if (end == std::string::npos) end = out.size();
    const std::string_view c = std::string_view(out).substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return bad("no empty, '.' or '..' component");
    start = end + 1;
  }
  return out;
}

Result<PackSelection> SelectReleaseTree(const fs::path& root, const PackTreeOptions& options) {
  std::error_code ec;
  if (fs::symlink_status(root, ec).type() != fs::file_type::directory) {
    return Fail(ErrorCode::kNotFound, "pack-root", root.string() + " is not a directory");
  }
  // The manifest names the release; pack writes it from its arguments. A tree carrying one
  // (an extracted release, say) would have two answers, so it is refused, never overwritten.
  if (fs::symlink_status(root / kReleaseManifestName, ec).type() != fs::file_type::not_found) {
    return Fail(ErrorCode::kDenied, "pack-manifest-present",
                (root / kReleaseManifestName).string() +
                    " exists: pack writes the release manifest itself from --version and "
                    "--commit; remove the old one");
  }
  std::vector<std::pair<std::string, bool>> includes;
  if (options.includes.empty()) {
    for (std::string_view p : kDefaultPackIncludes) includes.emplace_back(p, false);
  } else {
    for (const std::string& p : options.includes) {
      auto normal = NormalisePackInclude(p);
      if (!normal) return tl::make_unexpected(normal.error());
      includes.emplace_back(*normal, true);
    }
  }
  Walk walk(root, options);
  for (const auto& [rel, named] : includes) {
    if (auto ok = walk.Include(rel, named); !ok) return tl::make_unexpected(ok.error());
  }
  PackSelection selection = std::move(walk).Finish();
  if (selection.file_count == 0) {
    return Fail(ErrorCode::kDenied, "pack-empty",
                "nothing to pack under " + root.string() +
                    ": no regular file is on the allow-list and off the deny-list");
  }
  return selection;
}

}  // namespace decnet::fleet
