// decnet-adopt on a host laid out exactly as DECNET's updater leaves it, against a real systemd
// (PID 1 of a throw-away container): DECNET-like Python trees at releases/active and
// releases/prev, a shared venv, `current`, DECNET's units (its updater enabled and running),
// the `decnet` link into the shared venv, TLS bundles root-only 0600. The dry run changes
// nothing (the tree is hashed before and after); the adoption leaves two releases each with
// its own environment, DECNET's updater gone, units that pass the policy and run as the units'
// user, the link in the active release, the keys unchanged but for an ACL for the daemon's
// user; a second run changes nothing; --undo puts DECNET's layout back.
//
// The install dir is bound at /opt/decnet in the container, the host's Python into it (the
// minimal root filesystem has none), and the updater's own unit is a stand-in there: the real
// helper and daemon need libraries the container lacks.
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adopt/key_acl.h"
#include "policy/policy.h"
#include "policy/unit_policy.h"
#include "proto/sha256.h"
#include "proto/values.h"
#include "tests/integration/testbed.h"

#ifndef DECNET_ADOPT_BINARY
#error "DECNET_ADOPT_BINARY and DECNET_DAEMON_BINARY must be set"
#endif

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void Write(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

std::pair<int, std::string> Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Everything about a tree a change could touch: names, kinds, owners, modes, ACLs, link
// targets, contents.
std::string TreeState(const fs::path& root) {
  std::ostringstream out;
  std::vector<fs::path> paths = {root};
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    paths.push_back(it->path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path& p : paths) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    out << p.lexically_relative(root).string() << " " << std::oct << st.st_mode << std::dec << " "
        << st.st_uid << ":" << st.st_gid;
    char acl[512];
    const ssize_t n = ::lgetxattr(p.c_str(), "system.posix_acl_access", acl, sizeof acl);
    if (n > 0) out << " acl:" << Sha256Hex(std::string_view(acl, static_cast<size_t>(n)));
    if (S_ISLNK(st.st_mode)) out << " -> " << fs::read_symlink(p).string();
    if (S_ISREG(st.st_mode)) out << " " << Sha256Hex(Slurp(p));
    out << "\n";
  }
  return out.str();
}

// A DECNET-like tree: package `decnet`, console script `decnet`; `decnet --version` prints the
// version, `decnet agent` (and `decnet updater`) sleep, as long-running services do.
void DecnetTree(const fs::path& dir, const std::string& version, const std::string& sha) {
  Write(dir / "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=40.8.0\", \"wheel\"]\n"
        "build-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"decnet\"\nversion = \"" +
            version +
            "\"\nrequires-python = \">=3.11\"\ndependencies = []\n\n[project.scripts]\n"
            "decnet = \"decnet.cli:main\"\n\n[tool.setuptools]\npackages = [\"decnet\"]\n");
  Write(dir / "decnet/__init__.py", "__version__ = \"" + version + "\"\n");
  Write(dir / "decnet/cli.py",
        "import sys, time\nfrom decnet import __version__\n\n\ndef main():\n"
        "    if sys.argv[1:2] in ([\"agent\"], [\"updater\"], [\"forwarder\"]):\n"
        "        while True:\n            time.sleep(3600)\n"
        "    print(\"decnet\", __version__)\n");
  Write(dir / ".decnet-release.json",
        json{{"sha", sha}, {"installed_at", "2024-05-01T10:00:00+00:00"}}.dump());
}

std::string DecnetUnit(const std::string& what, const std::string& exec, const std::string& extra) {
  return "[Unit]\nDescription=DECNET " + what +
         "\nAfter=network-online.target\n"
         "Wants=network-online.target\n\n[Service]\nType=simple\nUser=decnet\nGroup=decnet\n"
         "WorkingDirectory=/opt/decnet\nEnvironmentFile=-/opt/decnet/.env.local\nExecStart=" +
         exec + "\n" + extra +
         "NoNewPrivileges=yes\nProtectSystem=full\nPrivateTmp=yes\n"
         "ReadWritePaths=/opt/decnet\nStandardOutput=append:/var/log/decnet/decnet." +
         what +
         ".log\nRestart=on-failure\nRestartSec=5\nTimeoutStopSec=15\n\n[Install]\n"
         "WantedBy=multi-user.target\n";
}

// Processes on this machine (the container's included) whose command line holds `needle`,
// with their real uid.
std::vector<std::pair<pid_t, uid_t>> ProcessesRunning(const std::string& needle) {
  std::vector<std::pair<pid_t, uid_t>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = Slurp(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(needle) == std::string::npos) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) out.emplace_back(std::stoi(name), st.st_uid);
  }
  return out;
}

// Waits (up to 10 s) until a process holding `needle` runs (`present`) or none does.
bool Eventually(const std::string& needle, bool present) {
  for (int i = 0; i < 100; ++i) {
    if (ProcessesRunning(needle).empty() != present) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

class ADecnetWorker : public TestbedTest {
 protected:
  ADecnetWorker() {
    // Not beneath /tmp: the units' PrivateTmp= would hide the store's host path from them.
    char tmpl[] = "/var/lib/decnet-adopt-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    ::chmod(root_.c_str(), 0755);
    install_ = root_ / "opt-decnet";
    fs::create_directories(install_);
    fs::create_directories(root_ / "log-decnet");  // DECNET's installer makes /var/log/decnet
    Write(root_ / "ours/decnet-updater.service",
          "[Unit]\nDescription=the updater (stand-in for the packaged unit)\n[Service]\n"
          "Type=exec\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n");
  }
  ~ADecnetWorker() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  Testbed::Options TestbedOptions() const override {
    Testbed::Options o;
    o.name_prefix = "adopt";
    const fs::path python = fs::canonical("/usr/bin/python3");
    o.extra_nspawn_args = {
        "--bind=" + install_.string() + ":/opt/decnet",
        // Environments are not relocatable: the daemon (on the host) builds them at the host's
        // path of the store, which the units must then see too.
        "--bind=" + install_.string() + ":" + install_.string(),
        "--bind-ro=" + (root_ / "ours/decnet-updater.service").string() +
            ":/usr/lib/systemd/system/decnet-updater.service",
        "--bind-ro=" + python.string() + ":/usr/bin/python3",
        "--bind-ro=/usr/lib/python3.11:/usr/lib/python3.11",
        "--bind=" + (root_ / "log-decnet").string() + ":/var/log/decnet",
        "--bind-ro=" + fs::canonical("/lib/x86_64-linux-gnu/libexpat.so.1").string() +
            ":/lib/x86_64-linux-gnu/libexpat.so.1"};
    return o;
  }

  // The host exactly as DECNET's updater leaves it.
  void LayOutDecnetHost() {
    DecnetTree(install_ / "releases/active", "2.0", "bbbb2222");
    DecnetTree(install_ / "releases/prev", "1.0", "aaaa1111");
    fs::create_directory_symlink("releases/active", install_ / "current");
    auto [rc, out] =
        Shell("/usr/bin/python3 -m venv --without-pip " + (install_ / "venv").string());
    ASSERT_EQ(rc, 0) << out;
    // DECNET's shared venv: its console script, pointing at the venv's Python as pip writes it.
    Write(install_ / "venv/bin/decnet",
          "#!/opt/decnet/venv/bin/python3\nimport sys\nsys.path.insert(0, '/opt/decnet/current')\n"
          "from decnet.cli import main\nsys.exit(main())\n",
          0755);
    Write(install_ / ".env.local", "DECNET_MODE=worker\n", 0600);
    const fs::path units = testbed().unit_dir();
    Write(units / "decnet-agent.service",
          DecnetUnit("agent", "/opt/decnet/venv/bin/decnet agent --host 0.0.0.0 --port 8765",
                     "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n"
                     "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW\n"));
    Write(units / "decnet-forwarder.service",
          DecnetUnit("forwarder", "/opt/decnet/venv/bin/decnet forwarder", ""));
    Write(units / "decnet-updater.service",
          DecnetUnit("updater",
                     "/opt/decnet/venv/bin/decnet updater --host 0.0.0.0 --port 8766 "
                     "--updater-dir /etc/decnet/updater --install-dir /opt/decnet",
                     "CapabilityBoundingSet=\nAmbientCapabilities=\n"));
    fs::create_directories(units / "multi-user.target.wants");
    for (const char* u :
         {"decnet-agent.service", "decnet-forwarder.service", "decnet-updater.service"})
      fs::create_symlink(std::string("/etc/systemd/system/") + u,
                         units / "multi-user.target.wants" / u);
    fs::create_directories(root_ / "links");
    fs::create_symlink("/opt/decnet/venv/bin/decnet", root_ / "links/decnet");
    for (const char* d : {"etc-decnet", "etc-decnet/updater", "etc-decnet/agent"}) {
      fs::create_directories(root_ / d);
      ::chmod((root_ / d).c_str(), 0700);
    }
    for (const char* f : {"updater/ca.crt", "updater/updater.crt", "updater/updater.key",
                          "agent/ca.crt", "agent/worker.crt", "agent/worker.key"})
      Write(root_ / "etc-decnet" / f, std::string("-----BEGIN ") + f + "-----\n", 0600);
    // The updater's configuration as its package left it (the adoption merges into it).
    Write(root_ / "etc-updater/daemon.json",
          json{{"listen_address", "127.0.0.1"}, {"state_dir", (root_ / "daemon-state").string()}}
              .dump(2));
    ASSERT_TRUE(Systemctl("daemon-reload"));
    for (const char* u :
         {"decnet-agent.service", "decnet-forwarder.service", "decnet-updater.service"})
      ASSERT_TRUE(Systemctl(std::string("start ") + u)) << u;
    for (const char* u :
         {"decnet-agent.service", "decnet-forwarder.service", "decnet-updater.service"}) {
      auto active = testbed().WaitForActiveState(u, "active", 10s);
      ASSERT_TRUE(active) << active.error() << "; exit status "
                          << Property(u, "org.freedesktop.systemd1.Service", "ExecMainStatus");
    }
  }

  // Manager calls through the container's bus (busctl speaks to it from the host).
  bool Systemctl(const std::string& verb) {
    std::string call;
    if (verb == "daemon-reload") {
      call = "Reload";
    } else {
      const std::string unit = verb.substr(verb.find(' ') + 1);
      call = "StartUnit ss " + unit + " replace";
    }
    auto [rc, out] =
        Shell("busctl --address=" + std::string(std::getenv("DBUS_SYSTEM_BUS_ADDRESS")) +
              " call org.freedesktop.systemd1 /org/freedesktop/systemd1 "
              "org.freedesktop.systemd1.Manager " +
              call);
    if (rc != 0) ADD_FAILURE() << verb << ": " << out;
    return rc == 0;
  }

  std::pair<int, std::string> Adopt(const std::vector<std::string>& extra) {
    std::string cmd = std::string(DECNET_ADOPT_BINARY) + " --install-dir " + install_.string() +
                      " --unit-install-dir /opt/decnet --unit-dir " +
                      testbed().unit_dir().string() + " --unit-root " +
                      testbed().rootfs().string() + " --link-dir " + (root_ / "links").string() +
                      " --etc-dir " + (root_ / "etc-decnet").string() + " --config-dir " +
                      (root_ / "etc-updater").string() + " --backup-dir " +
                      (root_ / "backup").string() + " --daemon-binary " + DECNET_DAEMON_BINARY +
                      " --updater-unit-file " + (root_ / "ours/decnet-updater.service").string() +
                      " --unit-timeout 20";
    for (const auto& e : extra) cmd += " " + e;
    return Shell(cmd);
  }

  std::string HostState() {
    std::string s;
    for (const fs::path& p : {install_, testbed().unit_dir(), root_ / "links", root_ / "etc-decnet",
                              root_ / "etc-updater"})
      s += "== " + p.string() + "\n" + TreeState(p);
    return s;
  }

  std::string Property(const std::string& unit, const char* iface, const char* prop) {
    auto v = testbed().UnitProperty(unit, iface, prop);
    EXPECT_TRUE(v) << unit << " " << prop << ": " << (v ? "" : v.error());
    return v ? *v : "";
  }

  fs::path root_, install_;
};

TEST_F(ADecnetWorker, IsAdoptedAfterADryRunThatChangesNothingAndGivenBackByUndo) {
  LayOutDecnetHost();
  if (HasFatalFailure()) return;
  const std::string before = HostState();
  ASSERT_TRUE(Eventually("/opt/decnet/venv/bin/decnet updater", true))
      << "DECNET's updater should run before the adoption";

  // --- the dry run prints the whole plan and changes nothing
  auto [dry_rc, dry_out] = Adopt({"--dry-run"});
  ASSERT_EQ(dry_rc, 0) << dry_out;
  for (const char* step : {"stop and disable DECNET's updater", "import DECNET's releases/prev",
                           "import DECNET's releases/active", "rewrite decnet-agent.service",
                           "let decnet-updater read", "enable and start decnet-updater.service",
                           "nothing was changed"})
    EXPECT_NE(dry_out.find(step), std::string::npos) << step << "\n" << dry_out;
  EXPECT_EQ(HostState(), before);
  EXPECT_FALSE(fs::exists(root_ / "backup"));

  // --- the adoption
  auto [rc, out] = Adopt({});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;

  // The store: two releases, each with its own environment running its own code.
  const json state = json::parse(Slurp(install_ / "state.json"));
  ASSERT_TRUE(state["active"].is_string() && state["previous"].is_string()) << state.dump();
  const std::string active = state["active"], previous = state["previous"];
  EXPECT_EQ(state["releases"][active]["sha"], "bbbb2222");
  EXPECT_EQ(state["releases"][previous]["sha"], "aaaa1111");
  EXPECT_EQ(Shell((install_ / "releases" / active / ".venv/bin/decnet").string()).second,
            "decnet 2.0\n");
  EXPECT_EQ(Shell((install_ / "releases" / previous / ".venv/bin/decnet").string()).second,
            "decnet 1.0\n");
  EXPECT_EQ(fs::read_symlink(install_ / "current"), fs::path("releases") / active);
  struct stat st {};
  ASSERT_EQ(::stat((install_ / "releases" / active / "decnet/cli.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::getpwnam("decnet-updater")->pw_uid) << "imported as the daemon's user";
  // DECNET's trees kept, not deleted.
  EXPECT_TRUE(fs::is_directory(root_ / "backup/decnet/releases/active"));
  EXPECT_TRUE(fs::is_directory(root_ / "backup/decnet/venv"));

  // DECNET's updater: stopped, its file gone, the name now the updater's own unit.
  EXPECT_TRUE(Eventually("/opt/decnet/venv/bin/decnet updater", false));
  const std::string ours =
      Property("decnet-updater.service", "org.freedesktop.systemd1.Unit", "FragmentPath");
  EXPECT_TRUE(ours.ends_with("lib/systemd/system/decnet-updater.service")) << ours;
  EXPECT_EQ(Property("decnet-updater.service", "org.freedesktop.systemd1.Unit", "ActiveState"),
            "active");
  EXPECT_TRUE(fs::exists(root_ / "backup/units/decnet-updater.service"));

  // The units: accepted by the policy the adoption wrote, running the release's own code as
  // the units' user.
  auto policy = helper::LoadPolicyFile((root_ / "etc-updater/helper.json").string());
  ASSERT_TRUE(policy) << policy.error().message;
  for (const char* u : {"decnet-agent.service", "decnet-forwarder.service"}) {
    const std::string text = Slurp(testbed().unit_dir() / u);
    auto refusals = helper::CheckUnitContent(
        *policy, *UnitName::Parse(u), text, helper::RootOnlyPathCheck(testbed().rootfs().string()));
    EXPECT_TRUE(refusals.empty()) << u << ": " << (refusals.empty() ? "" : refusals[0].rule) << "\n"
                                  << text;
    EXPECT_NE(text.find("ExecStart=/opt/decnet/current/.venv/bin/decnet"), std::string::npos)
        << text;
    EXPECT_EQ(text.find("/var/log/decnet"), std::string::npos) << text;
    EXPECT_EQ(Property(u, "org.freedesktop.systemd1.Service", "User"), "decnet");
    EXPECT_EQ(Property(u, "org.freedesktop.systemd1.Unit", "ActiveState"), "active")
        << "exit status " << Property(u, "org.freedesktop.systemd1.Service", "ExecMainStatus");
  }
  ASSERT_TRUE(Eventually("/opt/decnet/current/.venv/bin/decnet agent", true));
  const auto agents = ProcessesRunning("/opt/decnet/current/.venv/bin/decnet agent");
  for (const auto& [pid, uid] : agents) EXPECT_EQ(uid, 990u) << "the container's decnet user";

  // The link: into the active release's own environment.
  EXPECT_EQ(fs::read_symlink(root_ / "links/decnet"), install_ / "current/.venv/bin/decnet");
  EXPECT_EQ(fs::canonical(root_ / "links/decnet").parent_path().parent_path().parent_path(),
            install_ / "releases" / active);

  // The keys: still root's, owner and others' bits as they were, an ACL for the daemon only.
  const uid_t daemon = ::getpwnam("decnet-updater")->pw_uid;
  for (const char* f : {"updater/updater.key", "agent/worker.key", "agent/worker.crt"}) {
    const fs::path key = root_ / "etc-decnet" / f;
    ASSERT_EQ(::stat(key.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_gid, 0u);
    EXPECT_EQ(st.st_mode & 0707, 0600u) << f;
    auto acl = adopt::ReadAcl(key.string());
    ASSERT_TRUE(acl) << acl.error().message;
    int named = 0;
    for (const auto& e : *acl) {
      if (e.tag == adopt::kAclUser) {
        ++named;
        EXPECT_EQ(e.id, daemon);
        EXPECT_EQ(e.perm, 4);
      }
      if (e.tag == adopt::kAclGroupObj || e.tag == adopt::kAclOther) {
        EXPECT_EQ(e.perm, 0) << f;
      }
      EXPECT_NE(e.tag, adopt::kAclGroup) << f;
    }
    EXPECT_EQ(named, 1) << f;
    EXPECT_EQ(Shell("setpriv --reuid=decnet-updater --regid=decnet-updater --clear-groups cat " +
                    key.string())
                  .first,
              0)
        << f;
    EXPECT_NE(
        Shell("setpriv --reuid=decnet --regid=decnet --clear-groups cat " + key.string()).first, 0)
        << f << " must stay unreadable to the units' user";
  }
  // The configuration points at DECNET's TLS files where they are.
  const json daemon_json = json::parse(Slurp(root_ / "etc-updater/daemon.json"));
  EXPECT_EQ(daemon_json["tls_key"], (root_ / "etc-decnet/updater/updater.key").string());
  EXPECT_EQ(daemon_json["probe"]["key"], (root_ / "etc-decnet/agent/worker.key").string());
  EXPECT_EQ(daemon_json["listen_address"], "127.0.0.1") << "merged into the file already there";
  EXPECT_EQ(daemon_json["units"], json({"decnet-agent.service", "decnet-forwarder.service"}));

  // --- a second run changes nothing
  const std::string adopted = HostState();
  auto [again_rc, again_out] = Adopt({});
  EXPECT_EQ(again_rc, 0) << again_out;
  EXPECT_NE(again_out.find("already adopted"), std::string::npos) << again_out;
  EXPECT_EQ(HostState(), adopted);

  // --- the way back
  auto [undo_rc, undo_out] = Adopt({"--undo"});
  ASSERT_EQ(undo_rc, 0) << undo_out;
  EXPECT_EQ(HostState(), before);
  EXPECT_TRUE(Eventually("/opt/decnet/venv/bin/decnet updater", true))
      << "DECNET's updater runs again\n"
      << undo_out;
  EXPECT_EQ(Property("decnet-updater.service", "org.freedesktop.systemd1.Unit", "FragmentPath"),
            "/etc/systemd/system/decnet-updater.service");
  EXPECT_TRUE(fs::is_directory(root_ / "backup/store"));
}

TEST_F(ADecnetWorker, WhoseUnitCannotPassThePolicyIsRefusedWithThePolicysRuleAndNothingChanges) {
  LayOutDecnetHost();
  if (HasFatalFailure()) return;
  // DECNET's agent asks for the docker group (root-equivalent) unless it is granted.
  Write(testbed().unit_dir() / "decnet-agent.service",
        DecnetUnit("agent", "/opt/decnet/venv/bin/decnet agent", "SupplementaryGroups=docker\n"));
  const std::string before = HostState();
  auto [rc, out] = Adopt({});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("decnet-agent.service cannot be made to pass the unit policy"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("unit-supplementary"), std::string::npos) << out;
  EXPECT_NE(out.find("--grant-docker"), std::string::npos) << out;
  EXPECT_EQ(HostState(), before);
}

}  // namespace
}  // namespace decnet::test
