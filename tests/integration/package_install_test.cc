// The worker package installed as an operator installs it: the .deb built by the `debs` target
// is installed with dpkg inside the throw-away container (its own root filesystem, its own
// systemd as PID 1), which must leave the updater stopped but its users, directories and first
// build in place; the worker is enrolled, the unit started with the container's systemctl (the
// helper its main process, Type=notify), and from the host a release is pushed with
// decnet-rollout and another with curl, the daemon updates itself (the new build runs after
// systemd restarts the unit), a rollback runs, `helperctl status` shows the confinement, and
// `dpkg --purge` leaves nothing but what the package documents it keeps.
//
// Everything is judged independently of the code under test: the container's systemd over
// its bus, the files inside the container, dpkg's own view, the agent's unit and the API.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/test_pki.h"
#include "tests/integration/container_setup.h"
#include "tests/integration/testbed.h"
#include "tests/integration/worker_host.h"
#include "tests/support/loopback.h"
#include "tests/support/shell.h"

#ifndef DECNET_PACKAGES_DIR
#error "DECNET_PACKAGES_DIR and DECNET_ROLLOUT_BINARY must be set"
#endif

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kUnit[] = "decnet-updater.service";
constexpr char kStage[] = "/mnt/stage";  // the host's staging directory, inside the container

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The one package named `name` in the debs target's directory.
fs::path Deb(const std::string& name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(DECNET_PACKAGES_DIR, ec)) {
    const std::string file = e.path().filename().string();
    if (file.starts_with(name + "_") && file.ends_with(".deb")) return e.path();
  }
  return {};
}

// Paths on the container's root file system, but for the trees that change by themselves
// (logs, caches, run-time and temporary files).
constexpr char kFindAll[] =
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o "
    "-path /var/tmp -o -path /var/log -o -path /var/cache -o -path /mnt \\) -prune -o -print";

std::set<std::string> Lines(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.insert(line);
  return out;
}

class TheWorkerPackage : public FilesThenContainerTest {
 protected:
  void SetUp() override {
    deb_ = Deb("decnet-updater");
    ASSERT_FALSE(deb_.empty()) << "no decnet-updater_*.deb in " << DECNET_PACKAGES_DIR
                               << " (cmake --build BUILD --target debs)";
    ASSERT_NO_FATAL_FAILURE(MakeWorkDir("decnet-package"));
    stage_ = root_ / "stage";
    fs::create_directories(stage_ / "pki");
    fs::create_directories(root_ / "client");
    fs::create_directories(root_ / "build");
    ::chmod(stage_.c_str(), 0755);
    fs::copy_file(deb_, stage_ / "decnet-updater.deb");
    port_ = FreeLoopbackPort();
    agent_port_ = FreeLoopbackPort();
    while (agent_port_ == port_ || agent_port_ == 0) agent_port_ = FreeLoopbackPort();
    ASSERT_NE(port_, 0);
    MakePki();

    Testbed::Options options;
    options.name_prefix = "pkgi";
    options.share_host_network = true;  // the host reaches the API on 127.0.0.1
    // As on a host: Landlock for the helper, bpf(2) for the unit's IP filter.
    options.extra_nspawn_args = {"--bind-ro=" + stage_.string() + ":" + kStage,
                                 kHostSystemCallFilter};
    ASSERT_NO_FATAL_FAILURE(Boot(options));
  }

  std::string UnitJournal() override {
    return In(std::string("journalctl --no-pager -o short-monotonic -u ") + kUnit).output;
  }

  // A CA made now (enrolment signs the updater's certificate and the probe's client bundle
  // with it), the master's client certificate and the agent's own, staged for the container.
  void MakePki() {
    using decnet::testing::CertSpec;
    const decnet::testing::TestCa ca("decnet-package-ca");
    const auto master = ca.Issue(CertSpec{{"decnet-master"}, false});
    const auto agent = ca.Issue(CertSpec{{"decnet-agent"}, true});
    const fs::path pki = stage_ / "pki";
    WriteFile(pki / "ca.crt", ca.ca().cert_pem, 0644);
    WriteFile(pki / "ca.key", ca.ca().key_pem, 0600);
    WriteFile(pki / "master.crt", master.cert_pem, 0644);
    WriteFile(pki / "agent.crt", agent.cert_pem, 0644);
    WriteFile(pki / "agent.key", agent.key_pem, 0600);
    WriteFile(root_ / "client/ca.crt", ca.ca().cert_pem, 0600);
    WriteFile(root_ / "client/master.crt", master.cert_pem, 0600);
    WriteFile(root_ / "client/master.key", master.key_pem, 0600);
  }

  // A command run inside the container (its mount, UTS, IPC and pid namespaces) with a clean
  // environment, as root.
  CommandRun In(const std::string& command) {
    return RunInContainer(container_init_, command, "LANG=C.UTF-8");
  }
  std::string Out(const std::string& command) { return Trim(In(command).output); }

  std::string Property(const std::string& unit, const std::string& interface,
                       const std::string& name) {
    auto value = testbed_->UnitProperty(unit, "org.freedesktop.systemd1." + interface, name);
    return value ? *value : "error: " + value.error();
  }

  // A request as the master over mTLS from the host: {status, body as JSON or null, text}.
  struct Reply {
    int status = 0;
    json body;
    std::string text;
  };
  Reply Request(const std::string& path, const std::string& extra = "") {
    const fs::path c = root_ / "client";
    const CommandRun run = RunCommand(
        "curl -sS --max-time 150 --cacert " + Quote((c / "ca.crt").string()) + " --cert " +
        Quote((c / "master.crt").string()) + " --key " + Quote((c / "master.key").string()) +
        " -w '\\n%{http_code}' " + extra + " https://127.0.0.1:" + std::to_string(port_) + path);
    Reply r;
    const size_t nl = run.output.rfind('\n');
    if (nl == std::string::npos) {
      r.text = run.output;
      return r;
    }
    r.status = std::atoi(run.output.c_str() + nl + 1);
    r.text = run.output.substr(0, nl);
    r.body = json::parse(r.text, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
  }

  // The build the daemon reports in /health ("" while it does not answer).
  std::string ReportedBuild() {
    const Reply health = Request("/health");
    if (health.status != 200 || !health.body.is_object()) return "";
    const json id = health.body.value("/build/id"_json_pointer, json(nullptr));
    return id.is_string() ? id.get<std::string>() : "";
  }

  // A build of the daemon as the updater-build target packs it, with its own version.
  BuiltRelease PackBuild(const std::string& version) {
    const fs::path dir = root_ / "build" / version;
    fs::create_directories(dir);
    const CommandRun packed = PackUpdaterBuild(DECNET_DAEMON_BINARY, version, dir);
    EXPECT_EQ(packed.status, 0) << packed.output;
    BuiltRelease r;
    r.version = version;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".gz") r.tarball = e.path();
    r.sha256 = Trim(RunCommand("sha256sum " + Quote(r.tarball.string()) + " | cut -c1-64").output);
    return r;
  }

  // Enrolment with the package's own command: the updater's certificate and key and the
  // health probe's client bundle, signed by the test's CA (--ca-cert/--ca-key), the API on a
  // loopback port, the master pinned by its certificate and allowed by the unit's drop-in. Then
  // what belongs to the test's suite rather than to enrolment: the agent's own server certificate
  // (read by the units' user), and the test agent's unit, link and health endpoint in both
  // configuration files.
  void Enrol() {
    const std::string s = kStage;
    const CommandRun enrolled =
        In("decnet-updater-enrol --create --ca-cert " + s + "/pki/ca.crt --ca-key " + s +
           "/pki/ca.key --name decnet-updater --address 127.0.0.1 --listen 127.0.0.1:" +
           std::to_string(port_) + " --master-cert " + s +
           "/pki/master.crt --master-address 127.0.0.1");
    ASSERT_EQ(enrolled.status, 0) << enrolled.output;
    // The updater's certificate enrolment made, as decnet-rollout pins it.
    fingerprint_ = Trim(RunCommand("nsenter -t " + std::to_string(container_init_) +
                                   " -m -- cat /etc/decnet/updater/updater.crt | openssl x509 "
                                   "-outform DER | sha256sum | cut -c1-64")
                            .output);
    ASSERT_EQ(fingerprint_.size(), 64u) << fingerprint_;

    json daemon = json::parse(Out("cat /etc/decnet-updater/daemon.json"), nullptr, false,
                              /*ignore_comments=*/true);
    ASSERT_TRUE(daemon.is_object()) << Out("cat /etc/decnet-updater/daemon.json");
    EXPECT_EQ(daemon.value("listen_address", ""), "127.0.0.1") << daemon.dump();
    EXPECT_EQ(daemon.value("port", 0), port_) << daemon.dump();
    daemon["units"] = {WorkerHost::kAgent};
    daemon["links"] = {{{"name", "decnet-test-agent"}, {"target", "bin/decnet-test-agent"}}};
    daemon["probe"]["url"] = "https://127.0.0.1:" + std::to_string(agent_port_) + "/health";
    daemon["probe"]["attempts"] = 20;
    daemon["probe"]["interval_ms"] = 300;
    daemon["probe"]["check_version"] = true;
    daemon["settle_ms"] = 1000;
    WriteFile(stage_ / "daemon.json", daemon.dump(2) + "\n", 0644);
    json helper = json::parse(Out("cat /etc/decnet-updater/helper.json"), nullptr, false,
                              /*ignore_comments=*/true);
    ASSERT_TRUE(helper.is_object()) << Out("cat /etc/decnet-updater/helper.json");
    helper["links"] = {{{"name", "decnet-test-agent"}, {"target_prefix", "/opt/decnet/current"}}};
    WriteFile(stage_ / "helper.json", helper.dump(2) + "\n", 0644);
    const CommandRun suite =
        In("set -e\n"
           "install -m 0644 -o decnet -g decnet " +
           s + "/pki/agent.crt " + s +
           "/pki/agent.key /etc/decnet/agent/\n"
           "chmod 0600 /etc/decnet/agent/agent.key\n"
           "install -m 0644 " +
           s + "/daemon.json " + s + "/helper.json /etc/decnet-updater/\n");
    ASSERT_EQ(suite.status, 0) << suite.output;
  }

  fs::path deb_, stage_;
  uint16_t port_ = 0, agent_port_ = 0;
  std::string fingerprint_;
};

TEST_F(TheWorkerPackage, InstallsEnrolsServesUpdatesItselfAndPurgesToWhatPolicyKeeps) {
  const std::set<std::string> before = Lines(In(kFindAll).output);
  ASSERT_GT(before.size(), 1000u) << "the container's file list";

  // --- dpkg -i: users, directories and the first build; nothing started ---------------------
  const CommandRun installed = In(std::string("dpkg -i ") + kStage + "/decnet-updater.deb");
  ASSERT_EQ(installed.status, 0) << installed.output;
  EXPECT_EQ(Out("dpkg-query -W -f '${Status}' decnet-updater"), "install ok installed");
  EXPECT_EQ(Property(kUnit, "Unit", "LoadState"), "loaded");
  EXPECT_EQ(Property(kUnit, "Unit", "ActiveState"), "inactive") << "the package started it";
  EXPECT_EQ(Property(kUnit, "Unit", "UnitFileState"), "disabled") << "the package enabled it";
  const std::string daemon_uid = Out("id -u decnet-updater");
  const std::string units_uid = Out("id -u decnet");
  EXPECT_FALSE(daemon_uid.empty());
  EXPECT_NE(daemon_uid, "0");
  EXPECT_NE(daemon_uid, units_uid) << "the daemon and the units share a user";
  EXPECT_EQ(Out("stat -c '%U:%G %a' /etc/decnet-updater /var/lib/decnet-update-helper "
                "/var/lib/decnet-updater /opt/decnet /opt/decnet-updater/updater "
                "/etc/decnet-updater/helper.json /etc/decnet-updater/daemon.json"),
            "root:root 755\nroot:root 700\ndecnet-updater:decnet-updater 750\n"
            "decnet-updater:decnet-updater 755\ndecnet-updater:decnet-updater 755\n"
            "root:root 644\nroot:root 644");
  // The polkit rule: a conffile in /etc, root's and readable by polkitd; nothing in /usr/share.
  EXPECT_EQ(Out("stat -c '%U:%G %a' /etc/polkit-1/rules.d/50-decnet-updater.rules"),
            "root:root 644");
  EXPECT_EQ(Out("cat /etc/polkit-1/rules.d/50-decnet-updater.rules"),
            Trim(ReadFile(DECNET_SOURCE_DIR "/polkit/50-decnet-updater.rules")));
  EXPECT_NE(Out("dpkg-query -W -f '${Conffiles}' decnet-updater")
                .find("/etc/polkit-1/rules.d/50-decnet-updater.rules"),
            std::string::npos);
  EXPECT_EQ(In("test -e /usr/share/polkit-1/rules.d/50-decnet-updater.rules").status, 1);
  // The first build, installed by the daemon's user with update-self's checks, is current.
  const std::string packaged_digest =
      Out("sha256sum /usr/lib/decnet-updater/decnet-updater-*.tar.gz | cut -c1-64");
  ASSERT_EQ(packaged_digest.size(), 64u) << packaged_digest;
  const std::string first_build = packaged_digest.substr(0, 16);
  EXPECT_EQ(Out("readlink /opt/decnet-updater/updater/current"), "releases/" + first_build);
  EXPECT_EQ(Out("stat -c %U /opt/decnet-updater/updater/releases/" + first_build +
                "/bin/decnet-updaterd"),
            "decnet-updater");
  // Installing again (an upgrade to the same version) keeps the store as it is.
  const CommandRun again = In(std::string("dpkg -i ") + kStage + "/decnet-updater.deb");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(Out("readlink /opt/decnet-updater/updater/current"), "releases/" + first_build);
  EXPECT_EQ(Out("ls /opt/decnet-updater/updater/releases"), first_build);
  EXPECT_EQ(Property(kUnit, "Unit", "ActiveState"), "inactive");

  // --- enrol, then enable and start the unit with the container's own systemctl -------------
  ASSERT_NO_FATAL_FAILURE(Enrol());
  const CommandRun start = In(std::string("systemctl enable --now ") + kUnit);
  ASSERT_EQ(start.status, 0) << start.output;
  EXPECT_EQ(Property(kUnit, "Unit", "UnitFileState"), "enabled");
  EXPECT_EQ(Property(kUnit, "Service", "Type"), "notify");
  EXPECT_EQ(Property(kUnit, "Unit", "ActiveState"), "active");
  // The package's unit file (systemd may name it through the /lib link), with no drop-in.
  const std::string fragment = Property(kUnit, "Unit", "FragmentPath");
  EXPECT_TRUE(fragment == "/usr/lib/systemd/system/decnet-updater.service" ||
              fragment == "/lib/systemd/system/decnet-updater.service")
      << fragment;
  // Enrolment's drop-in (the master's address for the unit's IP filter) is in force.
  const std::string dropins = Out(std::string("systemctl show -p DropInPaths ") + kUnit);
  EXPECT_NE(dropins.find("decnet-updater.service.d/"), std::string::npos) << dropins;
  const std::string helper_pid = Property(kUnit, "Service", "MainPID");
  EXPECT_EQ(Out("readlink /proc/" + helper_pid + "/exe"),
            "/usr/libexec/decnet-updater/decnet-update-helper");
  EXPECT_EQ(Out("stat -c %u /proc/" + helper_pid), "0");
  EXPECT_EQ(ReportedBuild(), first_build);

  // --- a release pushed with decnet-rollout, another with curl ------------------------------
  ReleaseSpec spec;
  spec.version = "1.0.0";
  const BuiltRelease r1 = BuildAgentRelease(root_ / "build/r1", spec, agent_port_);
  const json inventory = {{"hosts",
                           {{{"name", "w1"},
                             {"address", "127.0.0.1"},
                             {"port", port_},
                             {"fingerprint", fingerprint_}}}}};
  WriteFile(root_ / "inventory.json", inventory.dump(2) + "\n", 0644);
  const CommandRun rollout =
      RunCommand(std::string(DECNET_ROLLOUT_BINARY) + " push --inventory " +
                 Quote((root_ / "inventory.json").string()) + " --all --cert " +
                 Quote((root_ / "client/master.crt").string()) + " --key " +
                 Quote((root_ / "client/master.key").string()) + " " + Quote(r1.tarball.string()));
  ASSERT_EQ(rollout.status, 0) << rollout.output;
  EXPECT_EQ(Property(WorkerHost::kAgent, "Unit", "ActiveState"), "active");
  EXPECT_EQ(Out("readlink /opt/decnet/current"), "releases/" + r1.id());

  spec.version = "1.1.0";
  const BuiltRelease r2 = BuildAgentRelease(root_ / "build/r2", spec, agent_port_);
  const Reply pushed = Request(
      "/update", "-F " + Quote("tarball=@" + r2.tarball.string()) + " -F sha256=" + r2.sha256);
  ASSERT_EQ(pushed.status, 200) << pushed.text;
  EXPECT_EQ(Out("readlink /opt/decnet/current"), "releases/" + r2.id());
  EXPECT_EQ(Property(WorkerHost::kAgent, "Unit", "ActiveState"), "active");

  // --- update-self: systemd restarts the unit, and the new build answers ---------------------
  const BuiltRelease build2 = PackBuild("0.9.1");
  const Reply self =
      Request("/update-self", "-F " + Quote("tarball=@" + build2.tarball.string()) +
                                  " -F sha256=" + build2.sha256 + " -F confirm_self=true");
  ASSERT_EQ(self.status, 200) << self.text;
  const auto deadline = Clock::now() + 60s;
  while (Clock::now() < deadline && ReportedBuild() != build2.id())
    std::this_thread::sleep_for(300ms);
  EXPECT_EQ(ReportedBuild(), build2.id());
  EXPECT_NE(Property(kUnit, "Service", "MainPID"), helper_pid) << "systemd did not restart it";
  EXPECT_EQ(Property(kUnit, "Unit", "ActiveState"), "active");
  EXPECT_EQ(Out("readlink /opt/decnet-updater/updater/current"), "releases/" + build2.id());

  // --- a rollback to the previous release of the suite --------------------------------------
  const Reply rolled = Request("/rollback", "-X POST -H 'Content-Length: 0'");
  ASSERT_EQ(rolled.status, 200) << rolled.text;
  EXPECT_EQ(Out("readlink /opt/decnet/current"), "releases/" + r1.id());
  EXPECT_EQ(Property(WorkerHost::kAgent, "Unit", "ActiveState"), "active");

  // --- the package again, as an upgrade: the running updater restarts with the package's
  // helper, and the build update-self made current stays current -----------------------------
  const std::string before_upgrade = Property(kUnit, "Service", "MainPID");
  const CommandRun upgraded = In(std::string("dpkg -i ") + kStage + "/decnet-updater.deb");
  ASSERT_EQ(upgraded.status, 0) << upgraded.output;
  EXPECT_EQ(Property(kUnit, "Unit", "ActiveState"), "active");
  EXPECT_NE(Property(kUnit, "Service", "MainPID"), before_upgrade) << "not restarted";
  EXPECT_EQ(Out("readlink /opt/decnet-updater/updater/current"), "releases/" + build2.id());
  const auto answered = Clock::now() + 30s;
  while (Clock::now() < answered && ReportedBuild().empty()) std::this_thread::sleep_for(200ms);
  EXPECT_EQ(ReportedBuild(), build2.id());

  // --- helperctl status: the helper's confinement, as the operator sees it ------------------
  const CommandRun ctl = In("helperctl status --json");
  ASSERT_EQ(ctl.status, 0) << ctl.output;
  const json status = json::parse(ctl.output, nullptr, false);
  ASSERT_TRUE(status.is_object()) << ctl.output;
  EXPECT_EQ(status.value("uid", -1), 0) << ctl.output;
  EXPECT_EQ(status.value("no_new_privs", 0), 1) << ctl.output;
  EXPECT_EQ(status.value("seccomp", 0), 2) << ctl.output;
  EXPECT_EQ(status.value("/caps/CapEff"_json_pointer, std::string()), "0000000000000000")
      << ctl.output;
  if (KernelLandlockAbi() > 0) {
    EXPECT_EQ(status.value("/landlock/enforced"_json_pointer, false), true) << ctl.output;
  }
  EXPECT_EQ(status.value("/daemon_build/build"_json_pointer, std::string()), build2.id());

  // --- dpkg --purge: nothing left but what the package keeps --------------------------------
  const CommandRun purged = In("dpkg --purge decnet-updater");
  ASSERT_EQ(purged.status, 0) << purged.output;
  EXPECT_NE(Property(kUnit, "Unit", "LoadState"), "loaded");
  EXPECT_EQ(Out("dpkg-query -W -f '${Status}' decnet-updater 2>/dev/null || echo gone"), "gone");
  EXPECT_EQ(
      Out("for p in /proc/[0-9]*; do readlink $p/exe; done | grep decnet-update || echo none"),
      "none")
      << "a process outlived the purge";
  // Kept: the users, the suite's releases, the TLS material in /etc/decnet, the unit and link
  // the helper wrote for the suite.
  EXPECT_EQ(Out("id -u decnet-updater"), daemon_uid);
  EXPECT_EQ(Out("id -u decnet"), units_uid);
  EXPECT_EQ(Out("readlink /opt/decnet/current"), "releases/" + r1.id());
  const std::set<std::string> after = Lines(In(kFindAll).output);
  const std::vector<std::string> kept = {
      "/opt/decnet",                       // the suite's releases
      "/etc/decnet",                       // TLS material, shared with DECNET's services
      "/usr/local/bin/decnet-test-agent",  // the suite's link
      "/etc/passwd-",
      "/etc/group-",
      "/etc/shadow-",
      "/etc/gshadow-",
      "/etc/.pwd.lock",
      "/var/lib/dpkg/",     // dpkg's own records
      "/var/lib/systemd/",  // systemd's own state
  };
  for (const std::string& path : after) {
    if (before.count(path) > 0) continue;
    bool allowed = false;
    for (const std::string& k : kept)
      allowed = allowed || path == k || path.starts_with(k.ends_with("/") ? k : k + "/");
    EXPECT_TRUE(allowed) << "left after the purge: " << path;
  }
  // /etc/systemd/system is a mount of its own in the container (not in the file list).
  EXPECT_EQ(Out("find /etc/systemd/system -name 'decnet-updater*' -o -name decnet.target"), "");
  for (const char* gone :
       {"/etc/decnet-updater", "/var/lib/decnet-updater", "/var/lib/decnet-update-helper",
        "/opt/decnet-updater", "/usr/libexec/decnet-updater", "/usr/lib/decnet-updater",
        "/usr/bin/helperctl", "/usr/lib/systemd/system/decnet-updater.service",
        "/etc/polkit-1/rules.d/50-decnet-updater.rules"}) {
    EXPECT_EQ(after.count(gone), 0u) << gone << " is still there";
  }
}

// A DECNET host before decnet-adopt (or after `decnet-adopt --undo`): /opt/decnet is there,
// owned by the suite and not by the updater. Neither dpkg -i nor systemd-tmpfiles at boot may
// change its owner or mode, nor anything beneath it; a purge leaves it too.
TEST_F(TheWorkerPackage, LeavesAnExistingSuiteStoreAsItWas) {
  const CommandRun made =
      In("set -e\n"
         "mkdir -p /opt/decnet/releases/r1\n"
         "touch /opt/decnet/releases/r1/marker\n"
         "chown -R decnet:decnet /opt/decnet\n"
         "chmod 0750 /opt/decnet\n");
  ASSERT_EQ(made.status, 0) << made.output;
  const std::string tree = "find /opt/decnet -printf '%p %u:%g %m\\n' | sort";
  const std::string before = Out(tree);
  ASSERT_NE(before.find("/opt/decnet decnet:decnet 750"), std::string::npos) << before;

  const CommandRun installed = In(std::string("dpkg -i ") + kStage + "/decnet-updater.deb");
  ASSERT_EQ(installed.status, 0) << installed.output;
  EXPECT_EQ(Out(tree), before) << "dpkg -i changed the suite's store";
  // The updater's own directories were made as usual.
  EXPECT_EQ(Out("stat -c '%U:%G %a' /opt/decnet-updater/updater /var/lib/decnet-updater"),
            "decnet-updater:decnet-updater 755\ndecnet-updater:decnet-updater 750");
  // At every boot, systemd-tmpfiles applies the same file again.
  const CommandRun boot = In("systemd-tmpfiles --boot --create decnet-updater.conf");
  EXPECT_EQ(boot.status, 0) << boot.output;
  EXPECT_EQ(Out(tree), before) << "systemd-tmpfiles changed the suite's store";

  const CommandRun purged = In("dpkg --purge decnet-updater");
  ASSERT_EQ(purged.status, 0) << purged.output;
  EXPECT_EQ(Out(tree), before) << "the purge changed the suite's store";
}

}  // namespace
}  // namespace decnet::test
