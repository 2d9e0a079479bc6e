// The repository's own text files, for the tests that read the whole tree (tests/docs/): every
// file beneath the source directory but build trees, version-control data and binary files.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace decnet::docs_test {

inline const std::filesystem::path& SourceDir() {
  static const std::filesystem::path dir = DECNET_SOURCE_DIR;
  return dir;
}

inline std::string Slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Paths relative to the source directory, sorted. Skips build*/ and every directory whose name
// begins with a dot at the top level (.git, editors' state), and files holding a NUL byte or
// larger than 4 MiB (fuzz corpora, archives).
inline std::vector<std::string> RepoTextFiles() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  const fs::path root = SourceDir();
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path rel = fs::relative(it->path(), root);
    const std::string first = rel.begin()->string();
    if (it->is_directory()) {
      if (it.depth() == 0 && (first.starts_with("build") || first.starts_with(".")))
        it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file() || it->file_size() > 4 * 1024 * 1024) continue;
    if (Slurp(it->path()).find('\0') != std::string::npos) continue;
    out.push_back(rel.string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace decnet::docs_test
