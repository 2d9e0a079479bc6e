// The daemon's own builds: scripts/pack-updater-build.sh (the `updater-build` target) run on
// the decnet-updaterd this tree built. The tarball it writes holds exactly the manifest and the
// stripped binary, with fixed owners, modes and times; two runs give the same bytes; and
// update-self's own checks (InstallUpdaterBuild, on a real store) accept it.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "daemon/release_store.h"
#include "daemon/self_update.h"
#include "proto/helper_protocol.h"
#include "proto/release_manifest.h"
#include "proto/sha256.h"
#include "tests/support/subprocess.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using helper::testing_support::CtlRun;
using helper::testing_support::RunCaptured;

const std::string kScript = std::string(DECNET_SOURCE_DIR) + "/scripts/pack-updater-build.sh";

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// One entry of the tarball as libarchive reads it.
struct Entry {
  mode_t mode = 0;
  int64_t uid = -1, gid = -1, mtime = -1;
  std::string data;
};

// The entries by name; `order` gets their names in the archive's order.
std::map<std::string, Entry> ReadTarball(const std::string& path,
                                         std::vector<std::string>* order = nullptr) {
  std::map<std::string, Entry> out;
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK) << path;
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry{archive_entry_mode(e), archive_entry_uid(e), archive_entry_gid(e),
                archive_entry_mtime(e), ""};
    char buf[1 << 16];
    for (la_ssize_t n; (n = archive_read_data(a, buf, sizeof buf)) > 0;)
      entry.data.append(buf, static_cast<size_t>(n));
    if (order != nullptr) order->push_back(archive_entry_pathname(e));
    out[archive_entry_pathname(e)] = std::move(entry);
  }
  archive_read_free(a);
  return out;
}

class TheUpdaterBuildScript : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-updater-build.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  // Runs the script with `args` (as the build target does, from bash), writing into a new
  // directory under the test's root; `shell_prefix` runs first in the same shell, `runner`
  // (such as setpriv) runs bash.
  CtlRun Pack(const std::vector<std::string>& args, const std::string& out_dir = "out",
              const std::string& shell_prefix = "", const std::string& runner = "") {
    fs::create_directories(root_ / out_dir);
    std::string command = shell_prefix + "exec " + runner + "bash '" + kScript + "' --out-dir '" +
                          (root_ / out_dir).string() + "'";
    for (const auto& a : args) command += " '" + a + "'";
    fs::create_directories(root_ / "logs");
    return RunCaptured({"/bin/bash", "-c", command}, (root_ / "logs").string());
  }
  std::vector<std::string> TheDaemon(const std::string& version) const {
    return {"--binary", DECNET_DAEMON_BINARY, "--version",
            version,    "--source-dir",       DECNET_SOURCE_DIR};
  }
  std::string TarballName(const std::string& version) const {
    return "decnet-updater-" + version + "-" + HostArch() + ".tar.gz";
  }

  fs::path root_;
};

TEST_F(TheUpdaterBuildScript, PacksTheStrippedDaemonWithAnUpdaterManifestForThisHostAndHelper) {
  const CtlRun run = Pack(TheDaemon("1.2.3+gabc"));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const fs::path tarball = root_ / "out" / TarballName("1.2.3+gabc");
  const std::string bytes = Slurp(tarball);
  ASSERT_FALSE(bytes.empty()) << tarball;
  const std::string digest = Sha256Hex(bytes);
  EXPECT_EQ(run.out, digest + "  " + tarball.string() + "\n") << "the digest is printed";
  EXPECT_EQ(Slurp(tarball.string() + ".sha256"), digest + "  " + tarball.filename().string() + "\n")
      << "and written beside it as sha256sum -c reads it";
  // gzip -n: no name, no time stamp in the gzip header.
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes[3] & 0x08, 0) << "FNAME set";
  EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0')) << "MTIME set";

  std::vector<std::string> order;
  const auto entries = ReadTarball(tarball.string(), &order);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(order,
            (std::vector<std::string>{".decnet-release.json", "bin/", "bin/decnet-updaterd"}))
      << "entries sorted by name";
  const std::map<std::string, mode_t> modes = {{".decnet-release.json", S_IFREG | 0644},
                                               {"bin/", S_IFDIR | 0755},
                                               {"bin/decnet-updaterd", S_IFREG | 0755}};
  for (const auto& [name, mode] : modes) {
    ASSERT_EQ(entries.count(name), 1u) << name;
    const Entry& e = entries.at(name);
    EXPECT_EQ(e.mode, mode) << name;
    EXPECT_EQ(e.uid, 0) << name;
    EXPECT_EQ(e.gid, 0) << name;
    EXPECT_EQ(e.mtime, 0) << name;
  }
  auto manifest = ParseReleaseManifest(entries.at(".decnet-release.json").data);
  ASSERT_TRUE(manifest) << manifest.error().message;
  EXPECT_EQ(manifest->version.str(), "1.2.3+gabc");
  EXPECT_EQ(manifest->kind, ReleaseKind::kUpdater);
  EXPECT_EQ(manifest->arch, HostArch());
  EXPECT_EQ(manifest->helper_protocol, static_cast<uint64_t>(proto::kProtocolVersion));

  const std::string& binary = entries.at("bin/decnet-updaterd").data;
  ASSERT_EQ(binary.substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_LT(binary.size(), fs::file_size(DECNET_DAEMON_BINARY));
  EXPECT_EQ(binary.find(".symtab"), std::string::npos) << "not stripped";
  EXPECT_EQ(binary.find(".debug_info"), std::string::npos) << "not stripped";
}

TEST_F(TheUpdaterBuildScript, GivesTheSameBytesTwiceWhateverTheUmaskTimeOrTemporaryDirectory) {
  ASSERT_EQ(Pack(TheDaemon("7.0.0")).exit_code, 0);
  // Another copy of the binary, newer, another umask and temporary directory, a second later,
  // and (as root) another user.
  fs::copy_file(DECNET_DAEMON_BINARY, root_ / "decnet-updaterd");
  ::sleep(1);
  ::utimensat(AT_FDCWD, (root_ / "decnet-updaterd").c_str(), nullptr, 0);
  fs::create_directories(root_ / "tmp");
  fs::create_directories(root_ / "again");
  std::string runner;
  if (::geteuid() == 0) {
    runner = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
    ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
    for (const char* dir : {"tmp", "again"})
      ASSERT_EQ(::chown((root_ / dir).c_str(), 65534, 65534), 0);
  }
  const CtlRun again =
      Pack({"--binary", (root_ / "decnet-updaterd").string(), "--version", "7.0.0", "--source-dir",
            DECNET_SOURCE_DIR},
           "again", "umask 077; export TMPDIR='" + (root_ / "tmp").string() + "'; ", runner);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const std::string first = Slurp(root_ / "out" / TarballName("7.0.0"));
  const std::string second = Slurp(root_ / "again" / TarballName("7.0.0"));
  ASSERT_FALSE(first.empty());
  EXPECT_TRUE(first == second) << "two runs gave different tarballs";
  EXPECT_EQ(Slurp(root_ / "out" / (TarballName("7.0.0") + ".sha256")),
            Slurp(root_ / "again" / (TarballName("7.0.0") + ".sha256")));
  EXPECT_TRUE(fs::is_empty(root_ / "tmp")) << "the staging directory was left behind";
}

TEST_F(TheUpdaterBuildScript, MakesATarballThatUpdateSelfsOwnChecksInstall) {
  ASSERT_EQ(Pack(TheDaemon("2.5.0")).exit_code, 0);
  const fs::path tarball = root_ / "out" / TarballName("2.5.0");
  const std::string bytes = Slurp(tarball);
  const std::string store_dir = (root_ / "updater").string();
  fs::create_directories(store_dir);
  auto store = ReleaseStore::Open(store_dir, 3);
  ASSERT_TRUE(store) << store.error().message;
  ASSERT_TRUE(store->Recover());
  auto install = [&](const UpdaterBuildChecks& checks) {
    const int fd = ::open(tarball.c_str(), O_RDONLY | O_CLOEXEC);
    auto installed = InstallUpdaterBuild(
        *store, VerifiedTarball{fd, bytes.size(), Sha256Hex(bytes), std::nullopt, {}}, checks);
    ::close(fd);
    return installed;
  };
  const auto protocol = static_cast<uint64_t>(proto::kProtocolVersion);
  // The checks really run: the same tarball on another host or beside another helper.
  auto other_arch = install({protocol, "riscv64x", std::chrono::seconds(10)});
  ASSERT_FALSE(other_arch);
  EXPECT_EQ(other_arch.error().rule, "update-self-arch");
  auto other_helper = install({protocol + 1, HostArch(), std::chrono::seconds(10)});
  ASSERT_FALSE(other_helper);
  EXPECT_EQ(other_helper.error().rule, "update-self-helper-protocol");

  auto installed = install({protocol, HostArch(), std::chrono::seconds(10)});
  ASSERT_TRUE(installed) << installed.error().rule << ": " << installed.error().message;
  EXPECT_EQ(installed->version, "2.5.0");
  EXPECT_EQ(installed->id.str(), Sha256Hex(bytes).substr(0, 16));
  EXPECT_EQ(fs::read_symlink(store_dir + "/current").string(), "releases/" + installed->id.str());
  EXPECT_TRUE(fs::is_regular_file(store_dir + "/current/bin/decnet-updaterd"));
}

TEST_F(TheUpdaterBuildScript, TakesTheProjectVersionPlusTheCommitWhenTheSourceIsACheckout) {
  const std::vector<std::string> base = {"--binary", DECNET_DAEMON_BINARY, "--version-base",
                                         DECNET_VERSION};
  std::vector<std::string> in_checkout = base;
  in_checkout.insert(in_checkout.end(), {"--source-dir", DECNET_SOURCE_DIR});
  const CtlRun run = Pack(in_checkout, "checkout");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const bool is_checkout = std::system(("git -C '" + std::string(DECNET_SOURCE_DIR) +
                                        "' rev-parse --short=12 HEAD >/dev/null 2>&1")
                                           .c_str()) == 0;
  const std::regex with_commit(std::string("decnet-updater-") + DECNET_VERSION +
                               "\\+g[0-9a-f]{12}(\\.dirty)?-" + HostArch() + "\\.tar\\.gz");
  const std::string plain = TarballName(DECNET_VERSION);
  for (const auto& e : fs::directory_iterator(root_ / "checkout")) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".sha256")) continue;
    if (is_checkout)
      EXPECT_TRUE(std::regex_match(name, with_commit)) << name;
    else
      EXPECT_EQ(name, plain);
  }
  // A source tree that is not a checkout: the project version alone.
  fs::create_directories(root_ / "src/proto");
  fs::copy_file(std::string(DECNET_SOURCE_DIR) + "/proto/helper_protocol.h",
                root_ / "src/proto/helper_protocol.h");
  std::vector<std::string> exported = base;
  exported.insert(exported.end(), {"--source-dir", (root_ / "src").string()});
  const CtlRun plain_run = Pack(exported, "exported", "export GIT_CEILING_DIRECTORIES=/tmp; ");
  ASSERT_EQ(plain_run.exit_code, 0) << plain_run.err;
  EXPECT_TRUE(fs::exists(root_ / "exported" / plain)) << plain_run.out;
}

TEST_F(TheUpdaterBuildScript, RefusesWhatWouldMakeABuildUpdateSelfRefuses) {
  std::ofstream(root_ / "not-executable") << "x";
  const std::string daemon = DECNET_DAEMON_BINARY;
  const std::string src = DECNET_SOURCE_DIR;
  const std::vector<std::vector<std::string>> bad = {
      {"--binary", (root_ / "missing").string(), "--version", "1.0", "--source-dir", src},
      {"--binary", (root_ / "not-executable").string(), "--version", "1.0", "--source-dir", src},
      {"--binary", daemon, "--version", "1 0", "--source-dir", src},
      {"--binary", daemon, "--version", "1.0/../x", "--source-dir", src},
      {"--binary", daemon, "--version", std::string(65, '1'), "--source-dir", src},
      {"--binary", daemon, "--version", "1.0", "--source-dir", src, "--arch", "x86-64"},
      {"--binary", daemon, "--version", "1.0", "--source-dir", src, "--arch", "../x"},
      {"--binary", daemon, "--version", "1.0", "--helper-protocol", "0"},
      {"--binary", daemon, "--version", "1.0", "--helper-protocol", "65536"},
      {"--binary", daemon, "--version", "1.0", "--helper-protocol", "one"},
      {"--binary", daemon, "--version", "1.0"},  // no protocol, no source to read it from
      {"--binary", daemon, "--version", "1.0", "--source-dir", root_.string()},
      {"--binary", daemon, "--version", "1.0", "--source-dir", src, "--mtime", "yesterday"},
      {"--binary", daemon, "--version", "1.0", "--source-dir", src, "--strip", "/bin/false"},
      {"--binary", daemon, "--source-dir", src},  // no version at all
      {"--binary", daemon, "--version", "1.0", "--source-dir", src, "--verbose", "1"},
      {"--binary", daemon, "--version"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string out = "bad-" + std::to_string(i);
    const CtlRun run = Pack(bad[i], out);
    EXPECT_NE(run.exit_code, 0) << "row " << i << ": " << run.out;
    EXPECT_FALSE(run.err.empty()) << "row " << i << " says nothing";
    EXPECT_TRUE(fs::is_empty(root_ / out)) << "row " << i << " wrote a tarball";
  }
  // The out directory itself must exist.
  const CtlRun no_dir =
      RunCaptured({"/bin/bash", kScript, "--binary", daemon, "--version", "1.0", "--source-dir",
                   src, "--out-dir", (root_ / "nowhere").string()},
                  root_.string());
  EXPECT_NE(no_dir.exit_code, 0);
  EXPECT_FALSE(fs::exists(root_ / "nowhere"));
}

}  // namespace
}  // namespace decnet::daemon
