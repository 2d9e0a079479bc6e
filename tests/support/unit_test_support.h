// Shared by the unit-policy tests: the fixture files and a throw-away unit root.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace decnet::helper::testing_support {

namespace fs = std::filesystem;

inline constexpr uid_t kOtherUid = 1000;  // any non-root uid; no account needed

// One fixture file. Refused files are named RULE--SHORT.service (or .target); a first line
// "# as: NAME" says which unit name the content is checked as (default decnet-fixture.service).
struct UnitFixture {
  std::string file;
  std::string unit_name;
  std::string expected_rule;  // empty for accepted fixtures
  std::string content;
};

inline std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<UnitFixture> LoadUnitFixtures(bool refused) {
  const fs::path dir =
      fs::path(DECNET_SOURCE_DIR) / "tests/fixtures/units" / (refused ? "refused" : "accepted");
  std::vector<UnitFixture> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    UnitFixture f;
    f.file = entry.path().filename().string();
    f.content = ReadAll(entry.path());
    f.unit_name = refused ? "decnet-fixture.service" : f.file;
    if (f.content.starts_with("# as: ")) {
      f.unit_name = f.content.substr(6, f.content.find('\n') - 6);
    }
    if (refused) f.expected_rule = f.file.substr(0, f.file.find("--"));
    out.push_back(std::move(f));
  }
  std::sort(out.begin(), out.end(),
            [](const UnitFixture& a, const UnitFixture& b) { return a.file < b.file; });
  return out;
}

// A temporary directory tree, removed at the end of the test.
class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/decnet-policy-test.XXXXXX";
    root_ = mkdtemp(tmpl);
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::string& root() const { return root_; }
  std::string Path(const std::string& rel) const { return root_ + rel; }
  void Dir(const std::string& rel, mode_t mode = 0755, uid_t uid = 0) const {
    fs::create_directories(Path(rel));
    chmod(Path(rel).c_str(), mode);
    if (chown(Path(rel).c_str(), uid, 0) != 0) std::abort();
  }
  void File(const std::string& rel, mode_t mode = 0644, uid_t uid = 0) const {
    std::ofstream(Path(rel)) << "A=1\n";
    chmod(Path(rel).c_str(), mode);
    if (chown(Path(rel).c_str(), uid, 0) != 0) std::abort();
  }
  void Link(const std::string& target, const std::string& rel) const {
    fs::create_symlink(target, Path(rel));
  }

 private:
  std::string root_;
};

// The unit root the fixtures are checked against: /etc/decnet and /var/log/decnet-root are
// root's; /var/log/decnet belongs to the units' user (DECNET's habit); link.log is a symlink.
// /etc/passwd and /etc/group give the unit user decnet kOtherUid (group decnet, same id) and
// the daemon decnet-updater kDaemonUid. Files the unit user may and may not open:
// forwarder.log (its own), root.log (root's 0644: not writable), secret.env (root's 0600),
// tls/server.key (root:decnet-updater 0640, DECNET's key layout), updater/updater.key (the
// updater's own, protected), other.log (another user's).
inline constexpr uid_t kDaemonUid = 1001;
inline void BuildFixtureRoot(const TempTree& t) {
  chmod(t.root().c_str(), 0755);
  t.Dir("/etc");
  std::ofstream(t.Path("/etc/passwd"))
      << "root:x:0:0:root:/root:/bin/sh\n"
         "decnet:x:1000:1000::/var/lib/decnet:/usr/sbin/nologin\n"
         "decnet-updater:x:1001:1001::/var/lib/decnet-updater:/usr/sbin/nologin\n";
  std::ofstream(t.Path("/etc/group")) << "root:x:0:\ndecnet:x:1000:\ndecnet-updater:x:1001:\n";
  t.Dir("/etc/decnet");
  t.File("/etc/decnet/agent.env");
  t.File("/etc/decnet/secret.env", 0600);
  t.Dir("/etc/decnet/tls");
  t.File("/etc/decnet/tls/server.key", 0640);
  if (chown(t.Path("/etc/decnet/tls/server.key").c_str(), 0, kDaemonUid) != 0) std::abort();
  t.Dir("/etc/decnet/updater");
  t.File("/etc/decnet/updater/updater.key", 0644);
  t.Dir("/var/log/decnet-root");
  t.Link("/etc/shadow", "/var/log/decnet-root/link.log");
  t.File("/var/log/decnet-root/forwarder.log", 0640, kOtherUid);
  t.File("/var/log/decnet-root/root.log", 0644);
  t.File("/var/log/decnet-root/other.log", 0666, 1002);
  t.Dir("/var/log/decnet", 0755, kOtherUid);
}

inline Policy FixturePolicy() {
  Policy p = Policy::Defaults();
  p.output_dirs = {"/var/log/decnet-root", "/var/log/decnet"};
  return p;
}

}  // namespace decnet::helper::testing_support
