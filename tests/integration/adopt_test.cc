// decnet-adopt on a host laid out exactly as DECNET's updater leaves it, against a real systemd
// (PID 1 of a throw-away container): DECNET-like Python trees at releases/active and
// releases/prev, a shared venv, `current`, DECNET's units (its updater enabled and running),
// the `decnet` link into the shared venv, TLS bundles root-only 0600. The dry run changes
// nothing (the tree is hashed before and after); the adoption leaves two releases each with
// its own environment, DECNET's updater gone, units that pass the policy and run as the units'
// user, the link in the active release, the keys unchanged but for an ACL for the daemon's
// user; a second run changes nothing; --undo puts DECNET's layout back.
//
// Between the second run and the undo, the real decnet-update-helper (root, on the host, with
// the adopted policy) forks the real decnet-updaterd with the adopted configuration (only the
// port, the master's pin, the probe's port and the test's state directories changed); DECNET's
// master client (tests/support/decnet_master_client.py) pushes a new DECNET-like release and
// rolls it back, each answer classified as DECNET's master does, and the agent runs the code
// each answer names.
//
// The install dir is bound at /opt/decnet in the container, the host's Python into it (the
// minimal root filesystem has none), and the updater's own unit is a stand-in there: the real
// helper and daemon need libraries the container lacks, so they run on the host, as the
// end-to-end tests run them. The container shares the host's network: the daemon probes the
// agent's mTLS /health on 127.0.0.1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
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
#include "tests/daemon/test_pki.h"
#include "tests/integration/testbed.h"
#include "tests/support/loopback.h"

#ifndef DECNET_ADOPT_BINARY
#error "DECNET_ADOPT_BINARY, DECNET_DAEMON_BINARY and DECNET_HELPER_BINARY must be set"
#endif

extern char** environ;

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

// The tree's command line: `decnet agent [--host H] [--port P]` serves GET /health over mTLS
// with DECNET's agent files (/etc/decnet/agent/{ca,worker}.crt, worker.key; a client
// certificate chained to the CA required), answering its version and where its code runs from;
// `decnet updater` and `decnet forwarder` sleep; anything else prints the version.
constexpr char kCli[] = R"(import json, ssl, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import decnet
from decnet import __version__


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "version": __version__, "prefix": sys.prefix,
                           "module": decnet.__file__}).encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def agent(args):
    host = args[args.index("--host") + 1] if "--host" in args else "0.0.0.0"
    port = int(args[args.index("--port") + 1]) if "--port" in args else 8765
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain("/etc/decnet/agent/worker.crt", "/etc/decnet/agent/worker.key")
    ctx.load_verify_locations("/etc/decnet/agent/ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer((host, port), Health)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


def main():
    if sys.argv[1:2] == ["agent"]:
        return agent(sys.argv[2:])
    if sys.argv[1:2] in (["updater"], ["forwarder"]):
        while True:
            time.sleep(3600)
    print("decnet", __version__)
)";

// DECNET's tar_working_tree: the regular files beneath each included path (no directories,
// no symlinks, no __pycache__), named relative to the root, gzipped.
constexpr char kPackScript[] = R"(import pathlib, sys, tarfile
root, out, includes = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
with tarfile.open(out, "w:gz") as tar:
    for entry in includes:
        base = root / entry
        paths = [base] if base.is_file() else sorted(base.rglob("*"))
        for path in paths:
            if path.is_symlink() or path.is_dir() or "__pycache__" in path.parts:
                continue
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
)";

// A DECNET-like tree: package `decnet`, console script `decnet` (kCli).
void DecnetTree(const fs::path& dir, const std::string& version, const std::string& sha) {
  Write(dir / "pyproject.toml",
        "[build-system]\nrequires = [\"setuptools>=40.8.0\", \"wheel\"]\n"
        "build-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"decnet\"\nversion = \"" +
            version +
            "\"\nrequires-python = \">=3.11\"\ndependencies = []\n\n[project.scripts]\n"
            "decnet = \"decnet.cli:main\"\n\n[tool.setuptools]\npackages = [\"decnet\"]\n");
  Write(dir / "decnet/__init__.py", "__version__ = \"" + version + "\"\n");
  Write(dir / "decnet/cli.py", kCli);
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
    daemon_port_ = FreeLoopbackPort();
    do agent_port_ = FreeLoopbackPort();
    while (agent_port_ == daemon_port_);
    // DECNET's certificates: the updater's (server), the master's and the worker's (clients),
    // one CA; the agent in the container reads its own copy as the units' user.
    using decnet::testing::CertSpec;
    updater_cert_ = ca_.Issue(CertSpec{{"decnet-updater"}, true});
    master_cert_ = ca_.Issue(CertSpec{{"decnet-master"}, false});
    worker_cert_ = ca_.Issue(CertSpec{{"decnet-worker"}, false});
    const decnet::testing::Issued agent = ca_.Issue(CertSpec{{"decnet-agent"}, true});
    Write(root_ / "master/master.crt", master_cert_.cert_pem, 0600);
    Write(root_ / "master/master.key", master_cert_.key_pem, 0600);
    const fs::path agent_tls = root_ / "agent-tls";
    Write(agent_tls / "ca.crt", ca_.ca().cert_pem, 0644);
    Write(agent_tls / "worker.crt", agent.cert_pem, 0644);
    Write(agent_tls / "worker.key", agent.key_pem, 0600);
    for (const fs::path& p :
         {agent_tls, agent_tls / "ca.crt", agent_tls / "worker.crt", agent_tls / "worker.key"})
      if (::chown(p.c_str(), kContainerDecnetUid, kContainerDecnetUid) != 0)
        throw std::runtime_error("chown " + p.string());
  }
  ~ADecnetWorker() override {
    StopUpdater();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  Testbed::Options TestbedOptions() const override {
    Testbed::Options o;
    o.name_prefix = "adopt";
    o.share_host_network = true;  // the daemon on the host probes the agent on 127.0.0.1
    const fs::path python = fs::canonical("/usr/bin/python3");
    o.extra_nspawn_args = {"--bind=" + install_.string() + ":/opt/decnet",
                           // Environments are not relocatable: the daemon (on the host) builds them
                           // at the host's path of the store, which the units must then see too.
                           "--bind=" + install_.string() + ":" + install_.string(),
                           "--bind-ro=" + (root_ / "ours/decnet-updater.service").string() +
                               ":/usr/lib/systemd/system/decnet-updater.service",
                           "--bind-ro=" + python.string() + ":/usr/bin/python3",
                           "--bind-ro=/usr/lib/python3.11:/usr/lib/python3.11",
                           "--bind=" + (root_ / "log-decnet").string() + ":/var/log/decnet",
                           "--bind-ro=" + (root_ / "agent-tls").string() + ":/etc/decnet/agent"};
    // The host's own builds of what its Python links, whatever the root filesystem holds.
    for (const char* lib : {"libexpat.so.1", "libssl.so.3", "libcrypto.so.3"}) {
      const fs::path path = fs::path("/lib/x86_64-linux-gnu") / lib;
      o.extra_nspawn_args.push_back("--bind-ro=" + fs::canonical(path).string() + ":" +
                                    path.string());
    }
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
          DecnetUnit("agent",
                     "/opt/decnet/venv/bin/decnet agent --host 127.0.0.1 --port " +
                         std::to_string(agent_port_),
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
    for (const auto& [f, pem] :
         std::map<std::string, std::string>{{"updater/ca.crt", ca_.ca().cert_pem},
                                            {"updater/updater.crt", updater_cert_.cert_pem},
                                            {"updater/updater.key", updater_cert_.key_pem},
                                            {"agent/ca.crt", ca_.ca().cert_pem},
                                            {"agent/worker.crt", worker_cert_.cert_pem},
                                            {"agent/worker.key", worker_cert_.key_pem}})
      Write(root_ / "etc-decnet" / f, pem, 0600);
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

  // --- the real helper and daemon on the adopted store

  // Starts the helper with the adopted policy and the daemon with the adopted configuration,
  // each copied with only the test's bits changed (the daemon's port, the master's pin, the
  // probe's port, the test's state and updater directories); waits for /health with the
  // helper alive.
  void StartUpdater() {
    const fs::path run = root_ / "run";
    fs::create_directories(run);
    const passwd* d = ::getpwnam("decnet-updater");
    ASSERT_NE(d, nullptr);
    // What the package's installation makes: the daemon's own store and state directory.
    json config = json::parse(Slurp(root_ / "etc-updater/daemon.json"));
    for (const fs::path& dir : {root_ / "updater", fs::path(config.value("state_dir", ""))}) {
      fs::create_directories(dir);
      ASSERT_EQ(::chown(dir.c_str(), d->pw_uid, d->pw_gid), 0) << dir;
    }
    ::chmod(config.value("state_dir", "").c_str(), 0700);
    auto policy = helper::LoadPolicyFile((root_ / "etc-updater/helper.json").string());
    ASSERT_TRUE(policy) << policy.error().message;
    policy->state_dir = (root_ / "helper-state").string();
    policy->daemon_store = (root_ / "updater").string();
    policy->daemon_args = {"--config", (run / "daemon.json").string()};
    Write(run / "helper.json", helper::PolicyToJson(*policy), 0644);
    config["port"] = daemon_port_;
    config["master_pins"] = {master_cert_.fingerprint};
    config["updater_dir"] = (root_ / "updater").string();
    config["helper_policy"] = (run / "helper.json").string();
    config["probe"]["url"] = "https://127.0.0.1:" + std::to_string(agent_port_) + "/health";
    Write(run / "daemon.json", config.dump(2), 0644);

    const std::string log = (root_ / "helper.log").string();
    const std::string helper = DECNET_HELPER_BINARY, conf = (run / "helper.json").string();
    const std::string path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    const std::string bus = "DBUS_SYSTEM_BUS_ADDRESS=" + testbed().bus_address();
    char* argv[] = {const_cast<char*>(helper.c_str()), const_cast<char*>("--config"),
                    const_cast<char*>(conf.c_str()), nullptr};
    char* envp[] = {const_cast<char*>(path.c_str()), const_cast<char*>(bus.c_str()), nullptr};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = ::posix_spawn(&helper_pid_, argv[0], &actions, nullptr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(rc, 0) << "cannot start " << helper;
    std::string last;
    for (int i = 0; i < 300; ++i) {
      int status = 0;
      if (::waitpid(helper_pid_, &status, WNOHANG) == helper_pid_) {
        helper_pid_ = -1;
        FAIL() << "the helper exited during start-up (status " << status << "):\n" << Slurp(log);
      }
      auto [code, answer] = Master("health", "");
      last = answer.dump();
      if (code == 200 && answer.is_object() &&
          json::parse(answer.value("body", ""), nullptr, false)
              .value("/helper/alive"_json_pointer, false))
        return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "waited for the daemon's /health with the helper alive; last: " << last << "\n"
           << Slurp(log);
  }

  // Ends the daemon (the helper's only child) with SIGTERM; the helper ends when the pair
  // closes.
  void StopUpdater() {
    if (helper_pid_ <= 0) return;
    const pid_t helper = std::exchange(helper_pid_, -1);
    pid_t daemon = -1;
    std::istringstream(Slurp("/proc/" + std::to_string(helper) + "/task/" + std::to_string(helper) +
                             "/children")) >>
        daemon;
    if (daemon > 0) ::kill(daemon, SIGTERM);
    for (int i = 0; i < 150; ++i) {
      int status = 0;
      if (::waitpid(helper, &status, WNOHANG) == helper) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "the helper did not exit within 15 s of its daemon's SIGTERM";
    if (daemon > 0) ::kill(daemon, SIGKILL);
    ::kill(helper, SIGKILL);
    ::waitpid(helper, nullptr, 0);
  }

  // One request of DECNET's master client: its status and its printed answer.
  std::pair<int, json> Master(const std::string& op, const std::string& tarball,
                              const std::string& sha = "") {
    const fs::path etc = root_ / "etc-decnet/updater";
    auto [rc, out] = Shell("/usr/bin/python3 " DECNET_SOURCE_DIR
                           "/tests/support/decnet_master_client.py --url "
                           "https://127.0.0.1:" +
                           std::to_string(daemon_port_) + " --ca " + (etc / "ca.crt").string() +
                           " --cert " + (root_ / "master/master.crt").string() + " --key " +
                           (root_ / "master/master.key").string() + " --pin " +
                           updater_cert_.fingerprint + (sha.empty() ? "" : " --sha " + sha) + " " +
                           op + (tarball.empty() ? "" : " " + tarball));
    const size_t line = out.rfind("{\"status\"");
    json answer = json::parse(line == std::string::npos ? "" : out.substr(line), nullptr, false);
    if (rc != 0 || !answer.is_object()) return {0, json(out)};
    return {answer.value("status", 0), answer};
  }

  // The agent's /health as the daemon's probe asks for it (DECNET's worker certificate).
  json AgentHealth() {
    const fs::path agent = root_ / "etc-decnet/agent";
    auto [rc, out] =
        Shell("curl -sS --max-time 10 --cacert " + (agent / "ca.crt").string() + " --cert " +
              (agent / "worker.crt").string() + " --key " + (agent / "worker.key").string() +
              " https://127.0.0.1:" + std::to_string(agent_port_) + "/health");
    json j = json::parse(out, nullptr, false);
    return rc == 0 && j.is_object() ? j : json{{"curl", out}};
  }

  // The agent answers `version` from `release`'s own environment, which the agent unit's
  // ExecStart program (through `current`) names.
  void ExpectAgentRuns(const std::string& version, const std::string& release) {
    const fs::path venv = install_ / "releases" / release / ".venv";
    EXPECT_EQ(fs::read_symlink(install_ / "current"), fs::path("releases") / release);
    EXPECT_EQ(fs::canonical(install_ / "current/.venv/bin/decnet"), venv / "bin/decnet");
    const json health = AgentHealth();
    EXPECT_EQ(health.value("version", ""), version) << health.dump();
    EXPECT_EQ(health.value("prefix", ""), venv.string()) << health.dump();
    EXPECT_TRUE(health.value("module", "").starts_with(venv.string() + "/lib/")) << health.dump();
    EXPECT_EQ(Property("decnet-agent.service", "org.freedesktop.systemd1.Unit", "ActiveState"),
              "active");
  }

  static constexpr uid_t kContainerDecnetUid = 990;  // the units' user in the root filesystem
  fs::path root_, install_;
  uint16_t daemon_port_ = 0, agent_port_ = 0;
  decnet::testing::TestCa ca_{"decnet-adopt-ca"};
  decnet::testing::Issued updater_cert_, master_cert_, worker_cert_;
  pid_t helper_pid_ = -1;
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

  // --- the real helper and daemon on the adopted store, driven by DECNET's master client
  ExpectAgentRuns("2.0", active);
  StartUpdater();
  ASSERT_FALSE(HasFatalFailure());
  json cases = json::array();
  auto record = [&](const std::string& op, const std::pair<int, json>& answer,
                    const std::string& expect) {
    cases.push_back({{"name", op},
                     {"route", op},
                     {"status", answer.first},
                     {"body", answer.second.is_object() ? answer.second.value("body", "") : ""},
                     {"expect", expect},
                     {"cli", op == "update"}});
  };
  // A new release, packed as DECNET's master packs a working tree.
  DecnetTree(root_ / "build/tree", "3.0", "cccc3333");
  Write(root_ / "build/pack.py", kPackScript);
  const std::string tarball = (root_ / "build/decnet-3.0.tar.gz").string();
  auto [pack_rc, pack_out] =
      Shell("/usr/bin/python3 " + (root_ / "build/pack.py").string() + " " +
            (root_ / "build/tree").string() + " " + tarball + " pyproject.toml decnet");
  ASSERT_EQ(pack_rc, 0) << pack_out;
  const auto pushed = Master("update", tarball, "cccc3333");
  record("update", pushed, "updated");
  EXPECT_EQ(pushed.first, 200) << pushed.second.dump() << Slurp(root_ / "helper.log");
  const std::string fresh = fs::read_symlink(install_ / "current").filename().string();
  EXPECT_NE(fresh, active);
  EXPECT_NE(fresh, previous);
  EXPECT_EQ(json::parse(Slurp(install_ / "state.json"))["releases"][fresh]["sha"], "cccc3333");
  ExpectAgentRuns("3.0", fresh);
  EXPECT_EQ(fs::canonical(root_ / "links/decnet"),
            install_ / "releases" / fresh / ".venv/bin/decnet");

  const auto back = Master("rollback", "");
  record("rollback", back, "rolled-back");
  EXPECT_EQ(back.first, 200) << back.second.dump() << Slurp(root_ / "helper.log");
  ExpectAgentRuns("2.0", active);
  EXPECT_EQ(fs::canonical(root_ / "links/decnet"),
            install_ / "releases" / active / ".venv/bin/decnet");
  StopUpdater();

  Write(root_ / "master-cases.json", cases.dump(1));
  auto [models_rc, models] =
      Shell("/usr/bin/python3 " DECNET_SOURCE_DIR "/tests/daemon/decnet_master_models.py " +
            (root_ / "master-cases.json").string());
  EXPECT_EQ(models_rc, 0) << models;
  EXPECT_NE(models.find("2 of 2 answers read"), std::string::npos) << models;
  if (HasFailure()) std::cerr << Slurp(root_ / "helper.log");

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
