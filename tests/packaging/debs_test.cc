// The two Debian packages as built by the `debs` target (packaging/CMakeLists.txt), judged from
// the outside: dpkg-deb's listing against the layout docs/packaging.md describes (every file,
// its mode and owner; nothing else), the control fields (dependencies, conffiles, maintainer
// scripts), and lintian, whose every finding must be one docs/packaging.md justifies (and
// every justified finding must still occur, so the list stays true).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/shell.h"

#ifndef DECNET_PACKAGES_DIR
#error "DECNET_PACKAGES_DIR must name where the debs target writes the packages"
#endif

namespace decnet::test {
namespace {

namespace fs = std::filesystem;

using Ran = CommandRun;

// Runs a shell command line (the caller quotes) and collects stdout and stderr.
Ran Shell(const std::string& command) { return RunCommand(command); }

// The one package file whose name begins with `name_`.
fs::path Deb(const std::string& name) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(DECNET_PACKAGES_DIR, ec)) {
    const std::string file = e.path().filename().string();
    if (file.starts_with(name + "_") && file.ends_with(".deb")) found.push_back(e.path());
  }
  EXPECT_EQ(found.size(), 1u) << "packages named " << name << "_*.deb in " << DECNET_PACKAGES_DIR;
  return found.empty() ? fs::path() : found.front();
}

struct Entry {
  std::string mode;   // "-rwxr-xr-x"
  std::string owner;  // "root/root"
};

// dpkg-deb -c: path (without the leading ".") to mode and owner; directories end with "/".
std::map<std::string, Entry> Contents(const fs::path& deb) {
  const Ran ran = Shell("dpkg-deb -c '" + deb.string() + "'");
  EXPECT_EQ(ran.status, 0) << ran.output;
  std::map<std::string, Entry> out;
  std::istringstream lines(ran.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    Entry e;
    std::string size, date, time, path;
    f >> e.mode >> e.owner >> size >> date >> time >> path;
    if (path.starts_with(".")) path = path.substr(1);
    out[path] = e;
  }
  return out;
}

std::string Field(const fs::path& deb, const std::string& field) {
  Ran ran = Shell("dpkg-deb -f '" + deb.string() + "' " + field);
  while (!ran.output.empty() && ran.output.back() == '\n') ran.output.pop_back();
  return ran.output;
}

// One file of the package's data, read with dpkg-deb and tar.
std::string FileIn(const fs::path& deb, const std::string& path) {
  // Only the file's bytes: the pipeline's stderr is dropped inside the group that RunCommand
  // merges into its output.
  return RunCommand("{ { dpkg-deb --fsys-tarfile '" + deb.string() + "' | tar -xOf - '." + path +
                    "'; } 2>/dev/null; }")
      .output;
}

// The man pages in docs/man, by package: decnet-rollout's go to the master's.
std::set<std::string> ManPages(bool master) {
  std::set<std::string> pages;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(DECNET_SOURCE_DIR "/docs/man", ec)) {
    const std::string name = e.path().filename().string();
    const char section = name.empty() ? ' ' : name.back();
    if (name.size() < 3 || name[name.size() - 2] != '.' || (section != '1' && section != '8'))
      continue;
    if (name.starts_with("decnet-rollout.") != master) continue;
    pages.insert(std::string("/usr/share/man/man") + section + "/" + name + ".gz");
  }
  return pages;
}

// A file the package must hold: its path (or a pattern) and its mode.
struct Expected {
  std::string path;  // a regular expression when `pattern`
  std::string mode;
  bool pattern = false;
};

// Every file of the package must be expected, and every expected file present, with its mode,
// owned by root; directories only as parents, 0755.
void CheckLayout(const std::map<std::string, Entry>& contents, const std::vector<Expected>& files) {
  std::set<std::string> matched;
  for (const auto& [path, entry] : contents) {
    EXPECT_EQ(entry.owner, "root/root") << path;
    if (path.ends_with("/")) {
      EXPECT_EQ(entry.mode, "drwxr-xr-x") << path;
      continue;
    }
    bool known = false;
    for (const Expected& e : files) {
      const bool hit = e.pattern ? std::regex_match(path, std::regex(e.path)) : path == e.path;
      if (!hit) continue;
      known = true;
      matched.insert(e.path);
      EXPECT_EQ(entry.mode, e.mode) << path;
    }
    EXPECT_TRUE(known) << "the package holds " << path << ", which docs/packaging.md does not list";
  }
  for (const Expected& e : files)
    EXPECT_EQ(matched.count(e.path), 1u) << "the package lacks " << e.path;
}

constexpr char kExec[] = "-rwxr-xr-x";
constexpr char kFile[] = "-rw-r--r--";

TEST(TheWorkerPackage, HoldsExactlyTheWorkersFilesWithTheirModes) {
  const fs::path deb = Deb("decnet-updater");
  ASSERT_FALSE(deb.empty());
  std::vector<Expected> files = {
      {"/usr/libexec/decnet-updater/decnet-update-helper", kExec},
      {"/usr/bin/helperctl", kExec},
      {"/usr/sbin/decnet-adopt", kExec},
      {"/usr/lib/decnet-updater/decnet-updaterd", kExec},
      {R"(/usr/lib/decnet-updater/decnet-updater-[0-9][A-Za-z0-9.+_-]*\.tar\.gz)", kFile, true},
      {R"(/usr/lib/decnet-updater/decnet-updater-[0-9][A-Za-z0-9.+_-]*\.tar\.gz\.sha256)", kFile,
       true},
      {"/usr/lib/systemd/system/decnet-updater.service", kFile},
      {"/usr/lib/systemd/system/decnet.target", kFile},
      {"/usr/lib/sysusers.d/decnet-updater.conf", kFile},
      {"/usr/lib/tmpfiles.d/decnet-updater.conf", kFile},
      {"/etc/decnet-updater/helper.json", kFile},
      {"/etc/decnet-updater/daemon.json", kFile},
      {"/usr/share/doc/decnet-updater/copyright", kFile},
      {"/usr/share/doc/decnet-updater/changelog.gz", kFile},
  };
  // The polkit rule is a conffile in /etc: enrolment renders the same file again for another
  // operators' group (a copy in /usr/share would stay loaded beside it).
  files.push_back({"/etc/polkit-1/rules.d/50-decnet-updater.rules", kFile});
  if (DECNET_HAS_ENROL) files.push_back({"/usr/sbin/decnet-updater-enrol", kExec});
  for (const std::string& page : ManPages(false)) files.push_back({page, kFile});
  CheckLayout(Contents(deb), files);
}

TEST(TheWorkerPackage, ShipsTheRepositorysUnitsAndConfigurationByteForByte) {
  const fs::path deb = Deb("decnet-updater");
  ASSERT_FALSE(deb.empty());
  const std::map<std::string, std::string> same = {
      {"/usr/lib/systemd/system/decnet-updater.service", "systemd/decnet-updater.service"},
      {"/usr/lib/systemd/system/decnet.target", "systemd/decnet.target"},
      {"/usr/lib/sysusers.d/decnet-updater.conf", "systemd/decnet-updater.sysusers"},
      {"/usr/lib/tmpfiles.d/decnet-updater.conf", "systemd/decnet-updater.tmpfiles"},
      {"/etc/decnet-updater/helper.json", "packaging/config/helper.json"},
      {"/etc/decnet-updater/daemon.json", "packaging/config/daemon.json"},
      {"/etc/polkit-1/rules.d/50-decnet-updater.rules", "polkit/50-decnet-updater.rules"},
      {"/usr/share/doc/decnet-updater/copyright", "packaging/debian/copyright"},
  };
  for (const auto& [installed, source] : same) {
    const std::string expected = ReadFile(fs::path(DECNET_SOURCE_DIR) / source);
    ASSERT_FALSE(expected.empty()) << source;
    EXPECT_EQ(FileIn(deb, installed), expected) << installed << " is not " << source;
  }
}

TEST(TheWorkerPackage, CarriesTheDaemonsFirstBuildAsUpdateSelfTakesIt) {
  const fs::path deb = Deb("decnet-updater");
  ASSERT_FALSE(deb.empty());
  const Ran listed =
      Shell("dpkg-deb --fsys-tarfile '" + deb.string() +
            "' | tar -tf - | grep -E '^\\./usr/lib/decnet-updater/decnet-updater-.*\\.tar\\.gz$'");
  ASSERT_EQ(listed.status, 0) << listed.output;
  std::string tarball = listed.output.substr(0, listed.output.find('\n'));
  const Ran manifest = Shell("dpkg-deb --fsys-tarfile '" + deb.string() + "' | tar -xOf - '" +
                             tarball + "' | tar -xzOf - .decnet-release.json");
  ASSERT_EQ(manifest.status, 0) << manifest.output;
  EXPECT_NE(manifest.output.find("\"kind\":\"updater\""), std::string::npos) << manifest.output;
  const Ran names = Shell("dpkg-deb --fsys-tarfile '" + deb.string() + "' | tar -xOf - '" +
                          tarball + "' | tar -tzf - | sort | tr '\\n' ' '");
  EXPECT_EQ(names.output, ".decnet-release.json bin/ bin/decnet-updaterd ");
  // The digest beside it is the tarball's.
  const std::string digest = FileIn(deb, tarball.substr(1) + ".sha256");
  const Ran actual = Shell("dpkg-deb --fsys-tarfile '" + deb.string() + "' | tar -xOf - '" +
                           tarball + "' | sha256sum | cut -c1-64");
  ASSERT_GE(actual.output.size(), 64u);
  EXPECT_EQ(digest.substr(0, 64), actual.output.substr(0, 64));
}

TEST(TheWorkerPackage, DeclaresItsConffilesScriptsAndDependencies) {
  const fs::path deb = Deb("decnet-updater");
  ASSERT_FALSE(deb.empty());
  const Ran conffiles = Shell("dpkg-deb -I '" + deb.string() + "' conffiles");
  EXPECT_EQ(conffiles.output,
            "/etc/decnet-updater/helper.json\n/etc/decnet-updater/daemon.json\n"
            "/etc/polkit-1/rules.d/50-decnet-updater.rules\n");
  // Every file the package holds in /etc is a conffile, and nothing it holds in /usr/share is
  // a polkit rule (polkitd would load it beside the one enrolment writes).
  for (const auto& [path, entry] : Contents(deb)) {
    if (path.starts_with("/etc/") && !path.ends_with("/")) {
      EXPECT_NE(conffiles.output.find(path + "\n"), std::string::npos) << path;
    }
    EXPECT_FALSE(path.starts_with("/usr/share/polkit-1/")) << path;
  }
  for (const char* script : {"postinst", "prerm", "postrm"}) {
    const Ran text = Shell("dpkg-deb -I '" + deb.string() + "' " + script);
    EXPECT_EQ(text.output,
              ReadFile(fs::path(DECNET_SOURCE_DIR) / "packaging/debian/decnet-updater" / script))
        << script;
  }
  EXPECT_EQ(Field(deb, "Package"), "decnet-updater");
  const std::string depends = Field(deb, "Depends");
  // The libraries the binaries link (dpkg-shlibdeps), systemd and Python's venv.
  for (const char* dep : {"libsdbus-c++1", "libarchive13", "libspdlog1.10", "libfmt9", "libssl3",
                          "libc6", "libsystemd0", "libseccomp2", "systemd", "python3-venv"}) {
    EXPECT_NE(depends.find(dep), std::string::npos) << dep << " missing from: " << depends;
  }
  EXPECT_EQ(depends.find("decnet-rollout"), std::string::npos) << depends;
}

TEST(TheMasterPackage, HoldsDecnetRolloutAloneAndNothingOfTheWorker) {
  const fs::path deb = Deb("decnet-rollout");
  ASSERT_FALSE(deb.empty());
  std::vector<Expected> files = {
      {"/usr/bin/decnet-rollout", kExec},
      {"/usr/share/doc/decnet-rollout/copyright", kFile},
      {"/usr/share/doc/decnet-rollout/changelog.gz", kFile},
  };
  for (const std::string& page : ManPages(true)) files.push_back({page, kFile});
  CheckLayout(Contents(deb), files);
  EXPECT_EQ(Field(deb, "Package"), "decnet-rollout");
  const std::string depends = Field(deb, "Depends");
  for (const char* worker : {"decnet-updater", "systemd", "libsdbus", "python3", "polkit"})
    EXPECT_EQ(depends.find(worker), std::string::npos) << worker << " in: " << depends;
  for (const char* control : {"postinst", "prerm", "postrm", "conffiles"}) {
    EXPECT_NE(Shell("dpkg-deb -I '" + deb.string() + "' " + control).status, 0)
        << "the master's package has a " << control;
  }
}

TEST(BothPackages, HaveTheProjectsVersionAndItsChangelogEntry) {
  const std::string top = "decnet-updater (" DECNET_PROJECT_VERSION ")";
  for (const std::string name : {"decnet-updater", "decnet-rollout"}) {
    const fs::path deb = Deb(name);
    ASSERT_FALSE(deb.empty());
    EXPECT_EQ(Field(deb, "Version"), DECNET_PROJECT_VERSION) << name;
    const Ran changelog =
        Shell("dpkg-deb --fsys-tarfile '" + deb.string() + "' | tar -xOf - './usr/share/doc/" +
              name + "/changelog.gz' | zcat");
    EXPECT_TRUE(changelog.output.starts_with(top)) << name << ": " << changelog.output;
  }
}

// Every ELF file of both packages is hardened as docs/packaging.md says: position-independent,
// a read-only relocation table resolved at start (full RELRO, immediate binding), stack
// canaries (-fstack-protector-strong) and checked libc calls (-D_FORTIFY_SOURCE=2).
TEST(BothPackages, HoldOnlyHardenedBinaries) {
  const std::string dir =
      (fs::temp_directory_path() / ("decnet-debs-elf-" + std::to_string(::getpid()))).string();
  for (const std::string name : {"decnet-updater", "decnet-rollout"}) {
    const Ran unpacked =
        Shell("mkdir -p '" + dir + "' && dpkg-deb -x '" + Deb(name).string() + "' '" + dir + "'");
    ASSERT_EQ(unpacked.status, 0) << unpacked.output;
  }
  const Ran elves = Shell("find '" + dir +
                          "' -type f -perm -u+x -exec sh -c "
                          "'head -c4 \"$1\" | grep -q ELF && echo \"$1\"' _ {} \\;");
  std::istringstream files(elves.output);
  int checked = 0;
  for (std::string file; std::getline(files, file);) {
    ++checked;
    const std::string q = "'" + file + "'";
    EXPECT_NE(Shell("readelf -h " + q).output.find("DYN ("), std::string::npos)
        << file << " is not position-independent";
    EXPECT_NE(Shell("readelf -l " + q).output.find("GNU_RELRO"), std::string::npos) << file;
    EXPECT_NE(Shell("readelf -d " + q).output.find("BIND_NOW"), std::string::npos) << file;
    const std::string symbols = Shell("readelf --dyn-syms -W " + q).output;
    EXPECT_NE(symbols.find("__stack_chk_fail"), std::string::npos)
        << file << " has no stack protector";
    EXPECT_TRUE(std::regex_search(symbols, std::regex(R"(__[a-z0-9_]+_chk@)")))
        << file << " calls no fortified libc function";
  }
  EXPECT_EQ(checked, DECNET_HAS_ENROL ? 6 : 5) << elves.output;
  Shell("rm -rf '" + dir + "'");
}

// (package, tag) pairs docs/packaging.md justifies: the rows of its table under "## Lintian".
std::set<std::pair<std::string, std::string>> JustifiedFindings() {
  std::set<std::pair<std::string, std::string>> out;
  std::istringstream doc(ReadFile(DECNET_SOURCE_DIR "/docs/packaging.md"));
  bool in_section = false;
  const std::regex row(R"(^\| `([a-z0-9.+-]+)` \| `([a-z0-9.+-]+)` \|.*)");
  for (std::string line; std::getline(doc, line);) {
    if (line.starts_with("## ")) in_section = line == "## Lintian";
    std::smatch m;
    if (in_section && std::regex_match(line, m, row)) out.insert({m[1], m[2]});
  }
  return out;
}

TEST(BothPackages, HaveNoLintianFindingButThoseTheDocumentJustifies) {
  const std::string debs = Deb("decnet-updater").string() + "' '" + Deb("decnet-rollout").string();
  // Errors, warnings and informational tags; lintian exits non-zero on errors.
  const Ran lintian = Shell("lintian --display-info --no-tag-display-limit '" + debs + "'");
  std::set<std::pair<std::string, std::string>> found;
  const std::regex finding(R"(^[EWIPX]: ([a-z0-9.+-]+)(?: [a-z]+)?: ([a-z0-9.+-]+).*)");
  std::istringstream lines(lintian.output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, finding)) found.insert({m[1], m[2]});
  }
  const auto justified = JustifiedFindings();
  for (const auto& f : found) {
    EXPECT_EQ(justified.count(f), 1u)
        << f.first << ": lintian reports " << f.second << ", which docs/packaging.md does not "
        << "justify:\n"
        << lintian.output;
  }
  for (const auto& j : justified) {
    EXPECT_EQ(found.count(j), 1u) << "docs/packaging.md justifies " << j.first << ": " << j.second
                                  << ", which lintian no longer reports";
  }
}

}  // namespace
}  // namespace decnet::test
