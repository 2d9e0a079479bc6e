// One worker of the product: see worker_host.h. Processes are started with posix_spawn and
// every wait is bounded; the helper (root, confined) cannot be asked to stop, so its daemon is
// ended with SIGTERM and the helper follows when the pair closes.
#include "tests/integration/worker_host.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "policy/policy.h"
#include "proto/sha256.h"
#include "tests/integration/container_setup.h"
#include "tests/support/loopback.h"
#include "tests/support/shell.h"

#ifndef DECNET_HELPER_BINARY
#error "DECNET_HELPER_BINARY, DECNET_DAEMON_BINARY and DECNET_TEST_AGENT_BINARY must be set"
#endif

extern char** environ;

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kCurlTimeout = 120s;  // above the daemon's update deadline (60 s)

// Starts argv with stdin from /dev/null and stdout/stderr to the given files (appended).
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const fs::path& out, const fs::path& err) {
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(),
                              env.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits for `pid` up to `timeout`; its exit status, or nullopt if it is still running.
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

// Runs argv to completion (SIGKILL after `timeout`); its exit code, -1 otherwise.
int RunToEnd(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
             std::chrono::milliseconds timeout) {
  const pid_t pid = Spawn(args, {}, out, err);
  if (pid < 0) return -1;
  auto status = WaitFor(pid, timeout);
  if (!status) {
    ::kill(pid, SIGKILL);
    status = WaitFor(pid, 5s);
  }
  return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

// One process, named by its pid and its start time (so a reused pid is never mistaken
// for it).
struct Proc {
  pid_t pid = -1;
  std::string start;  // /proc/PID/stat field 22
};

// A process's parent pid, state and start time from /proc/PID/stat; false when it is gone.
bool ReadStat(pid_t pid, pid_t* ppid, char* state, std::string* start) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  std::istringstream rest(stat.substr(paren + 1));
  rest >> *state >> *ppid;
  std::string field;
  for (int i = 5; i <= 22 && rest >> field; ++i) *start = field;  // fields 5..22
  return true;
}

// Every process beneath `root` (itself first, then breadth first), found by walking /proc's
// parent links. Read before a kill: once a parent dies its children move to another parent.
std::vector<Proc> ProcessTree(pid_t root) {
  std::map<pid_t, std::vector<Proc>> children;
  Proc top{root, ""};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    pid_t ppid = 0;
    char state = 0;
    Proc p{std::stoi(name), ""};
    if (!ReadStat(p.pid, &ppid, &state, &p.start)) continue;
    if (p.pid == root) top = p;
    children[ppid].push_back(p);
  }
  std::vector<Proc> out = {top};
  for (size_t i = 0; i < out.size(); ++i)
    for (const Proc& child : children[out[i].pid]) out.push_back(child);
  return out;
}

// True while `p` runs (not a zombie, and its pid not reused).
bool Running(const Proc& p) {
  pid_t ppid = 0;
  char state = 0;
  std::string start;
  if (!ReadStat(p.pid, &ppid, &state, &start) || start != p.start) return false;
  if (state != 'Z') return true;
  // A zombie leader is not yet an ended process: its other threads may still be exiting,
  // and the descriptors they share (the daemon's listening socket) close with the last of
  // them. Ended once /proc/PID/task holds the leader alone.
  std::error_code ec;
  size_t threads = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(p.pid) + "/task", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    ++threads;
  return threads > 1;
}

// Waits until `p` has ended (gone, or a zombie whose threads have all exited, so its files are
// closed).
bool WaitUntilGone(const Proc& p, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Running(p)) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::vector<json> JsonLines(const fs::path& path) {
  std::vector<json> out;
  std::istringstream in(ReadFile(path));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << path << ": a line is not JSON: " << line;
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

const passwd& DaemonUser() {
  static const passwd* pw = ::getpwnam("decnet-updater");
  if (pw == nullptr) throw std::runtime_error("no user decnet-updater (run scripts/setup.sh)");
  return *pw;
}

}  // namespace

namespace hostproc {
std::string ReadText(const fs::path& path) { return ReadFile(path); }
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const fs::path& out, const fs::path& err) {
  return test::Spawn(args, env, out, err);
}
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout) {
  return test::WaitFor(pid, timeout);
}
}  // namespace hostproc

std::string HttpReply::Describe() const {
  return "HTTP " + std::to_string(status) + " " + body +
         (curl_log.empty() ? "" : "\ncurl: " + curl_log);
}

BuiltRelease BuildAgentRelease(const fs::path& tree, const ReleaseSpec& spec, uint16_t agent_port) {
  MakeDir(tree / "bin", 0755);
  MakeDir(tree / "etc/systemd/system", 0755);
  fs::copy_file(DECNET_TEST_AGENT_BINARY, tree / "bin/decnet-test-agent");
  ::chmod((tree / "bin/decnet-test-agent").c_str(), 0755);
  WriteFile(tree / ".decnet-release.json",
            json{{"format", 1}, {"version", spec.version}, {"kind", "service"}}.dump(), 0644);
  std::string exec = std::string("/opt/decnet/current/bin/decnet-test-agent --port ") +
                     std::to_string(agent_port) + " --version " + spec.version + " --ca " +
                     kAgentCertDir + "/ca.crt --cert " + kAgentCertDir + "/agent.crt --key " +
                     kAgentCertDir + "/agent.key";
  for (const auto& f : spec.agent_flags) exec += " " + f;
  if (spec.host_flags) {
    // systemd turns "$$" into "$": the shell reads this host's file, if any, and execs the
    // agent (the unit's main process stays the agent).
    exec = "/bin/sh -c 'exec " + exec + " $$(cat " + kAgentCertDir + "/flags-" + spec.version +
           " 2>/dev/null)'";
  }
  auto unit = [](const std::string& what, const std::string& exec_start) {
    return "[Unit]\nDescription=" + what +
           "\n\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\n"
           "ExecStart=" +
           exec_start + "\n";
  };
  WriteFile(tree / "etc/systemd/system" / WorkerHost::kAgent,
            unit("DECNET test agent " + spec.version, exec), 0644);
  if (spec.extra_unit)
    WriteFile(tree / "etc/systemd/system" / WorkerHost::kExtra,
              unit("DECNET extra", "/bin/sleep infinity"), 0644);
  std::vector<std::string> tar = {"tar",
                                  "-C",
                                  tree.string(),
                                  "--owner=0",
                                  "--group=0",
                                  "-czf",
                                  tree.string() + ".tar.gz",
                                  ".decnet-release.json",
                                  "bin",
                                  "etc"};
  if (spec.padding_bytes > 0) {
    MakeDir(tree / "share", 0755);
    std::ifstream random("/dev/urandom", std::ios::binary);
    std::ofstream out(tree / "share/padding", std::ios::binary | std::ios::trunc);
    std::vector<char> chunk(1 << 20);
    for (size_t left = spec.padding_bytes; left > 0;) {
      const size_t n = std::min(left, chunk.size());
      random.read(chunk.data(), static_cast<std::streamsize>(n));
      out.write(chunk.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
    tar.push_back("share");
  }
  BuiltRelease r;
  r.version = spec.version;
  r.tarball = tree.string() + ".tar.gz";
  const fs::path log = tree.string() + ".tar.log";
  EXPECT_EQ(RunToEnd(tar, log, log, 120s), 0) << ReadFile(log);
  ::chmod(r.tarball.c_str(), 0644);
  r.sha256 = Sha256Hex(ReadFile(r.tarball));
  return r;
}

void WriteScriptedUpdaterBuild(const fs::path& tree, const std::string& version,
                               const std::string& script) {
  utsname host{};
  ::uname(&host);
  MakeDir(tree / "bin", 0755);
  WriteFile(tree / ".decnet-release.json",
            json{{"format", 1},
                 {"version", version},
                 {"kind", "updater"},
                 {"arch", host.machine},
                 {"helper_protocol", 1}}
                .dump(),
            0644);
  WriteFile(tree / "bin/decnet-updaterd", script, 0755);
}

WorkerHost::WorkerHost(Options options) : options_(std::move(options)) {
  std::string tmpl = (options_.parent_dir / "decnet-e2e-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  root_ = tmpl;
  ::chmod(root_.c_str(), 0755);
  const passwd& d = DaemonUser();
  install_dir_ = root_ / "opt-decnet";
  agent_dir_ = root_ / "agent";
  pki_dir_ = root_ / "pki";
  MakeDir(install_dir_, 0755, d.pw_uid, d.pw_gid);  // the daemon's store, /opt/decnet inside
  MakeDir(root_ / "updater", 0755, d.pw_uid, d.pw_gid);
  MakeDir(root_ / "daemon-state", 0700, d.pw_uid, d.pw_gid);
  MakeDir(pki_dir_, 0700, d.pw_uid, d.pw_gid);
  MakeDir(agent_dir_, 0755, kContainerDecnetUid, kContainerDecnetUid);
  MakeDir(root_ / "links", 0755);
  MakeDir(root_ / "build", 0755);
  MakeDir(root_ / "curl", 0700);
  daemon_port_ = options_.daemon_port != 0 ? options_.daemon_port : FreeLoopbackPort();
  agent_port_ = options_.agent_port;
  while (agent_port_ == 0 || agent_port_ == daemon_port_) agent_port_ = FreeLoopbackPort();
}

WorkerHost::~WorkerHost() {
  Shutdown();
  std::error_code ec;
  fs::remove_all(root_, ec);
}

Testbed::Options WorkerHost::TestbedOptions() const {
  Testbed::Options o;
  o.name_prefix = options_.name_prefix;
  if (options_.netns.empty()) {
    o.share_host_network = true;  // the daemon on the host probes the agent on 127.0.0.1
  } else {
    o.netns = options_.netns;  // the daemon in the same namespace probes its 127.0.0.1
  }
  o.extra_nspawn_args = {"--bind-ro=" + install_dir_.string() + ":/opt/decnet",
                         "--bind-ro=" + agent_dir_.string() + ":" + kAgentCertDir};
  return o;
}

tl::expected<void, std::string> WorkerHost::Boot() {
  auto started = Testbed::Start(TestbedOptions());
  if (!started) return tl::make_unexpected(started.error());
  owned_testbed_ = std::move(*started);
  testbed_ = owned_testbed_.get();
  return {};
}

void WorkerHost::Prepare() {
  MakePki();
  WriteConfigs();
  if (options_.daemon_from_store) SeedUpdaterStore();
}

void WorkerHost::Shutdown() {
  StopHelper();
  if (!owned_testbed_) return;
  if (auto stopped = owned_testbed_->Stop(); !stopped) ADD_FAILURE() << stopped.error();
  testbed_ = nullptr;
  owned_testbed_.reset();
}

void WorkerHost::MakePki() {
  using decnet::testing::CertSpec;
  ca_ = options_.ca ? options_.ca : std::make_shared<decnet::testing::TestCa>("decnet-e2e-ca");
  const passwd& d = DaemonUser();
  auto write = [&](const fs::path& dir, const std::string& name, const decnet::testing::Issued& i,
                   uid_t uid) {
    WriteFile(dir / (name + ".crt"), i.cert_pem, 0644, uid, uid == 0 ? 0 : uid);
    WriteFile(dir / (name + ".key"), i.key_pem, 0600, uid, uid == 0 ? 0 : uid);
  };
  WriteFile(pki_dir_ / "ca.crt", ca_->ca().cert_pem, 0644, d.pw_uid, d.pw_gid);
  CertSpec updater{{"decnet-updater"}, true};
  if (options_.listen_address != "127.0.0.1") updater.extra_ips = {options_.listen_address};
  const decnet::testing::Issued issued = ca_->Issue(updater);
  updater_fingerprint_ = issued.fingerprint;
  write(pki_dir_, "updater", issued, d.pw_uid);
  if (options_.master) {
    write(pki_dir_, "master", *options_.master, d.pw_uid);
  } else {
    write(pki_dir_, "master", ca_->Issue(CertSpec{{"decnet-master"}, false}), d.pw_uid);
  }
  write(pki_dir_, "worker", ca_->Issue(CertSpec{{"decnet-worker"}, false}), d.pw_uid);
  // The agent reads its own files inside the container, as the units' user.
  WriteFile(agent_dir_ / "ca.crt", ca_->ca().cert_pem, 0644, kContainerDecnetUid,
            kContainerDecnetUid);
  write(agent_dir_, "agent", ca_->Issue(CertSpec{{"decnet-agent"}, true}), kContainerDecnetUid);
}

void WorkerHost::WriteConfigs() {
  helper::Policy p = helper::Policy::Defaults();
  p.unit_dir = testbed().unit_dir().string();
  p.unit_root = testbed().rootfs().string();  // unit paths mean what they mean in the container
  p.link_dir = (root_ / "links").string();
  p.state_dir = (root_ / "helper-state").string();
  p.daemon_binary = options_.daemon_from_store
                        ? (root_ / "updater/current/bin/decnet-updaterd").string()
                        : std::string(DECNET_DAEMON_BINARY);
  p.daemon_store = (root_ / "updater").string();
  p.daemon_args = {"--config", (root_ / "daemon.json").string()};
  p.links = {{"decnet-test-agent", (install_dir_ / "current").string()}};
  p.hello_timeout_ms = 30'000;
  p.restart_timeout_ms = 20'000;
  if (options_.adjust_policy) options_.adjust_policy(p);
  WriteFile(root_ / "helper.json", helper::PolicyToJson(p), 0644);
  p.restart_timeout_ms += 1;
  WriteFile(root_ / "daemon-policy.json", helper::PolicyToJson(p), 0644);

  const std::string pki = pki_dir_.string();
  json config = {
      {"listen_address", options_.listen_address},
      {"port", daemon_port_},
      {"tls_ca", pki + "/ca.crt"},
      {"tls_cert", pki + "/updater.crt"},
      {"tls_key", pki + "/updater.key"},
      {"install_dir", install_dir_.string()},
      {"updater_dir", (root_ / "updater").string()},
      {"state_dir", (root_ / "daemon-state").string()},
      {"keep_releases", 3},
      {"units", {kAgent, kExtra}},
      {"links", {{{"name", "decnet-test-agent"}, {"target", "bin/decnet-test-agent"}}}},
      {"helper_policy",
       (root_ / (options_.daemon_reads_another_policy ? "daemon-policy.json" : "helper.json"))
           .string()},
      {"probe",
       {{"url", "https://127.0.0.1:" + std::to_string(agent_port_) + "/health"},
        {"ca", pki + "/ca.crt"},
        {"cert", pki + "/worker.crt"},
        {"key", pki + "/worker.key"},
        {"attempts", 5},
        {"interval_ms", 300},
        {"timeout_ms", 2000},
        {"check_version", true}}},
      {"settle_ms", options_.settle_ms},
      {"update_deadline_ms", 60'000},
  };
  if (options_.adjust_config) options_.adjust_config(config);
  WriteFile(root_ / "daemon.json", config.dump(2), 0644);
}

std::vector<std::string> WorkerHost::InNetns(const std::string& netns,
                                             std::vector<std::string> args) const {
  // `ip netns exec` enters the namespace and execs the command: the pid stays the command's.
  if (!netns.empty()) args.insert(args.begin(), {"ip", "netns", "exec", netns});
  return args;
}

void WorkerHost::StartHelper(const std::vector<std::string>& extra_env) {
  const fs::path log = root_ / "helper.log";
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                  "DBUS_SYSTEM_BUS_ADDRESS=" + testbed().bus_address()};
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  helper_pid_ = Spawn(
      InNetns(options_.netns, {DECNET_HELPER_BINARY, "--config", (root_ / "helper.json").string()}),
      env, log, log);
  ASSERT_GT(helper_pid_, 0) << "cannot start " << DECNET_HELPER_BINARY;
  // Ready when the daemon answers /health (it says hello to the helper once listening).
  const auto deadline = Clock::now() + 30s;
  HttpReply health;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(helper_pid_, &status, WNOHANG) == helper_pid_) {
      helper_pid_ = -1;
      FAIL() << "the helper exited during start-up (status " << status << "):\n" << Logs();
    }
    health = Get("/health");
    if (health.status == 200 && health.json.is_object() &&
        health.json.value("/helper/alive"_json_pointer, false))
      return;
    std::this_thread::sleep_for(100ms);
  }
  FAIL() << "waited 30 s for the daemon's /health on " << options_.listen_address << ":"
         << daemon_port_ << " with the helper alive; last: " << health.Describe() << "\n"
         << Logs();
}

pid_t WorkerHost::DaemonPid() const {
  if (helper_pid_ <= 0) return -1;
  std::istringstream children(ReadFile("/proc/" + std::to_string(helper_pid_) + "/task/" +
                                       std::to_string(helper_pid_) + "/children"));
  pid_t daemon = -1;
  children >> daemon;
  return daemon;
}

std::optional<int> WorkerHost::KillUnit(Kill how) {
  if (helper_pid_ <= 0) return std::nullopt;
  const pid_t helper = std::exchange(helper_pid_, -1);
  // The helper first, its daemon next, then what the daemon started.
  const std::vector<Proc> unit = ProcessTree(helper);
  if (how == Kill::kWholeUnit) {
    for (const Proc& p : unit) ::kill(p.pid, SIGKILL);
  } else if (unit.size() > 1) {
    ::kill(unit[1].pid, SIGKILL);
  }
  auto status = WaitFor(helper, 15s);
  if (!status) {
    ADD_FAILURE() << "the helper did not end within 15 s of its daemon's SIGKILL";
    ::kill(helper, SIGKILL);
    WaitFor(helper, 5s);
  }
  // What the unit started beyond its daemon (an install command in its own process group).
  for (size_t i = 1; i < unit.size(); ++i)
    if (Running(unit[i])) ::kill(unit[i].pid, SIGKILL);
  for (size_t i = 1; i < unit.size(); ++i)
    if (!WaitUntilGone(unit[i], 10s)) ADD_FAILURE() << "pid " << unit[i].pid << " outlived SIGKILL";
  return status;
}

void WorkerHost::StopHelper() {
  if (helper_pid_ <= 0) return;
  // The daemon is the helper's only child; SIGTERM ends it cleanly, and the helper ends
  // when the pair closes.
  const pid_t daemon = DaemonPid();
  if (daemon > 0) ::kill(daemon, SIGTERM);
  auto status = WaitFor(helper_pid_, 15s);
  if (!status) {
    ADD_FAILURE() << "the helper did not exit within 15 s of its daemon's SIGTERM";
    if (daemon > 0) ::kill(daemon, SIGKILL);
    ::kill(helper_pid_, SIGKILL);
    WaitFor(helper_pid_, 5s);
  }
  helper_pid_ = -1;
}

BuiltRelease WorkerHost::BuildUpdaterBuild(const std::string& version, bool broken) {
  const fs::path tree = root_ / "build" / ("u" + std::to_string(++releases_built_));
  utsname host{};
  ::uname(&host);
  if (!broken) {
    // The build exactly as the updater-build target packs it.
    MakeDir(tree, 0755);
    const fs::path log = root_ / "build/pack.log";
    EXPECT_EQ(RunToEnd({"bash", DECNET_SOURCE_DIR "/scripts/pack-updater-build.sh", "--binary",
                        DECNET_DAEMON_BINARY, "--version", version, "--source-dir",
                        DECNET_SOURCE_DIR, "--out-dir", tree.string()},
                       log, log, 60s),
              0)
        << ReadFile(log);
    BuiltRelease r;
    r.version = version;
    r.tarball = tree / ("decnet-updater-" + version + "-" + host.machine + ".tar.gz");
    r.sha256 = Sha256Hex(ReadFile(r.tarball));
    return r;
  }
  // A build that answers --version (update-self's smoke test) and cannot start.
  WriteScriptedUpdaterBuild(tree, version,
                            "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'decnet-updaterd " +
                                version +
                                "'; exit 0; }\necho 'this build cannot start' >&2\nexit 1\n");
  BuiltRelease r;
  r.version = version;
  r.tarball = tree.string() + ".tar.gz";
  const fs::path log = root_ / "build/tar.log";
  EXPECT_EQ(RunToEnd({"tar", "-C", tree.string(), "--owner=0", "--group=0", "-czf",
                      r.tarball.string(), ".decnet-release.json", "bin"},
                     log, log, 30s),
            0)
      << ReadFile(log);
  ::chmod(r.tarball.c_str(), 0644);
  r.sha256 = Sha256Hex(ReadFile(r.tarball));
  return r;
}

void WorkerHost::SeedUpdaterStore() {
  BuiltRelease first = BuildUpdaterBuild("1.0.0");
  const fs::path log = root_ / "build/install-build.log";
  const int rc =
      RunToEnd({"setpriv", "--reuid=decnet-updater", "--regid=decnet-updater", "--clear-groups",
                DECNET_DAEMON_BINARY, "--config", (root_ / "daemon.json").string(),
                "--install-build", first.tarball.string()},
               log, log, 60s);
  ASSERT_EQ(rc, 0) << ReadFile(log);
}

HttpReply WorkerHost::PushSelf(const BuiltRelease& build) {
  return Curl(DaemonUrl("/update-self"), Caller::kMaster,
              {"-F", "tarball=@" + build.tarball.string(), "-F", "sha256=" + build.sha256, "-F",
               "confirm_self=true"},
              options_.client_netns);
}

void WorkerHost::RestartHelper() {
  StopHelper();
  StartHelper();
}

std::optional<int> WorkerHost::StartHelperExpectingExit() {
  const fs::path log = root_ / "helper.log";
  const pid_t pid = Spawn(
      InNetns(options_.netns, {DECNET_HELPER_BINARY, "--config", (root_ / "helper.json").string()}),
      {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DBUS_SYSTEM_BUS_ADDRESS=" + testbed().bus_address()},
      log, log);
  if (pid < 0) return std::nullopt;
  auto status = WaitFor(pid, 60s);
  if (!status) {
    ::kill(pid, SIGKILL);
    WaitFor(pid, 5s);
  }
  return status;
}

json WorkerHost::HelperctlStatus() const {
  const fs::path out = root_ / "build/helperctl.out", err = root_ / "build/helperctl.err";
  fs::remove(out);
  const int rc = RunToEnd(
      {DECNET_HELPERCTL_BINARY, "--config", (root_ / "helper.json").string(), "status", "--json"},
      out, err, 30s);
  EXPECT_EQ(rc, 0) << ReadFile(err);
  json j = json::parse(ReadFile(out), nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

std::string WorkerHost::RunningDaemonBuild() const {
  const pid_t daemon = DaemonPid();
  if (daemon <= 0) return "";
  std::error_code ec;
  const std::string exe = fs::read_symlink("/proc/" + std::to_string(daemon) + "/exe", ec).string();
  const std::string releases = (root_ / "updater/releases/").string();
  if (!exe.starts_with(releases)) return exe;
  return exe.substr(releases.size(), 16);
}

BuiltRelease WorkerHost::BuildRelease(const ReleaseSpec& spec) {
  return BuildAgentRelease(root_ / "build" / ("r" + std::to_string(++releases_built_)), spec,
                           agent_port_);
}

void WorkerHost::SetAgentFlags(const std::string& version, const std::vector<std::string>& flags) {
  const fs::path file = agent_dir_ / ("flags-" + version);
  if (flags.empty()) {
    std::error_code ec;
    fs::remove(file, ec);
    return;
  }
  std::string line;
  for (const auto& f : flags) line += (line.empty() ? "" : " ") + f;
  WriteFile(file, line + "\n", 0644, kContainerDecnetUid, kContainerDecnetUid);
}

HttpReply WorkerHost::Curl(const std::string& url, Caller caller,
                           const std::vector<std::string>& extra, const std::string& netns) {
  const int n = ++curls_;
  const fs::path body = root_ / "curl" / ("body." + std::to_string(n));
  const fs::path code = root_ / "curl" / ("code." + std::to_string(n));
  const fs::path err = root_ / "curl" / ("err." + std::to_string(n));
  const std::string who = (pki_dir_ / (caller == Caller::kMaster ? "master" : "worker")).string();
  std::vector<std::string> args = {"curl",       "-sS",
                                   "--max-time", std::to_string(kCurlTimeout.count()),
                                   "--cacert",   (pki_dir_ / "ca.crt").string(),
                                   "--cert",     who + ".crt",
                                   "--key",      who + ".key",
                                   "-o",         body.string(),
                                   "-w",         "%{http_code}"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  HttpReply reply;
  RunToEnd(InNetns(netns, std::move(args)), code, err, kCurlTimeout + 10s);
  reply.status = std::atoi(ReadFile(code).c_str());
  reply.body = ReadFile(body);
  reply.curl_log = ReadFile(err);
  reply.json = json::parse(reply.body, nullptr, false);
  if (reply.json.is_discarded()) reply.json = nullptr;
  return reply;
}

std::string WorkerHost::DaemonUrl(const std::string& path) const {
  return "https://" + options_.listen_address + ":" + std::to_string(daemon_port_) + path;
}

HttpReply WorkerHost::PushWithDigest(const BuiltRelease& release, const std::string& sha256,
                                     Caller caller) {
  std::vector<std::string> form = {
      "-F", "tarball=@" + release.tarball.string(), "-F",
      "sha=" + (release.sha.empty() ? release.sha256.substr(0, 40) : release.sha)};
  if (!sha256.empty()) form.insert(form.end(), {"-F", "sha256=" + sha256});
  return Curl(DaemonUrl("/update"), caller, form, options_.client_netns);
}

HttpReply WorkerHost::Push(const BuiltRelease& release, Caller caller) {
  return PushWithDigest(release, release.sha256, caller);
}

HttpReply WorkerHost::Rollback(Caller caller) {
  return Curl(DaemonUrl("/rollback"), caller, {"-X", "POST", "-H", "Content-Length: 0"},
              options_.client_netns);
}

HttpReply WorkerHost::Get(const std::string& path, Caller caller) {
  return Curl(DaemonUrl(path), caller, {}, options_.client_netns);
}

HttpReply WorkerHost::AgentHealth() {
  // The agent listens on the loopback of the worker's own network.
  return Curl("https://127.0.0.1:" + std::to_string(agent_port_) + "/health", Caller::kWorker, {},
              options_.netns);
}

BuiltRelease WorkerHost::Install(const ReleaseSpec& spec) {
  BuiltRelease r = BuildRelease(spec);
  HttpReply reply = Push(r);
  EXPECT_EQ(reply.status, 200) << "installing " << spec.version << ": " << reply.Describe();
  return r;
}

std::vector<json> WorkerHost::AuditLog() const {
  return JsonLines(root_ / "daemon-state/audit.jsonl");
}

std::vector<json> WorkerHost::HelperRecord() const {
  return JsonLines(root_ / "helper-state/requests.jsonl");
}

std::string WorkerHost::CurrentRelease() const {
  std::error_code ec;
  const fs::path target = fs::read_symlink(install_dir_ / "current", ec);
  return ec ? "" : target.filename().string();
}

std::vector<std::string> WorkerHost::StoredReleases() const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(install_dir_ / "releases", ec))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string WorkerHost::Logs() const { return ReadFile(root_ / "helper.log"); }

}  // namespace decnet::test
