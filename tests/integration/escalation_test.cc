// End-to-end escalation attempts against a real systemd (PID 1 of a throw-away container,
// tests/integration/testbed.h). In every test a hostile daemon (the stand-in client driving the
// real decnet-update-helper binary and its real serve loop, tests/helper/helper_harness.h)
// installs units written to reach uid 0 through what systemd does as root for a unit: the
// set-up of its directories, the drop-ins and search paths it loads besides the helper's file,
// the directives that act on other units, stops that never end, the files it opens for the
// unit, and the unit's conditions and log identity. After install, reload, restart and
// remove_unit, each test asserts that
//   (a) nothing changed in the container outside the unit's own directories and the journal
//       (a snapshot of path, type, mode, owner, size, link target and file mtime),
//   (b) no process of a decnet unit ran as uid 0 (a marker only a root payload creates, and a
//       sampler of the unit cgroups while the helper runs),
//   (c) the helper's state directory (bound into the container where the helper keeps it) and
//       a stand-in of the daemon's state directory are untouched,
//   (d) no process of a unit outlived remove_unit, and the unit file is gone,
// plus the check particular to the attack (a stopped system unit, a leaked secret, ...).
// A refusal counts only when it names the rule of the attack's class (the table below).
//
// The helper runs on the host and judges paths against its unit root: here an overlay of the
// container's root filesystem (in this process's own mount namespace) with the testbed's unit
// directory bound on its /etc/systemd/system, and /etc/decnet and /var/log/decnet bound from
// it into the container, so both sides see the same files there. The container's /run is not
// in that view.
//
// DECNET_ESCALATION_BYPASS=1 plants every unit file directly into the unit directory instead of
// sending write_unit (the helper may then adopt and remove it): the attacks then run whatever
// the policy says, and the tests whose attack escalates fail, showing the checks can see it.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/helper/helper_harness.h"
#include "tests/integration/helper_testbed.h"
#include "tests/integration/testbed.h"

namespace decnet::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// The rules each class's refusal must name: a refusal by any other rule proves nothing about
// the class (the unit would have been refused whatever it attempted). A refusal matches when
// its rule begins with one of the prefixes listed for a key the attack accepts.
const std::map<std::string, std::vector<std::string>>& ExpectedRules() {
  static const std::map<std::string, std::vector<std::string>> rules = {
      // 1: State/Cache/Logs/Runtime/ConfigurationDirectory= names.
      {"directory", {"unit-directory"}},
      // 2: what systemd loaded besides the helper's file (drop-ins, other search paths).
      {"loaded-view", {"unit-loaded"}},
      // 3: ordering, conflicts and triggers naming other units.
      {"dependency", {"unit-dependency", "unit-ordering"}},
      // 4: stoppable and bounded units.
      {"kill-mode", {"unit-kill-mode", "unit-stoppable"}},
      {"stop-timeout", {"unit-stop-timeout", "unit-timeout", "unit-stoppable"}},
      {"manual-stop", {"unit-manual-stop", "unit-refuse-manual", "unit-stoppable"}},
      {"restart-limit", {"unit-start-limit", "unit-restart", "unit-rate-limit"}},
      {"limits", {"unit-resource-limit", "unit-limit", "unit-tasks"}},
      // 5: files systemd opens as root for the unit.
      {"root-opened", {"unit-root-opened", "unit-opened"}},
      // 6: conditions on paths and the unit's syslog identity.
      {"condition", {"unit-condition"}},
      {"syslog", {"unit-syslog"}},
      // The updater's own unit.
      {"self", {"unit-self"}},
  };
  return rules;
}
// ---------------------------------------------------------------------------------------------

constexpr auto kRunTimeout = 90s;
constexpr char kUnitIface[] = "org.freedesktop.systemd1.Unit";
constexpr char kServiceIface[] = "org.freedesktop.systemd1.Service";
// Paths inside the container.
constexpr char kScript[] = "/opt/decnet-test/run.sh";
constexpr char kRootPayload[] = "/opt/decnet-test/root-payload.sh";
constexpr char kRootMarker[] = "/root/decnet-ran-as-root";
constexpr char kDaemonState[] = "/var/lib/decnet-updater";
constexpr char kHelperStateInContainer[] = "/var/lib/decnet-update-helper";
constexpr char kKey[] = "/etc/decnet/updater.key";            // root:root 0600
constexpr char kUnitEnv[] = "/etc/decnet/unit.env";           // root:decnet 0640
constexpr char kRootOnlyLog[] = "/var/log/decnet/audit.log";  // root:root 0600
constexpr char kRootSecretFile[] = "/root/decnet-secret";     // in root's 0700 home
constexpr uint32_t kDecnetUid = 990;
constexpr char kUnlimited[] = "18446744073709551615";

bool BypassMode() {
  const char* v = std::getenv("DECNET_ESCALATION_BYPASS");
  return v != nullptr && std::string(v) == "1";
}

// Reads a /proc file with plain read(2): the process may vanish meanwhile (then "" or less).
std::string ReadProc(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string OctalMode(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

// --- (a) the container's filesystem -----------------------------------------------------------

// Container path -> "type mode uid:gid [size mtime | -> target]". Directories carry no size or
// mtime (the unit directory changes legitimately); files carry both.
using Snapshot = std::map<std::string, std::string>;

void Walk(const std::string& host_root, const std::string& path, const std::set<std::string>& skip,
          Snapshot& out) {
  if (skip.count(path) > 0) return;
  struct stat st {};
  if (::lstat((host_root + path).c_str(), &st) != 0) return;
  std::string desc =
      OctalMode(st.st_mode) + " " + std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    desc = "link " + desc + " -> " + fs::read_symlink(host_root + path, ec).string();
  } else if (S_ISREG(st.st_mode)) {
    desc = "file " + desc + " size " + std::to_string(st.st_size) + " mtime " +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
           " links " + std::to_string(st.st_nlink);
  } else if (S_ISDIR(st.st_mode)) {
    desc = "dir " + desc;
  } else {
    desc = "other " + desc;
  }
  out[path] = desc;
  if (!S_ISDIR(st.st_mode)) return;
  DIR* dir = ::opendir((host_root + path).c_str());
  if (dir == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  for (const auto& n : names) Walk(host_root, (path == "/" ? "" : path) + "/" + n, skip, out);
}

bool IsAtOrBeneath(const std::string& path, const std::string& dir) {
  return path == dir || StartsWith(path, dir + "/");
}

// What differs between two snapshots outside `allowed`, one line per path.
std::vector<std::string> Diff(const Snapshot& before, const Snapshot& after,
                              const std::vector<std::string>& allowed) {
  std::vector<std::string> out;
  auto is_allowed = [&](const std::string& p) {
    for (const auto& a : allowed)
      if (IsAtOrBeneath(p, a)) return true;
    return false;
  };
  for (const auto& [path, desc] : before) {
    if (is_allowed(path)) continue;
    auto it = after.find(path);
    if (it == after.end()) {
      out.push_back("removed " + path + " (was " + desc + ")");
    } else if (it->second != desc) {
      out.push_back("changed " + path + ": " + desc + "  ->  " + it->second);
    }
  }
  for (const auto& [path, desc] : after) {
    if (!is_allowed(path) && before.count(path) == 0)
      out.push_back("created " + path + " (" + desc + ")");
  }
  return out;
}

// --- (b), (d) processes ---------------------------------------------------------------------

struct ProcInfo {
  int pid = 0;
  std::string comm, cgroup, uids, environ;
  std::string Describe() const {
    return "pid " + std::to_string(pid) + " comm '" + comm + "' uids [" + uids + "] cgroup " +
           cgroup;
  }
};

// Processes on the host with their unified cgroup path, uids and environment: all of them, or
// (everyone false) only those whose cgroup path holds `cgroup_needle`.
std::vector<ProcInfo> Processes(const std::string& cgroup_needle = "", bool everyone = true) {
  std::vector<ProcInfo> out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string base = std::string("/proc/") + e->d_name;
    ProcInfo p;
    p.pid = std::atoi(e->d_name);
    std::istringstream cg(ReadProc(base + "/cgroup"));
    for (std::string line; std::getline(cg, line);) {
      if (StartsWith(line, "0::")) p.cgroup = line.substr(3);
    }
    if (!everyone && p.cgroup.find(cgroup_needle) == std::string::npos) continue;
    std::istringstream status(ReadProc(base + "/status"));
    for (std::string line; std::getline(status, line);) {
      if (StartsWith(line, "Uid:")) p.uids = line.substr(4);
      if (StartsWith(line, "Name:")) {
        p.comm = line.substr(5);
        p.comm.erase(0, p.comm.find_first_not_of(" \t"));
      }
    }
    for (char& c : p.uids)
      if (c == '\t') c = ' ';
    p.environ = ReadProc(base + "/environ");
    for (char& c : p.environ)
      if (c == '\0') c = '\n';
    out.push_back(std::move(p));
  }
  ::closedir(proc);
  return out;
}

bool HasUidZero(const std::string& uids) {
  std::istringstream in(uids);
  for (std::string u; in >> u;)
    if (u == "0") return true;
  return false;
}

// Samples the container's decnet unit cgroups while the helper runs: processes with any uid 0
// (systemd's own pre-exec children excepted) and environments holding `secret`.
class ProcessWatch {
 public:
  ProcessWatch(std::string container_cgroup, std::string secret)
      : container_cgroup_(std::move(container_cgroup)), secret_(std::move(secret)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        Sample();
        std::this_thread::sleep_for(15ms);
      }
      Sample();
    });
  }
  ~ProcessWatch() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> RootProcesses() {
    std::lock_guard lock(mutex_);
    return {root_.begin(), root_.end()};
  }
  std::vector<std::string> Leaks() {
    std::lock_guard lock(mutex_);
    return {leaks_.begin(), leaks_.end()};
  }

 private:
  void Sample() {
    for (const ProcInfo& p : Processes(container_cgroup_, false)) {
      if (p.cgroup.find("/system.slice/decnet-") == std::string::npos) continue;
      std::lock_guard lock(mutex_);
      // systemd's own children before their exec are named "systemd", then "(command)".
      if (HasUidZero(p.uids) && !StartsWith(p.comm, "(") && p.comm != "systemd")
        root_.insert(p.Describe());
      if (!secret_.empty() && p.environ.find(secret_) != std::string::npos)
        leaks_.insert("the environment of " + p.Describe());
    }
  }

  std::string container_cgroup_, secret_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::set<std::string> root_, leaks_;
  std::thread thread_;
};

// --- replies --------------------------------------------------------------------------------

json ParseReply(const std::string& line) {
  json j = json::parse(line, nullptr, false);
  return j.is_object() ? j : json();
}
// One request the hostile daemon sends, and what came back.
struct Exchange {
  std::string request;  // the client's script line
  std::string reply;    // the reply line, "" when none came
};

// --- the attack description --------------------------------------------------------------------

class AnEscalationAttempt;

struct Attack {
  // Refusal rules (keys of ExpectedRules) that close this attack.
  std::vector<std::string> rule_keys;
  // Unit files the daemon installs with write_unit, in order.
  std::vector<std::pair<std::string, std::string>> units;
  // Body of /opt/decnet-test/run.sh (after a prologue that marks a run as uid 0).
  std::string script = "exec /bin/sleep infinity\n";
  // Requests after hello and the write_unit requests, one per line.
  std::string steps;
  // Container paths the units may change (besides their own unit files and the journal).
  std::vector<std::string> allowed = {"/var/lib/decnet-x", "/var/log/decnet-x", "/etc/decnet-x"};
  // Planted as root before the baseline: drop-ins, sentinels (another route than the helper).
  std::function<void(AnEscalationAttempt&)> plant;
  // Runs in a thread while the helper runs; `done` turns true when the helper has exited.
  std::function<void(AnEscalationAttempt&, const std::atomic<bool>& done)> during;
  // Checks particular to the attack, after the run.
  std::function<void(AnEscalationAttempt&, const std::vector<Exchange>&)> check;
  int restart_timeout_ms = 20'000;
};

std::string Restart(const std::string& unit) { return "restart_unit " + unit + "\n"; }
std::string Remove(const std::string& unit) { return "remove_unit " + unit + "\n"; }
std::string Pause(int ms = 500) { return "sleep " + std::to_string(ms) + "\n"; }
constexpr char kReload[] = "daemon_reload\n";
constexpr char kX[] = "decnet-x.service";

// Shell fragments of the payloads (run as the unit's user unless an attack succeeded).
// Replaces DIR/sub by a symlink to TARGET (once). sub may be root's (systemd created it as a
// parent), but the unit owns DIR, so it may rename sub away.
std::string SwapSubFor(const std::string& dir, const std::string& target) {
  return "if [ -d " + dir + "/sub ] && [ ! -L " + dir + "/sub ]; then /bin/mv " + dir + "/sub " +
         dir + "/old && /bin/ln -s " + target + " " + dir + "/sub; fi\n";
}
// If DIR became writable, drops a unit or drop-in there whose command runs as root.
std::string PlantIfWritable(const std::string& dir, const std::string& file,
                            const std::string& content) {
  return "if [ -d " + dir + " ] && [ -w " + dir + " ]; then /usr/bin/printf '" + content + "' > " +
         dir + "/" + file + "; fi\n";
}
constexpr char kRootDropIn[] = "[Service]\\nExecStartPre=+/opt/decnet-test/root-payload.sh\\n";
constexpr char kRootUnit[] =
    "[Service]\\nType=exec\\nExecStart=/opt/decnet-test/root-payload.sh\\n";

class AnEscalationAttempt : public TestbedTest {
 public:
  static void SetUpTestSuite() {
    // A private mount namespace: the overlay that shows the helper the container's files
    // disappears with this process, whatever happens to it.
    unshare_errno_ = EnterPrivateMountNamespace();
  }

  // The container's root as seen from the host.
  std::string C() const { return container_root_; }
  std::string token() const { return token_; }
  std::string secret() const { return secret_; }
  HelperHarness& harness() { return *harness_; }

  // A hardened unit the default policy accepts, running /opt/decnet-test/run.sh.
  std::string Unit(const std::string& unit_extra, const std::string& service_extra,
                   const std::string& exec = kScript) const {
    return "[Unit]\nDescription=DECNET escalation test unit\n" + unit_extra +
           "\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\n"
           "Environment=DECNET_ESCALATION_MARK=" +
           token_ + "\nExecStart=" + exec + "\n" + service_extra;
  }

  // An attack through decnet-x.service alone (Unit(unit_extra, service_extra)) that the rules of
  // `rule_keys` close: reload, restart it, let it run, remove it.
  Attack OneUnit(std::vector<std::string> rule_keys, const std::string& unit_extra,
                 const std::string& service_extra) const {
    Attack a;
    a.rule_keys = std::move(rule_keys);
    a.units = {{kX, Unit(unit_extra, service_extra)}};
    a.steps = std::string(kReload) + Restart(kX) + Pause() + Remove(kX);
    return a;
  }

  // OneUnit closed by the loaded-view check, with `content` planted as root at `path` (a route
  // other than the helper) before the baseline.
  Attack OneUnitWithPlanted(std::string path, std::string content) const {
    Attack a = OneUnit({"loaded-view"}, "", "");
    a.plant = [path, content](AnEscalationAttempt& t) { t.Plant(path, content); };
    return a;
  }

  // OneUnit closed by the root-opened rule: the unit has a state directory of its own and
  // `directive` (naming a file systemd opens for it), and runs `command` before sleeping.
  Attack RootOpened(const std::string& directive, const std::string& command) const {
    Attack a = OneUnit({"root-opened"}, "", "StateDirectory=decnet-x\n" + directive + "\n");
    a.script = command + "\nexec /bin/sleep infinity\n";
    return a;
  }

  // Writes a file in the container as root, creating parent directories (root, 0755).
  void Plant(const std::string& path, const std::string& content, mode_t mode = 0644, uid_t uid = 0,
             gid_t gid = 0) {
    const fs::path host = C() + path;
    std::error_code ec;
    fs::create_directories(host.parent_path(), ec);
    { std::ofstream(host, std::ios::binary | std::ios::trunc) << content; }
    ASSERT_EQ(::chown(host.c_str(), uid, gid), 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::chmod(host.c_str(), mode), 0) << path << ": " << std::strerror(errno);
  }
  void PlantDir(const std::string& path, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0) {
    const fs::path host = C() + path;
    std::error_code ec;
    fs::create_directories(host, ec);
    ASSERT_EQ(::chown(host.c_str(), uid, gid), 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::chmod(host.c_str(), mode), 0) << path << ": " << std::strerror(errno);
  }

  // A method call on the container's systemd manager with busctl; returns its output.
  std::string Manager(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"busctl",
                                     "--address=" + testbed().bus_address(),
                                     "call",
                                     "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto [rc, out] = Command(argv);
    EXPECT_EQ(rc, 0) << "busctl " << args.front() << " failed: " << out;
    return out;
  }
  std::string Property(std::string_view unit, std::string_view iface, std::string_view name) {
    auto v = testbed().UnitProperty(unit, iface, name);
    return v ? *v : "error: " + v.error();
  }

  // A sentinel system unit the attacks must not act on (docker.service is in the policy's
  // system units), running as root outside the decnet cgroups.
  void PlantSentinel(bool start) {
    ASSERT_TRUE(testbed().WriteUnit("docker.service",
                                    "[Unit]\nDescription=sentinel standing in for docker\n"
                                    "[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"));
    Manager({"Reload"});
    if (!start) return;
    Manager({"StartUnit", "ss", "docker.service", "replace"});
    auto active = testbed().WaitForActiveState("docker.service", "active", 10s);
    ASSERT_TRUE(active) << active.error();
  }

  // Waits until decnet-x.service is in ActiveState `state`, or the helper has exited.
  void WaitForX(std::string_view state, const std::atomic<bool>& done) {
    while (!done && Property(kX, kUnitIface, "ActiveState") != state)
      std::this_thread::sleep_for(20ms);
  }

  // Starts the sentinel system unit (PlantSentinel) and returns its InvocationID, which
  // changes if anything stops or restarts it.
  std::string StartSentinel() {
    PlantSentinel(true);
    return Property("docker.service", kUnitIface, "InvocationID");
  }

  // The unit directory also holds an operator's decnet-updater.service (the updater's own unit).
  void PlantSelfUnit() {
    ASSERT_TRUE(testbed().WriteUnit(
        "decnet-updater.service",
        "[Unit]\nDescription=stand-in for the updater's own unit\n[Service]\nType=exec\n"
        "User=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n"));
  }

  // The journal's entries (JSON objects) whose MESSAGE holds `needle`, waiting up to `wait`.
  std::vector<json> JournalEntries(const std::string& needle, std::chrono::milliseconds wait) {
    std::vector<json> found;
    const auto deadline = Clock::now() + wait;
    do {
      found.clear();
      for (const char* dir : {"/run/log/journal", "/var/log/journal"}) {
        if (!fs::exists(C() + dir)) continue;
        auto [rc, out] = Command({"journalctl", "--no-pager", "-o", "json", "-D", C() + dir});
        std::istringstream in(out);
        for (std::string line; std::getline(in, line);) {
          json j = json::parse(line, nullptr, false);
          if (j.is_object() && Str(j, "MESSAGE").find(needle) != std::string::npos)
            found.push_back(j);
        }
      }
      if (!found.empty()) break;
      std::this_thread::sleep_for(200ms);
    } while (Clock::now() < deadline);
    return found;
  }

  // Files beneath a container directory whose content holds `needle`.
  std::vector<std::string> FilesHolding(const std::string& dir, const std::string& needle) {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(C() + dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec) && !it->is_symlink(ec) &&
          Slurp(it->path()).find(needle) != std::string::npos)
        out.push_back(it->path().string().substr(C().size()));
    }
    return out;
  }

  // Processes of the container's decnet units (the updater's own unit, which may keep
  // running, only if asked), or carrying this test's marker.
  std::vector<ProcInfo> UnitProcesses(bool with_updaters_unit = false) {
    std::vector<ProcInfo> out;
    for (ProcInfo& p : Processes()) {
      const bool in_container = p.cgroup.find(container_cgroup_) != std::string::npos;
      const bool unit =
          in_container && p.cgroup.find("/system.slice/decnet-") != std::string::npos &&
          (with_updaters_unit ||
           p.cgroup.find("/system.slice/decnet-updater.service") == std::string::npos);
      if (unit || p.environ.find(token_) != std::string::npos) out.push_back(std::move(p));
    }
    return out;
  }

  // Runs the attack and asserts (a)-(d) and the attack's own checks. Returns the exchanges.
  std::vector<Exchange> RunAttack(const Attack& attack);
  // The same, and the attack's units must install, restart and be removed cleanly: a
  // legitimate unit of the class, proving the tests' refusals and checks are not blanket.
  void RunControl(const Attack& attack);

 protected:
  Testbed::Options TestbedOptions() const override {
    Testbed::Options o;
    o.name_prefix = "pe-esc";
    o.extra_nspawn_args = {"--bind=" + base_ + "/root/etc/decnet:/etc/decnet",
                           "--bind=" + base_ + "/root/var/log/decnet:/var/log/decnet",
                           "--bind=" + HelperState() + ":" + kHelperStateInContainer};
    return o;
  }

  void SetUp() override {
    ASSERT_EQ(unshare_errno_, 0) << "cannot enter a private mount namespace: "
                                 << std::strerror(unshare_errno_);
    std::random_device rd;
    std::ostringstream t;
    t << "decnet-escalation-" << ::getpid() << "-" << std::hex << rd() << rd();
    token_ = t.str();
    secret_ = "decnet-root-only-secret-" + std::to_string(rd());
    char tmpl[] = "/tmp/decnet-escalation.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ::chmod(base_.c_str(), 0755);
    // The helper judges paths in unit files against this overlay of the container's root
    // filesystem; the directories it must see as the container does are bound into the
    // container from it.
    auto [rc, out] = Command({std::string(DECNET_SOURCE_DIR) + "/scripts/testbed/rootfs.sh"});
    ASSERT_EQ(rc, 0) << out;
    std::string rootfs = out.substr(out.rfind('\n', out.size() - 2) + 1);
    while (!rootfs.empty() && rootfs.back() == '\n') rootfs.pop_back();
    for (const char* d : {"upper", "work", "root", "helper-state"})
      ASSERT_EQ(::mkdir((base_ + "/" + d).c_str(), 0755), 0) << d;
    ::chmod(HelperState().c_str(), 0700);
    const std::string opts =
        "lowerdir=" + rootfs + ",upperdir=" + base_ + "/upper,workdir=" + base_ + "/work";
    ASSERT_EQ(::mount("overlay", (base_ + "/root").c_str(), "overlay", 0, opts.c_str()), 0)
        << "overlay " << opts << ": " << std::strerror(errno);
    mounted_ = true;
    const std::string r = base_ + "/root";
    fs::create_directories(r + "/etc/decnet");
    fs::create_directories(r + "/var/log/decnet");
    { std::ofstream(r + kKey) << "DECNET_TLS_KEY=" << secret_ << "\n"; }
    ::chmod((r + kKey).c_str(), 0600);
    { std::ofstream(r + kUnitEnv) << "DECNET_UNIT_SETTING=visible-to-the-unit\n"; }
    ASSERT_EQ(::chown((r + kUnitEnv).c_str(), 0, kDecnetUid), 0);
    ::chmod((r + kUnitEnv).c_str(), 0640);
    { std::ofstream(r + kRootOnlyLog) << "audit: records only root writes\n"; }
    ::chmod((r + kRootOnlyLog).c_str(), 0600);

    TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    container_root_ = ContainerRoot(testbed());
    ASSERT_FALSE(container_root_.empty()) << "cannot find the container's PID 1";
    container_cgroup_ = "/decnet-testbed/" + testbed().name() + "/";
    // The helper's view of /etc/systemd/system is the container's: the testbed's unit
    // directory (what systemd loads drop-ins from).
    const std::string view_units = base_ + "/root/etc/systemd/system";
    ASSERT_EQ(::mount(testbed().unit_dir().c_str(), view_units.c_str(), nullptr, MS_BIND, nullptr),
              0)
        << "bind " << testbed().unit_dir() << ": " << std::strerror(errno);
    units_bound_ = true;

    // Fixtures in the container: payloads, the daemon's state stand-in, a root-only file.
    Plant(kRootPayload,
          "#!/bin/sh\n/usr/bin/touch " + std::string(kRootMarker) + "\nexec /bin/sleep 2\n", 0755);
    PlantDir(kDaemonState, 0700);
    Plant(std::string(kDaemonState) + "/state.json", "{\"releases\":[]}\n", 0600);
    Plant(kRootSecretFile, "root only\n", 0600);

    harness_ =
        std::make_unique<HelperHarness>(testbed().bus_address(), testbed().unit_dir().string());
    auto& p = harness_->policy();
    p.unit_root = base_ + "/root";
    p.state_dir = HelperState();
    p.output_dirs = {"/var/log/decnet"};
  }

  void TearDown() override {
    // Ends what the attacks left running in this container (so it halts promptly).
    if (!container_root_.empty()) {
      for (const ProcInfo& p : UnitProcesses(true)) {
        if (p.cgroup.find(container_cgroup_) != std::string::npos) ::kill(p.pid, SIGKILL);
      }
    }
    harness_.reset();
    TestbedTest::TearDown();
    if (units_bound_) ::umount2((base_ + "/root/etc/systemd/system").c_str(), MNT_DETACH);
    if (mounted_ && ::umount2((base_ + "/root").c_str(), MNT_DETACH) == 0) mounted_ = false;
    if (!base_.empty()) {
      std::error_code ec;
      for (const char* d : {"upper", "work", "helper-state"}) fs::remove_all(base_ + "/" + d, ec);
      if (!mounted_) fs::remove_all(base_, ec);
    }
  }

 protected:
  std::string HelperState() const { return base_ + "/helper-state"; }

 protected:
  Snapshot TakeSnapshot() {
    // The journal, and the login records systemd writes as boot completes.
    const std::set<std::string> skip = {"/var/log/journal",      "/var/log/wtmp",
                                        "/var/log/btmp",         "/var/log/lastlog",
                                        kHelperStateInContainer, kDaemonState};
    Snapshot s;
    for (const char* root :
         {"/etc", "/usr/local/bin", "/var/lib", "/var/log", "/root", "/run/systemd/system", "/opt"})
      Walk(C(), root, skip, s);
    return s;
  }

  // The helper's state directory: root's alone, holding only root's regular files.
  std::vector<std::string> HelperStateProblems() {
    std::vector<std::string> out;
    struct stat st {};
    if (::lstat(HelperState().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
        st.st_gid != 0 || (st.st_mode & 07777) != 0700) {
      out.push_back("the helper's state directory is now " + OctalMode(st.st_mode) + " " +
                    std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid));
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(HelperState(), ec)) {
      struct stat fst {};
      ::lstat(e.path().c_str(), &fst);
      if (!S_ISREG(fst.st_mode) || fst.st_uid != 0 || fst.st_gid != 0 || (fst.st_mode & 022) != 0 ||
          fst.st_nlink != 1) {
        out.push_back("helper state entry " + e.path().filename().string() + " is " +
                      OctalMode(fst.st_mode) + " " + std::to_string(fst.st_uid) + ":" +
                      std::to_string(fst.st_gid) + " links " + std::to_string(fst.st_nlink) +
                      (S_ISREG(fst.st_mode) ? "" : " (not a regular file)"));
      }
    }
    return out;
  }

 private:
  static inline int unshare_errno_ = 0;
  std::string base_, container_root_, container_cgroup_, token_, secret_;
  bool mounted_ = false, units_bound_ = false;
  std::unique_ptr<HelperHarness> harness_;
};

std::string Join(const std::vector<std::string>& lines, const std::string& indent = "  ") {
  std::string out;
  for (const auto& l : lines) out += indent + l + "\n";
  return out;
}

std::vector<Exchange> AnEscalationAttempt::RunAttack(const Attack& attack) {
  const bool bypass = BypassMode();
  Plant(
      kScript,
      "#!/bin/sh\n# an escalation payload\nif [ \"$(/usr/bin/id -u)\" = 0 ]; then /usr/bin/touch " +
          std::string(kRootMarker) + "; fi\n" + attack.script,
      0755);
  harness_->policy().restart_timeout_ms = attack.restart_timeout_ms;
  std::vector<std::string> lines = {"hello"};
  for (const auto& [name, content] : attack.units) {
    if (bypass) {
      // The unit as if the policy had accepted it; the helper may still stop and remove it.
      EXPECT_TRUE(testbed().WriteUnit(name, content));
      harness_->policy().adoptable_units.insert(name);
    } else {
      lines.push_back("write_unit " + name + " " + harness_->Payload(name, content));
    }
  }
  {
    std::istringstream steps(attack.steps);
    for (std::string l; std::getline(steps, l);)
      if (!l.empty()) lines.push_back(l);
  }
  if (attack.plant) attack.plant(*this);
  if (HasFatalFailure()) return {};

  const Snapshot before = TakeSnapshot();
  Snapshot daemon_before;
  Walk(C(), kDaemonState, {}, daemon_before);
  const auto helper_state_before = HelperStateProblems();

  std::string script;
  for (const auto& l : lines) script += l + "\n";
  std::atomic<bool> done{false};
  ProcessWatch watch(container_cgroup_, secret_);
  std::thread during;
  if (attack.during) during = std::thread([&] { attack.during(*this, done); });
  const HelperRun run = harness_->Run(script, kRunTimeout);
  done = true;
  if (during.joinable()) during.join();
  std::this_thread::sleep_for(300ms);  // what remove_unit left behind has had time to show
  watch.Stop();

  // Pair requests with replies (sleep and comment lines get none).
  std::vector<Exchange> ex;
  size_t next = 0;
  for (const auto& l : lines) {
    if (StartsWith(l, "sleep") || StartsWith(l, "#")) continue;
    ex.push_back({l, next < run.replies.size() ? run.replies[next] : ""});
    ++next;
  }
  std::string transcript;
  for (const auto& e : ex) {
    std::string req = e.request;
    if (StartsWith(req, "write_unit")) req = req.substr(0, req.rfind(' '));
    transcript += "  > " + req + "\n  < " + (e.reply.empty() ? "(no reply)" : e.reply) + "\n";
  }
  transcript += "helper exit " + std::to_string(run.ExitCode()) +
                (run.timed_out ? " (timed out)" : "") + "; helper log:\n" + run.log;

  // Which refusals name this class's rule, and which name another.
  std::vector<std::string> prefixes;
  std::string wanted;
  for (const auto& key : attack.rule_keys) {
    for (const auto& p : ExpectedRules().at(key)) {
      prefixes.push_back(p);
      wanted += (wanted.empty() ? "" : ", ") + p;
    }
  }
  auto matches = [&](const std::string& rule) {
    for (const auto& p : prefixes)
      if (StartsWith(rule, p)) return true;
    return false;
  };
  std::vector<std::string> refused_by_class;
  for (const auto& e : ex) {
    const json j = ParseReply(e.reply);
    if (Str(j, "result") != "denied") continue;
    const std::string rule = Str(j, "rule");
    if (matches(rule)) {
      refused_by_class.push_back(e.request.substr(0, e.request.find(' ')) + " by " + rule);
    } else if (StartsWith(e.request, "write_unit")) {
      ADD_FAILURE() << e.request.substr(0, e.request.rfind(' ')) << " was refused by rule '" << rule
                    << "', not by a rule of this class (" << wanted
                    << "): make the attack otherwise valid, or the table name the rule";
    }
  }
  // The helper may also refuse to start at all (a check of the updater's own unit).
  if (ex.empty() || ex.front().reply.empty() || ex.front().reply == "closed") {
    for (const auto& p : prefixes)
      if (run.log.find(p) != std::string::npos) refused_by_class.push_back("start-up by " + p);
  }

  // (a) the container's files outside the allowed directories.
  std::vector<std::string> allowed = attack.allowed;
  for (const auto& [name, content] : attack.units) allowed.push_back("/etc/systemd/system/" + name);
  const auto changed = Diff(before, TakeSnapshot(), allowed);
  // (b) nothing ran as uid 0.
  const bool root_marker = fs::exists(C() + kRootMarker);
  const auto root_processes = watch.RootProcesses();
  // (c) the helper's and the daemon's state.
  auto helper_state = HelperStateProblems();
  for (const auto& p : helper_state_before) std::erase(helper_state, p);
  Snapshot daemon_after;
  Walk(C(), kDaemonState, {}, daemon_after);
  const auto daemon_changed = Diff(daemon_before, daemon_after, {});
  // (d) nothing outlived remove_unit, and the files are gone.
  std::vector<std::string> survivors, files_left;
  for (const ProcInfo& p : UnitProcesses()) survivors.push_back(p.Describe());
  for (const auto& [name, content] : attack.units) {
    if (fs::exists(fs::symlink_status(testbed().unit_dir() / name)))
      files_left.push_back(name + " is still in the unit directory after remove_unit");
  }

  EXPECT_TRUE(changed.empty()) << "the container changed outside the unit's own directories:\n"
                               << Join(changed);
  EXPECT_FALSE(root_marker) << "a payload ran as uid 0: " << kRootMarker << " exists\n";
  EXPECT_TRUE(root_processes.empty()) << "processes of decnet units ran as uid 0:\n"
                                      << Join(root_processes);
  EXPECT_TRUE(helper_state.empty()) << "the helper's state directory changed hands:\n"
                                    << Join(helper_state);
  EXPECT_TRUE(daemon_changed.empty()) << "the daemon's state directory changed:\n"
                                      << Join(daemon_changed);
  EXPECT_TRUE(survivors.empty()) << "processes outlived remove_unit:\n" << Join(survivors);
  EXPECT_TRUE(files_left.empty()) << Join(files_left);
  if (attack.check) attack.check(*this, ex);
  if (HasFailure()) std::cerr << "transcript:\n" << transcript << "\n";

  // One line for the record of what happened.
  std::string outcome = refused_by_class.empty() ? "not refused" : "refused: ";
  for (size_t i = 0; i < refused_by_class.size(); ++i)
    outcome += (i ? "; " : "") + refused_by_class[i];
  std::cout << "[escalation] " << ::testing::UnitTest::GetInstance()->current_test_info()->name()
            << (bypass ? " (bypass)" : "") << ": " << outcome << "; "
            << (HasFailure() ? "ESCALATED or uncontained" : "contained") << std::endl;
  return ex;
}

void AnEscalationAttempt::RunControl(const Attack& attack) {
  const auto ex = RunAttack(attack);
  for (const auto& e : ex) {
    const json j = ParseReply(e.reply);
    EXPECT_EQ(Str(j, "result"), "ok") << e.request << " -> " << e.reply;
    if (StartsWith(e.request, "restart_unit")) {
      EXPECT_EQ(Str(j, "job_result"), "done") << e.request << " -> " << e.reply;
    }
    if (StartsWith(e.request, "remove_unit")) {
      EXPECT_EQ(j.value("removed", false), true) << e.request << " -> " << e.reply;
    }
  }
}

// Checks that the root-only key reached no file of the unit's state directory.
void ExpectNoSecretInStateDirectory(AnEscalationAttempt& t, const std::vector<Exchange>&) {
  const auto leaked = t.FilesHolding("/var/lib/decnet-x", t.secret());
  EXPECT_TRUE(leaked.empty()) << "the root-only key reached the unit, which wrote it to:\n"
                              << Join(leaked);
}

// Checks that a file the unit wrote for us exists and is the unit user's.
void ExpectUnitWrote(AnEscalationAttempt& t, const std::string& path) {
  struct stat st {};
  ASSERT_EQ(::lstat((t.C() + path).c_str(), &st), 0)
      << "the unit did not run: " << path << " is missing";
  EXPECT_EQ(st.st_uid, kDecnetUid) << path;
}

// =============================================================================================
// Class 1: State/Runtime/Cache/Logs/ConfigurationDirectory=, set up and removed by root.

TEST_F(AnEscalationAttempt, ThroughAStateDirectoryWhoseMiddleComponentBecomesALinkToTheUnitDir) {
  // decnet-x/sub/system: the unit owns decnet-x, swaps sub for a link to /etc/systemd, and
  // on the next start root chowns /etc/systemd/system to it; it then writes a root unit.
  Attack a = OneUnit({"directory"}, "", "StateDirectory=decnet-x decnet-x/sub/system\n");
  a.script = PlantIfWritable("/etc/systemd/system", "decnet-x-pwn.service", kRootUnit) +
             SwapSubFor("/var/lib/decnet-x", "/etc/systemd") + "exec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause() + Restart(kX) + Pause() + Restart(kX) +
            Pause() + kReload + Restart("decnet-x-pwn.service") + Pause() + Remove(kX);
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAStateDirectoryModeAppliedToShadowThroughALink) {
  Attack a = OneUnit({"directory"}, "",
                     "StateDirectory=decnet-x decnet-x/sub/shadow\n"
                     "StateDirectoryMode=0777\n");
  a.script = SwapSubFor("/var/lib/decnet-x", "/etc") + "exec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause() + Restart(kX) + Pause() + Remove(kX);
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughARuntimeDirectoryRemovedThroughALinkOnStop) {
  // decnet-x keeps /run/decnet-x (the unit's, preserved); decnet-y asks for
  // decnet-x/sub/system, renames sub (root's) away and links sub to /run/systemd: when
  // decnet-y stops, root removes /run/systemd/system. (Within one unit systemd removes the
  // listed parent first, which defuses the link.)
  Attack a;
  a.rule_keys = {"directory"};
  a.units = {{kX, Unit("", "RuntimeDirectory=decnet-x\nRuntimeDirectoryPreserve=yes\n")},
             {"decnet-y.service", Unit("", "RuntimeDirectory=decnet-x/sub/system\n")}};
  a.script = SwapSubFor("/run/decnet-x", "/run/systemd") + "exec /bin/sleep infinity\n";
  a.plant = [](AnEscalationAttempt& t) {
    t.Plant("/run/systemd/system/README", "kept by the operator\n", 0644);
  };
  a.steps = std::string(kReload) + Restart(kX) + Restart("decnet-y.service") + Pause() +
            Remove("decnet-y.service") + Remove(kX);
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAStateDirectoryNamedAfterTheDaemonsOwn) {
  Attack a = OneUnit({"directory"}, "", "StateDirectory=decnet-updater\n");
  a.script = "/bin/echo planted > /var/lib/decnet-updater/planted\nexec /bin/sleep infinity\n";
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughDirectoriesNamedAfterTheHelpersStateAndTheDaemons) {
  // The helper's state directory is bound at /var/lib/decnet-update-helper; a StateDirectory=
  // of that name hands it (units.json, the request record) to the unit.
  Attack a = OneUnit({"directory"}, "",
                     "StateDirectory=decnet-update-helper\nLogsDirectory=decnet-updater\n");
  a.script =
      "/bin/echo '{}' > /var/lib/decnet-update-helper/units.json.planted\nexec /bin/sleep "
      "infinity\n";
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlDirectoriesOfItsOwnStillWork) {
  Attack a = OneUnit({"directory"}, "",
                     "StateDirectory=decnet-x\nRuntimeDirectory=decnet-x\n"
                     "CacheDirectory=decnet-x\nLogsDirectory=decnet-x\n"
                     "StateDirectoryMode=0750\n");
  a.allowed.push_back("/var/cache/decnet-x");
  a.script =
      "/bin/echo ran > /var/lib/decnet-x/ran\n/bin/echo log > /var/log/decnet-x/log\n"
      "/bin/echo run > /run/decnet-x/pid\nexec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause() + Restart(kX) + Pause() + Remove(kX);
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    ExpectUnitWrote(t, "/var/lib/decnet-x/ran");
    ExpectUnitWrote(t, "/var/log/decnet-x/log");
    EXPECT_FALSE(fs::exists(t.C() + "/run/decnet-x")) << "the runtime directory outlived stop";
  };
  RunControl(a);
}

// =============================================================================================
// Class 2: what systemd loads besides the helper's file.

TEST_F(AnEscalationAttempt, ThroughADropInDirectoryTheUnitHadRootCreateForIt) {
  Attack a = OneUnit({"directory", "loaded-view"}, "",
                     "StateDirectory=decnet-x decnet-x/sub/decnet-x.service.d\n");
  a.script =
      PlantIfWritable("/etc/systemd/system/decnet-x.service.d", "50-escalate.conf", kRootDropIn) +
      SwapSubFor("/var/lib/decnet-x", "/etc/systemd/system") + "exec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause() + Restart(kX) + Pause() + kReload +
            Restart(kX) + Pause() + Remove(kX);
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughARootOwnedDropInWithAPrivilegedCommand) {
  Attack a = OneUnitWithPlanted("/etc/systemd/system/decnet-x.service.d/50-plant.conf",
                                "[Service]\nExecStartPre=+/opt/decnet-test/root-payload.sh\n");
  a.allowed.push_back("/etc/systemd/system/decnet-x.service.d");  // planted before the baseline
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughADropInOwnedByTheUnitsUser) {
  Attack a = OneUnit({"loaded-view"}, "", "");
  a.plant = [](AnEscalationAttempt& t) {
    t.PlantDir("/etc/systemd/system/decnet-x.service.d", 0755, kDecnetUid, kDecnetUid);
    t.Plant("/etc/systemd/system/decnet-x.service.d/50-user.conf", "[Service]\nUser=root\n", 0644,
            kDecnetUid, kDecnetUid);
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAPrefixDropInForEveryDecnetUnit) {
  Attack a = OneUnitWithPlanted("/etc/systemd/system/decnet-.service.d/50-user.conf",
                                "[Service]\nUser=root\n");
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughATypeDropInUnderRun) {
  Attack a = OneUnitWithPlanted("/run/systemd/system/service.d/50-plant.conf",
                                "[Service]\nExecStartPre=+/opt/decnet-test/root-payload.sh\n");
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAFragmentInSystemControlShadowingTheHelpersFile) {
  Attack a = OneUnitWithPlanted("/etc/systemd/system.control/decnet-x.service",
                                "[Service]\nType=exec\nExecStart=/opt/decnet-test/run.sh\n");
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAUnitUnderRunTheHelperNeverWrote) {
  Attack a;
  a.rule_keys = {"loaded-view", "self"};
  a.plant = [](AnEscalationAttempt& t) {
    t.Plant("/run/systemd/system/decnet-y.service",
            "[Service]\nType=exec\nExecStart=/opt/decnet-test/run.sh\n");
  };
  a.steps =
      std::string(kReload) + Restart("decnet-y.service") + Pause() + Remove("decnet-y.service");
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlAnOperatorsOwnDropInStillWorks) {
  Attack a = OneUnit({"loaded-view"}, "", "StateDirectory=decnet-x\n");
  a.plant = [](AnEscalationAttempt& t) {
    t.Plant("/etc/systemd/system/decnet-x.service.d/50-operator.conf",
            "[Service]\nEnvironment=DECNET_OPERATOR_SETTING=1\n");
  };
  a.allowed.push_back("/etc/systemd/system/decnet-x.service.d");
  a.script = "/usr/bin/env > /var/lib/decnet-x/env\nexec /bin/sleep infinity\n";
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    ExpectUnitWrote(t, "/var/lib/decnet-x/env");
    EXPECT_NE(Slurp(t.C() + "/var/lib/decnet-x/env").find("DECNET_OPERATOR_SETTING=1"),
              std::string::npos)
        << "the operator's drop-in was not applied";
  };
  RunControl(a);
}

// The updater's own unit (decnet-updater.service, restarted by update-self).

TEST_F(AnEscalationAttempt, ThroughADropInPlantedNextToTheUpdatersOwnUnit) {
  Attack a;
  a.rule_keys = {"loaded-view", "self"};
  a.plant = [](AnEscalationAttempt& t) {
    t.PlantSelfUnit();
    t.PlantDir("/etc/systemd/system/decnet-updater.service.d", 0755, kDecnetUid, kDecnetUid);
    t.Plant("/etc/systemd/system/decnet-updater.service.d/50-escalate.conf",
            "[Service]\nExecStartPre=+/opt/decnet-test/root-payload.sh\n", 0644, kDecnetUid,
            kDecnetUid);
  };
  a.steps = std::string(kReload) + Restart("decnet-updater.service") + Pause();
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughADropInDirectoryForTheUpdatersOwnUnitCreatedByRoot) {
  Attack a = OneUnit({"directory", "loaded-view", "self"}, "",
                     "StateDirectory=decnet-x decnet-x/sub/decnet-updater.service.d\n");
  a.plant = [](AnEscalationAttempt& t) { t.PlantSelfUnit(); };
  a.script = PlantIfWritable("/etc/systemd/system/decnet-updater.service.d", "50-escalate.conf",
                             kRootDropIn) +
             SwapSubFor("/var/lib/decnet-x", "/etc/systemd/system") + "exec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause() + Restart(kX) + Pause() + kReload +
            Restart("decnet-updater.service") + Pause() + Remove(kX);
  RunAttack(a);
}

// =============================================================================================
// Class 3: directives that act on other units.

TEST_F(AnEscalationAttempt, ThroughConflictsThatStopsASystemUnit) {
  Attack a = OneUnit({"dependency"}, "Conflicts=docker.service\n", "");
  std::string invocation;
  a.plant = [&invocation](AnEscalationAttempt& t) { invocation = t.StartSentinel(); };
  a.check = [&invocation](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    EXPECT_EQ(t.Property("docker.service", kUnitIface, "ActiveState"), "active")
        << "the system unit was stopped";
    EXPECT_EQ(t.Property("docker.service", kUnitIface, "InvocationID"), invocation)
        << "the system unit was restarted";
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughBeforeThatDelaysASystemUnit) {
  // While the unit's start job runs (a slow ExecStartPre=), a restart of the system unit
  // waits for it when the unit is ordered Before= it.
  Attack a = OneUnit({"dependency"}, "Before=docker.service\n", "ExecStartPre=/bin/sleep 4\n");
  a.plant = [](AnEscalationAttempt& t) { t.PlantSentinel(true); };
  auto delay = std::make_shared<std::atomic<long>>(-1);
  a.during = [delay](AnEscalationAttempt& t, const std::atomic<bool>& done) {
    t.WaitForX("activating", done);
    if (done) return;
    const std::string before = t.Property("docker.service", kUnitIface, "InvocationID");
    const auto start = Clock::now();
    t.Manager({"RestartUnit", "ss", "docker.service", "replace"});
    while (Clock::now() - start < 15s) {
      if (t.Property("docker.service", kUnitIface, "InvocationID") != before &&
          t.Property("docker.service", kUnitIface, "ActiveState") == "active")
        break;
      std::this_thread::sleep_for(20ms);
    }
    *delay = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  };
  a.check = [delay](AnEscalationAttempt&, const std::vector<Exchange>&) {
    EXPECT_LT(delay->load(), 2000) << "restarting the system unit took " << delay->load()
                                   << " ms: it waited for the decnet unit's start job";
  };
  RunAttack(a);
  std::cout << "[escalation] system unit restart took " << delay->load() << " ms" << std::endl;
}

TEST_F(AnEscalationAttempt, ThroughOnFailureThatStartsAStoppedSystemUnit) {
  Attack a = OneUnit({"dependency"}, "OnFailure=docker.service\n", "");
  a.plant = [](AnEscalationAttempt& t) { t.PlantSentinel(false); };
  a.script = "exit 1\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause(1000) + Remove(kX);
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    EXPECT_EQ(t.Property("docker.service", kUnitIface, "ActiveState"), "inactive")
        << "the stopped system unit was started";
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlOrderingAfterTheNetworkStillWorks) {
  Attack a = OneUnit({"dependency"}, "After=network.target\nWants=network-online.target\n", "");
  std::string invocation;
  a.plant = [&invocation](AnEscalationAttempt& t) { invocation = t.StartSentinel(); };
  a.check = [&invocation](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    EXPECT_EQ(t.Property("docker.service", kUnitIface, "InvocationID"), invocation);
  };
  RunControl(a);
}

// =============================================================================================
// Class 4: units stay stoppable and bounded.

TEST_F(AnEscalationAttempt, ThroughKillModeNoneLeavingProcessesBehind) {
  Attack a = OneUnit({"kill-mode"}, "", "KillMode=none\n");
  a.script = "/usr/bin/setsid /bin/sleep infinity &\nexec /bin/sleep infinity\n";
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAStopThatNeverEnds) {
  Attack a =
      OneUnit({"stop-timeout"}, "", "TimeoutStopSec=infinity\nExecStop=/bin/sleep infinity\n");
  a.restart_timeout_ms = 4000;  // the helper's bound on the stop job, shortened for the test
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughRefuseManualStop) {
  // Manual starts are refused too, so a second unit pulls it in.
  Attack a;
  a.rule_keys = {"manual-stop"};
  a.units = {{kX, Unit("RefuseManualStop=yes\n", "")},
             {"decnet-y.service", Unit("Wants=decnet-x.service\n", "")}};
  a.steps = std::string(kReload) + Restart("decnet-y.service") + Pause() +
            Remove("decnet-y.service") + Remove(kX);
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughRestartsWithoutARateLimit) {
  Attack a =
      OneUnit({"restart-limit"}, "StartLimitIntervalSec=0\n", "Restart=always\nRestartSec=0\n");
  a.script = "exit 1\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause(3000) + Remove(kX);
  auto restarts = std::make_shared<std::atomic<long>>(0);
  a.during = [restarts](AnEscalationAttempt& t, const std::atomic<bool>& done) {
    while (!done) {
      const long n = std::atol(t.Property(kX, kServiceIface, "NRestarts").c_str());
      if (n > *restarts) *restarts = n;
      std::this_thread::sleep_for(100ms);
    }
  };
  a.check = [restarts](AnEscalationAttempt&, const std::vector<Exchange>&) {
    EXPECT_LE(restarts->load(), 10)
        << "the unit restarted " << restarts->load() << " times in about 3 s: no rate limit";
  };
  RunAttack(a);
  std::cout << "[escalation] restarts seen: " << restarts->load() << std::endl;
}

TEST_F(AnEscalationAttempt, ThroughUnboundedTasksAndLimits) {
  Attack a =
      OneUnit({"limits"}, "", "TasksMax=infinity\nLimitNPROC=infinity\nLimitNOFILE=infinity\n");
  auto seen = std::make_shared<std::map<std::string, std::string>>();
  auto mutex = std::make_shared<std::mutex>();
  a.during = [seen, mutex](AnEscalationAttempt& t, const std::atomic<bool>& done) {
    t.WaitForX("active", done);
    if (done) return;
    std::lock_guard lock(*mutex);
    for (const char* p : {"TasksMax", "LimitNPROC", "LimitNOFILE"})
      (*seen)[p] = t.Property(kX, kServiceIface, p);
  };
  a.check = [seen, mutex](AnEscalationAttempt&, const std::vector<Exchange>&) {
    std::lock_guard lock(*mutex);
    for (const auto& [name, value] : *seen)
      EXPECT_NE(value, kUnlimited) << "systemd loaded " << name << "=infinity";
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlABoundedUnitStopsWithItsChildren) {
  Attack a = OneUnit({"kill-mode", "stop-timeout", "restart-limit", "limits"},
                     "StartLimitIntervalSec=10\nStartLimitBurst=5\n",
                     "KillMode=control-group\nTimeoutStopSec=10\nRestart=on-failure\n"
                     "TasksMax=64\nLimitNOFILE=1024\nLimitNPROC=256\n");
  a.script = "/bin/sleep infinity &\nexec /bin/sleep infinity\n";
  a.steps = std::string(kReload) + Restart(kX) + Pause(1000) + Remove(kX);
  auto seen = std::make_shared<std::atomic<long>>(0);
  auto tasks = std::make_shared<std::string>();
  a.during = [seen, tasks](AnEscalationAttempt& t, const std::atomic<bool>& done) {
    t.WaitForX("active", done);
    std::this_thread::sleep_for(200ms);
    if (done) return;
    // The survivors' scan sees the unit and its child while they run.
    *seen = static_cast<long>(t.UnitProcesses().size());
    *tasks = t.Property(kX, kServiceIface, "TasksMax");
  };
  a.check = [seen, tasks](AnEscalationAttempt&, const std::vector<Exchange>&) {
    EXPECT_GE(seen->load(), 2) << "the process scan did not see the running unit";
    EXPECT_EQ(*tasks, "64");
  };
  RunControl(a);
}

// =============================================================================================
// Class 5: files systemd opens as root for the unit.

TEST_F(AnEscalationAttempt, ThroughStandardOutputAppendedToARootOnlyFile) {
  Attack a =
      OneUnit({"root-opened"}, "", "StandardOutput=append:" + std::string(kRootOnlyLog) + "\n");
  a.script = "/bin/echo 'audit: forged line'\nexec /bin/sleep infinity\n";
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughAnEnvironmentFileOnlyRootMayRead) {
  Attack a =
      RootOpened("EnvironmentFile=" + std::string(kKey), "/usr/bin/env > /var/lib/decnet-x/env");
  a.check = ExpectNoSecretInStateDirectory;
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughStandardInputFromAFileOnlyRootMayRead) {
  Attack a =
      RootOpened("StandardInput=file:" + std::string(kKey), "/bin/cat > /var/lib/decnet-x/stdin");
  a.check = ExpectNoSecretInStateDirectory;
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlAnEnvironmentFileTheUnitsGroupMayReadStillWorks) {
  Attack a = RootOpened("EnvironmentFile=" + std::string(kUnitEnv),
                        "/usr/bin/env > /var/lib/decnet-x/env");
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    ExpectUnitWrote(t, "/var/lib/decnet-x/env");
    EXPECT_NE(Slurp(t.C() + "/var/lib/decnet-x/env").find("DECNET_UNIT_SETTING="),
              std::string::npos)
        << "the environment file was not applied";
    // The leak check of the attacks above sees a secret where one is.
    EXPECT_FALSE(t.FilesHolding("/var/lib/decnet-x", "visible-to-the-unit").empty());
  };
  RunControl(a);
}

// =============================================================================================
// Class 6: conditions evaluated as root, and the unit's syslog identity.

TEST_F(AnEscalationAttempt, ThroughAConditionThatRevealsARootOnlyFile) {
  // Two units differ only in the root-only path their condition names; if the daemon sees
  // them differ, it learned whether that file exists.
  Attack a;
  a.rule_keys = {"condition"};
  a.units = {{kX, Unit("ConditionPathExists=" + std::string(kRootSecretFile) + "\n", "")},
             {"decnet-y.service", Unit("ConditionPathExists=/root/decnet-no-such-file\n", "")}};
  a.steps = std::string(kReload) + Restart(kX) + Restart("decnet-y.service") + Pause() +
            "unit_status decnet-x.service\nunit_status decnet-y.service\n" + Remove(kX) +
            Remove("decnet-y.service");
  a.check = [](AnEscalationAttempt&, const std::vector<Exchange>& ex) {
    auto seen = [&](const std::string& request) {
      for (const auto& e : ex) {
        if (e.request != request) continue;
        const json j = ParseReply(e.reply);
        if (Str(j, "result") != "ok") return std::string("refused");
        const json unit = j.value("unit", json());
        return Str(j, "job_result") + " " + Str(unit, "active_state") + " " +
               Str(unit, "sub_state");
      }
      return std::string("absent");
    };
    EXPECT_EQ(seen("restart_unit decnet-x.service"), seen("restart_unit decnet-y.service"))
        << "the daemon can tell whether " << kRootSecretFile << " exists";
    EXPECT_EQ(seen("unit_status decnet-x.service"), seen("unit_status decnet-y.service"))
        << "the daemon can tell whether " << kRootSecretFile << " exists";
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ThroughASyslogIdentityOfAnotherDaemon) {
  Attack a = OneUnit({"syslog"}, "", "SyslogIdentifier=sshd\nSyslogFacility=authpriv\n");
  a.script =
      "/bin/echo \"Accepted password for root from 192.0.2.1 port 22 ssh2 "
      "$DECNET_ESCALATION_MARK\"\nexec /bin/sleep infinity\n";
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>& ex) {
    const bool accepted =
        BypassMode() || (ex.size() > 1 && Str(ParseReply(ex[1].reply), "result") == "ok");
    const auto entries = t.JournalEntries(t.token(), accepted ? 3000ms : 300ms);
    if (accepted) {
      ASSERT_FALSE(entries.empty()) << "the unit's line is not in the journal: proves nothing";
    }
    for (const json& e : entries) {
      const std::string line = Str(e, "_SYSTEMD_UNIT") + ": " + Str(e, "SYSLOG_IDENTIFIER") +
                               "[facility " + Str(e, "SYSLOG_FACILITY") + "] " + Str(e, "MESSAGE");
      EXPECT_NE(Str(e, "SYSLOG_IDENTIFIER"), "sshd") << "the unit logged as sshd: " << line;
      EXPECT_NE(Str(e, "SYSLOG_FACILITY"), "10") << "the unit logged to authpriv: " << line;
    }
  };
  RunAttack(a);
}

TEST_F(AnEscalationAttempt, ControlTheUnitsOwnSyslogIdentityStillWorks) {
  Attack a = OneUnit({"syslog"}, "", "SyslogIdentifier=decnet-x\n");
  a.script = "/bin/echo \"started $DECNET_ESCALATION_MARK\"\nexec /bin/sleep infinity\n";
  a.check = [](AnEscalationAttempt& t, const std::vector<Exchange>&) {
    const auto entries = t.JournalEntries(t.token(), 3000ms);
    ASSERT_FALSE(entries.empty()) << "the unit's line is not in the journal";
    EXPECT_EQ(Str(entries.front(), "SYSLOG_IDENTIFIER"), "decnet-x") << entries.front().dump();
  };
  RunControl(a);
}

// =============================================================================================
// The checks themselves: each sees what it is there to see.

TEST_F(AnEscalationAttempt, ChecksSeeRootChangesRootProcessesAndSurvivors) {
  if (BypassMode()) GTEST_SKIP() << "not an attack";
  const Snapshot before = TakeSnapshot();
  ASSERT_EQ(::chmod((C() + "/etc/shadow").c_str(), 0777), 0);
  Plant(kRootMarker, "", 0644);
  Plant("/etc/systemd/system/decnet-y.service.d/50.conf", "[Service]\n");
  const auto changed = Diff(before, TakeSnapshot(), {"/var/lib/decnet-x"});
  const std::string all = Join(changed);
  EXPECT_NE(all.find("changed /etc/shadow"), std::string::npos) << all;
  EXPECT_NE(all.find("created /root/decnet-ran-as-root"), std::string::npos) << all;
  EXPECT_NE(all.find("created /etc/systemd/system/decnet-y.service.d/50.conf"), std::string::npos)
      << all;

  ASSERT_EQ(::chmod(HelperState().c_str(), 0755), 0);
  EXPECT_FALSE(HelperStateProblems().empty());
  ::chmod(HelperState().c_str(), 0700);

  // A root unit in a decnet cgroup: the sampler and the survivors' scan both see it.
  ASSERT_TRUE(testbed().WriteUnit("decnet-probe.service",
                                  "[Service]\nType=exec\nEnvironment=DECNET_ESCALATION_MARK=" +
                                      token() + "\nExecStart=/bin/sleep infinity\n"));
  ProcessWatch watch("/decnet-testbed/" + testbed().name() + "/", "");
  Manager({"Reload"});
  Manager({"StartUnit", "ss", "decnet-probe.service", "replace"});
  ASSERT_TRUE(testbed().WaitForActiveState("decnet-probe.service", "active", 10s));
  std::this_thread::sleep_for(100ms);
  watch.Stop();
  EXPECT_FALSE(watch.RootProcesses().empty()) << "the sampler missed a root process";
  EXPECT_FALSE(UnitProcesses().empty()) << "the survivors' scan missed a running unit";
  Manager({"StopUnit", "ss", "decnet-probe.service", "replace"});
}

}  // namespace
}  // namespace decnet::test
