// Replays the extraction corpus through the fuzz target's check (extract_fuzz.h) and compares
// each outcome with the one its file name expects, so the replay fails on a wrong result as
// well as on a crash or a broken invariant (those abort inside the check).
//
// Corpus file names say what is expected:
//   accept--NAME            extracted
//   refuse--RULE--NAME      refused with that rule (one of kExtractRules)
// A file named otherwise fails the replay: every input says what it expects.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "tests/daemon/extract_fuzz.h"

namespace {

namespace fs = std::filesystem;

// "accept" or "refuse:RULE" from a corpus file name; nullopt when it names no outcome.
std::optional<std::string> ExpectedOutcome(const std::string& name) {
  if (name.starts_with("accept--") && name.size() > 8) return "accept";
  constexpr std::string_view kRefuse = "refuse--";
  if (!name.starts_with(kRefuse)) return std::nullopt;
  const size_t end = name.find("--", kRefuse.size());
  if (end == std::string::npos || end == kRefuse.size() || end + 2 == name.size())
    return std::nullopt;
  return "refuse:" + name.substr(kRefuse.size(), end - kRefuse.size());
}

std::vector<fs::path> CorpusFiles(const fs::path& arg) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(arg, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(arg))
      if (e.is_regular_file()) files.push_back(e.path());
  } else if (fs::is_regular_file(arg, ec)) {
    files.push_back(arg);
  }
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 0, wrong = 0;
  for (int i = 1; i < argc; ++i) {
    const auto files = CorpusFiles(argv[i]);
    if (files.empty()) {
      std::fprintf(stderr, "no corpus at %s\n", argv[i]);
      return 2;
    }
    for (const fs::path& file : files) {
      const std::string name = file.filename().string();
      const auto expected = ExpectedOutcome(name);
      if (!expected) {
        std::fprintf(stderr, "%s: the name says no outcome (accept--NAME or refuse--RULE--NAME)\n",
                     file.c_str());
        ++wrong;
        continue;
      }
      std::ifstream in(file, std::ios::binary);
      const std::string bytes(std::istreambuf_iterator<char>(in), {});
      const std::string got = decnet::daemon::fuzzing::ExtractAndCheck(bytes);
      ++runs;
      if (got != *expected) {
        std::fprintf(stderr, "%s: expected %s, got %s\n", file.c_str(), expected->c_str(),
                     got.c_str());
        ++wrong;
      }
    }
  }
  std::printf("ran %d inputs, %d with a wrong or missing outcome\n", runs, wrong);
  return runs > 0 && wrong == 0 ? 0 : 1;
}
