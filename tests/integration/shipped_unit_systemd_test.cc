// The shipped unit file runs, unchanged, under a real systemd: the throw-away container gets
// systemd/decnet-updater.service at /usr/lib/systemd/system/ (where the package puts it, no
// drop-in), the built helper at the unit's ExecStart= path, the built daemon, a policy, a
// configuration and certificates at their installed paths, and the unit's writable
// directories; `systemctl start` inside the container must return once the helper reports
// READY=1 (Type=notify), the daemon must answer /health over mTLS, the helper must have applied
// its own Landlock and seccomp under the unit's sandbox, and nothing must have been refused.
// Through that unit, at the package's path (named /lib/systemd/system/... by systemd 252 on a
// merged-/usr system), a release pushed with curl is installed, and an update-self to a build
// that fails after its hello is returned from at the unit's next start (the revert made as the
// daemon's user: the unit grants no CAP_DAC_OVERRIDE).
//
// The container's root filesystem lacks some of the binaries' libraries (sdbus-c++,
// libarchive, spdlog...): the host's copies (the same Debian release) are bound read-only
// beside the container's own, and /etc/passwd and /etc/group gain the daemon's user the
// same way; the cached root filesystem is never changed. systemd-nspawn refuses the Landlock
// system calls and bpf(2) to its containers unless asked (--system-call-filter=); a host's
// systemd does not, and without bpf the container's systemd cannot apply IPAddressDeny=.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/daemon/test_pki.h"
#include "tests/integration/container_setup.h"
#include "tests/integration/testbed.h"
#include "tests/integration/worker_host.h"
#include "tests/support/loopback.h"
#include "tests/support/shell.h"

#ifndef DECNET_HELPER_BINARY
#error "DECNET_HELPER_BINARY and DECNET_DAEMON_BINARY must name the built binaries"
#endif

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr char kUnit[] = "decnet-updater.service";

// An IPv4 address of this host other than loopback, "" when it has none.
std::string NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

class TheShippedUnitOnARealSystemd : public FilesThenContainerTest {
 protected:
  void SetUp() override {
    const passwd* d = ::getpwnam("decnet-updater");
    ASSERT_NE(d, nullptr) << "no user decnet-updater on the host (run scripts/setup.sh)";
    daemon_uid_ = d->pw_uid;
    daemon_gid_ = d->pw_gid;
    ASSERT_NO_FATAL_FAILURE(MakeWorkDir("decnet-shipped-unit"));
    port_ = FreeLoopbackPort();
    agent_port_ = FreeLoopbackPort();
    ASSERT_NE(port_, 0);
    ASSERT_NE(agent_port_, 0);
    ASSERT_NE(agent_port_, port_);
    MakeFiles();
    Testbed::Options options;
    options.name_prefix = "unit";
    options.share_host_network = true;  // curl on the host reaches the daemon on 127.0.0.1
    options.extra_nspawn_args = Binds();
    ASSERT_NO_FATAL_FAILURE(Boot(options));
  }

  std::string UnitJournal() override { return Journal(); }

  // What the package installs and enrolment writes, with test certificates and a loopback
  // port; the helper starts the daemon from a bound build rather than its store.
  void MakeFiles() {
    MakeDir(root_ / "etc-updater", 0755);
    MakeDir(root_ / "updater-pki", 0755);
    MakeDir(root_ / "client", 0700);
    MakeDir(root_ / "helper-state", 0700);
    MakeDir(root_ / "daemon-state", 0750, daemon_uid_, daemon_gid_);
    MakeDir(root_ / "opt-decnet", 0755, daemon_uid_, daemon_gid_);
    MakeDir(root_ / "opt-decnet-updater/updater", 0755, daemon_uid_, daemon_gid_);
    if (::chown((root_ / "opt-decnet-updater").c_str(), daemon_uid_, daemon_gid_) != 0)
      ADD_FAILURE() << "chown opt-decnet-updater";
    MakeDir(root_ / "agent", 0755, kContainerDecnetUid, kContainerDecnetUid);
    MakeDir(root_ / "build", 0755);

    const json policy = {
        {"daemon_binary", "/usr/libexec/decnet-updater/decnet-updaterd"},
        {"daemon_args", {"--config", "/etc/decnet-updater/daemon.json"}},
        {"links", {{{"name", "decnet-test-agent"}, {"target_prefix", "/opt/decnet/current"}}}},
    };
    WriteFile(root_ / "etc-updater/helper.json", policy.dump(2) + "\n", 0644);
    const json config = {
        {"listen_address", "127.0.0.1"},
        {"port", port_},
        {"units", {WorkerHost::kAgent}},
        {"links", {{{"name", "decnet-test-agent"}, {"target", "bin/decnet-test-agent"}}}},
        {"probe",
         {{"url", "https://127.0.0.1:" + std::to_string(agent_port_) + "/health"},
          {"ca", "/etc/decnet/updater/ca.crt"},
          {"cert", "/etc/decnet/updater/worker.crt"},
          {"key", "/etc/decnet/updater/worker.key"},
          {"attempts", 20},
          {"interval_ms", 300},
          {"timeout_ms", 2000},
          {"check_version", true}}},
        {"settle_ms", 1000},
    };
    WriteFile(root_ / "etc-updater/daemon.json", config.dump(2) + "\n", 0644);

    using decnet::testing::CertSpec;
    const decnet::testing::TestCa ca("decnet-unit-ca");
    const auto server = ca.Issue(CertSpec{{"decnet-updater"}, true});
    const auto master = ca.Issue(CertSpec{{"decnet-master"}, false});
    WriteFile(root_ / "updater-pki/ca.crt", ca.ca().cert_pem, 0644);
    WriteFile(root_ / "updater-pki/updater.crt", server.cert_pem, 0644);
    WriteFile(root_ / "updater-pki/updater.key", server.key_pem, 0600, daemon_uid_, daemon_gid_);
    // The health probe's client bundle, and the agent's own files (read by the units' user).
    const auto worker = ca.Issue(CertSpec{{"decnet-worker"}, false});
    WriteFile(root_ / "updater-pki/worker.crt", worker.cert_pem, 0644);
    WriteFile(root_ / "updater-pki/worker.key", worker.key_pem, 0600, daemon_uid_, daemon_gid_);
    const auto agent = ca.Issue(CertSpec{{"decnet-agent"}, true});
    WriteFile(root_ / "agent/ca.crt", ca.ca().cert_pem, 0644, kContainerDecnetUid,
              kContainerDecnetUid);
    WriteFile(root_ / "agent/agent.crt", agent.cert_pem, 0644, kContainerDecnetUid,
              kContainerDecnetUid);
    WriteFile(root_ / "agent/agent.key", agent.key_pem, 0600, kContainerDecnetUid,
              kContainerDecnetUid);
    WriteFile(root_ / "client/ca.crt", ca.ca().cert_pem, 0600);
    WriteFile(root_ / "client/master.crt", master.cert_pem, 0600);
    WriteFile(root_ / "client/master.key", master.key_pem, 0600);
  }

  std::vector<std::string> Binds() {
    const fs::path rootfs = CachedRootfs();
    std::vector<std::string> binds = ShippedUnitBinds(DECNET_HELPER_BINARY);
    binds.insert(
        binds.end(),
        {
            "--bind-ro=" DECNET_DAEMON_BINARY ":/usr/libexec/decnet-updater/decnet-updaterd",
            "--bind-ro=" + (root_ / "etc-updater").string() + ":/etc/decnet-updater",
            "--bind-ro=" + (root_ / "updater-pki").string() + ":/etc/decnet/updater",
            "--bind-ro=" + (root_ / "agent").string() + ":" + kAgentCertDir,
            "--bind=" + (root_ / "helper-state").string() + ":/var/lib/decnet-update-helper",
            "--bind=" + (root_ / "daemon-state").string() + ":/var/lib/decnet-updater",
            "--bind=" + (root_ / "opt-decnet").string() + ":/opt/decnet",
            "--bind=" + (root_ / "opt-decnet-updater").string() + ":/opt/decnet-updater",
            kHostSystemCallFilter,
        });
    // The daemon's user, as systemd-sysusers would add it from the package's sysusers file, and
    // the host's copies of the libraries the binaries need that the root filesystem lacks.
    for (const std::vector<std::string>& more :
         {DaemonUserBinds(rootfs, root_, daemon_uid_, daemon_gid_),
          MissingLibraryBinds({DECNET_HELPER_BINARY, DECNET_DAEMON_BINARY}, rootfs)}) {
      binds.insert(binds.end(), more.begin(), more.end());
    }
    return binds;
  }

  // A command run inside the container (its mount, pid, IPC and UTS namespaces), such as the
  // container's own systemctl.
  CommandRun InContainer(const std::string& command) {
    return RunCommand("nsenter -t " + std::to_string(container_init_) + " -m -u -i -p -- " +
                      command);
  }

  std::string Journal() {
    return InContainer(std::string("journalctl --no-pager -o short-monotonic -u ") + kUnit).output;
  }

  std::string Property(const std::string& interface, const std::string& name) {
    auto value = testbed_->UnitProperty(kUnit, "org.freedesktop.systemd1." + interface, name);
    EXPECT_TRUE(value.has_value()) << name << ": " << value.error();
    return value.value_or("");
  }

  // A build of the daemon as the `updater-build` target packs it, with `version`; its tarball.
  fs::path PackBuild(const std::string& version) {
    const fs::path dir = root_ / "build" / ("updater-" + version);
    MakeDir(dir, 0755);
    const CommandRun packed = PackUpdaterBuild(DECNET_DAEMON_BINARY, version, dir);
    EXPECT_EQ(packed.status, 0) << packed.output;
    utsname host{};
    ::uname(&host);
    return dir / ("decnet-updater-" + version + "-" + std::string(host.machine) + ".tar.gz");
  }

  // The build /opt/decnet-updater/NAME put into the daemon's own store by `--install-build`, as
  // the package does (as the daemon's user), and the helper's policy pointed at the store's
  // `current`. Returns the install's run.
  CommandRun InstallIntoTheDaemonsStore(const std::string& name) {
    const CommandRun installed =
        InContainer("setpriv --reuid=" + std::to_string(daemon_uid_) +
                    " --regid=" + std::to_string(daemon_gid_) +
                    " --clear-groups /usr/libexec/decnet-updater/decnet-updaterd --config "
                    "/etc/decnet-updater/daemon.json --install-build /opt/decnet-updater/" +
                    name);
    json policy = json::parse(ReadFile(root_ / "etc-updater/helper.json"));
    policy["daemon_binary"] = "/opt/decnet-updater/updater/current/bin/decnet-updaterd";
    WriteFile(root_ / "etc-updater/helper.json", policy.dump(2) + "\n", 0644);
    return installed;
  }

  // The daemon's first build (1.0.0) put into its own store by `--install-build`, as the
  // package does, the helper's policy pointed at the store's `current`, and the unit started.
  // Returns `current`'s target, "releases/<id>" ("" after a failed assertion).
  std::string StartFromTheDaemonsStore() {
    const fs::path first = root_ / "opt-decnet-updater/first.tar.gz";
    fs::copy_file(PackBuild("1.0.0"), first);
    ::chmod(first.c_str(), 0644);
    const CommandRun installed = InstallIntoTheDaemonsStore("first.tar.gz");
    EXPECT_EQ(installed.status, 0) << installed.output;
    const CommandRun start = InContainer(std::string("systemctl start ") + kUnit);
    EXPECT_EQ(start.status, 0) << start.output << Journal();
    std::error_code ec;
    return fs::read_symlink(root_ / "opt-decnet-updater/updater/current", ec).string();
  }

  // A build of the updater whose daemon is `script`, made in `tree` and packed at `tarball`.
  // A fatal failure when tar fails.
  void PackScriptedBuild(const fs::path& tree, const std::string& version,
                         const std::string& script, const fs::path& tarball) {
    WriteScriptedUpdaterBuild(tree, version, script);
    const CommandRun tar =
        RunCommand("tar -C " + Quote(tree.string()) + " --owner=0 --group=0 -czf " +
                   Quote(tarball.string()) + " .decnet-release.json bin");
    ASSERT_EQ(tar.status, 0) << tar.output;
  }

  // The build id /health reports ("" when it does not answer or names none).
  std::string ReportedBuild() {
    const auto [status, body] = Health();
    const json health = json::parse(body, nullptr, false);
    if (status != 200 || !health.is_object()) return "";
    const json id = health.value("/build/id"_json_pointer, json(nullptr));
    return id.is_string() ? id.get<std::string>() : "";
  }

  // A request as the master, over mTLS from the host; {status, body}.
  std::pair<int, std::string> Health(const std::string& address = "127.0.0.1") {
    return Request("/health", "", address);
  }
  std::pair<int, std::string> Request(const std::string& path, const std::string& extra,
                                      const std::string& address = "127.0.0.1") {
    const fs::path c = root_ / "client";
    const CommandRun run = RunCommand(
        "curl -sS --connect-timeout 5 --max-time 120 --cacert " + Quote((c / "ca.crt").string()) +
        " --cert " + Quote((c / "master.crt").string()) + " --key " +
        Quote((c / "master.key").string()) + " -w '\\n%{http_code}' " + extra +
        " --connect-to ::" + address + ": https://127.0.0.1:" + std::to_string(port_) + path);
    const size_t nl = run.output.rfind('\n');
    if (nl == std::string::npos) return {0, run.output};
    return {std::atoi(run.output.c_str() + nl + 1), run.output.substr(0, nl)};
  }

  uid_t daemon_uid_ = 0;
  gid_t daemon_gid_ = 0;
  uint16_t port_ = 0;
  uint16_t agent_port_ = 0;
};

TEST_F(TheShippedUnitOnARealSystemd, StartsAsShippedAndServesHealthOverMtls) {
  // The unit systemd loaded is the shipped file alone: no drop-in widens or narrows it.
  const CommandRun dropins =
      InContainer(std::string("systemctl show -p DropInPaths,FragmentPath ") + kUnit);
  EXPECT_EQ(dropins.status, 0) << dropins.output;
  EXPECT_NE(dropins.output.find("DropInPaths=\n"), std::string::npos)
      << "a drop-in changed the shipped unit: " << dropins.output;
  EXPECT_NE(dropins.output.find("lib/systemd/system/decnet-updater.service"), std::string::npos)
      << dropins.output;
  const CommandRun start = InContainer(std::string("systemctl start ") + kUnit);
  ASSERT_EQ(start.status, 0) << "systemctl start failed: " << start.output;
  // Type=notify: start returned after READY=1, which the helper sends after the daemon's hello.
  EXPECT_EQ(Property("Unit", "ActiveState"), "active");
  EXPECT_EQ(Property("Unit", "SubState"), "running");
  EXPECT_EQ(Property("Service", "NRestarts"), "0");
  EXPECT_EQ(Property("Service", "Result"), "success");

  const auto [status, body] = Health();
  ASSERT_EQ(status, 200) << body;
  const json health = json::parse(body, nullptr, false);
  ASSERT_TRUE(health.is_object()) << body;
  EXPECT_EQ(health.value("status", ""), "ok") << body;
  EXPECT_EQ(health.value("/helper/alive"_json_pointer, false), true) << body;

  // The helper confined itself under the unit's filters: Landlock (allowed through
  // SystemCallFilter=) enforced where the kernel has it, and seccomp, or it would not serve.
  const json confinement =
      json::parse(ReadFile(root_ / "helper-state/confinement.json"), nullptr, false);
  ASSERT_TRUE(confinement.is_object()) << "no confinement record";
  if (KernelLandlockAbi() > 0) {
    EXPECT_EQ(confinement.value("landlock_enforced", false), true) << confinement.dump();
  }

  const std::string journal = Journal();
  EXPECT_NE(journal.find("confined: capabilities none, NoNewPrivs, seccomp"), std::string::npos)
      << journal;
  // Nothing the sandbox refused: no SIGSYS, no failed start-up step, no daemon failure.
  for (const char* sign : {"SIGSYS", "Bad system call", "status=31", "Function not implemented",
                           "Operation not permitted", "Permission denied", "Read-only file system",
                           "start-up:", "[critical]", "[error]"}) {
    EXPECT_EQ(journal.find(sign), std::string::npos) << "the journal shows '" << sign << "':\n"
                                                     << journal;
  }
  // It is still running after the checks, with the same helper.
  const std::string main_pid = Property("Service", "MainPID");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(Property("Unit", "ActiveState"), "active");
  EXPECT_EQ(Property("Service", "MainPID"), main_pid);
}

TEST_F(TheShippedUnitOnARealSystemd, InstallsAReleaseWhoseUnitRunsAndPassesTheProbe) {
  // The whole path through the sandbox: the daemon extracts into /opt/decnet, the helper
  // writes the release's unit into /etc/systemd/system and the link into /usr/local/bin,
  // reloads and restarts over D-Bus, and the daemon's probe reaches the agent over mTLS.
  // The unit is where the package puts it, /usr/lib/systemd/system, which systemd 252 on this
  // merged-/usr system names /lib/systemd/system/...: the helper's check of its own unit after
  // each daemon_reload must follow root's /lib -> usr/lib link and accept it.
  const CommandRun fragment = InContainer(std::string("systemctl show -p FragmentPath ") + kUnit);
  EXPECT_NE(fragment.output.find("lib/systemd/system/decnet-updater.service"), std::string::npos)
      << fragment.output;
  EXPECT_FALSE(fs::exists(testbed_->unit_dir() / kUnit)) << "no copy in /etc/systemd/system";
  const CommandRun start = InContainer(std::string("systemctl start ") + kUnit);
  ASSERT_EQ(start.status, 0) << "systemctl start failed: " << start.output;
  ReleaseSpec spec;
  spec.version = "1.0.0";
  const BuiltRelease release = BuildAgentRelease(root_ / "build/r1", spec, agent_port_);
  const auto [status, body] = Request(
      "/update", "-F " + Quote("tarball=@" + release.tarball.string()) +
                     " -F sha=" + release.sha256.substr(0, 40) + " -F sha256=" + release.sha256);
  ASSERT_EQ(status, 200) << body;
  auto agent =
      testbed_->UnitProperty(WorkerHost::kAgent, "org.freedesktop.systemd1.Unit", "ActiveState");
  EXPECT_EQ(agent.value_or(agent.error()), "active");
  EXPECT_TRUE(fs::exists(testbed_->unit_dir() / WorkerHost::kAgent));
  const CommandRun link = InContainer("readlink /usr/local/bin/decnet-test-agent");
  EXPECT_NE(link.output.find("/opt/decnet/current"), std::string::npos) << link.output;
  EXPECT_EQ(Property("Unit", "ActiveState"), "active");
  EXPECT_EQ(Property("Service", "NRestarts"), "0");
  const std::string journal = Journal();
  for (const char* sign :
       {"SIGSYS", "Bad system call", "Function not implemented", "Operation not permitted",
        "Read-only file system", "unit-loaded-fragment-owner", "unit-loaded-"}) {
    EXPECT_EQ(journal.find(sign), std::string::npos) << "the journal shows '" << sign << "':\n"
                                                     << journal;
  }
}

TEST_F(TheShippedUnitOnARealSystemd, ReturnsFromASelfUpdatedBuildThatFailsWithinItsProbation) {
  // The daemon runs from its own store, its first build put there by `--install-build` as the
  // package does. update-self brings a build that says hello and fails 3 s later, well within
  // the 60 s probation; systemd restarts the unit (Restart=on-failure) and the helper returns
  // to the first build. The unit grants no CAP_DAC_OVERRIDE: the revert is made as the
  // daemon's user. update-self's restart of the unit also passes the check of the unit's own
  // loaded view, named through /lib on this merged-/usr system.
  const fs::path store = root_ / "opt-decnet-updater/updater";
  const std::string good = StartFromTheDaemonsStore();
  ASSERT_TRUE(good.starts_with("releases/")) << good;
  ASSERT_FALSE(HasFailure());
  const auto record = [&] {
    return json::parse(ReadFile(root_ / "helper-state/daemon-start.json"), nullptr, false);
  };
  ASSERT_EQ(Health().first, 200);
  EXPECT_EQ("releases/" + record().value("build", ""), good) << record().dump();

  // The failing build: answers --version (update-self's smoke test), otherwise runs the real
  // daemon, which says hello, and kills it 3 s later.
  const fs::path bad = root_ / "build/bad.tar.gz";
  ASSERT_NO_FATAL_FAILURE(PackScriptedBuild(
      root_ / "build/bad", "3.0.0",
      "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'decnet-updaterd 3.0.0'; exit 0; }\n"
      "/usr/libexec/decnet-updater/decnet-updaterd \"$@\" &\nsleep 3\nkill -9 $!\nexit 1\n",
      bad));
  const std::string bad_sha = RunCommand("sha256sum " + Quote(bad.string())).output.substr(0, 64);
  const auto [status, body] =
      Request("/update-self", "-F " + Quote("tarball=@" + bad.string()) + " -F sha256=" + bad_sha +
                                  " -F confirm_self=true");
  ASSERT_EQ(status, 200) << body << "\n" << Journal();

  // The fresh build starts, fails, systemd starts the unit again and the helper returns.
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  bool returned = false;
  while (!returned && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(500ms);
    returned = Journal().find("returning to build " + good.substr(9)) != std::string::npos &&
               Property("Unit", "ActiveState") == "active" && Health().first == 200;
  }
  ASSERT_TRUE(returned) << Journal();
  EXPECT_EQ(fs::read_symlink(store / "current").string(), good);
  struct stat link {};
  ASSERT_EQ(::lstat((store / "current").c_str(), &link), 0);
  EXPECT_EQ(link.st_uid, daemon_uid_) << "made as the daemon's user, as its own link would be";
  EXPECT_GE(std::atoi(Property("Service", "NRestarts").c_str()), 1);
  EXPECT_EQ("releases/" + record().value("build", ""), good) << record().dump();
  EXPECT_EQ("releases/" + record().value("good", ""), good) << record().dump();
  const std::string journal = Journal();
  EXPECT_NE(journal.find("update-self: build"), std::string::npos) << journal;
  for (const char* sign : {"the revert failed", "self-update-store", "self-update-fs-identity",
                           "unit-loaded-", "Permission denied", "SIGSYS"}) {
    EXPECT_EQ(journal.find(sign), std::string::npos) << "the journal shows '" << sign << "':\n"
                                                     << journal;
  }
}

TEST_F(TheShippedUnitOnARealSystemd, UpdatesItselfWithTheOldBuildEndingCleanlyBeforeTheNewStarts) {
  // update-self to a good build, as a master sends it: the 200 is answered, the helper asks
  // systemd to restart the unit, and systemd stops the helper and the daemon and starts the new
  // build. That stop must be an orderly one: every process of the unit's control group ends on
  // systemd's SIGTERM (no SIGKILL, no stop timeout), the old daemon says that it stops for its
  // own restart (not that it abandons an operation), and its audit log has the queued
  // update-self and no failed restart.
  const std::string first = StartFromTheDaemonsStore();
  ASSERT_TRUE(first.starts_with("releases/")) << first;
  ASSERT_FALSE(HasFailure());
  ASSERT_EQ(ReportedBuild(), first.substr(9));
  const std::string helper_pid = Property("Service", "MainPID");
  const fs::path second = PackBuild("2.0.0");
  const std::string sha = RunCommand("sha256sum " + Quote(second.string())).output.substr(0, 64);
  const auto [status, body] =
      Request("/update-self", "-F " + Quote("tarball=@" + second.string()) + " -F sha256=" + sha +
                                  " -F confirm_self=true");
  ASSERT_EQ(status, 200) << body << "\n" << Journal();
  const auto answered = std::chrono::steady_clock::now();
  const std::string second_id = sha.substr(0, 16);
  while (ReportedBuild() != second_id && std::chrono::steady_clock::now() < answered + 100s)
    std::this_thread::sleep_for(200ms);
  const auto took = std::chrono::steady_clock::now() - answered;
  const std::string journal = Journal();
  ASSERT_EQ(ReportedBuild(), second_id) << journal;
  // systemd's stop timeout is 90 s; an orderly restart takes a few seconds.
  EXPECT_LT(took, 20s) << journal;
  EXPECT_NE(Property("Service", "MainPID"), helper_pid) << "systemd did not restart the unit";
  EXPECT_EQ(Property("Unit", "ActiveState"), "active");
  EXPECT_EQ(Property("Service", "NRestarts"), "0") << "the unit failed on its way: " << journal;
  // The helper answered its own restart as under way, the old daemon ended on systemd's SIGTERM
  // (saying it stops for the restart when the signal came before the helper's answer), and
  // the helper ended after the daemon.
  for (const char* sign :
       {"restart_unit decnet-updater.service: ok job stopping", "signal Terminated received",
        "daemon exited with status 0 (the unit is being stopped)"}) {
    EXPECT_NE(journal.find(sign), std::string::npos) << "no '" << sign << "' in:\n" << journal;
  }
  for (const char* sign : {"SIGKILL", "timed out", "an operation is running", "will revert",
                           "closed its end of the pair", "Failed with result", "[critical]",
                           "[error]", "protocol violation"}) {
    EXPECT_EQ(journal.find(sign), std::string::npos) << "the journal shows '" << sign << "':\n"
                                                     << journal;
  }
  const std::string audit = ReadFile(root_ / "daemon-state/audit.jsonl");
  EXPECT_NE(audit.find("\"result\":\"queued\""), std::string::npos) << audit;
  EXPECT_EQ(audit.find("restart-failed"), std::string::npos) << audit;
}

TEST_F(TheShippedUnitOnARealSystemd, StopsWithoutAKillWhenItsDaemonTakesAMomentToEnd) {
  // The helper is the unit's main process. When systemd stops the unit, the helper must outlive
  // the daemon: once the main process has gone, what is left in the control group is a
  // straggler for systemd to clean up (final SIGTERM, then SIGKILL at the stop timeout), and
  // nobody reports how the daemon ended. The daemon's build here ends a second after its
  // SIGTERM, as one finishing a write would; the helper waits for it and says how it ended.
  const fs::path tarball = root_ / "opt-decnet-updater/slow.tar.gz";
  ASSERT_NO_FATAL_FAILURE(PackScriptedBuild(
      root_ / "build/slow", "1.0.0",
      "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'decnet-updaterd 1.0.0'; exit 0; }\n"
      "trap 'sleep 1; exit 0' TERM\n"
      "/usr/libexec/decnet-updater/decnet-updaterd \"$@\" &\nwait\nwait\n",
      tarball));
  ::chmod(tarball.c_str(), 0644);
  const CommandRun installed = InstallIntoTheDaemonsStore("slow.tar.gz");
  ASSERT_EQ(installed.status, 0) << installed.output;
  ASSERT_EQ(InContainer(std::string("systemctl start ") + kUnit).status, 0) << Journal();
  ASSERT_EQ(Health().first, 200) << Journal();
  const CommandRun stop = InContainer(std::string("systemctl stop ") + kUnit);
  EXPECT_EQ(stop.status, 0) << stop.output;
  const std::string journal = Journal();
  EXPECT_NE(journal.find("daemon exited with status 0 (the unit is being stopped)"),
            std::string::npos)
      << journal;
  for (const char* sign :
       {"SIGKILL", "timed out", "Failed with result", "closed its end of the pair"}) {
    EXPECT_EQ(journal.find(sign), std::string::npos) << "the journal shows '" << sign << "':\n"
                                                     << journal;
  }
  EXPECT_EQ(Property("Service", "Result"), "success");
}

TEST_F(TheShippedUnitOnARealSystemd, AnswersOnLoopbackOnlyUntilADropInAllowsAnAddress) {
  const std::string address = NonLoopbackAddress();
  if (address.empty()) GTEST_SKIP() << "this host has no address but loopback";
  // The API on every address, so that only the unit's IP filter can refuse the other one.
  json config = json::parse(ReadFile(root_ / "etc-updater/daemon.json"));
  config["listen_address"] = "0.0.0.0";
  WriteFile(root_ / "etc-updater/daemon.json", config.dump(2) + "\n", 0644);
  ASSERT_EQ(InContainer(std::string("systemctl start ") + kUnit).status, 0);
  EXPECT_EQ(Health().first, 200) << "loopback, allowed by the shipped unit";
  const auto refused = Health(address);
  EXPECT_EQ(refused.first, 0) << "reached on " << address
                              << " past IPAddressDeny=any: " << refused.second;
  // The operator's drop-in, as docs/operations.md shows it, opens that address.
  const fs::path dropin = testbed_->unit_dir() / (std::string(kUnit) + ".d");
  MakeDir(dropin, 0755);
  WriteFile(dropin / "50-network.conf", "[Service]\nIPAddressAllow=" + address + "\n", 0644);
  ASSERT_EQ(InContainer("systemctl daemon-reload").status, 0);
  ASSERT_EQ(InContainer(std::string("systemctl restart ") + kUnit).status, 0);
  const auto allowed = Health(address);
  EXPECT_EQ(allowed.first, 200) << "on " << address << " with the drop-in: " << allowed.second;
}

TEST_F(TheShippedUnitOnARealSystemd, WouldNotStartWithRestrictSuidSgidWhichRefusesOpenat2) {
  // Why the unit leaves RestrictSUIDSGID= off: systemd's implementation refuses openat2(2),
  // which every write of the helper uses. The same container with only that drop-in added.
  const fs::path dropin = testbed_->unit_dir() / (std::string(kUnit) + ".d");
  MakeDir(dropin, 0755);
  WriteFile(dropin / "50-restrict-suid-sgid.conf", "[Service]\nRestrictSUIDSGID=yes\nRestart=no\n",
            0644);
  ASSERT_EQ(InContainer("systemctl daemon-reload").status, 0);
  const CommandRun start = InContainer(std::string("systemctl start ") + kUnit);
  EXPECT_NE(start.status, 0) << "the unit started although openat2 is refused";
  const std::string journal = Journal();
  EXPECT_NE(journal.find("Function not implemented"), std::string::npos) << journal;
  EXPECT_NE(Health().first, 200);
}

}  // namespace
}  // namespace decnet::test
