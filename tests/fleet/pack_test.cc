// decnet-rollout pack and pack-self, called in process: what a tree yields (allow-list,
// deny-list at any depth, --exclude that only narrows, symbolic links and special files
// skipped), the tarball read back with libarchive (order, owners, modes, times, gzip header),
// reproducibility whatever the files' times, and the manifest inside against the descriptor
// beside.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <set>

#include "fleet/commands.h"
#include "fleet/pack_tree.h"
#include "proto/helper_protocol.h"
#include "proto/release_auth.h"
#include "proto/release_manifest.h"
#include "tests/fleet/pack_test_support.h"

namespace decnet::fleet {
namespace {

using namespace testing_support;

constexpr char kCreated[] = "2030-01-02T03:04:05Z";

std::string Sha256OfFile(const fs::path& path) {
  const std::string bytes = ReadFile(path);
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : d) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0xf];
  }
  return hex;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class APack : public ::testing::Test {
 protected:
  void SetUp() override {
    tree_.File("pyproject.toml", "[project]\nname='decnet'\n");
    tree_.File("LICENSE", "license\n");
    tree_.File("README.md", "readme\n");
    tree_.File("decnet/__init__.py", "");
    tree_.File("decnet/cli/main.py", "print('hi')\n");
    tree_.File("decnet/bin/run.sh", "#!/bin/sh\n", 0750);
    // Outside DECNET's allow-list.
    tree_.File("tests/test_x.py", "t\n");
    tree_.File("docs/index.md", "d\n");
    tree_.File("setup.py", "s\n");
    out_dir_ = scratch_.Path("out");
    fs::create_directories(out_dir_);
  }

  std::string Out(const std::string& name = "r.tgz") const { return out_dir_ + "/" + name; }

  // pack with the usual arguments plus `extra`.
  CommandRun Pack(std::vector<std::string> extra = {}, const std::string& out = "") {
    std::vector<std::string> args = {
        "--root", tree_.root().string(), "--out", out.empty() ? Out() : out, "--version",
        "1.2.3",  "--created",           kCreated};
    args.insert(args.end(), extra.begin(), extra.end());
    return Call(RunPack, args);
  }

  std::vector<std::string> PackedPaths(std::vector<std::string> extra = {}) {
    const CommandRun run = Pack(std::move(extra));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return EntryPaths(ReadTarball(Out()));
  }

  ScratchDir tree_;
  ScratchDir scratch_;
  std::string out_dir_;
};

// ---------------------------------------------------------------------------------------
// The allow-list.

TEST_F(APack, TakesOnlyDecnetsAllowListByDefault) {
  const std::vector<std::string> expected = {
      ".decnet-release.json", "LICENSE",       "README.md",         "decnet/",
      "decnet/__init__.py",   "decnet/bin/",   "decnet/bin/run.sh", "decnet/cli/",
      "decnet/cli/main.py",   "pyproject.toml"};
  EXPECT_EQ(PackedPaths(), expected);
}

TEST_F(APack, SkipsAbsentDefaultEntriesButRefusesAnAbsentNamedInclude) {
  fs::remove(tree_.Path("LICENSE"));
  EXPECT_FALSE(Contains(PackedPaths(), "LICENSE"));
  fs::remove(Out());
  const CommandRun run = Pack({"--include", "decnet", "--include", "nothere"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-include-missing"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Out()));
}

TEST_F(APack, IncludeReplacesTheAllowList) {
  const std::vector<std::string> expected = {".decnet-release.json", "docs/", "docs/index.md",
                                             "setup.py"};
  EXPECT_EQ(PackedPaths({"--include", "docs/", "--include", "setup.py"}), expected);
}

TEST_F(APack, IncludeOfANestedPathShipsItsAncestorsAsDirectoriesOnly) {
  const std::vector<std::string> expected = {".decnet-release.json", "decnet/", "decnet/cli/",
                                             "decnet/cli/main.py"};
  EXPECT_EQ(PackedPaths({"--include", "decnet/cli"}), expected);
}

TEST_F(APack, OverlappingIncludesShipEachEntryOnce) {
  const std::vector<std::string> paths =
      PackedPaths({"--include", "decnet", "--include", "decnet/cli/main.py"});
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "decnet/cli/main.py"), 1);
}

struct BadInclude {
  const char* include;
};
class APackIncludePath : public APack, public ::testing::WithParamInterface<BadInclude> {};

TEST_P(APackIncludePath, IsRefusedWhenItCouldLeaveTheRoot) {
  const CommandRun run = Pack({"--include", GetParam().include});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-include"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Out()));
}

INSTANTIATE_TEST_SUITE_P(Table, APackIncludePath,
                         ::testing::Values(BadInclude{"/etc"}, BadInclude{"../x"},
                                           BadInclude{"decnet/../../x"}, BadInclude{".."},
                                           BadInclude{"."}, BadInclude{"./decnet"},
                                           BadInclude{"decnet//cli"}, BadInclude{""},
                                           BadInclude{"/"}));

// ---------------------------------------------------------------------------------------
// The deny-list, at any depth.

struct DeniedName {
  const char* name;
  const char* pattern;  // the rule it must hit
};

// One row per pattern of kPackDenyList (checked below), each a real-looking name.
constexpr DeniedName kDeniedNames[] = {
    {"server.key", "*.key"},
    {"tls.pem", "*.pem"},
    {"id_rsa", "id_rsa*"},
    {"id_rsa.pub", "id_rsa*"},
    {"id_dsa", "id_dsa*"},
    {"id_ecdsa", "id_ecdsa*"},
    {"id_ed25519", "id_ed25519*"},
    {"bundle.p12", "*.p12"},
    {"bundle.pfx", "*.pfx"},
    {"store.jks", "*.jks"},
    {"app.keystore", "*.keystore"},
    {"ca.crt", "*.crt"},
    {"ca.cer", "*.cer"},
    {"ca.der", "*.der"},
    {"host.csr", "*.csr"},
    {".env", ".env"},
    {".env.local", ".env.*"},
    {"prod.env", "*.env"},
    {".netrc", ".netrc"},
    {".pgpass", ".pgpass"},
    {"decnet.db", "*.db"},
    {"state.sqlite", "*.sqlite"},
    {"state.sqlite3", "*.sqlite3"},
    {"decnet.db-journal", "*-journal"},
    {"decnet.db-wal", "*-wal"},
    {"decnet.db-shm", "*-shm"},
    {"__pycache__", "__pycache__"},
    {".pytest_cache", ".pytest_cache"},
    {".mypy_cache", ".mypy_cache"},
    {".ruff_cache", ".ruff_cache"},
    {".cache", ".cache"},
    {".tox", ".tox"},
    {".venv", ".venv"},
    {"node_modules", "node_modules"},
    {"mod.pyc", "*.pyc"},
    {"mod.pyo", "*.pyo"},
    {"worker.log", "*.log"},
    {".git", ".git"},
    {".hg", ".hg"},
    {".svn", ".svn"},
};

TEST(APackDenyList, HasATestRowForEveryPattern) {
  std::set<std::string_view> tested;
  for (const DeniedName& d : kDeniedNames) tested.insert(d.pattern);
  for (const PackDenyRule& rule : kPackDenyList) {
    EXPECT_TRUE(tested.count(rule.pattern)) << rule.pattern << " has no row in kDeniedNames";
  }
}

class ADeniedName : public APack, public ::testing::WithParamInterface<DeniedName> {};

TEST_P(ADeniedName, MatchesItsRule) {
  const PackDenyRule* rule = MatchPackDenyList(GetParam().name);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->pattern, GetParam().pattern);
}

TEST_P(ADeniedName, IsDroppedAsAFileAtEveryDepth) {
  const std::string name = GetParam().name;
  for (const std::string dir : {"decnet/", "decnet/cli/", "decnet/a/b/c/"}) {
    tree_.File(dir + name, "secret\n");
  }
  tree_.File("decnet/a/b/c/keep.py");
  const std::vector<std::string> paths = PackedPaths({"--verbose"});
  for (const std::string& p : paths) {
    EXPECT_EQ(p.find(name), std::string::npos) << p << " was packed";
  }
  EXPECT_TRUE(Contains(paths, "decnet/a/b/c/keep.py"));
}

TEST_P(ADeniedName, IsDroppedWithEverythingBelowItAsADirectory) {
  const std::string name = GetParam().name;
  tree_.File("decnet/" + name + "/inner.py", "i\n");
  tree_.File("decnet/cli/" + name + "/deeper/inner.py", "i\n");
  const std::vector<std::string> paths = PackedPaths();
  for (const std::string& p : paths) {
    EXPECT_EQ(p.find(name), std::string::npos) << p << " was packed";
  }
}

TEST_P(ADeniedName, StaysOutWhenIncludedByName) {
  const std::string name = GetParam().name;
  tree_.File("decnet/" + name, "secret\n");
  const CommandRun run = Pack({"--include", "decnet/" + name, "--include", "LICENSE"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(EntryPaths(ReadTarball(Out())),
            (std::vector<std::string>{".decnet-release.json", "LICENSE"}));
  EXPECT_NE(run.out.find("1 denied"), std::string::npos) << run.out;
}

INSTANTIATE_TEST_SUITE_P(Table, ADeniedName, ::testing::ValuesIn(kDeniedNames));

// Names near a pattern that are not secrets, caches or logs.
class AnAllowedName : public APack, public ::testing::WithParamInterface<const char*> {};

TEST_P(AnAllowedName, IsPacked) {
  EXPECT_EQ(MatchPackDenyList(GetParam()), nullptr);
  tree_.File(std::string("decnet/cli/") + GetParam());
  EXPECT_TRUE(Contains(PackedPaths(), std::string("decnet/cli/") + GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Table, AnAllowedName,
                         ::testing::Values("key.py", "keys.py", "my.key.txt", "pem.md", "certs.py",
                                           "environment.py", "envs.py", "database.py", "db.py",
                                           "logger.py", "logs.txt", "cache.py", "gitutil.py",
                                           ".gitignore", ".gitattributes", "pycache.txt",
                                           "journal.py", "wal.md", "rsa_id.txt", "dotenv.py"));

// ---------------------------------------------------------------------------------------
// --exclude narrows, never widens.

TEST_F(APack, ExcludeOfADirectoryDropsItsSubtree) {
  tree_.File("decnet/tests/test_a.py");
  tree_.File("decnet/tests/deep/test_b.py");
  const std::vector<std::string> paths = PackedPaths({"--exclude", "decnet/tests"});
  for (const std::string& p : paths) EXPECT_EQ(p.find("tests"), std::string::npos) << p;
  EXPECT_TRUE(Contains(paths, "decnet/cli/main.py"));
}

TEST_F(APack, ExcludeMatchesANameAtAnyDepth) {
  tree_.File("decnet/cli/fixtures/f.json");
  tree_.File("decnet/fixtures/g.json");
  const std::vector<std::string> paths = PackedPaths({"--exclude", "fixtures"});
  for (const std::string& p : paths) EXPECT_EQ(p.find("fixtures"), std::string::npos) << p;
}

TEST_F(APack, ExcludeGlobCrossesDirectories) {
  const std::vector<std::string> paths = PackedPaths({"--exclude", "*.md"});
  EXPECT_FALSE(Contains(paths, "README.md"));
  EXPECT_TRUE(Contains(paths, "LICENSE"));
}

TEST_F(APack, ExcludingEverythingIsRefusedAsEmpty) {
  const CommandRun run = Pack({"--exclude", "*"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-empty"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Out()));
}

// Whatever the exclude patterns, the packed set is a subset of the set without them: a
// denied file and a path outside the allow-list stay out.
class AnExcludePattern : public APack, public ::testing::WithParamInterface<const char*> {};

TEST_P(AnExcludePattern, NeverWidensThePackedSet) {
  tree_.File("decnet/.env", "SECRET=1\n");
  tree_.File("decnet/cli/server.key", "k\n");
  const std::vector<std::string> base = PackedPaths();
  const std::vector<std::string> narrowed = PackedPaths({"--exclude", GetParam()});
  for (const std::string& p : narrowed) EXPECT_TRUE(Contains(base, p)) << p << " was added";
  for (const std::string p : {"decnet/.env", "decnet/cli/server.key", "tests/test_x.py", "tests",
                              "setup.py", "docs/index.md"}) {
    EXPECT_FALSE(Contains(narrowed, p)) << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Table, AnExcludePattern,
                         ::testing::Values("!*.key", "!.env", "", "nomatch", "[", "\\", "tests",
                                           "!tests", "decnet/cli", "decnet/*", "../*", "*.py"));

// ---------------------------------------------------------------------------------------
// Symbolic links and special files.

TEST_F(APack, SkipsSymbolicLinksCountsAndNamesThem) {
  tree_.File("outside/secret.txt", "secret\n");
  fs::create_symlink("../outside/secret.txt", tree_.Path("decnet/cli/leak.txt"));
  fs::create_symlink(tree_.Path("outside"), tree_.Path("decnet/linkdir"));
  fs::create_symlink("main.py", tree_.Path("decnet/cli/alias.py"));
  const CommandRun run = Pack();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<std::string> paths = EntryPaths(ReadTarball(Out()));
  for (const std::string p : {"decnet/cli/leak.txt", "decnet/linkdir", "decnet/linkdir/",
                              "decnet/linkdir/secret.txt", "decnet/cli/alias.py"}) {
    EXPECT_FALSE(Contains(paths, p)) << p;
  }
  EXPECT_NE(run.err.find("skipped symbolic link decnet/cli/leak.txt"), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("skipped symbolic link decnet/linkdir"), std::string::npos) << run.err;
  EXPECT_NE(run.out.find("3 symbolic links"), std::string::npos) << run.out;
}

TEST_F(APack, SkipsASymbolicLinkNamedByIncludeOrOnTheWayToIt) {
  tree_.File("real/inner/f.py");
  fs::create_symlink("real", tree_.Path("linked"));
  const CommandRun run =
      Pack({"--include", "linked", "--include", "linked/inner", "--include", "LICENSE"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(EntryPaths(ReadTarball(Out())),
            (std::vector<std::string>{".decnet-release.json", "LICENSE"}));
  EXPECT_NE(run.err.find("skipped symbolic link linked"), std::string::npos) << run.err;
}

TEST_F(APack, SkipsAFifo) {
  ASSERT_EQ(mkfifo(tree_.Path("decnet/cli/pipe").c_str(), 0644), 0);
  const CommandRun run = Pack();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(Contains(EntryPaths(ReadTarball(Out())), "decnet/cli/pipe"));
  EXPECT_NE(run.err.find("skipped special file decnet/cli/pipe"), std::string::npos) << run.err;
}

// ---------------------------------------------------------------------------------------
// Refusals.

TEST_F(APack, RefusesATreeThatCarriesItsOwnManifest) {
  tree_.File(".decnet-release.json", "{}");
  const CommandRun run = Pack();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-manifest-present"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(Out()));
  EXPECT_EQ(ReadFile(tree_.Path(".decnet-release.json")), "{}");
}

TEST_F(APack, ShipsAManifestNameDeeperDownAsAnOrdinaryFile) {
  tree_.File("decnet/.decnet-release.json", "{}");
  EXPECT_TRUE(Contains(PackedPaths(), "decnet/.decnet-release.json"));
}

TEST_F(APack, RefusesAPathTheWorkersWouldRefuse) {
  std::string deep = "decnet";
  for (int i = 0; i < 5; ++i) deep += "/" + std::string(250, 'a' + i);
  tree_.File(deep + "/f.py");
  const CommandRun run = Pack();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-path"), std::string::npos) << run.err;
}

TEST_F(APack, RefusesAControlCharacterInAName) {
  tree_.File("decnet/bad\nname.py");
  const CommandRun run = Pack();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-path"), std::string::npos) << run.err;
}

TEST_F(APack, RefusesSignaturesOfAnEarlierPackAndLeavesItsFilesAlone) {
  ASSERT_EQ(Pack().exit_code, 0);
  const std::string before = ReadFile(Out());
  std::ofstream(Out() + ".manifest.json.sig") << "ed25519 0000000000000000 AAAA\n";
  tree_.File("decnet/new.py");
  const CommandRun run = Pack();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-signatures-present"), std::string::npos) << run.err;
  EXPECT_EQ(ReadFile(Out()), before);
}

TEST_F(APack, RefusesARootThatIsNotADirectory) {
  const CommandRun run =
      Call(RunPack, {"--root", tree_.Path("LICENSE"), "--out", Out(), "--version", "1"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-root"), std::string::npos) << run.err;
}

// Usage errors: exit 2, nothing written.
class APackUsage : public APack, public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(APackUsage, ExitsTwoAndWritesNothing) {
  std::vector<std::string> args = GetParam();
  for (std::string& a : args) {
    if (a == "ROOT") a = tree_.root().string();
    if (a == "OUT") a = Out();
  }
  const CommandRun run = Call(RunPack, args);
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_NE(run.err.find("usage:"), std::string::npos);
  EXPECT_FALSE(fs::exists(Out()));
}

INSTANTIATE_TEST_SUITE_P(
    Table, APackUsage,
    ::testing::Values(
        std::vector<std::string>{"--out", "OUT", "--version", "1"},
        std::vector<std::string>{"--root", "ROOT", "--version", "1"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1 2"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "a/b"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--created",
                                 "2030-01-02 03:04:05"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--created",
                                 "yesterday"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--valid-for",
                                 "0"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--valid-for",
                                 "3651"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--valid-for",
                                 "7d"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--kind",
                                 "updater"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "--bogus"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1", "extra"},
        std::vector<std::string>{"--root", "ROOT", "--root", "ROOT", "--out", "OUT", "--version",
                                 "1"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version"},
        std::vector<std::string>{"--root", "ROOT", "--out", "OUT", "--version", "1",
                                 "--verbose=yes"}));

TEST_F(APack, RefusesACommitNotInTheManifestsForm) {
  for (const std::string& bad :
       std::vector<std::string>{"abc", "ABCDEF0", "xyz1234", std::string(65, 'a')}) {
    const CommandRun run = Pack({"--commit", bad});
    EXPECT_EQ(run.exit_code, 1) << bad;
    EXPECT_NE(run.err.find("manifest-commit"), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(Out())) << bad;
  }
}

// ---------------------------------------------------------------------------------------
// The tarball itself.

TEST_F(APack, WritesTheManifestFirstAndEveryHeaderNormalised) {
  tree_.File("decnet/private.py", "p\n", 0600);
  const auto run = Pack({"--commit", "0123456789abcdef0123456789abcdef01234567"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<TarEntry> entries = ReadTarball(Out());
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.front().path, ".decnet-release.json");
  std::vector<std::string> rest = EntryPaths(entries);
  rest.erase(rest.begin());
  EXPECT_TRUE(std::is_sorted(rest.begin(), rest.end()));
  for (const TarEntry& e : entries) {
    SCOPED_TRACE(e.path);
    EXPECT_EQ(e.uid, 0);
    EXPECT_EQ(e.gid, 0);
    EXPECT_EQ(e.uname, "");
    EXPECT_EQ(e.gname, "");
    EXPECT_EQ(e.mtime, 0);
    EXPECT_EQ(e.mtime_nsec, 0);
    EXPECT_FALSE(e.atime_set);
    EXPECT_FALSE(e.ctime_set);
    EXPECT_FALSE(e.birthtime_set);
    EXPECT_EQ(e.xattrs, 0);
    if (e.type == AE_IFDIR) {
      EXPECT_EQ(e.perm, 0755u);
    } else {
      EXPECT_EQ(e.type, static_cast<mode_t>(AE_IFREG));
      EXPECT_EQ(e.perm, e.path == "decnet/bin/run.sh" ? 0755u : 0644u);
    }
  }
  const auto main = std::find_if(entries.begin(), entries.end(),
                                 [](const TarEntry& e) { return e.path == "decnet/cli/main.py"; });
  ASSERT_NE(main, entries.end());
  EXPECT_EQ(main->content, "print('hi')\n");
}

TEST_F(APack, WritesGzipWithoutATimeStampOrName) {
  ASSERT_EQ(Pack().exit_code, 0);
  const std::string bytes = ReadFile(Out());
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0x8b);
  EXPECT_EQ(bytes[3] & 0x08, 0) << "FNAME set";
  EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0')) << "MTIME set";
}

TEST_F(APack, WritesTheSameBytesWhateverTheFilesTimesAndPermissionBits) {
  ASSERT_EQ(Pack({}, Out("a.tgz")).exit_code, 0);
  // Other times, other non-execute bits, another umask's leftovers: none of it is shipped.
  const timespec times[2] = {{12345, 678}, {987654321, 42}};
  for (const std::string p : {"LICENSE", "decnet/cli/main.py", "decnet/cli", "decnet"}) {
    ASSERT_EQ(utimensat(AT_FDCWD, tree_.Path(p).c_str(), times, AT_SYMLINK_NOFOLLOW), 0);
  }
  ASSERT_EQ(chmod(tree_.Path("LICENSE").c_str(), 0600), 0);
  ASSERT_EQ(chmod(tree_.Path("decnet/bin/run.sh").c_str(), 0700), 0);
  ASSERT_EQ(Pack({}, Out("b.tgz")).exit_code, 0);
  EXPECT_EQ(ReadFile(Out("a.tgz")), ReadFile(Out("b.tgz")));
  EXPECT_EQ(Sha256OfFile(Out("a.tgz")), Sha256OfFile(Out("b.tgz")));
  // The descriptors differ only in nothing: same digest, same created.
  EXPECT_EQ(ReadFile(Out("a.tgz.manifest.json")), ReadFile(Out("b.tgz.manifest.json")));
}

TEST_F(APack, WritesOtherBytesWhenAContentOrTheExecuteBitChanges) {
  ASSERT_EQ(Pack({}, Out("a.tgz")).exit_code, 0);
  tree_.File("LICENSE", "license!\n");
  ASSERT_EQ(Pack({}, Out("b.tgz")).exit_code, 0);
  EXPECT_NE(Sha256OfFile(Out("a.tgz")), Sha256OfFile(Out("b.tgz")));
  ASSERT_EQ(chmod(tree_.Path("decnet/cli/main.py").c_str(), 0755), 0);
  ASSERT_EQ(Pack({}, Out("c.tgz")).exit_code, 0);
  EXPECT_NE(Sha256OfFile(Out("b.tgz")), Sha256OfFile(Out("c.tgz")));
}

TEST_F(APack, LeavesOnlyTheTarballAndItsDescriptorInTheOutputDirectory) {
  ASSERT_EQ(Pack().exit_code, 0);
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(out_dir_)) names.insert(e.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{"r.tgz", "r.tgz.manifest.json"}));
  EXPECT_EQ(fs::status(Out()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                fs::perms::others_read);
}

// ---------------------------------------------------------------------------------------
// The manifest inside and the descriptor beside.

TEST_F(APack, WritesAManifestAndADescriptorThatAgree) {
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  const CommandRun run = Pack({"--commit", commit, "--valid-for", "7"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<TarEntry> entries = ReadTarball(Out());
  ASSERT_FALSE(entries.empty());
  auto manifest = ParseReleaseManifest(entries.front().content);
  ASSERT_TRUE(manifest) << manifest.error().message;
  EXPECT_EQ(manifest->kind, ReleaseKind::kService);
  EXPECT_EQ(manifest->version.str(), "1.2.3");
  EXPECT_EQ(manifest->commit, commit);
  EXPECT_FALSE(manifest->arch);
  EXPECT_FALSE(manifest->helper_protocol);

  auto descriptor = ParseReleaseDescriptor(ReadFile(Out() + ".manifest.json"));
  ASSERT_TRUE(descriptor) << descriptor.error().message;
  EXPECT_EQ(descriptor->sha256, Sha256OfFile(Out()));
  EXPECT_EQ(descriptor->size, fs::file_size(Out()));
  EXPECT_EQ(descriptor->kind, ReleaseKind::kService);
  EXPECT_EQ(descriptor->version.str(), "1.2.3");
  EXPECT_EQ(descriptor->commit, commit);
  EXPECT_EQ(descriptor->created, *ParseUtcTime(kCreated));
  EXPECT_EQ(descriptor->expires, *ParseUtcTime(kCreated) + 7 * 86400);
  EXPECT_NE(run.out.find(descriptor->sha256), std::string::npos) << run.out;
}

TEST_F(APack, TakesNothingFromTheClockIntoTheTarball) {
  for (const std::string when : {"a:2030-01-01T00:00:00Z", "b:2031-06-01T00:00:00Z"}) {
    const CommandRun run =
        Call(RunPack, {"--root", tree_.root().string(), "--out", Out(when.substr(0, 1) + ".tgz"),
                       "--version", "1.2.3", "--created", when.substr(2)});
    ASSERT_EQ(run.exit_code, 0) << run.err;
  }
  EXPECT_EQ(ReadFile(Out("a.tgz")), ReadFile(Out("b.tgz")));
  EXPECT_NE(ReadFile(Out("a.tgz.manifest.json")), ReadFile(Out("b.tgz.manifest.json")));
}

TEST_F(APack, DefaultsCreatedToNowAndValidityToThirtyDays) {
  const int64_t before = static_cast<int64_t>(time(nullptr));
  ASSERT_EQ(
      Call(RunPack, {"--root", tree_.root().string(), "--out", Out(), "--version", "1"}).exit_code,
      0);
  const int64_t after = static_cast<int64_t>(time(nullptr));
  auto descriptor = ParseReleaseDescriptor(ReadFile(Out() + ".manifest.json"));
  ASSERT_TRUE(descriptor);
  EXPECT_GE(descriptor->created, before);
  EXPECT_LE(descriptor->created, after);
  EXPECT_EQ(descriptor->expires - descriptor->created, 30 * 86400);
}

TEST_F(APack, LeavesTheCommitOutWhenTheTreeIsNoCheckout) {
  ASSERT_EQ(Pack().exit_code, 0);
  auto manifest = ParseReleaseManifest(ReadTarball(Out()).front().content);
  ASSERT_TRUE(manifest);
  EXPECT_FALSE(manifest->commit);
  EXPECT_EQ(ReadFile(Out() + ".manifest.json").find("commit"), std::string::npos);
}

TEST_F(APack, TakesTheCommitFromAGitCheckout) {
  const std::string git = "git -C '" + tree_.root().string() + "' ";
  ASSERT_EQ(std::system((git + "init -q && " + git + "add -A && " + git +
                         "-c user.name=t -c user.email=t@t commit -qm x")
                            .c_str()),
            0);
  FILE* p = popen((git + "rev-parse HEAD").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char head[128] = {};
  ASSERT_NE(fgets(head, sizeof head, p), nullptr);
  pclose(p);
  std::string expected(head);
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  ASSERT_EQ(Pack().exit_code, 0);
  auto manifest = ParseReleaseManifest(ReadTarball(Out()).front().content);
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->commit, expected);
  // .git itself is denied even when named.
  EXPECT_FALSE(Contains(EntryPaths(ReadTarball(Out())), ".git"));
}

// ---------------------------------------------------------------------------------------
// pack-self.

class APackSelf : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = ReadFile("/proc/self/exe").substr(0, 4096);  // an ELF file
    build_.File("daemon/decnet-updaterd", binary_, 0755);
    build_.File("daemon/other.o", "o\n");
    build_.File("CMakeCache.txt", "c\n");
  }
  CommandRun PackSelf(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--build", build_.root().string(), "--out", out_, "--version", "0.2.0", "--created",
        kCreated};
    args.insert(args.end(), extra.begin(), extra.end());
    return Call(RunPackSelf, args);
  }
  ScratchDir build_;
  ScratchDir scratch_;
  std::string out_ = scratch_.Path("u.tgz");
  std::string binary_;
};

TEST_F(APackSelf, PacksTheDaemonAsUpdateSelfTakesIt) {
  const CommandRun run = PackSelf();
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<TarEntry> entries = ReadTarball(out_);
  ASSERT_EQ(EntryPaths(entries),
            (std::vector<std::string>{".decnet-release.json", "bin/", "bin/decnet-updaterd"}));
  EXPECT_EQ(entries[1].perm, 0755u);
  EXPECT_EQ(entries[2].perm, 0755u);
  EXPECT_EQ(entries[2].content, binary_);
  auto manifest = ParseReleaseManifest(entries[0].content);
  ASSERT_TRUE(manifest) << manifest.error().message;
  EXPECT_EQ(manifest->kind, ReleaseKind::kUpdater);
  EXPECT_EQ(manifest->version.str(), "0.2.0");
  struct utsname u {};
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(manifest->arch, std::string(u.machine));
  EXPECT_EQ(manifest->helper_protocol, static_cast<uint64_t>(proto::kProtocolVersion));
  auto descriptor = ParseReleaseDescriptor(ReadFile(out_ + ".manifest.json"));
  ASSERT_TRUE(descriptor);
  EXPECT_EQ(descriptor->kind, ReleaseKind::kUpdater);
  EXPECT_EQ(descriptor->sha256, Sha256OfFile(out_));
}

TEST_F(APackSelf, FindsTheDaemonInAStagedBinDirectoryAndTakesArch) {
  fs::remove_all(build_.Path("daemon"));
  build_.File("bin/decnet-updaterd", binary_, 0755);
  const CommandRun run = PackSelf({"--arch", "aarch64"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto manifest = ParseReleaseManifest(ReadTarball(out_).front().content);
  ASSERT_TRUE(manifest);
  EXPECT_EQ(manifest->arch, "aarch64");
}

TEST_F(APackSelf, IsReproducible) {
  ASSERT_EQ(PackSelf().exit_code, 0);
  const std::string first = ReadFile(out_);
  const timespec times[2] = {{1, 0}, {2, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, build_.Path("daemon/decnet-updaterd").c_str(), times, 0), 0);
  fs::remove(out_ + ".manifest.json");
  ASSERT_EQ(PackSelf().exit_code, 0);
  EXPECT_EQ(ReadFile(out_), first);
}

TEST_F(APackSelf, RefusesABuildWithoutADaemon) {
  fs::remove(build_.Path("daemon/decnet-updaterd"));
  const CommandRun run = PackSelf();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("pack-self-binary"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(APackSelf, RefusesADaemonThatIsALink) {
  fs::rename(build_.Path("daemon/decnet-updaterd"), build_.Path("daemon/real"));
  fs::create_symlink("real", build_.Path("daemon/decnet-updaterd"));
  EXPECT_EQ(PackSelf().exit_code, 1);
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(APackSelf, RefusesADaemonThatIsNotExecutable) {
  ASSERT_EQ(chmod(build_.Path("daemon/decnet-updaterd").c_str(), 0644), 0);
  const CommandRun run = PackSelf();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("not executable"), std::string::npos) << run.err;
}

TEST_F(APackSelf, RefusesADaemonThatIsNotAnElfFile) {
  build_.File("daemon/decnet-updaterd", "#!/bin/sh\n", 0755);
  const CommandRun run = PackSelf();
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("not an ELF"), std::string::npos) << run.err;
}

TEST_F(APackSelf, RefusesAnArchitectureTheManifestCannotCarry) {
  const CommandRun run = PackSelf({"--arch", "x86-64"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("manifest-arch"), std::string::npos) << run.err;
  EXPECT_FALSE(fs::exists(out_));
}

}  // namespace
}  // namespace decnet::fleet
