// The whole product on one machine, for the end-to-end tests (updater_e2e_test.cc), one
// worker (worker_host.h) on the host's network:
// a throw-away container whose PID 1 is a real systemd (shared host network, the install
// dir bound at /opt/decnet and the agent's certificates at /etc/decnet/agent), the real
// decnet-update-helper (root) started with a test policy, which forks the real
// decnet-updaterd (as decnet-updater) listening on 127.0.0.1 with certificates made at test
// time, releases built at test time as tarballs that ship the unit decnet-agent.service and
// bin/decnet-test-agent, and pushes made with the real curl over mTLS.
//
// Everything is checked twice: by what curl gets back, and independently through the
// container's systemd (Testbed::UnitProperty), the files on disk, the agent itself (its
// /health, probed with curl), the daemon's audit log and the helper's own record.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/daemon/test_pki.h"
#include "tests/integration/testbed.h"
#include "tests/integration/worker_host.h"

namespace decnet::test {

class AnUpdaterOnARealSystemd : public TestbedTest {
 protected:
  static constexpr char kAgent[] = "decnet-agent.service";
  static constexpr char kExtra[] = "decnet-extra.service";
  static constexpr char kUnitIface[] = "org.freedesktop.systemd1.Unit";
  static constexpr char kServiceIface[] = "org.freedesktop.systemd1.Service";

  AnUpdaterOnARealSystemd();
  ~AnUpdaterOnARealSystemd() override;
  void SetUp() override;
  void TearDown() override;
  Testbed::Options TestbedOptions() const override;

  // Builds a release tarball (a manifest with `version`, the unit(s), the agent binary).
  BuiltRelease BuildRelease(const ReleaseSpec& spec);
  // POST /update with `-F tarball=@... -F sha256=...` (and `-F sha=<commit>`); an empty
  // `sha256` leaves the field out.
  HttpReply Push(const BuiltRelease& release, Caller caller = Caller::kMaster);
  HttpReply PushWithDigest(const BuiltRelease& release, const std::string& sha256,
                           Caller caller = Caller::kMaster);
  HttpReply Rollback(Caller caller = Caller::kMaster);
  HttpReply Get(const std::string& path, Caller caller = Caller::kMaster);
  // GET /health of the agent itself (in the container), with the worker certificate.
  HttpReply AgentHealth();
  // Installs `spec` and asserts the 200 (fatal on failure, for set-up steps).
  BuiltRelease Install(const ReleaseSpec& spec);

  // --- update-self. A fixture that returns true runs the daemon from its own store
  // (root/updater/current/bin/decnet-updaterd), seeded before the helper starts with
  // `decnet-updaterd --install-build` as the decnet-updater user.
  virtual bool DaemonFromItsStore() const { return false; }
  // A fixture that returns true gives the daemon a policy file that differs from the
  // helper's (one timeout changed), as after a half-finished configuration change.
  virtual bool DaemonReadsAnotherPolicy() const { return false; }
  // A fixture may change the daemon's configuration (daemon.json) before it is written.
  virtual void AdjustDaemonConfig(nlohmann::json& /*config*/) const {}
  // A fixture may change the helper's policy (links, units) before it is written; the daemon
  // reads the same changes.
  virtual void AdjustHelperPolicy(helper::Policy& /*policy*/) const {}
  // The port the agent must serve its mTLS /health on (127.0.0.1, the host's network).
  uint16_t agent_port() const { return host_->agent_port(); }
  // An updater build: the daemon binary packed by scripts/pack-updater-build.sh (what the
  // updater-build target ships), or (broken) a manifest of kind "updater" for this host and a
  // script that answers --version and exits 1 otherwise, never saying hello.
  BuiltRelease BuildUpdaterBuild(const std::string& version, bool broken = false);
  // POST /update-self with confirm_self=true.
  HttpReply PushSelf(const BuiltRelease& build);
  // What systemd does for the unit: stop (the daemon gets SIGTERM) and start the helper again;
  // waits for /health. StartHelperExpectingExit() starts it and waits for it to end (a
  // daemon that never says hello), returning its exit status.
  void RestartHelper();
  std::optional<int> StartHelperExpectingExit();
  void StopUpdater() { StopHelper(); }
  // StartHelper() with more variables in the helper's environment (it passes DECNET_* on to
  // the daemon); waits for /health as SetUp does.
  void StartHelperWith(const std::vector<std::string>& extra_env);
  // SIGKILLs the running unit as `how` says, then every other process it had started (an
  // install command), as systemd does once the unit's main process is gone; waits until none
  // of them runs. Returns the helper's wait status, nullopt when it did not end within 15 s
  // (it is then killed) or none ran.
  std::optional<int> KillUnit(Kill how);
  // The daemon's pid (the helper's only child), -1 when none runs.
  pid_t DaemonPid() const;
  // The fixture's temporary directory (policy, configs, state, logs).
  const std::filesystem::path& root() const { return host_->root(); }
  // The build the running daemon was executed from (from /proc/PID/exe), "" when none runs.
  std::string RunningDaemonBuild() const;
  std::filesystem::path updater_dir() const { return host_->updater_dir(); }
  // The worker itself: its address, port, certificates (pki_dir()) and pinned fingerprint.
  const WorkerHost& worker() const { return *host_; }
  // `helperctl --config <the test policy> status --json`, parsed (null when it failed).
  nlohmann::json HelperctlStatus() const;

  // Reads a unit property through the container's bus ("" and a test failure on error).
  std::string Property(const std::string& unit, const char* iface, const char* property);
  // The daemon's audit log and the helper's record, one JSON object per line.
  std::vector<nlohmann::json> AuditLog() const;
  std::vector<nlohmann::json> HelperRecord() const;
  // The release the store's `current` link names ("" when there is none).
  std::string CurrentRelease() const;
  // Names of the release directories in the store.
  std::vector<std::string> StoredReleases() const;
  const std::filesystem::path& install_dir() const { return host_->install_dir(); }
  std::filesystem::path link_dir() const { return host_->link_dir(); }
  std::string Logs() const;  // the helper's and daemon's stderr

 private:
  void StartHelper() { host_->StartHelper(); }
  void StopHelper() { host_->StopHelper(); }

  std::unique_ptr<WorkerHost> host_;
};

}  // namespace decnet::test
