// One worker of the product, whole: a throw-away container whose PID 1 is a real systemd (the
// install dir bound at /opt/decnet, the agent's certificates at /etc/decnet/agent), the real
// decnet-update-helper (root) started with a test policy, which forks the real
// decnet-updaterd (as decnet-updater) with certificates made at test time, releases built at
// test time as tarballs that ship the unit decnet-agent.service and bin/decnet-test-agent,
// and requests made with the real curl over mTLS.
//
// Two shapes use it. The end-to-end fixture (updater_e2e_fixture.h) runs one worker on the
// host's network: the daemon listens on 127.0.0.1 and probes the agent there. A fleet
// (fleet_net.h) runs many, each in a network namespace of its own that its container joins
// and its helper is started in: the daemon listens on the worker's own address, probes the
// agent on that namespace's loopback, and curl reaches it from another namespace.
//
// Everything can be checked independently of the code under test: the container's systemd
// (Testbed::UnitProperty), the files on disk, the agent's own /health, the daemon's audit log
// and the helper's record. Failures are GoogleTest failures (EXPECT/ASSERT inside).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/daemon/test_pki.h"
#include "tests/integration/testbed.h"

namespace decnet::helper {
struct Policy;
}  // namespace decnet::helper

namespace decnet::test {

// What curl got: the HTTP status (0 when curl failed), the body, and the body as JSON (null
// when it is not JSON). `Describe()` shows all of it for failure messages.
struct HttpReply {
  int status = 0;
  std::string body;
  nlohmann::json json;
  std::string curl_log;
  std::string Describe() const;
};

// A release to build: the agent's version and flags, and which units it ships.
struct ReleaseSpec {
  std::string version;
  std::vector<std::string> agent_flags;  // e.g. {"--unhealthy"}, {"--crash-after-ms", "300"}
  bool extra_unit = false;               // also ship decnet-extra.service
  // The agent also takes the flags written in /etc/decnet/agent/flags-VERSION on the host
  // that runs it (WorkerHost::SetAgentFlags), so that one tarball behaves differently on
  // chosen hosts; it is then started through /bin/sh.
  bool host_flags = false;
  // Also ship share/padding: that many random (incompressible) bytes, for size benchmarks.
  size_t padding_bytes = 0;
};

struct BuiltRelease {
  std::filesystem::path tarball;
  std::string sha256;  // hex of the tarball
  std::string version;
  std::string sha;  // the form field `sha` (DECNET's commit); "" sends the digest's first 40
  std::string id() const { return sha256.substr(0, 16); }  // the store's release id
};

enum class Caller { kMaster, kWorker };

// How the unit dies: its daemon alone (the helper then ends as the pair closes, as in
// service), or the helper and the daemon together (systemd's kill of the unit's cgroup).
enum class Kill { kDaemonAlone, kWholeUnit };

// Builds a release tarball beside `tree` (TREE.tar.gz) from a fresh directory `tree`: a
// manifest with spec.version, the unit(s), the agent binary serving mTLS /health on
// 127.0.0.1:agent_port. Test failures when tar fails.
BuiltRelease BuildAgentRelease(const std::filesystem::path& tree, const ReleaseSpec& spec,
                               uint16_t agent_port);

// Writes a build of the updater whose daemon is a shell script into a fresh directory `tree`:
// the manifest of `version` for this machine and bin/decnet-updaterd holding `script` (0755),
// for builds that fail in a chosen way; the caller packs it. Test failures on error.
void WriteScriptedUpdaterBuild(const std::filesystem::path& tree, const std::string& version,
                               const std::string& script);

// Process and file helpers shared with the fleet harness (fleet_net.h).
namespace hostproc {
// The whole file, "" when it cannot be read.
std::string ReadText(const std::filesystem::path& path);
// Starts argv (a bare name is looked up in PATH) with stdin from /dev/null and stdout and
// stderr appended to the given files; `env` empty passes this process's environment.
// Returns the pid, -1 when it could not start.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            const std::filesystem::path& out, const std::filesystem::path& err);
// Waits up to `timeout` for `pid`; its wait status, nullopt while it still runs.
std::optional<int> WaitFor(pid_t pid, std::chrono::milliseconds timeout);
}  // namespace hostproc

// Where the agent's certificates and per-host flags are inside the container.
inline constexpr char kAgentCertDir[] = "/etc/decnet/agent";

class WorkerHost {
 public:
  static constexpr char kAgent[] = "decnet-agent.service";
  static constexpr char kExtra[] = "decnet-extra.service";

  struct Options {
    std::string name_prefix = "e2e";  // the container's name prefix
    // Where the worker's directory (decnet-e2e-XXXXXX) is made; it must be open to all.
    std::filesystem::path parent_dir = "/tmp";
    // The network namespace (/run/netns/NAME) the container joins and the helper starts in;
    // "" runs both on the host's network.
    std::string netns;
    // The namespace curl runs in as the master or a worker ("" the host's).
    std::string client_netns;
    std::string listen_address = "127.0.0.1";  // the daemon's, and what curl connects to
    uint16_t daemon_port = 0;                  // 0: a free loopback port
    uint16_t agent_port = 0;                   // 0: a free loopback port
    // The CA that issues every certificate (one per fleet); null makes one of its own.
    std::shared_ptr<const decnet::testing::TestCa> ca;
    // The master's certificate (CN decnet-master) shared by a fleet; null issues one.
    std::shared_ptr<const decnet::testing::Issued> master;
    int settle_ms = 1000;  // the daemon's settle_ms
    // Run the daemon from its own store, seeded with `--install-build` (update-self).
    bool daemon_from_store = false;
    // Give the daemon a policy file that differs from the helper's (one timeout changed).
    bool daemon_reads_another_policy = false;
    // Changes to daemon.json and to the helper's policy (the daemon reads the same), made
    // just before they are written.
    std::function<void(nlohmann::json&)> adjust_config;
    std::function<void(helper::Policy&)> adjust_policy;
  };

  // Makes the directories (under PARENT/decnet-e2e-XXXXXX) and picks ports; throws when no
  // temporary directory can be made or the user decnet-updater is missing.
  explicit WorkerHost(Options options);
  // Stops the helper and an owned container, then removes the directories.
  ~WorkerHost();
  WorkerHost(const WorkerHost&) = delete;
  WorkerHost& operator=(const WorkerHost&) = delete;

  Options& options() { return options_; }
  // The container this worker needs: its name prefix, network and binds.
  Testbed::Options TestbedOptions() const;
  // Uses a container someone else owns (booted with TestbedOptions()).
  void UseTestbed(Testbed* testbed) { testbed_ = testbed; }
  // Boots a container of its own; the error names what failed.
  tl::expected<void, std::string> Boot();
  // Certificates, the helper's policy and the daemon's configuration; the daemon's store
  // when it runs from there. Test failures on error.
  void Prepare();
  // Starts the helper (more DECNET_* variables in its environment are passed on to the
  // daemon) and waits up to 30 s for the daemon's /health with the helper alive.
  void StartHelper(const std::vector<std::string>& extra_env = {});
  // Ends the daemon with SIGTERM; the helper ends as the pair closes. Idempotent.
  void StopHelper();
  void RestartHelper();
  // Starts the helper and waits for it to end; its wait status, nullopt when it could not run.
  std::optional<int> StartHelperExpectingExit();
  // See AnUpdaterOnARealSystemd::KillUnit.
  std::optional<int> KillUnit(Kill how);
  // Stops the helper and an owned container (its console log on failure). Idempotent.
  void Shutdown();

  BuiltRelease BuildRelease(const ReleaseSpec& spec);
  BuiltRelease BuildUpdaterBuild(const std::string& version, bool broken = false);
  HttpReply Push(const BuiltRelease& release, Caller caller = Caller::kMaster);
  HttpReply PushWithDigest(const BuiltRelease& release, const std::string& sha256,
                           Caller caller = Caller::kMaster);
  HttpReply PushSelf(const BuiltRelease& build);
  HttpReply Rollback(Caller caller = Caller::kMaster);
  HttpReply Get(const std::string& path, Caller caller = Caller::kMaster);
  HttpReply AgentHealth();
  BuiltRelease Install(const ReleaseSpec& spec);
  // Writes the flags the agent of `version` takes on this host (ReleaseSpec::host_flags);
  // an empty list removes them.
  void SetAgentFlags(const std::string& version, const std::vector<std::string>& flags);

  pid_t DaemonPid() const;
  std::string RunningDaemonBuild() const;
  nlohmann::json HelperctlStatus() const;
  std::vector<nlohmann::json> AuditLog() const;
  std::vector<nlohmann::json> HelperRecord() const;
  std::string CurrentRelease() const;
  std::vector<std::string> StoredReleases() const;
  std::string Logs() const;

  Testbed& testbed() const { return *testbed_; }
  bool has_testbed() const { return testbed_ != nullptr; }
  const std::filesystem::path& root() const { return root_; }
  const std::filesystem::path& install_dir() const { return install_dir_; }
  const std::filesystem::path& agent_dir() const { return agent_dir_; }
  const std::filesystem::path& pki_dir() const { return pki_dir_; }
  std::filesystem::path updater_dir() const { return root_ / "updater"; }
  std::filesystem::path link_dir() const { return root_ / "links"; }
  uint16_t daemon_port() const { return daemon_port_; }
  uint16_t agent_port() const { return agent_port_; }
  const std::string& address() const { return options_.listen_address; }
  // SHA-256 of the updater's DER certificate, lower-case hex (after Prepare()).
  const std::string& updater_fingerprint() const { return updater_fingerprint_; }

 private:
  void MakePki();
  void WriteConfigs();
  void SeedUpdaterStore();
  std::vector<std::string> InNetns(const std::string& netns, std::vector<std::string> args) const;
  HttpReply Curl(const std::string& url, Caller caller, const std::vector<std::string>& extra,
                 const std::string& netns);
  std::string DaemonUrl(const std::string& path) const;

  Options options_;
  std::filesystem::path root_;
  std::filesystem::path install_dir_;
  std::filesystem::path agent_dir_;
  std::filesystem::path pki_dir_;
  std::shared_ptr<const decnet::testing::TestCa> ca_;
  std::string updater_fingerprint_;
  Testbed* testbed_ = nullptr;
  std::unique_ptr<Testbed> owned_testbed_;
  uint16_t daemon_port_ = 0;
  uint16_t agent_port_ = 0;
  int releases_built_ = 0;
  int curls_ = 0;
  pid_t helper_pid_ = -1;
};

}  // namespace decnet::test
