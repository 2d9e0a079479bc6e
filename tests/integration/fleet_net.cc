// A fleet on one machine: see fleet_net.h. Every `ip` command's output goes to a log that a
// failure message quotes; every wait is bounded.
#include "tests/integration/fleet_net.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr char kNetnsDir[] = "/run/netns";
constexpr char kPrefix[] = "dfleet-";

// True when `dir` is a mount point of this mount namespace.
bool IsMountPoint(const std::string& dir) {
  std::istringstream in(hostproc::ReadText("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point == dir) return true;
  }
  return false;
}

// Whether /run/netns was mounted before this process made its first namespace: only then is
// the mount someone else's to keep.
std::once_flag netns_mount_seen;
bool netns_mounted_before = false;

void NoteNetnsMount() {
  std::call_once(netns_mount_seen, [] { netns_mounted_before = IsMountPoint(kNetnsDir); });
}

bool ProcessAlive(pid_t pid) {
  const std::string stat = hostproc::ReadText("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

// Runs `ip ARGS` with its output appended to `log`; the log's tail on failure.
tl::expected<void, std::string> RunIp(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  if (RunToLog(argv, log) == 0) return {};
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  return tl::make_unexpected("`" + command + "` failed:\n" + hostproc::ReadText(log));
}

// The pids `ip netns pids NAME` names (the processes in that network namespace).
std::vector<pid_t> PidsIn(const std::string& netns) {
  const fs::path out = fs::temp_directory_path() / ("dfleet-pids-" + std::to_string(getpid()));
  fs::remove(out);
  RunToLog({"ip", "netns", "pids", netns}, out);
  std::vector<pid_t> pids;
  std::istringstream in(hostproc::ReadText(out));
  for (pid_t p; in >> p;) pids.push_back(p);
  fs::remove(out);
  return pids;
}

// Kills (SIGKILL) every process in the namespace, then deletes it.
void KillAndDelete(const std::string& netns, const fs::path& log) {
  for (int round = 0; round < 50; ++round) {
    const auto pids = PidsIn(netns);
    if (pids.empty()) break;
    for (pid_t p : pids) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(100ms);
  }
  RunToLog({"ip", "netns", "del", netns}, log);
}

// Unmounts /run/netns when it is empty and was not mounted before this process.
void UnmountNetnsDirIfUnused(const fs::path& log) {
  if (netns_mounted_before || !IsMountPoint(kNetnsDir)) return;
  std::error_code ec;
  if (!fs::is_empty(kNetnsDir, ec) || ec) return;
  RunToLog({"umount", kNetnsDir}, log);
}

std::string CommandLog(const fs::path& path) {
  std::string text = hostproc::ReadText(path);
  return text.size() > 20000 ? text.substr(text.size() - 20000) : text;
}

}  // namespace

// ----------------------------------------------------------------------------- FleetNetwork

tl::expected<std::unique_ptr<FleetNetwork>, std::string> FleetNetwork::Create(int hosts) {
  if (hosts < 1 || hosts > 250) return tl::make_unexpected(std::string("1..250 hosts"));
  static std::atomic<int> counter{0};
  std::random_device rd;
  const unsigned r = rd();
  // 10.A.B.0/24 with A in 64..191: unlikely to meet a route of the machine's own (the
  // namespaces never see them anyway).
  const std::string subnet =
      "10." + std::to_string(64 + (r & 0x7f)) + "." + std::to_string((r >> 8) & 0xff) + ".";
  const std::string prefix =
      std::string(kPrefix) + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const fs::path log = fs::temp_directory_path() / (prefix + ".log");
  fs::remove(log);
  NoteNetnsMount();
  std::unique_ptr<FleetNetwork> net(new FleetNetwork(prefix, subnet, hosts, log));
  auto fail = [&](const std::string& why) {
    (void)net->Destroy();
    return tl::make_unexpected(why);
  };
  const std::string hub = net->hub();
  net->made_.push_back(hub);
  for (const auto& step : std::vector<std::vector<std::string>>{
           {"netns", "add", hub},
           {"-n", hub, "link", "set", "lo", "up"},
           {"-n", hub, "link", "add", "br0", "type", "bridge"},
           {"-n", hub, "addr", "add", net->hub_address() + "/24", "dev", "br0"},
           {"-n", hub, "link", "set", "br0", "up"}}) {
    if (auto ok = net->Ip(step); !ok) return fail(ok.error());
  }
  for (int n = 1; n <= hosts; ++n) {
    const std::string ns = net->worker_netns(n), veth = "v" + std::to_string(n);
    net->made_.push_back(ns);
    for (const auto& step : std::vector<std::vector<std::string>>{
             {"netns", "add", ns},
             {"-n", ns, "link", "set", "lo", "up"},
             {"-n", hub, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
             {"-n", hub, "link", "set", veth, "master", "br0"},
             {"-n", hub, "link", "set", veth, "up"},
             {"-n", ns, "addr", "add", net->address(n) + "/24", "dev", "eth0"},
             {"-n", ns, "link", "set", "eth0", "up"}}) {
      if (auto ok = net->Ip(step); !ok) return fail(ok.error());
    }
  }
  return net;
}

FleetNetwork::~FleetNetwork() {
  if (auto done = Destroy(); !done) std::cerr << done.error() << '\n';
}

tl::expected<void, std::string> FleetNetwork::Ip(const std::vector<std::string>& args) {
  return RunIp(args, log_);
}

tl::expected<void, std::string> FleetNetwork::Destroy() {
  // Workers first, the hub (and its bridge) last.
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) KillAndDelete(*it, log_);
  made_.clear();
  std::string left;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kNetnsDir, ec)) {
    if (e.path().filename().string().starts_with(prefix_ + "-")) left += " " + e.path().string();
  }
  UnmountNetnsDirIfUnused(log_);
  if (!left.empty()) {
    return tl::make_unexpected("namespaces left after teardown:" + left + "\n" + CommandLog(log_));
  }
  fs::remove(log_, ec);
  return {};
}

void FleetNetwork::ReapLeftovers() {
  const std::regex ours(std::string(kPrefix) + "([0-9]+)-[0-9]+-(hub|w[0-9]+)");
  const fs::path log = fs::temp_directory_path() / "dfleet-reap.log";
  std::error_code ec;
  std::vector<std::string> dead;
  for (const auto& e : fs::directory_iterator(kNetnsDir, ec)) {
    const std::string name = e.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, ours)) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(m[1].str()));
    if (owner == getpid() || ProcessAlive(owner)) continue;
    dead.push_back(name);
  }
  std::sort(dead.rbegin(), dead.rend());  // wN before hub
  for (const auto& name : dead) {
    std::cerr << "fleet: removing namespace " << name << " left by a run that is gone\n";
    KillAndDelete(name, log);
  }
  // The dead run's mount of /run/netns, when nothing else is left there; this process then
  // mounts it afresh (and unmounts it at the end).
  if (!dead.empty() && IsMountPoint(kNetnsDir) && fs::is_empty(kNetnsDir, ec) && !ec)
    RunToLog({"umount", kNetnsDir}, log);
  // The dead runs' fleet directories (their containers are gone: the testbed's reap ran).
  const std::regex dir(R"(decnet-fleet-([0-9]+)-[A-Za-z0-9]{6})");
  for (const auto& e : fs::directory_iterator("/tmp", ec)) {
    const std::string name = e.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, dir)) continue;
    const pid_t owner = static_cast<pid_t>(std::stol(m[1].str()));
    if (owner == getpid() || ProcessAlive(owner)) continue;
    std::error_code rm;
    fs::remove_all(e.path(), rm);
  }
}

tl::expected<void, std::string> FleetNetwork::SetLink(int n, bool up) {
  return Ip({"-n", worker_netns(n), "link", "set", "eth0", up ? "up" : "down"});
}

// ----------------------------------------------------------------------------- Fleet

std::string CommandResult::Describe() const {
  return "exit " + std::to_string(exit_code) + (signal ? " signal " + std::to_string(signal) : "") +
         "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
}

Fleet::Fleet(const Options& options) : options_(options) {
  // Named after this process, so that a later run removes it if this one is killed.
  std::string tmpl = "/tmp/decnet-fleet-" + std::to_string(getpid()) + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  ::chmod(dir_.c_str(), 0755);  // the workers' directories are inside
}

tl::expected<std::unique_ptr<Fleet>, std::string> Fleet::Start(const Options& options) {
  // Containers of killed runs hold on to their namespaces: the testbed's reap stops them
  // first, then what is left of those runs' namespaces goes.
  RunToLog({DECNET_SOURCE_DIR "/scripts/testbed/container.sh", "reap"},
           fs::temp_directory_path() / "dfleet-reap.log");
  FleetNetwork::ReapLeftovers();
  std::unique_ptr<Fleet> fleet(new Fleet(options));
  auto net = FleetNetwork::Create(options.hosts);
  if (!net) return tl::make_unexpected("the fleet's network: " + net.error());
  fleet->net_ = std::move(*net);

  using decnet::testing::CertSpec;
  fleet->ca_ = std::make_shared<decnet::testing::TestCa>("decnet-fleet-ca");
  auto master = std::make_shared<decnet::testing::Issued>(
      fleet->ca_->Issue(CertSpec{{"decnet-master"}, false}));
  auto write = [&](const fs::path& p, const std::string& text, mode_t mode) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    ::chmod(p.c_str(), mode);
  };
  write(fleet->ca_file(), fleet->ca_->ca().cert_pem, 0644);
  write(fleet->master_cert(), master->cert_pem, 0644);
  write(fleet->master_key(), master->key_pem, 0600);

  for (int n = 1; n <= options.hosts; ++n) {
    WorkerHost::Options o;
    o.name_prefix = "fleet-w" + std::to_string(n);
    o.parent_dir = fleet->dir_;
    o.netns = fleet->net_->worker_netns(n);
    o.client_netns = fleet->net_->hub();
    o.listen_address = fleet->net_->address(n);
    o.daemon_port = options.daemon_port;
    o.agent_port = options.agent_port;
    o.ca = fleet->ca_;
    o.master = master;
    o.settle_ms = options.settle_ms;
    fleet->workers_.push_back(std::make_unique<WorkerHost>(std::move(o)));
  }
  // Boot in groups (each boot mostly waits for its container's systemd).
  std::mutex mu;
  std::string errors;
  std::atomic<int> next{0};
  auto boot = [&] {
    for (int i; (i = next++) < options.hosts;) {
      WorkerHost& w = *fleet->workers_[i];
      std::string error;
      if (auto booted = w.Boot(); !booted) {
        error = booted.error();
      } else {
        w.Prepare();
        w.StartHelper();
        if (w.DaemonPid() <= 0) error = "the helper or its daemon did not start:\n" + w.Logs();
      }
      if (!error.empty()) {
        std::lock_guard lock(mu);
        errors += "worker w" + std::to_string(i + 1) + ": " + error + "\n";
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, std::min(options.parallel_starts, options.hosts)); ++t)
    threads.emplace_back(boot);
  for (auto& t : threads) t.join();
  if (!errors.empty()) return tl::make_unexpected(errors);
  return fleet;
}

Fleet::~Fleet() {
  if (auto done = Shutdown(); !done) std::cerr << done.error() << '\n';
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

tl::expected<void, std::string> Fleet::Shutdown() {
  std::string errors;
  // Containers stop in parallel too (a clean halt takes about a second each).
  std::atomic<size_t> next{0};
  auto stop = [&] {
    for (size_t i; (i = next++) < workers_.size();) workers_[i].reset();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, options_.parallel_starts); ++t) threads.emplace_back(stop);
  for (auto& t : threads) t.join();
  workers_.clear();
  if (net_) {
    if (auto done = net_->Destroy(); !done) errors += done.error();
    net_.reset();
  }
  if (!errors.empty()) return tl::make_unexpected(errors);
  return {};
}

fs::path Fleet::WriteInventory(
    const std::string& file_name,
    const std::vector<std::pair<std::string, std::string>>& fingerprints) const {
  json hosts = json::array();
  for (int n = 1; n <= static_cast<int>(workers_.size()); ++n) {
    const std::string name = "w" + std::to_string(n);
    std::string fingerprint = workers_[n - 1]->updater_fingerprint();
    for (const auto& [who, fp] : fingerprints)
      if (who == name) fingerprint = fp;
    hosts.push_back({{"name", name},
                     {"address", net_->address(n)},
                     {"port", options_.daemon_port},
                     {"fingerprint", fingerprint}});
  }
  const fs::path path = dir_ / file_name;
  std::ofstream(path, std::ios::trunc) << json{{"hosts", hosts}}.dump(2) << '\n';
  return path;
}

BuiltRelease Fleet::BuildRelease(const ReleaseSpec& spec) {
  return BuildAgentRelease(dir_ / ("release" + std::to_string(++releases_built_)), spec,
                           options_.agent_port);
}

pid_t Fleet::SpawnInHub(const std::vector<std::string>& args, const std::string& name) const {
  std::vector<std::string> argv = {"ip", "netns", "exec", net_->hub()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::error_code ec;
  fs::remove(dir_ / (name + ".out"), ec);
  fs::remove(dir_ / (name + ".err"), ec);
  // `ip netns exec` execs the command: the pid is the command's own.
  return hostproc::Spawn(argv, {}, dir_ / (name + ".out"), dir_ / (name + ".err"));
}

CommandResult Fleet::WaitInHub(pid_t pid, const std::string& name,
                               std::chrono::milliseconds timeout) const {
  CommandResult r;
  if (pid > 0) {
    auto status = hostproc::WaitFor(pid, timeout);
    if (!status) {
      ::kill(pid, SIGKILL);
      status = hostproc::WaitFor(pid, 5s);
      r.err = "(killed after " + std::to_string(timeout.count()) + " ms)\n";
    }
    if (status && WIFEXITED(*status)) r.exit_code = WEXITSTATUS(*status);
    if (status && WIFSIGNALED(*status)) r.signal = WTERMSIG(*status);
  }
  r.out = hostproc::ReadText(dir_ / (name + ".out"));
  r.err += hostproc::ReadText(dir_ / (name + ".err"));
  return r;
}

CommandResult Fleet::RunInHub(const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout) const {
  static std::atomic<int> counter{0};
  const std::string name = "cmd" + std::to_string(++counter);
  return WaitInHub(SpawnInHub(args, name), name, timeout);
}

}  // namespace decnet::test
