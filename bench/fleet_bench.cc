// decnet-rollout against a fleet on one machine (tests/integration/fleet_net.h): real helpers,
// daemons and systemd containers, one network namespace per worker, the master in a hub
// namespace. Driven by bench/fleet_bench.sh, which turns the JSON it prints into the
// fleet-bench section of docs/performance.md.
//
// For each fleet size N (--sizes, default 5,10,20): one release pushed to each of w1..wN
// alone (`push --host wK`, one after the other: the single-host update times), then the next
// release to all N at once (`push --host w1 ... --host wN --batch N --max-parallel 5`: the
// canary alone, then the others five at a time); wall times from the master's side,
// peak RSS of decnet-rollout from wait4(2). Then the master's peak RSS for two tarball sizes
// (--small-mib, --large-mib of incompressible padding) pushed to five workers.
//
// usage: fleet_bench [--sizes 5,10,20] [--small-mib 5] [--large-mib 50] [--settle-ms 1000]
// Run as root, after scripts/setup.sh. Prints one JSON document on stdout; progress on stderr.
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/fleet_net.h"

#ifndef DECNET_ROLLOUT_BINARY
#error "DECNET_ROLLOUT_BINARY must name decnet-rollout"
#endif

namespace {

// VmHWM of `pid` in KiB once it runs decnet-rollout (0 before, or when it cannot be read): the
// high-water mark of what the tool has mapped since its exec, not of the copy of this driver
// that ran before it.
long PeakRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  if (!std::getline(in, line) || line.find("decnet-rollout") == std::string::npos) return 0;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

using decnet::test::BuiltRelease;
using decnet::test::Fleet;
using decnet::test::ReleaseSpec;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Run {
  int exit_code = -1;
  double wall_ms = 0;
  long max_rss_kib = 0;
  std::string output;
};

// decnet-rollout push ARGS... in the hub; wall time and peak RSS of that process alone.
Run Push(Fleet& fleet, const std::vector<std::string>& hosts, const BuiltRelease& release,
         size_t batch) {
  static int count = 0;
  const std::string name = "bench" + std::to_string(++count);
  std::vector<std::string> argv = {DECNET_ROLLOUT_BINARY,
                                   "push",
                                   "--inventory",
                                   (fleet.dir() / "inventory.json").string(),
                                   "--cert",
                                   fleet.master_cert().string(),
                                   "--key",
                                   fleet.master_key().string(),
                                   "--ca",
                                   fleet.ca_file().string(),
                                   "--batch",
                                   std::to_string(batch),
                                   "--max-parallel",
                                   "5"};
  for (const auto& h : hosts) argv.insert(argv.end(), {"--host", h});
  argv.push_back(release.tarball.string());
  Run r;
  const auto start = Clock::now();
  const pid_t pid = fleet.SpawnInHub(argv, name);
  if (pid <= 0) return r;
  // The peak is the running image's VmHWM, sampled until it exits. Not wait4's ru_maxrss: that
  // also counts the memory of this driver the child was forked from before it exec'd, and the
  // driver holds whole tarballs (it hashes them), which would pass for the tool's.
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (long hwm = PeakRssKib(pid); hwm > r.max_rss_kib) r.max_rss_kib = hwm;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.output = decnet::test::hostproc::ReadText(fleet.dir() / (name + ".out")) +
             decnet::test::hostproc::ReadText(fleet.dir() / (name + ".err"));
  return r;
}

std::vector<int> ParseSizes(const std::string& text) {
  std::vector<int> sizes;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) sizes.push_back(std::stoi(item));
  return sizes;
}

[[noreturn]] void Die(const std::string& why) {
  std::cerr << "fleet_bench: " << why << '\n';
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {5, 10, 20};
  size_t small_mib = 5, large_mib = 50;
  int settle_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) Die("usage: fleet_bench [--sizes 5,10,20] [--small-mib N] [--large-mib N]");
    const std::string v = argv[++i];
    if (a == "--sizes")
      sizes = ParseSizes(v);
    else if (a == "--small-mib")
      small_mib = std::stoul(v);
    else if (a == "--large-mib")
      large_mib = std::stoul(v);
    else if (a == "--settle-ms")
      settle_ms = std::stoi(v);
    else
      Die("unknown argument " + a);
  }
  const int hosts = std::max(5, *std::max_element(sizes.begin(), sizes.end()));
  std::cerr << "fleet_bench: starting " << hosts << " workers\n";
  const auto boot_start = Clock::now();
  auto started = Fleet::Start(Fleet::Options{.hosts = hosts,
                                             .daemon_port = 8766,
                                             .agent_port = 9443,
                                             .settle_ms = settle_ms,
                                             .parallel_starts = 5});
  if (!started) Die("the fleet did not start: " + started.error());
  Fleet& fleet = **started;
  const double boot_s = std::chrono::duration<double>(Clock::now() - boot_start).count();
  fleet.WriteInventory("inventory.json");

  int version = 0;
  auto release = [&](size_t mib) {
    ReleaseSpec spec;
    spec.version = "1." + std::to_string(++version) + ".0";
    spec.padding_bytes = mib << 20;
    return fleet.BuildRelease(spec);
  };
  auto names = [](int n) {
    std::vector<std::string> out;
    for (int k = 1; k <= n; ++k) out.push_back("w" + std::to_string(k));
    return out;
  };
  auto size_of = [](const BuiltRelease& r) {
    return static_cast<long long>(std::filesystem::file_size(r.tarball));
  };

  json results = {{"workers_started", hosts},
                  {"boot_s", boot_s},
                  {"settle_ms", settle_ms},
                  {"rollouts", json::array()},
                  {"memory", json::array()}};
  for (int n : sizes) {
    const BuiltRelease single = release(small_mib);
    json singles = json::array();
    double sum = 0;
    for (const auto& host : names(n)) {
      const Run r = Push(fleet, {host}, single, 1);
      if (r.exit_code != 0) Die("single push to " + host + " failed:\n" + r.output);
      singles.push_back(r.wall_ms);
      sum += r.wall_ms;
    }
    const BuiltRelease all = release(small_mib);
    const Run r = Push(fleet, names(n), all, static_cast<size_t>(n));
    if (r.exit_code != 0) Die("rollout to " + std::to_string(n) + " failed:\n" + r.output);
    std::cerr << "fleet_bench: " << n << " workers: rollout " << r.wall_ms << " ms, sum of single "
              << sum << " ms (sum/5 " << sum / 5 << " ms)\n";
    results["rollouts"].push_back({{"workers", n},
                                   {"tarball_bytes", size_of(all)},
                                   {"single_ms", singles},
                                   {"sum_single_ms", sum},
                                   {"wall_ms", r.wall_ms},
                                   {"max_rss_kib", r.max_rss_kib}});
  }
  for (size_t mib : {small_mib, large_mib}) {
    const BuiltRelease rel = release(mib);
    const Run r = Push(fleet, names(5), rel, 5);
    if (r.exit_code != 0)
      Die("memory rollout (" + std::to_string(mib) + " MiB) failed:\n" + r.output);
    std::cerr << "fleet_bench: " << size_of(rel) << " bytes to 5 workers: peak RSS "
              << r.max_rss_kib << " KiB\n";
    results["memory"].push_back({{"workers", 5},
                                 {"tarball_bytes", size_of(rel)},
                                 {"wall_ms", r.wall_ms},
                                 {"max_rss_kib", r.max_rss_kib}});
  }
  if (auto done = fleet.Shutdown(); !done) std::cerr << "fleet_bench: " << done.error() << '\n';
  std::cout << results.dump(2) << '\n';
  return 0;
}
