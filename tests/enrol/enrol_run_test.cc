// decnet-updater-enrol run for real beneath a temporary root (--root, --no-reload): every file
// checked for owner, mode and ACL, the keys tried as the daemon's and the units' users in a
// child process, the configurations read by the real parsers, the material used for a real
// TLS handshake, --dry-run and a second run shown to change nothing, --from material checked,
// and a table of refusals with their rules. Needs root (chown, ACLs, setresuid); skipped
// otherwise.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "adopt/key_acl.h"
#include "daemon/config.h"
#include "enrol/enrol.h"
#include "enrol/tls_material.h"
#include "policy/policy.h"
#include "polkit/polkit_rule.h"
#include "tests/daemon/test_pki.h"

namespace decnet::enrol {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Put(const fs::path& p, const std::string& content, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  ::chmod(p.c_str(), mode);
}

struct RunResult {
  int status = -1;
  std::string out, err;
};

RunResult Enrol(std::vector<std::string> args) {
  RunResult r;
  auto options = ParseEnrolArgs(args);
  if (!options) {
    r.err = options.error().message + " [" + options.error().rule + "]";
    return r;
  }
  char *out_buf = nullptr, *err_buf = nullptr;
  size_t out_len = 0, err_len = 0;
  FILE* out = ::open_memstream(&out_buf, &out_len);
  FILE* err = ::open_memstream(&err_buf, &err_len);
  r.status = RunEnrol(*options, out, err);
  std::fclose(out);
  std::fclose(err);
  r.out.assign(out_buf, out_len);
  r.err.assign(err_buf, err_len);
  std::free(out_buf);
  std::free(err_buf);
  return r;
}

// Everything beneath `root` that a run could change: each path's type, owner, mode, ACL and
// content, in order.
std::string Tree(const fs::path& root) {
  std::map<std::string, std::string> entries;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    char acl[512];
    const ssize_t n = ::lgetxattr(e.path().c_str(), "system.posix_acl_access", acl, sizeof acl);
    std::string line = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                       std::to_string(st.st_gid) +
                       " acl=" + (n > 0 ? std::string(acl, static_cast<size_t>(n)) : "");
    if (S_ISREG(st.st_mode)) line += " content=" + Slurp(e.path());
    entries[e.path().string()] = line;
  }
  std::string out;
  for (const auto& [path, line] : entries) out += path + " " + line + "\n";
  return out;
}

// Whether `user` can open `path` for reading, tried in a child that has become that user.
bool CanRead(const std::string& user, const fs::path& path) {
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return false;
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::initgroups(user.c_str(), gid) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      _exit(2);
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    _exit(fd >= 0 ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 2) << "could not become " << user;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

uid_t Uid(const std::string& user) { return ::getpwnam(user.c_str())->pw_uid; }
gid_t Gid(const std::string& group) { return ::getgrnam(group.c_str())->gr_gid; }

class AnEnrolment : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (chown, ACLs, setresuid)";
    for (const char* account : {"decnet-updater", "decnet"})
      if (::getpwnam(account) == nullptr)
        GTEST_SKIP() << "needs the users of systemd/decnet-updater.sysusers (scripts/setup.sh)";
    std::string tmpl = (fs::temp_directory_path() / "decnet-enrol-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    // Searchable by everyone, so that a refused read is the file's doing, not the root's.
    ::chmod(root_.c_str(), 0755);
  }
  void TearDown() override {
    std::error_code ec;
    if (!root_.empty()) fs::remove_all(root_, ec);
    if (!input_.empty()) fs::remove_all(input_, ec);
  }

  std::vector<std::string> Args(std::vector<std::string> more) const {
    std::vector<std::string> args = {"--root", root_.string(), "--no-reload"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  fs::path At(const std::string& path) const { return root_ / path.substr(1); }

  // A directory outside the root for material handed over by a master.
  fs::path Input() {
    if (input_.empty()) {
      std::string tmpl = (fs::temp_directory_path() / "decnet-enrol-in-XXXXXX").string();
      EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
      input_ = tmpl;
    }
    return input_;
  }

  // A master's issue: DIR/updater/{ca.crt,updater.crt,updater.key}, DIR/agent/{...}.
  fs::path MasterBundle(const testing::TestCa& ca, const std::string& name = "bundle") {
    const fs::path dir = Input() / name;
    const testing::Issued updater = ca.Issue({.common_names = {"worker1"}, .server = true});
    const testing::Issued worker = ca.Issue({.common_names = {"worker1"}});
    Put(dir / "updater/ca.crt", ca.ca().cert_pem);
    Put(dir / "updater/updater.crt", updater.cert_pem);
    Put(dir / "updater/updater.key", updater.key_pem, 0600);
    Put(dir / "agent/ca.crt", ca.ca().cert_pem);
    Put(dir / "agent/worker.crt", worker.cert_pem);
    Put(dir / "agent/worker.key", worker.key_pem, 0600);
    return dir;
  }

  fs::path root_, input_;
};

const std::vector<std::string> kCreate = {"--create",     "--name",    "worker1.example",
                                          "--address",    "192.0.2.5", "--master-cn",
                                          "decnet-master"};

struct Expected {
  const char* path;
  const char* user;
  const char* group;
  mode_t mode;
  bool acl;
};

TEST_F(AnEnrolment, CreatesEveryFileAndDirectoryWithItsOwnerModeAndAcl) {
  const RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const std::vector<Expected> expected = {
      {"/etc/decnet-updater", "root", "root", 0755, false},
      {"/etc/decnet-updater/helper.json", "root", "root", 0644, false},
      {"/etc/decnet-updater/daemon.json", "root", "root", 0644, false},
      {"/etc/decnet-updater/ca", "root", "root", 0700, false},
      {"/etc/decnet-updater/ca/ca.crt", "root", "root", 0644, false},
      {"/etc/decnet-updater/ca/ca.key", "root", "root", 0600, false},
      {"/etc/decnet/updater", "root", "root", 0755, false},
      {"/etc/decnet/updater/ca.crt", "root", "root", 0644, false},
      {"/etc/decnet/updater/updater.crt", "root", "root", 0644, false},
      {"/etc/decnet/updater/updater.key", "root", "root", 0640, true},
      {"/etc/decnet/agent/ca.crt", "root", "root", 0644, false},
      {"/etc/decnet/agent/worker.crt", "root", "root", 0644, false},
      {"/etc/decnet/agent/worker.key", "root", "root", 0640, true},
      {"/var/lib/decnet-update-helper", "root", "root", 0700, false},
      {"/var/lib/decnet-updater", "decnet-updater", "decnet-updater", 0750, false},
      {"/opt/decnet", "decnet-updater", "decnet-updater", 0755, false},
      {"/opt/decnet-updater", "decnet-updater", "decnet-updater", 0755, false},
      {"/opt/decnet-updater/updater", "decnet-updater", "decnet-updater", 0755, false},
  };
  for (const Expected& e : expected) {
    struct stat st {};
    ASSERT_EQ(::lstat(At(e.path).c_str(), &st), 0) << e.path;
    EXPECT_EQ(st.st_uid, Uid(e.user)) << e.path;
    EXPECT_EQ(st.st_gid, Gid(e.group)) << e.path;
    EXPECT_EQ(st.st_mode & 07777, e.mode) << e.path;
    char buf[256];
    const bool has_acl =
        ::lgetxattr(At(e.path).c_str(), "system.posix_acl_access", buf, sizeof buf) > 0;
    EXPECT_EQ(has_acl, e.acl) << e.path;
    if (e.acl) {
      auto entries = adopt::ReadAcl(At(e.path).string());
      ASSERT_TRUE(entries);
      std::vector<adopt::AclEntry> named;
      for (const auto& a : *entries)
        if (a.tag == adopt::kAclUser || a.tag == adopt::kAclGroup) named.push_back(a);
      ASSERT_EQ(named.size(), 1u) << e.path << ": exactly one named entry";
      EXPECT_EQ(named[0].id, Uid("decnet-updater")) << e.path;
      EXPECT_EQ(named[0].perm, 4) << e.path;
    }
  }
  EXPECT_FALSE(fs::exists(At(kDropInPath))) << "the default layout needs no drop-in";
  EXPECT_FALSE(fs::exists(At(kPolkitRulePath))) << "the shipped rule fits";
  EXPECT_NE(r.out.find("next: systemctl enable --now decnet-updater.service"), std::string::npos);
}

TEST_F(AnEnrolment, LetsTheDaemonReadItsKeysAndNoUnitReadAny) {
  const RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* key : {"/etc/decnet/updater/updater.key", "/etc/decnet/agent/worker.key"}) {
    EXPECT_TRUE(CanRead("decnet-updater", At(key))) << key;
    EXPECT_FALSE(CanRead("decnet", At(key))) << key;
    EXPECT_FALSE(CanRead("nobody", At(key))) << key;
  }
  EXPECT_FALSE(CanRead("decnet-updater", At("/etc/decnet-updater/ca/ca.key")))
      << "the CA's key is root's alone";
  EXPECT_FALSE(CanRead("decnet", At("/etc/decnet-updater/ca/ca.key")));
  EXPECT_TRUE(CanRead("decnet", At("/etc/decnet/updater/updater.crt")))
      << "certificates are public";
  EXPECT_TRUE(CanRead("decnet-updater", At("/etc/decnet-updater/daemon.json")));
  EXPECT_NE(r.out.find("key material, not shown"), std::string::npos);
  EXPECT_EQ(r.out.find("PRIVATE KEY"), std::string::npos) << "never key material in the output";
}

TEST_F(AnEnrolment, WritesConfigurationsTheRealParsersAccept) {
  const RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  auto policy = helper::LoadPolicyFile(At("/etc/decnet-updater/helper.json").string());
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(helper::PolicyToJson(*policy), helper::PolicyToJson(helper::Policy::Defaults()));
  auto daemon = daemon::LoadDaemonConfig(At("/etc/decnet-updater/daemon.json").string());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(daemon->master_cn, "decnet-master");
}

TEST_F(AnEnrolment, MakesMaterialAServerAndAMasterShakeHandsWith) {
  const RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  // The master's client certificate, issued by the CA made here.
  const CertAndKey ca{Slurp(At("/etc/decnet-updater/ca/ca.crt")),
                      Slurp(At("/etc/decnet-updater/ca/ca.key"))};
  LeafSpec spec;
  spec.common_name = "decnet-master";
  spec.purpose = Purpose::kClient;
  auto master = IssueLeaf(ca, spec);
  ASSERT_TRUE(master) << master.error().message;
  testing::TempDir tmp;
  const std::string master_crt = tmp.Write("master.crt", master->cert_pem);
  const std::string master_key = tmp.Write("master.key", master->key_pem);

  testing::CtxPtr server(SSL_CTX_new(TLS_server_method()));
  ASSERT_EQ(SSL_CTX_use_certificate_file(
                server.get(), At("/etc/decnet/updater/updater.crt").c_str(), SSL_FILETYPE_PEM),
            1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server.get(), At("/etc/decnet/updater/updater.key").c_str(),
                                        SSL_FILETYPE_PEM),
            1);
  ASSERT_EQ(SSL_CTX_load_verify_locations(server.get(), At("/etc/decnet/updater/ca.crt").c_str(),
                                          nullptr),
            1);
  SSL_CTX_set_verify(server.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  testing::CtxPtr client(SSL_CTX_new(TLS_client_method()));
  ASSERT_EQ(SSL_CTX_use_certificate_file(client.get(), master_crt.c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(client.get(), master_key.c_str(), SSL_FILETYPE_PEM), 1);
  ASSERT_EQ(SSL_CTX_load_verify_locations(client.get(), At("/etc/decnet/updater/ca.crt").c_str(),
                                          nullptr),
            1);
  SSL_CTX_set_verify(client.get(), SSL_VERIFY_PEER, nullptr);
  const auto hs = testing::HandshakeInMemory(server.get(), client.get());
  EXPECT_TRUE(hs.server_ok && hs.client_ok);
  // The fingerprint printed for the master's inventory is the certificate's.
  auto fp = Fingerprint(Slurp(At("/etc/decnet/updater/updater.crt")));
  ASSERT_TRUE(fp);
  EXPECT_NE(r.out.find("\"updater_cert_fingerprint\"): " + *fp), std::string::npos) << r.out;
}

TEST_F(AnEnrolment, DryRunChangesNothingAndPrintsThePlan) {
  const std::string before = Tree(root_);
  RunResult r = Enrol(Args([] {
    auto a = kCreate;
    a.push_back("--dry-run");
    return a;
  }()));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Tree(root_), before);
  EXPECT_NE(r.out.find("would write /etc/decnet/updater/updater.key (root:root 0640, ACL "
                       "user:decnet-updater:r): key material, not shown"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("would create directory /opt/decnet (decnet-updater:decnet-updater 0755)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("dry run: nothing was changed"), std::string::npos);

  // On an enrolled worker, a change previewed: a diff of the configuration, nothing changed.
  ASSERT_EQ(Enrol(Args(kCreate)).status, 0);
  const std::string enrolled = Tree(root_);
  r = Enrol(Args({"--install-dir", "/srv/decnet", "--master-address", "192.0.2.10", "--dry-run"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Tree(root_), enrolled);
  EXPECT_NE(r.out.find("would replace /etc/decnet-updater/daemon.json (root:root 0644):\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("    +   \"install_dir\": \"/srv/decnet\","), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("would write " + std::string(kDropInPath) +
                       " (root:root 0644):\n    # Written by decnet-updater-enrol"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\n    IPAddressAllow=192.0.2.10\n"), std::string::npos) << r.out;
}

TEST_F(AnEnrolment, RunAgainWithTheSameArgumentsChangesNothingAndSaysSo) {
  const std::vector<std::string> args =
      Args({"--create", "--master-cn", "decnet-master", "--install-dir", "/srv/decnet",
            "--master-address", "192.0.2.10", "--admin-group", "adm"});
  ASSERT_EQ(Enrol(args).status, 0);
  const std::string first = Tree(root_);
  const RunResult again = Enrol(args);
  ASSERT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_EQ(Tree(root_), first);
  EXPECT_NE(again.out.find("nothing to change: this worker is already enrolled as asked"),
            std::string::npos)
      << again.out;
  // Without the options, what was set stays too.
  const RunResult bare = Enrol(Args({}));
  ASSERT_EQ(bare.status, 0) << bare.out << bare.err;
  EXPECT_EQ(Tree(root_), first) << bare.out;
}

// The package installs the rule as a conffile; enrolment renders that one file again, for
// another group and back, and never removes it.
TEST_F(AnEnrolment, RendersThePackagesRuleInPlaceForAnotherGroupAndBackAgain) {
  const std::string shipped = Slurp(DECNET_SOURCE_DIR "/polkit/50-decnet-updater.rules");
  ASSERT_FALSE(shipped.empty());
  Put(At(kPolkitRulePath), shipped);
  auto expect_rule = [&](const std::string& content, const std::string& when) {
    EXPECT_EQ(Slurp(At(kPolkitRulePath)), content) << when;
    struct stat st {};
    ASSERT_EQ(::stat(At(kPolkitRulePath).c_str(), &st), 0) << when;
    EXPECT_EQ(st.st_uid, 0u) << when;
    EXPECT_EQ(st.st_gid, 0u) << when;
    EXPECT_EQ(st.st_mode & 07777, 0644u) << when << ": polkitd reads it as its own user";
  };
  ASSERT_EQ(Enrol(Args(kCreate)).status, 0);
  expect_rule(shipped, "the shipped rule fits");

  RunResult r = Enrol(Args({"--admin-group", "adm"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  polkit::PolkitRuleParams params;
  params.admin_group = "adm";
  expect_rule(*polkit::RenderPolkitRule(params), "--admin-group adm");
  EXPECT_NE(r.out.find("replace " + std::string(kPolkitRulePath)), std::string::npos) << r.out;
  r = Enrol(Args({}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  expect_rule(*polkit::RenderPolkitRule(params), "a run that is not told the group keeps it");

  r = Enrol(Args({"--admin-group", "decnet-admin"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  expect_rule(shipped, "back to the shipped group");
  const std::string first = Tree(root_);
  r = Enrol(Args({"--admin-group", "decnet-admin"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Tree(root_), first);
  EXPECT_NE(r.out.find("nothing to change"), std::string::npos) << r.out;

  // A mode polkitd cannot read is put back.
  ASSERT_EQ(::chmod(At(kPolkitRulePath).c_str(), 0600), 0);
  r = Enrol(Args({}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  expect_rule(shipped, "after its mode drifted");
}

TEST_F(AnEnrolment, LeavesAnOperatorsOwnRuleUnlessToldTheGroup) {
  const std::string own = "polkit.addRule(function (action, subject) { return null; });\n";
  Put(At(kPolkitRulePath), own);
  RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Slurp(At(kPolkitRulePath)), own);
  EXPECT_NE(r.out.find("is not a rendering of this tool"), std::string::npos) << r.out;
  r = Enrol(Args({"--admin-group", "decnet-admin"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Slurp(At(kPolkitRulePath)), Slurp(DECNET_SOURCE_DIR "/polkit/50-decnet-updater.rules"));
}

TEST_F(AnEnrolment, PutsBackAKeysModeAndAclWhenTheyDrifted) {
  ASSERT_EQ(Enrol(Args(kCreate)).status, 0);
  const fs::path key = At("/etc/decnet/updater/updater.key");
  ASSERT_EQ(::removexattr(key.c_str(), "system.posix_acl_access"), 0);
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  ASSERT_TRUE(CanRead("decnet", key));
  const RunResult r = Enrol(Args(kCreate));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("set owner, mode and ACL of /etc/decnet/updater/updater.key"),
            std::string::npos)
      << r.out;
  EXPECT_FALSE(CanRead("decnet", key));
  EXPECT_TRUE(CanRead("decnet-updater", key));
}

TEST_F(AnEnrolment, InstallsAMastersMaterialAndPinsTheMaster) {
  testing::TestCa ca("fleet CA");
  const fs::path bundle = MasterBundle(ca);
  const testing::Issued master = ca.Issue({.common_names = {"decnet-master"}});
  Put(Input() / "master.crt", master.cert_pem);
  const RunResult r =
      Enrol(Args({"--from", bundle.string(), "--master-cert", (Input() / "master.crt").string()}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(Slurp(At("/etc/decnet/updater/updater.key")), Slurp(bundle / "updater/updater.key"));
  EXPECT_EQ(Slurp(At("/etc/decnet/agent/worker.crt")), Slurp(bundle / "agent/worker.crt"));
  EXPECT_FALSE(fs::exists(At("/etc/decnet-updater/ca"))) << "no CA is made for --from";
  auto daemon = daemon::LoadDaemonConfig(At("/etc/decnet-updater/daemon.json").string());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(daemon->master_pins, std::vector<std::string>{master.fingerprint});
  EXPECT_FALSE(CanRead("decnet", At("/etc/decnet/agent/worker.key")));
  // Again: nothing to change.
  const std::string first = Tree(root_);
  const RunResult again =
      Enrol(Args({"--from", bundle.string(), "--master-cert", (Input() / "master.crt").string()}));
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(Tree(root_), first);
}

TEST_F(AnEnrolment, ReplacesMaterialInPlaceOnlyWithRotate) {
  testing::TestCa ca("fleet CA");
  const std::string pin = "--master-pin";
  ASSERT_EQ(
      Enrol(Args({"--from", MasterBundle(ca, "one").string(), pin, std::string(64, 'a')})).status,
      0);
  const fs::path two = MasterBundle(ca, "two");
  RunResult r = Enrol(Args({"--from", two.string()}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[enrol-tls-exists]"), std::string::npos) << r.err;
  r = Enrol(Args({"--from", two.string(), "--rotate"}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("replace /etc/decnet/updater/updater.key (root:root 0640, ACL "
                       "user:decnet-updater:r) [--rotate]: key material, not shown"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(Slurp(At("/etc/decnet/updater/updater.key")), Slurp(two / "updater/updater.key"));
}

TEST_F(AnEnrolment, ConfiguresANonDefaultLayoutUsersAndGroupsToMatch) {
  // Accounts that exist on any Debian host, standing in for an operator's own.
  const RunResult r = Enrol(Args({"--create",
                                  "--master-pin",
                                  std::string(64, 'c'),
                                  "--install-dir",
                                  "/srv/decnet",
                                  "--updater-dir",
                                  "/srv/decnet-updater",
                                  "--state-dir",
                                  "/srv/decnet-state",
                                  "--user",
                                  "daemon",
                                  "--group",
                                  "daemon",
                                  "--units-user",
                                  "nobody",
                                  "--units-group",
                                  "nogroup",
                                  "--listen",
                                  "127.0.0.1:9443",
                                  "--master-address",
                                  "192.0.2.10",
                                  "--admin-group",
                                  "adm"}));
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  auto policy = helper::LoadPolicyFile(At("/etc/decnet-updater/helper.json").string());
  ASSERT_TRUE(policy) << policy.error().message;
  EXPECT_EQ(policy->daemon_user, "daemon");
  EXPECT_EQ(policy->daemon_group, "daemon");
  EXPECT_EQ(policy->unit_users, std::set<std::string>{"nobody"});
  EXPECT_EQ(policy->unit_groups, std::set<std::string>{"nogroup"});
  EXPECT_EQ(policy->daemon_binary, "/srv/decnet-updater/updater/current/bin/decnet-updaterd");
  auto daemon = daemon::LoadDaemonConfig(At("/etc/decnet-updater/daemon.json").string());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(daemon->install_dir, "/srv/decnet");
  EXPECT_EQ(daemon->updater_dir, "/srv/decnet-updater/updater");
  EXPECT_EQ(daemon->state_dir, "/srv/decnet-state");
  EXPECT_EQ(daemon->listen_address, "127.0.0.1");
  EXPECT_EQ(daemon->port, 9443);
  EXPECT_EQ(Slurp(At(kDropInPath)),
            "# Written by decnet-updater-enrol for this worker's layout and master. Run the "
            "command\n# again (it keeps what it is not told) rather than editing this file.\n"
            "[Service]\nReadWritePaths=/srv/decnet\nReadWritePaths=/srv/decnet-updater\n"
            "ReadWritePaths=/srv/decnet-state\nIPAddressAllow=192.0.2.10\n");
  for (const char* dir :
       {"/srv/decnet", "/srv/decnet-updater", "/srv/decnet-updater/updater", "/srv/decnet-state"}) {
    struct stat st {};
    ASSERT_EQ(::stat(At(dir).c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_uid, Uid("daemon")) << dir;
    EXPECT_EQ(st.st_gid, Gid("daemon")) << dir;
  }
  EXPECT_TRUE(CanRead("daemon", At("/etc/decnet/updater/updater.key")));
  EXPECT_FALSE(CanRead("nobody", At("/etc/decnet/updater/updater.key")));
  EXPECT_FALSE(CanRead("decnet-updater", At("/etc/decnet/updater/updater.key")))
      << "the ACL names the configured daemon's user only";
  polkit::PolkitRuleParams params;
  params.admin_group = "adm";
  params.never_users = {"daemon", "nobody"};
  EXPECT_EQ(Slurp(At(kPolkitRulePath)), *polkit::RenderPolkitRule(params));
  EXPECT_NE(r.out.find("note: the unit's drop-in changed: run systemctl daemon-reload (not run "
                       "here: --no-reload)"),
            std::string::npos)
      << r.out;
}

TEST_F(AnEnrolment, RefusesAMastersKeyThatIsNotItsCertificates) {
  testing::TestCa ca("fleet CA");
  const fs::path bundle = MasterBundle(ca);
  const testing::Issued other = ca.Issue({.common_names = {"other"}, .server = true});
  Put(bundle / "updater/updater.key", other.key_pem, 0600);
  const std::string before = Tree(root_);
  const RunResult r = Enrol(Args({"--from", bundle.string(), "--master-cn", "m"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[enrol-tls-key-mismatch]"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(root_), before) << "a refusal changes nothing";
}

TEST_F(AnEnrolment, RefusesAMastersCertificateOfAnotherCa) {
  testing::TestCa ca("fleet CA"), other("another CA");
  const fs::path bundle = MasterBundle(ca);
  Put(bundle / "agent/ca.crt", other.ca().cert_pem);
  const RunResult r = Enrol(Args({"--from", bundle.string(), "--master-cn", "m"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[enrol-tls-chain]"), std::string::npos) << r.err;
}

// ---- the commands of docs/operations.md, "Enrolling a new worker"

// Each ```bash block of the section: its decnet-updater-enrol command lines, continuation
// lines joined, split into words.
std::vector<std::vector<std::vector<std::string>>> DocumentedBlocks() {
  const std::string doc = Slurp(fs::path(DECNET_SOURCE_DIR) / "docs/operations.md");
  const size_t start = doc.find("## Enrolling a new worker\n");
  const size_t end = doc.find("\n## ", start + 1);
  std::istringstream in(doc.substr(start, end - start));
  std::vector<std::vector<std::vector<std::string>>> blocks;
  bool inside = false;
  std::string pending;
  for (std::string line; std::getline(in, line);) {
    const size_t first = line.find_first_not_of(' ');
    const std::string text = first == std::string::npos ? "" : line.substr(first);
    if (text.starts_with("```")) {
      inside = !inside && text == "```bash";
      if (inside) blocks.emplace_back();
      continue;
    }
    if (!inside) continue;
    pending += text;
    if (!pending.empty() && pending.back() == '\\') {
      pending.pop_back();
      continue;
    }
    if (pending.starts_with("decnet-updater-enrol ")) {
      std::istringstream words(pending);
      std::vector<std::string> argv;
      for (std::string w; words >> w;) argv.push_back(w);
      blocks.back().push_back(argv);
    }
    pending.clear();
  }
  return blocks;
}

// The same commands, as written in the section: they are what the test runs, and the test
// fails when the section shows anything else.
const std::vector<std::vector<std::string>> kDocumentedCommands = {
    {
        R"(decnet-updater-enrol --from /root/worker1 --master-cert /root/worker1/master.crt --master-address 192.0.2.10 --dry-run)",
        R"(decnet-updater-enrol --from /root/worker1 --master-cert /root/worker1/master.crt --master-address 192.0.2.10)",
        R"(decnet-updater-enrol --from /root/worker1 --master-cert /root/worker1/master.crt --master-address 192.0.2.10)",
    },
    {
        R"(decnet-updater-enrol --create --ca-cert /root/fleet-ca.crt --ca-key /root/fleet-ca.key --name worker1.example --address 192.0.2.5 --master-cert /root/master.crt --master-address 192.0.2.10 --install-dir /srv/decnet --state-dir /srv/decnet-state --listen 0.0.0.0:8766 --admin-group ops)",
    },
};

std::vector<std::string> Words(const std::string& line) {
  std::istringstream words(line);
  std::vector<std::string> out;
  for (std::string w; words >> w;) out.push_back(w);
  return out;
}

TEST_F(AnEnrolment, RunsTheDocumentedCommandsAsWritten) {
  // /root/ in the commands stands for a directory of material a master and its CA made.
  testing::TestCa ca("fleet CA");
  MasterBundle(ca, "worker1");
  const testing::Issued master = ca.Issue({.common_names = {"decnet-master"}});
  Put(Input() / "worker1/master.crt", master.cert_pem);
  Put(Input() / "master.crt", master.cert_pem);
  Put(Input() / "fleet-ca.crt", ca.ca().cert_pem);
  Put(Input() / "fleet-ca.key", ca.ca().key_pem, 0600);
  const auto documented = DocumentedBlocks();
  ASSERT_EQ(documented.size(), kDocumentedCommands.size());
  for (size_t b = 0; b < documented.size(); ++b) {
    ASSERT_EQ(documented[b].size(), kDocumentedCommands[b].size()) << "block " << b;
    for (size_t c = 0; c < documented[b].size(); ++c)
      EXPECT_EQ(documented[b][c], Words(kDocumentedCommands[b][c])) << "block " << b << " " << c;
  }
  for (size_t b = 0; b < kDocumentedCommands.size(); ++b) {
    for (const auto& e : fs::directory_iterator(root_)) fs::remove_all(e.path());
    for (size_t c = 0; c < kDocumentedCommands[b].size(); ++c) {
      const std::vector<std::string> words = Words(kDocumentedCommands[b][c]);
      std::vector<std::string> argv(words.begin() + 1, words.end());
      for (std::string& a : argv)
        if (a.starts_with("/root/")) a = (Input() / a.substr(6)).string();
      const bool dry = std::find(argv.begin(), argv.end(), "--dry-run") != argv.end();
      const std::string before = Tree(root_);
      const RunResult r = Enrol(Args(argv));
      ASSERT_EQ(r.status, 0) << "block " << b << " command " << c << ":\n" << r.out << r.err;
      if (dry) {
        EXPECT_EQ(Tree(root_), before) << "a dry run changes nothing";
      }
      if (b == 0 && c == 2) {
        EXPECT_NE(r.out.find("nothing to change"), std::string::npos) << r.out;
      }
    }
    EXPECT_TRUE(fs::exists(At(kDropInPath))) << "the master's address needs the drop-in";
    auto daemon = daemon::LoadDaemonConfig(At("/etc/decnet-updater/daemon.json").string());
    ASSERT_TRUE(daemon) << daemon.error().message;
    EXPECT_EQ(daemon->master_pins, std::vector<std::string>{master.fingerprint});
  }
  EXPECT_TRUE(fs::exists(At(kPolkitRulePath))) << "--admin-group ops renders the rule";
  EXPECT_TRUE(CanRead("decnet-updater", At("/etc/decnet/updater/updater.key")));
  EXPECT_FALSE(CanRead("decnet", At("/etc/decnet/updater/updater.key")));
}

// ---- refusals that need a prepared host

struct HostRefusal {
  const char* what;
  std::function<void(const fs::path& root, const fs::path& input)> prepare;
  std::vector<std::string> args;
  const char* rule;
};

void PrintTo(const HostRefusal& row, std::ostream* os) { *os << row.what; }

class AnEnrolmentRefuses : public AnEnrolment, public ::testing::WithParamInterface<HostRefusal> {};

TEST_P(AnEnrolmentRefuses, WithItsRuleAndChangesNothing) {
  const HostRefusal& h = GetParam();
  if (h.prepare) h.prepare(root_, Input());
  const std::string before = Tree(root_);
  std::vector<std::string> args = h.args;
  for (std::string& a : args)
    if (a.starts_with("@")) a = (Input() / a.substr(1)).string();
  const RunResult r = Enrol(Args(args));
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.err.find(std::string("[") + h.rule + "]"), std::string::npos) << r.err;
  EXPECT_EQ(Tree(root_), before);
}

const std::string kMasterCn = "--master-cn";

INSTANTIATE_TEST_SUITE_P(
    Table, AnEnrolmentRefuses,
    ::testing::Values(
        HostRefusal{"no master identity", nullptr, {"--create"}, "enrol-master-identity"},
        HostRefusal{"no material and no source", nullptr, {kMasterCn, "m"}, "enrol-tls-missing"},
        HostRefusal{"a from dir without the bundle",
                    nullptr,
                    {"--from", "@none", kMasterCn, "m"},
                    "enrol-tls-missing"},
        HostRefusal{"a missing user",
                    nullptr,
                    {"--create", kMasterCn, "m", "--user", "no-such-user-x"},
                    "enrol-user-missing"},
        HostRefusal{"a units user in the daemon group",
                    nullptr,
                    {"--create", kMasterCn, "m", "--group", "nogroup", "--units-user", "nobody",
                     "--units-group", "decnet"},
                    "enrol-units-in-daemon-group"},
        HostRefusal{"the units user is the daemon user",
                    nullptr,
                    {"--create", kMasterCn, "m", "--units-user", "decnet-updater"},
                    "policy-value"},
        HostRefusal{"the admin group is the units group",
                    nullptr,
                    {"--create", kMasterCn, "m", "--admin-group", "decnet"},
                    "enrol-admin-group"},
        HostRefusal{"an install dir that is top level",
                    nullptr,
                    {"--create", kMasterCn, "m", "--install-dir", "/srv"},
                    "enrol-dir-unsafe"},
        HostRefusal{"an install dir in etc",
                    nullptr,
                    {"--create", kMasterCn, "m", "--install-dir", "/etc/decnet-x"},
                    "enrol-dir-unsafe"},
        HostRefusal{"a state dir in usr",
                    nullptr,
                    {"--create", kMasterCn, "m", "--state-dir", "/usr/lib/decnet"},
                    "enrol-dir-unsafe"},
        HostRefusal{"a state dir within the install dir",
                    nullptr,
                    {"--create", kMasterCn, "m", "--state-dir", "/opt/decnet/state"},
                    "enrol-dir-overlap"},
        HostRefusal{
            "an install dir holding the updater's",
            nullptr,
            {"--create", kMasterCn, "m", "--install-dir", "/srv/x", "--updater-dir", "/srv/x/upd"},
            "enrol-dir-overlap"},
        HostRefusal{"an install dir that is a file",
                    [](const fs::path& root, const fs::path&) { Put(root / "opt/decnet", "x"); },
                    {"--create", kMasterCn, "m"},
                    "enrol-dir-not-directory"},
        HostRefusal{"a key directory others may write",
                    [](const fs::path& root, const fs::path&) {
                      fs::create_directories(root / "etc/decnet/updater");
                      ::chmod((root / "etc/decnet/updater").c_str(), 0777);
                    },
                    {"--create", kMasterCn, "m"},
                    "enrol-tls-dir-unsafe"},
        HostRefusal{"a key that is a symbolic link",
                    [](const fs::path& root, const fs::path&) {
                      fs::create_directories(root / "etc/decnet/updater");
                      fs::create_symlink("/etc/shadow", root / "etc/decnet/updater/updater.key");
                    },
                    {"--create", kMasterCn, "m"},
                    "enrol-symlink"},
        HostRefusal{"a bundle partly in place",
                    [](const fs::path& root, const fs::path&) {
                      Put(root / "etc/decnet/agent/worker.crt", "x");
                    },
                    {"--create", kMasterCn, "m"},
                    "enrol-tls-partial"},
        HostRefusal{"a bundle in place that is not PEM",
                    [](const fs::path& root, const fs::path&) {
                      for (const char* f : {"ca.crt", "updater.crt", "updater.key"})
                        Put(root / "etc/decnet/updater" / f, "junk");
                    },
                    {"--create", kMasterCn, "m"},
                    "enrol-tls-parse"},
        HostRefusal{"a rotation without the CA's key",
                    [](const fs::path& root, const fs::path&) {
                      testing::TestCa ca("elsewhere");
                      const auto leaf = ca.Issue({.common_names = {"w"}, .server = true});
                      Put(root / "etc/decnet/updater/ca.crt", ca.ca().cert_pem);
                      Put(root / "etc/decnet/updater/updater.crt", leaf.cert_pem);
                      Put(root / "etc/decnet/updater/updater.key", leaf.key_pem, 0600);
                    },
                    {"--create", "--rotate", kMasterCn, "m"},
                    "enrol-ca-key-missing"},
        HostRefusal{"a master certificate of another CA",
                    [](const fs::path&, const fs::path& input) {
                      testing::TestCa other("another CA");
                      Put(input / "master.crt",
                          other.Issue({.common_names = {"decnet-master"}}).cert_pem);
                    },
                    {"--create", "--master-cert", "@master.crt"},
                    "enrol-master-chain"},
        HostRefusal{"a CA given that is no CA",
                    [](const fs::path&, const fs::path& input) {
                      testing::TestCa ca("c");
                      const auto leaf = ca.Issue({.common_names = {"leaf"}});
                      Put(input / "leaf.crt", leaf.cert_pem);
                      Put(input / "leaf.key", leaf.key_pem);
                    },
                    {"--create", "--ca-cert", "@leaf.crt", "--ca-key", "@leaf.key", kMasterCn, "m"},
                    "enrol-tls-not-ca"},
        HostRefusal{"a daemon configuration with an unknown key",
                    [](const fs::path& root, const fs::path&) {
                      Put(root / "etc/decnet-updater/daemon.json", R"({"colour": "red"})");
                    },
                    {"--create", kMasterCn, "m"},
                    "config-unknown-key"}),
    [](const auto& info) {
      std::string n;
      for (char ch : std::string(info.param.what)) n += std::isalnum(ch) ? ch : '_';
      return n;
    });

}  // namespace
}  // namespace decnet::enrol
