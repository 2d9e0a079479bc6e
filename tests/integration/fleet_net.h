// A fleet of workers on one machine, each a host of its own on a private network.
//
// FleetNetwork: network namespaces made with `ip netns`. A hub namespace PREFIX-hub holds a
// bridge br0 (10.A.B.254/24, A.B chosen per fleet); each worker N (1-based) has its own
// namespace PREFIX-wN whose eth0 (10.A.B.N/24) is one end of a veth pair whose other end, vN,
// is a port of the bridge. Every namespace's loopback is up. Traffic never leaves these
// namespaces. PREFIX is "dfleet-<pid>-<n>": namespaces left by a run that died are found by
// that pid and removed (with what still runs inside them) by ReapLeftovers(). A fleet's files
// (the master's certificate, inventories, releases, each worker's directory) live in
// /tmp/decnet-fleet-<pid>-XXXXXX, reaped the same way.
//
// Fleet: one CA for the whole fleet (the master's client certificate from it), and one
// WorkerHost (worker_host.h) per worker: its container joined to the worker's namespace, its
// helper (which forks the daemon) started inside it, the daemon listening on 10.A.B.N with an
// updater certificate of its own, probing its agent on the namespace's 127.0.0.1. The master's
// side (curl, decnet-rollout) runs in the hub and reaches each worker by its address only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "tests/daemon/test_pki.h"
#include "tests/integration/worker_host.h"

namespace decnet::test {

class FleetNetwork {
 public:
  // Creates the hub, the bridge and `hosts` worker namespaces (1..250). On failure, removes
  // what it made and returns the `ip` commands' output.
  static tl::expected<std::unique_ptr<FleetNetwork>, std::string> Create(int hosts);
  // Destroy(); errors are printed.
  ~FleetNetwork();
  FleetNetwork(const FleetNetwork&) = delete;
  FleetNetwork& operator=(const FleetNetwork&) = delete;

  // Kills what still runs in each namespace, deletes the namespaces (the bridge and veths go
  // with them), and unmounts /run/netns when no namespace is left there and it was not
  // mounted before the first fleet of this process. Idempotent.
  tl::expected<void, std::string> Destroy();
  // Removes what earlier runs whose process is gone left: their namespaces (killing what
  // still runs in them), the /run/netns mount when nothing else is left there, and their
  // fleet directories (/tmp/decnet-fleet-PID-*). Call after the testbed's reap (which stops
  // their containers) and before creating a fleet.
  static void ReapLeftovers();

  const std::string& prefix() const { return prefix_; }
  std::string hub() const { return prefix_ + "-hub"; }
  std::string worker_netns(int n) const { return prefix_ + "-w" + std::to_string(n); }
  std::string address(int n) const { return subnet_ + std::to_string(n); }
  std::string hub_address() const { return subnet_ + "254"; }
  int hosts() const { return hosts_; }
  // Sets worker N's eth0 down or up (down: its address stops answering, even ARP).
  tl::expected<void, std::string> SetLink(int n, bool up);

 private:
  FleetNetwork(std::string prefix, std::string subnet, int hosts, std::filesystem::path log)
      : prefix_(std::move(prefix)),
        subnet_(std::move(subnet)),
        hosts_(hosts),
        log_(std::move(log)) {}
  tl::expected<void, std::string> Ip(const std::vector<std::string>& args);

  std::string prefix_;
  std::string subnet_;  // "10.A.B."
  int hosts_ = 0;
  std::filesystem::path log_;
  std::vector<std::string> made_;  // namespaces created, in order
};

// What a command run in the hub printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or never ran
  int signal = 0;      // the signal that ended it, 0 when it exited
  std::string out;
  std::string err;
  std::string Describe() const;
};

class Fleet {
 public:
  struct Options {
    int hosts = 5;
    uint16_t daemon_port = 8766;  // the same on every worker: each has an address of its own
    uint16_t agent_port = 9443;   // the same on every worker: one tarball for all
    int settle_ms = 1000;         // the daemons' settle_ms
    int parallel_starts = 5;      // workers booted at once
  };

  // Reaps leftovers, creates the network, boots every worker and starts its helper. Returns
  // what failed (the fleet is then torn down).
  static tl::expected<std::unique_ptr<Fleet>, std::string> Start(const Options& options);
  // Shutdown(); errors are printed.
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;
  // Stops every helper and container, then the network. Idempotent.
  tl::expected<void, std::string> Shutdown();

  int size() const { return static_cast<int>(workers_.size()); }
  // Worker N, 1-based (its name is "wN", its address net().address(N)).
  WorkerHost& worker(int n) { return *workers_.at(n - 1); }
  FleetNetwork& net() { return *net_; }
  // The fleet's directory: the master's files (ca.crt, master.crt, master.key), inventories,
  // releases, command output, and each worker's own directory.
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path ca_file() const { return dir_ / "ca.crt"; }
  std::filesystem::path master_cert() const { return dir_ / "master.crt"; }
  std::filesystem::path master_key() const { return dir_ / "master.key"; }

  // Writes an inventory {"hosts":[{name, address, port, fingerprint}]} naming every worker
  // with its own updater certificate's fingerprint, except where `fingerprints` (by name)
  // says otherwise; returns its path.
  std::filesystem::path WriteInventory(
      const std::string& file_name,
      const std::vector<std::pair<std::string, std::string>>& fingerprints = {}) const;
  // Builds a release for the whole fleet (the agent on options().agent_port) in dir().
  BuiltRelease BuildRelease(const ReleaseSpec& spec);

  // Runs argv in the hub namespace to completion (SIGKILL after `timeout`).
  CommandResult RunInHub(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout) const;
  // Starts argv in the hub namespace; stdout and stderr go to dir()/NAME.out and .err.
  pid_t SpawnInHub(const std::vector<std::string>& args, const std::string& name) const;
  // Waits for a process SpawnInHub started (SIGKILL after `timeout`) and reads its output.
  CommandResult WaitInHub(pid_t pid, const std::string& name,
                          std::chrono::milliseconds timeout) const;

  const Options& options() const { return options_; }

 private:
  explicit Fleet(const Options& options);

  Options options_;
  std::filesystem::path dir_;
  std::unique_ptr<FleetNetwork> net_;
  std::shared_ptr<const decnet::testing::TestCa> ca_;
  std::vector<std::unique_ptr<WorkerHost>> workers_;
  int releases_built_ = 0;
};

}  // namespace decnet::test
