// Signed, fresh, never-older releases on the worker, through the real mTLS server and API in
// front of the real pipeline, release store, extractor and the helper's real serve loop
// (systemd mocked), curl as the master: Ed25519 keys made at test time, a trusted keys
// directory made by the test. Each refusal names its rule, leaves nothing extracted, nothing
// in the store and nothing in the spool; refusals at the head of the tarball do not read its
// bytes. The version floor refuses older and equal versions, honours a downgrade only where
// configured, and is kept across a restart and a rollback. Also the floor's file on its own.
#include "daemon/release_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/api.h"
#include "daemon/self_update.h"
#include "daemon/update_pipeline.h"
#include "daemon/version_floor.h"
#include "proto/release_auth.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_pki.h"
#include "tests/daemon/test_tarball.h"
#include "tests/daemon/test_updater_build.h"
#include "tests/helper/test_dirs.h"
#include "tests/support/loopback.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using test::Tarball;

int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A release to push: its tarball, descriptor bytes and signature lines.
struct Push {
  Tarball tarball;
  std::string descriptor;  // empty: none sent
  std::vector<std::string> signatures;
  std::string downgrade;  // empty: not sent
};

// An answer: the status and the body.
struct Answer {
  std::string status;
  std::string body;
  bool Names(const std::string& rule) const {
    return body.find("\"rule\":\"" + rule + "\"") != std::string::npos;
  }
};

class ASignedPush : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = test::LayOutHost(dirs_, dirs_.root(), config_, test::SelfUpdate::kOn);
    config_.state_dir = dirs_.root() + "/daemon-state";
    fs::create_directories(config_.state_dir);
    config_.units = {"decnet-agent.service"};
    config_.links = {};
    keys_dir_ = dirs_.root() + "/trusted-keys";
    fs::create_directories(keys_dir_);
    fs::permissions(keys_dir_, fs::perms(0755));
    config_.trusted_keys_dir = keys_dir_;
    config_.trusted_keys_owner = ::getuid();  // the test's own files stand in for root's
    ASSERT_TRUE(
        test::InstallOperatorUnit(dirs_, "decnet-agent.service",
                                  test::OperatorUnit("agent", "/opt/decnet/current/bin/agent")));
    ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-updater.service", test::kUpdaterUnit));
    ASSERT_NO_FATAL_FAILURE(Start());
  }
  void TearDown() override { Stop(); }

  // The daemon as it starts: floor from state_dir, stack, guard, API and server.
  void Start() {
    auto floor = VersionFloor::Open(config_.state_dir);
    ASSERT_TRUE(floor) << floor.error().message;
    floor_.emplace(std::move(*floor));
    guard_.emplace(config_, *floor_);
    ASSERT_NO_FATAL_FAILURE(stack_.Open(
        dirs_, config_, {.client = "release-guard", .self_update = test::SelfUpdate::kOn}));
    stack_.pipeline->SetReleaseGuard(&*guard_);
    ApiOptions options = test::TestApiOptions(dirs_);
    options.audit = &*stack_.audit;
    options.guard = &*guard_;
    options.self_restart_delay = std::chrono::milliseconds(1);
    ASSERT_NO_FATAL_FAILURE(front_.Start(*stack_.pipeline, options, pki_));
  }
  // Everything stopped, as when the daemon ends.
  void Stop() {
    front_.Stop();
    stack_.Close();
    guard_.reset();
    floor_.reset();
  }

  // A key, trusted (its .pub in the keys directory) unless told otherwise.
  SigningKey Key(const std::string& name, bool trusted = true) {
    auto key = SigningKey::Generate();
    EXPECT_TRUE(key) << key.error().message;
    if (trusted) Trust(name, *key);
    return std::move(*key);
  }
  void Trust(const std::string& name, const SigningKey& key) {
    const std::string path = keys_dir_ + "/" + name + ".pub";
    std::ofstream(path) << key.PublicPem();
    fs::permissions(path, fs::perms(0644));
  }

  // A service release with a manifest of `version` (none when empty) and `salt` to vary bytes.
  Tarball Pack(const std::string& version, const std::string& salt = "") {
    const std::string tree = dirs_.root() + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/bin");
    std::ofstream(tree + "/VERSION") << version << salt << "\n";
    std::ofstream(tree + "/bin/agent") << "#!/bin/sh\n";
    if (!version.empty()) {
      nlohmann::json m = {{"format", 1}, {"version", version}, {"kind", "service"}};
      std::ofstream(tree + "/.decnet-release.json") << m.dump();
    }
    return test::PackTree(tree);
  }

  // The descriptor of `t`, as `decnet-rollout pack` writes it.
  static std::string Describe(const Tarball& t, const std::string& version,
                              ReleaseKind kind = ReleaseKind::kService, int64_t created = Now(),
                              int64_t expires = Now() + 86400) {
    auto v = ReleaseVersion::Parse(version);
    EXPECT_TRUE(v);
    ReleaseDescriptor d{t.sha256, t.size, kind, *v, std::nullopt, created, expires};
    return SerializeReleaseDescriptor(d);
  }
  static std::string SignLine(const SigningKey& key, const std::string& descriptor) {
    return FormatSignatureLine(key.Sign(descriptor));
  }
  // A release of `version`, signed by each of `signers`.
  Push Signed(const std::string& version, const std::vector<const SigningKey*>& signers) {
    Push p{Pack(version), "", {}, ""};
    p.descriptor = Describe(p.tarball, version);
    for (const SigningKey* k : signers) p.signatures.push_back(SignLine(*k, p.descriptor));
    return p;
  }

  // curl's form arguments for `p`, the authenticity fields before the tarball.
  std::string FormArgs(const Push& p) {
    std::string args;
    auto file = [&](const std::string& text) {
      const std::string path = dirs_.root() + "/field-" + std::to_string(++fields_);
      std::ofstream(path, std::ios::binary) << text;
      return path;
    };
    if (!p.descriptor.empty()) args += " -F 'descriptor=<" + file(p.descriptor) + "'";
    for (const auto& s : p.signatures) args += " -F 'signature=<" + file(s) + "'";
    if (!p.downgrade.empty()) args += " --form-string downgrade=" + p.downgrade;
    return args + " -F tarball=@" + p.tarball.path + " --form-string sha256=" + p.tarball.sha256;
  }
  Answer Curl(const std::string& path, const std::string& args) {
    const std::string body = dirs_.root() + "/answer-" + std::to_string(++answers_);
    const std::string command = "curl " + pki_.CurlAsMaster() + " -sS --max-time 60 -o " + body +
                                " -w '%{http_code}' " + args + " " + front_.Url() + path + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    std::string out;
    char buf[256];
    size_t n;
    while (pipe != nullptr && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    if (pipe != nullptr) ::pclose(pipe);
    return {out, ReadFile(body)};
  }
  Answer Update(const Push& p) { return Curl("/update", FormArgs(p)); }
  Answer UpdateSelf(const Push& p) {
    return Curl("/update-self", FormArgs(p) + " --form-string confirm_self=true");
  }
  // A build of the daemon for update-self: its manifest and a binary answering --version.
  Tarball PackBuild(const std::string& version) {
    return test::PackUpdaterBuild(dirs_.root() + "/build-" + std::to_string(++packed_), version);
  }
  Answer Rollback() { return Curl("/rollback", "-X POST"); }
  nlohmann::json Health() { return nlohmann::json::parse(Curl("/health", "").body); }

  size_t ReleasesKept() { return stack_.store->Releases().size(); }
  // Entries beneath install_dir/releases (extracted or half-extracted releases).
  size_t ReleaseDirs() {
    size_t n = 0;
    if (fs::exists(install_ + "/releases"))
      for ([[maybe_unused]] const auto& e : fs::directory_iterator(install_ + "/releases")) ++n;
    return n;
  }
  // Files in the spool directory, and open ones of this process beneath it.
  size_t SpoolFiles() {
    size_t n = 0;
    const std::string spool = dirs_.root() + "/daemon-state/spool";
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(spool)) ++n;
    for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      if (fs::read_symlink(fd.path(), ec).string().starts_with(spool + "/")) ++n;
    }
    return n;
  }
  std::string CurrentVersion() {
    std::ifstream in(install_ + "/current/VERSION");
    std::string v;
    std::getline(in, v);
    return v;
  }
  // The audit log's last line.
  nlohmann::json LastAudit() {
    std::istringstream lines(ReadFile(dirs_.root() + "/audit.jsonl"));
    std::string line, last;
    while (std::getline(lines, line))
      if (!line.empty()) last = line;
    return nlohmann::json::parse(last);
  }

  // `p` refused with 400 naming `rule`, with nothing extracted, kept or spooled.
  void ExpectRefused(const Push& p, const std::string& rule, const std::string& why) {
    const size_t kept = ReleasesKept(), dirs = ReleaseDirs();
    const std::string before = CurrentVersion();
    Answer a = Update(p);
    EXPECT_EQ(a.status, "400") << why << ": " << a.body;
    EXPECT_TRUE(a.Names(rule)) << why << ": expected " << rule << ", got " << a.body;
    EXPECT_EQ(ReleasesKept(), kept) << why;
    EXPECT_EQ(ReleaseDirs(), dirs) << why << ": something was extracted";
    EXPECT_EQ(SpoolFiles(), 0u) << why;
    EXPECT_EQ(CurrentVersion(), before) << why;
    nlohmann::json audit = LastAudit();
    EXPECT_EQ(audit["result"], "refused") << why;
    EXPECT_EQ(audit["rule"], rule) << why;
  }
  void ExpectAccepted(const Push& p, const std::string& version, const std::string& why) {
    Answer a = Update(p);
    EXPECT_EQ(a.status, "200") << why << ": " << a.body;
    EXPECT_EQ(CurrentVersion(), version) << why;
  }

  test::TestDirs dirs_;
  std::string install_, keys_dir_;
  DaemonConfig config_;
  std::optional<VersionFloor> floor_;
  std::optional<ReleaseGuard> guard_;
  test::ServedStack<test::HealthyGate> stack_;
  const test::UpdaterPki pki_;
  test::ServedFront front_;  // after the pipeline it borrows
  int packed_ = 0, fields_ = 0, answers_ = 0;
};

// --- signatures --------------------------------------------------------------------------

TEST_F(ASignedPush, IsAcceptedWhenATrustedKeySignedItAndAuditsTheKey) {
  config_.require_signature = true;
  SigningKey key = Key("release");
  ExpectAccepted(Signed("1.0.0", {&key}), "1.0.0", "signed by the trusted key");
  nlohmann::json audit = LastAudit();
  EXPECT_EQ(audit["result"], "updated");
  ASSERT_TRUE(audit.contains("signed_by")) << audit.dump();
  EXPECT_EQ(audit["signed_by"], nlohmann::json::array({key.Public().key_id}));
  nlohmann::json health = Health();
  EXPECT_EQ(health["version_floor"]["service"], "1.0.0") << health.dump();
  EXPECT_TRUE(health["version_floor"]["updater"].is_null());
  EXPECT_EQ(health["require_signature"], true);
}

TEST_F(ASignedPush, IsRefusedWithItsRuleForEachWayItCanBeWrong) {
  config_.require_signature = true;
  SigningKey trusted = Key("release");
  SigningKey stranger = Key("stranger", false);
  ExpectAccepted(Signed("1.0.0", {&trusted}), "1.0.0", "a first release");

  Push unsigned_push{Pack("2.0.0"), "", {}, ""};
  ExpectRefused(unsigned_push, "signature-required", "unsigned when required");

  ExpectRefused(Signed("2.0.0", {&stranger}), "signature-threshold", "signed by a stranger");

  Push tampered_descriptor = Signed("2.0.0", {&trusted});
  tampered_descriptor.descriptor.replace(tampered_descriptor.descriptor.find("2.0.0"), 5, "9.0.0");
  ExpectRefused(tampered_descriptor, "signature-threshold", "descriptor changed after signing");

  Push tampered_tarball = Signed("2.0.0", {&trusted});
  tampered_tarball.tarball = Pack("2.0.0", "-evil");  // its own sha256 field matches it
  ExpectRefused(tampered_tarball, "descriptor-digest-mismatch", "tarball swapped");

  Push truncated = Signed("2.0.0", {&trusted});
  truncated.signatures[0].resize(truncated.signatures[0].size() - 10);
  ExpectRefused(truncated, "signature-encoding", "a truncated signature line");

  Push expired{Pack("2.0.0"), "", {}, ""};
  expired.descriptor =
      Describe(expired.tarball, "2.0.0", ReleaseKind::kService, Now() - 7200, Now() - 3600);
  expired.signatures = {SignLine(trusted, expired.descriptor)};
  ExpectRefused(expired, "descriptor-expired", "expired an hour ago");

  Push other_kind{Pack("2.0.0"), "", {}, ""};
  other_kind.descriptor = Describe(other_kind.tarball, "2.0.0", ReleaseKind::kUpdater);
  other_kind.signatures = {SignLine(trusted, other_kind.descriptor)};
  ExpectRefused(other_kind, "descriptor-kind-mismatch", "an updater build sent to /update");

  Push other_manifest{Pack("3.0.0"), "", {}, ""};
  other_manifest.descriptor = Describe(other_manifest.tarball, "2.0.0");
  other_manifest.signatures = {SignLine(trusted, other_manifest.descriptor)};
  ExpectRefused(other_manifest, "descriptor-manifest-mismatch", "manifest says 3.0.0");

  Push no_descriptor = Signed("2.0.0", {&trusted});
  no_descriptor.descriptor.clear();
  ExpectRefused(no_descriptor, "descriptor-required", "signatures without a descriptor");

  EXPECT_EQ(CurrentVersion(), "1.0.0");
  ExpectAccepted(Signed("2.0.0", {&trusted}), "2.0.0", "then the right one goes through");
}

TEST_F(ASignedPush, NeedsAsManyDistinctTrustedKeysAsTheThreshold) {
  config_.require_signature = true;
  config_.signature_threshold = 2;
  SigningKey a = Key("a"), b = Key("b"), c = Key("c");
  ExpectRefused(Signed("1.0.0", {&a}), "signature-threshold", "one of three, two needed");
  ExpectRefused(Signed("1.0.0", {&a, &a}), "signature-threshold", "the same key twice");
  ExpectAccepted(Signed("1.0.0", {&a, &c}), "1.0.0", "two of three");
  auto signed_by = LastAudit()["signed_by"];
  EXPECT_EQ(signed_by.size(), 2u) << signed_by.dump();
}

TEST_F(ASignedPush, FollowsARotatedKeySetWithoutARestart) {
  config_.require_signature = true;
  SigningKey old_key = Key("release");
  ExpectAccepted(Signed("1.0.0", {&old_key}), "1.0.0", "the old key, trusted");
  SigningKey new_key = Key("release-next", false);
  Trust("release", new_key);  // the key file replaced in place
  ExpectRefused(Signed("2.0.0", {&old_key}), "signature-threshold", "the rotated-out key");
  ExpectAccepted(Signed("2.0.0", {&new_key}), "2.0.0", "the new key, no restart");
}

TEST_F(ASignedPush, IsVerifiedEvenWhereSignaturesAreNotRequired) {
  SigningKey trusted = Key("release");
  SigningKey stranger = Key("stranger", false);
  ExpectRefused(Signed("1.0.0", {&stranger}), "signature-threshold", "badly signed, not required");
  fs::remove_all(keys_dir_);
  ExpectRefused(Signed("1.0.0", {&trusted}), "signature-unverifiable", "signed, no keys here");
  Push decnet_push{Pack(""), "", {}, ""};
  ExpectAccepted(decnet_push, "", "DECNET's push: neither descriptor nor signature");
}

TEST_F(ASignedPush, RefusesKeysNotOwnedAsRequired) {
  config_.require_signature = true;
  SigningKey key = Key("release");
  config_.trusted_keys_owner = ::getuid() + 1;  // as production's root-only rule sees a stray owner
  ExpectRefused(Signed("1.0.0", {&key}), "trusted-key-owner", "keys of another owner");
}

// A raw TLS client: the form up to the tarball's head, then `stream` bytes of the tarball
// while the server takes them. Returns how many it took and the answer.
struct RawTalk {
  uint64_t streamed = 0;
  std::string response;
};

RawTalk StreamUpload(const test::UpdaterPki& pki, uint16_t port, const std::string& fields,
                     uint64_t stream) {
  RawTalk out;
  std::signal(SIGPIPE, SIG_IGN);
  decnet::testing::CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_load_verify_locations(ctx.get(), pki.ca_file.c_str(), nullptr);
  SSL_CTX_use_certificate_file(ctx.get(), pki.master.cert.c_str(), SSL_FILETYPE_PEM);
  SSL_CTX_use_PrivateKey_file(ctx.get(), pki.master.key.c_str(), SSL_FILETYPE_PEM);
  const int fd = test::ConnectLoopback(port);
  if (fd < 0) return out;
  decnet::testing::SslPtr ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) == 1) {
    const std::string part_head =
        "--b\r\nContent-Disposition: form-data; name=\"tarball\"; filename=\"t.tgz\"\r\n\r\n";
    const std::string tail = "\r\n--b--\r\n";
    const uint64_t length = fields.size() + part_head.size() + stream + tail.size();
    const std::string head =
        "POST /update HTTP/1.1\r\nHost: x\r\nExpect:\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        "Content-Length: " +
        std::to_string(length) + "\r\n\r\n" + fields + part_head;
    bool open = SSL_write(ssl.get(), head.data(), static_cast<int>(head.size())) ==
                static_cast<int>(head.size());
    std::string piece(64 * 1024, 'x');
    while (open && out.streamed < stream) {
      int wrote = SSL_write(ssl.get(), piece.data(), static_cast<int>(piece.size()));
      if (wrote <= 0)
        open = false;
      else
        out.streamed += static_cast<uint64_t>(wrote);
    }
    char buf[4096];
    for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) out.response.append(buf, n);
  }
  ::close(fd);
  return out;
}

TEST_F(ASignedPush, RefusedAtTheHeadIsAnsweredWithoutReadingTheTarball) {
  config_.require_signature = true;
  SigningKey stranger = Key("stranger", false);
  Key("release");
  constexpr uint64_t kOffered = 256ull << 20;
  // Unsigned, then signed by an untrusted key: both refused when the tarball part begins.
  const std::string descriptor = Describe(Tarball{"", std::string(64, 'a'), kOffered}, "1.0.0");
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"signature-required", "--b\r\nContent-Disposition: form-data; name=\"sha256\"\r\n\r\n" +
                                 std::string(64, 'a') + "\r\n"},
      {"signature-threshold",
       "--b\r\nContent-Disposition: form-data; name=\"descriptor\"\r\n\r\n" + descriptor +
           "\r\n--b\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\n" +
           SignLine(stranger, descriptor) + "\r\n"},
  };
  for (const auto& [rule, fields] : rows) {
    RawTalk talk = StreamUpload(pki_, front_.port, fields, kOffered);
    EXPECT_EQ(talk.response.substr(0, 12), "HTTP/1.1 400") << rule << ": " << talk.response;
    EXPECT_NE(talk.response.find("\"rule\":\"" + rule + "\""), std::string::npos) << talk.response;
    // The server stops reading at once (it lingers over a few MiB at most before closing).
    EXPECT_LT(talk.streamed, 32ull << 20) << rule << ": the server read on";
    EXPECT_EQ(SpoolFiles(), 0u) << rule;
    EXPECT_EQ(ReleaseDirs(), 0u) << rule;
  }
}

// --- never older ---------------------------------------------------------------------------

TEST_F(ASignedPush, RefusesOlderAndEqualVersionsSignedOrNot) {
  SigningKey key = Key("release");
  ExpectAccepted(Signed("2.0.0", {&key}), "2.0.0", "a first release sets the floor");
  ExpectRefused(Signed("1.9.9", {&key}), "version-not-newer", "older, signed");
  ExpectRefused(Signed("2.0", {&key}), "version-not-newer", "equal, written shorter");
  ExpectRefused(Signed("2.0.0+rebuild", {&key}), "version-not-newer", "a rebuild of it");
  ExpectRefused(Signed("2.0.0-rc.1", {&key}), "version-not-newer", "its pre-release");
  Push unsigned_older{Pack("1.0.0"), "", {}, ""};
  ExpectRefused(unsigned_older, "version-not-newer", "older, unsigned (checked once extracted)");
  Answer a = Update(Signed("1.0.0", {&key}));
  EXPECT_NE(a.body.find("1.0.0"), std::string::npos) << a.body;
  EXPECT_NE(a.body.find("2.0.0"), std::string::npos) << "names both versions: " << a.body;
  Push unordered{Pack(""), "", {}, ""};
  ExpectRefused(unordered, "version-unordered", "DECNET's push without a manifest, floor set");
  ExpectAccepted(Signed("2.0.1", {&key}), "2.0.1", "newer goes through");
}

TEST_F(ASignedPush, AcceptsAnUnorderedReleaseWhileNoFloorExistsAndSetsNone) {
  Push unordered{Pack(""), "", {}, ""};
  ExpectAccepted(unordered, "", "no floor yet");
  EXPECT_TRUE(Health()["version_floor"]["service"].is_null());
  Push ordered{Pack("0.1.0"), "", {}, ""};
  ExpectAccepted(ordered, "0.1.0", "any ordered version after it");
  EXPECT_EQ(Health()["version_floor"]["service"], "0.1.0");
}

TEST_F(ASignedPush, HonoursADowngradeOnlyWhereTheConfigurationAllowsIt) {
  SigningKey key = Key("release");
  ExpectAccepted(Signed("2.0.0", {&key}), "2.0.0", "the floor");
  Push down = Signed("1.0.0", {&key});
  down.downgrade = "true";
  ExpectRefused(down, "version-downgrade-refused", "asked, not permitted");
  Push unsigned_down{Pack("1.0.0"), "", {}, "true"};
  ExpectRefused(unsigned_down, "version-downgrade-refused", "asked unsigned, not permitted");
  Push bad = Signed("1.0.0", {&key});
  bad.downgrade = "yes";
  ExpectRefused(bad, "downgrade-malformed", "neither true nor false");
  config_.allow_downgrade = true;
  ExpectAccepted(down, "1.0.0", "asked and permitted");
  EXPECT_EQ(Health()["version_floor"]["service"], "2.0.0") << "a downgrade leaves the floor";
  ExpectRefused(Signed("1.5.0", {&key}), "version-not-newer", "not asked: the floor holds");
}

TEST_F(ASignedPush, KeepsTheFloorAcrossARestart) {
  SigningKey key = Key("release");
  ExpectAccepted(Signed("2.0.0", {&key}), "2.0.0", "the floor");
  Stop();
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(Health()["version_floor"]["service"], "2.0.0");
  ExpectRefused(Signed("1.5.0", {&key}), "version-not-newer", "after the restart");
  nlohmann::json file = nlohmann::json::parse(ReadFile(config_.state_dir + "/version-floor.json"));
  EXPECT_EQ(file["service"], "2.0.0");
}

TEST_F(ASignedPush, KeepsTheFloorAcrossARollbackAndAuditsGoingBelowIt) {
  SigningKey key = Key("release");
  ExpectAccepted(Signed("1.0.0", {&key}), "1.0.0", "first");
  ExpectAccepted(Signed("2.0.0", {&key}), "2.0.0", "second");
  Answer back = Rollback();
  EXPECT_EQ(back.status, "200") << back.body;
  EXPECT_EQ(CurrentVersion(), "1.0.0");
  nlohmann::json audit = LastAudit();
  EXPECT_EQ(audit["op"], "rollback");
  EXPECT_NE(audit.value("note", "").find("below the version floor 2.0.0"), std::string::npos)
      << audit.dump();
  EXPECT_EQ(Health()["version_floor"]["service"], "2.0.0");
  ExpectRefused(Signed("1.5.0", {&key}), "version-not-newer", "after the rollback");
}

TEST_F(ASignedPush, KeepsAnUpdaterFloorOfItsOwnForUpdateSelf) {
  SigningKey key = Key("release");
  Push build{PackBuild("2.0.0"), "", {}, ""};
  build.descriptor = Describe(build.tarball, "2.0.0", ReleaseKind::kUpdater);
  build.signatures = {SignLine(key, build.descriptor)};
  Answer a = UpdateSelf(build);
  EXPECT_EQ(a.status, "200") << a.body;
  ASSERT_TRUE(test::Eventually([&] { return !front_.api->busy(); }));
  EXPECT_EQ(Health()["version_floor"]["updater"], "2.0.0");
  EXPECT_TRUE(Health()["version_floor"]["service"].is_null()) << "each kind has its own floor";
  EXPECT_EQ(LastAudit()["signed_by"], nlohmann::json::array({key.Public().key_id}));

  Push older{PackBuild("1.0.0"), "", {}, ""};
  older.descriptor = Describe(older.tarball, "1.0.0", ReleaseKind::kUpdater);
  older.signatures = {SignLine(key, older.descriptor)};
  Answer at_head = UpdateSelf(older);
  EXPECT_EQ(at_head.status, "400") << at_head.body;
  EXPECT_TRUE(at_head.Names("version-not-newer")) << at_head.body;

  Push unsigned_older{PackBuild("1.5.0"), "", {}, ""};
  Answer extracted = UpdateSelf(unsigned_older);
  EXPECT_EQ(extracted.status, "500")
      << "update-self's refusals after extraction: " << extracted.body;
  EXPECT_TRUE(extracted.Names("version-not-newer")) << extracted.body;
  EXPECT_EQ(stack_.updater_store->Releases().size(), 1u) << "nothing kept of the refused builds";

  Push service{Pack("1.0.0"), "", {}, ""};
  ExpectAccepted(service, "1.0.0", "the service floor is not the updater's");
}

// --- the floor's file ----------------------------------------------------------------------

TEST(CheckAgainstFloor, FollowsTheOrderAndTheDowngradeRules) {
  const std::optional<std::string> none, two = "2.0.0";
  const struct {
    std::string version;
    std::optional<std::string> floor;
    Downgrade downgrade;
    std::string rule;  // empty: allowed
    bool declared = true;
  } rows[] = {
      {"1.0.0", none, Downgrade::kNotAsked, ""},
      {"abc1234", none, Downgrade::kNotAsked, ""},
      {"2.0.1", two, Downgrade::kNotAsked, ""},
      {"2.0.1", two, Downgrade::kRefused, ""},
      {"10.0.0", two, Downgrade::kNotAsked, ""},
      {"2.0.0", two, Downgrade::kNotAsked, "version-not-newer"},
      {"2.0", two, Downgrade::kNotAsked, "version-not-newer"},
      {"2.0.0+b1", two, Downgrade::kNotAsked, "version-not-newer"},
      {"2.0.0-rc1", two, Downgrade::kNotAsked, "version-not-newer"},
      {"1.99.99", two, Downgrade::kNotAsked, "version-not-newer"},
      {"abc1234", two, Downgrade::kNotAsked, "version-unordered"},
      {"1.0.0", two, Downgrade::kRefused, "version-downgrade-refused"},
      {"abc1234", two, Downgrade::kRefused, "version-downgrade-refused"},
      {"1.0.0", two, Downgrade::kPermitted, ""},
      {"abc1234", two, Downgrade::kPermitted, ""},
      // A tree without a manifest: its sha field is no version, however newer it looks.
      {"9999999", two, Downgrade::kNotAsked, "version-unordered", false},
      {"3.0.0", two, Downgrade::kNotAsked, "version-unordered", false},
      {"9999999", two, Downgrade::kRefused, "version-downgrade-refused", false},
      {"9999999", two, Downgrade::kPermitted, "", false},
      {"9999999", none, Downgrade::kNotAsked, "", false},
  };
  for (const auto& row : rows) {
    auto r = CheckAgainstFloor(ReleaseKind::kService, {row.version, row.declared}, row.floor,
                               row.downgrade);
    if (row.rule.empty()) {
      EXPECT_TRUE(r) << row.version << ": " << r.error().message;
    } else {
      ASSERT_FALSE(r) << row.version;
      EXPECT_EQ(r.error().rule, row.rule) << row.version;
    }
  }
}

TEST(AVersionFloor, RisesOnlyAndIsReadBackPerKind) {
  decnet::testing::TempDir dir;
  {
    auto floor = VersionFloor::Open(dir.path().string());
    ASSERT_TRUE(floor);
    EXPECT_FALSE(floor->Get(ReleaseKind::kService));
    ASSERT_TRUE(floor->Raise(ReleaseKind::kService, {"1.2.0", true}));
    ASSERT_TRUE(floor->Raise(ReleaseKind::kService, {"1.1.0", true}));     // lower: kept
    ASSERT_TRUE(floor->Raise(ReleaseKind::kService, {"deadbeef", true}));  // unordered: kept
    ASSERT_TRUE(floor->Raise(ReleaseKind::kService, {"1234567", false}));  // undeclared: kept
    ASSERT_TRUE(floor->Raise(ReleaseKind::kUpdater, {"0.3.0", true}));
  }
  auto again = VersionFloor::Open(dir.path().string());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->Get(ReleaseKind::kService), "1.2.0");
  EXPECT_EQ(again->Get(ReleaseKind::kUpdater), "0.3.0");
  EXPECT_FALSE(fs::exists(dir.path() / "version-floor.json.tmp"));
}

TEST(AVersionFloor, RefusesToOpenAFileItCannotTrust) {
  const char* bodies[] = {
      "",
      "{",
      "[]",
      R"({"format":1,"service":null})",
      R"({"format":2,"service":null,"updater":null})",
      R"({"format":1,"service":"abc1234","updater":null})",
      R"({"format":1,"service":7,"updater":null})",
      R"({"format":1,"service":null,"updater":null,"extra":1})",
      R"({"format":1,"service":null,"service":"1.0","updater":null})",
  };
  for (const char* body : bodies) {
    decnet::testing::TempDir dir;
    std::ofstream(dir.path() / "version-floor.json") << body;
    auto floor = VersionFloor::Open(dir.path().string());
    ASSERT_FALSE(floor) << body;
    EXPECT_EQ(floor.error().rule, "version-floor-file") << body;
  }
}

}  // namespace
}  // namespace decnet::daemon
