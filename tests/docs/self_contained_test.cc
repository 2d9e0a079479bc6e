// The repository stands on its own: no file in it (code, comments, docs, scripts, CMake,
// tests) sends the reader to a document that is not in the repository. What a maintainer needs
// is written in docs/ (architecture.md, threat-model.md, daemon.md, protocol.md,
// security-review.md, operations.md).
#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/docs/repo_files.h"

namespace decnet::docs_test {
namespace {

struct Outside {
  std::string pattern;  // ECMAScript, case-insensitive
  std::string where_instead;
};

// Each pattern is assembled from pieces so that this file does not match its own list.
const std::vector<Outside>& OutsideDocuments() {
  static const std::vector<Outside> list = {
      {std::string("design") + "\\.md", "docs/architecture.md"},
      {std::string("testbed") + "\\.md", "docs/architecture.md (the throw-away systemd)"},
      {std::string("style") + "\\.md", ".clang-format and the code itself"},
      {std::string("decnet-") + "reference", "docs/decnet-compat.md"},
      {std::string("\\.\\./") + "shared", "docs/"},
      {std::string("(^|[\\s\"'`(])sha") + "red/", "docs/"},
      {std::string("design") + " notes?", "docs/architecture.md"},
      {std::string("(later|next|an?other|previous|earlier) ") + "issue", "docs/"},
      {std::string("\\bissue") + " ?#?[0-9]+", "docs/"},
      {std::string("/work/") + "(main|shared|notes)", "a path inside the repository"},
  };
  return list;
}

struct Hit {
  std::string where;  // FILE:LINE
  std::string text;
  std::string instead;
};

std::vector<Hit> Scan(const std::string& name, const std::string& text) {
  static const std::vector<std::regex> compiled = [] {
    std::vector<std::regex> out;
    for (const auto& o : OutsideDocuments())
      out.emplace_back(o.pattern, std::regex::icase | std::regex::optimize);
    return out;
  }();
  std::vector<Hit> hits;
  std::istringstream in(text);
  size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    for (size_t i = 0; i < compiled.size(); ++i) {
      if (std::regex_search(line, compiled[i]))
        hits.push_back(
            {name + ":" + std::to_string(number), line, OutsideDocuments()[i].where_instead});
    }
  }
  return hits;
}

TEST(TheRepository, NamesNoDocumentOutsideItself) {
  const auto files = RepoTextFiles();
  ASSERT_GT(files.size(), 100u) << "the source tree was not found at " << SourceDir();
  size_t found = 0;
  for (const auto& file : files) {
    for (const auto& hit : Scan(file, Slurp(SourceDir() / file))) {
      ++found;
      ADD_FAILURE() << hit.where << " points outside the repository (the content belongs in "
                    << hit.instead << "): " << hit.text;
    }
  }
  EXPECT_EQ(found, 0u);
}

// The scan itself: each outside document is caught wherever it is named, and the repository's
// own documents are not.
TEST(TheRepositoryScan, CatchesEveryOutsideDocumentAndNoneOfItsOwn) {
  const std::vector<std::string> outside = {
      std::string("// see DESIGN") + ".md §4",
      std::string("# as TESTBED") + ".md says",
      std::string("per ST") + "YLE.md",
      std::string("(DECNET-") + "REFERENCE.md §2)",
      std::string("../sh") + "ared/notes.txt",
      std::string("read /work/sh") + "ared/x",
      std::string("see sh") + "ared/DESIGN",
      std::string("the design ") + "note on recovery",
      std::string("arrive in a later ") + "issue",
      std::string("fixed by is") + "sue #12",
  };
  for (const auto& line : outside) EXPECT_FALSE(Scan("x", line).empty()) << line;
  const std::vector<std::string> own = {
      "see docs/architecture.md",
      "docs/threat-model.md, \"Residual risks\"",
      "libsdbus-c++ is a shared library",
      "/usr/share/doc/decnet-updater/",
      "the certificate's issuer",
      "an issued certificate",
      "tests/daemon/decnet_contract_test.cc",
      "Check(\"/shared/lib/systemd/system/x.service\")",
  };
  for (const auto& line : own) EXPECT_TRUE(Scan("x", line).empty()) << line;
}

// README.md's Documentation list names every document in docs/ and every man page.
TEST(TheReadme, ListsEveryDocumentAndManPage) {
  const std::string readme = Slurp(SourceDir() / "README.md");
  const size_t list = readme.find("## Documentation");
  ASSERT_NE(list, std::string::npos) << "README.md has no Documentation section";
  const std::string section = readme.substr(list, readme.find("\n## ", list + 1) - list);
  size_t seen = 0;
  for (const auto& f : RepoTextFiles()) {
    const std::filesystem::path p(f);
    if (p.parent_path() == "docs" && p.extension() == ".md") {
      ++seen;
      EXPECT_NE(section.find("`" + f + "`"), std::string::npos)
          << "README.md's Documentation list lacks " << f;
    } else if (p.parent_path() == "docs/man") {
      ++seen;
      const std::string page = p.stem().string() + "(" + p.extension().string().substr(1) + ")";
      EXPECT_NE(section.find("`" + page + "`"), std::string::npos)
          << "README.md's Documentation list lacks the man page " << page;
    }
  }
  EXPECT_GT(seen, 5u);
}

}  // namespace
}  // namespace decnet::docs_test
