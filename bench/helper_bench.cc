// The helper's protocol path against a bare echo over the same kind of socketpair, and
// write_unit with its fsyncs. Run through bench/run.sh, which writes docs/performance.md.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "helper/handlers.h"
#include "helper/serve.h"
#include "proto/framing.h"
#include "proto/helper_protocol.h"

namespace {

using namespace decnet;

// The request both sides carry: a status query for a unit outside the allow-list, which the
// helper refuses before it would reach D-Bus.
const std::string kStatusFrame = R"({"v":1,"id":7,"type":"unit_status","name":"ssh.service"})";
const std::string kHelloFrame =
    R"({"v":1,"id":1,"type":"hello","min_version":1,"max_version":1,"client":"bench"})";

// A systemd adapter that must never be reached on the benchmarked path.
class Unreachable : public helper::SystemdManager {
 public:
  Result<void> Reload() override { std::abort(); }
  Result<helper::JobOutcome> RestartUnit(const UnitName&, std::chrono::milliseconds) override {
    std::abort();
  }
  Result<helper::JobOutcome> StopUnit(const UnitName&, std::chrono::milliseconds) override {
    std::abort();
  }
  Result<proto::UnitState> GetUnitState(const UnitName&) override { std::abort(); }
  Result<helper::LoadedView> GetLoadedView(const UnitName&) override { std::abort(); }
};

struct Pair {
  Pair() { socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd); }
  ~Pair() {
    if (fd[0] >= 0) close(fd[0]);
  }
  int fd[2] = {-1, -1};
};

// A temporary tree of the helper's directories.
struct Tree {
  Tree() {
    char tmpl[] = "/tmp/decnet-bench.XXXXXX";
    root = mkdtemp(tmpl);
    chmod(root.c_str(), 0755);
    for (const char* d : {"units", "bin"}) {
      std::filesystem::create_directory(root + "/" + d);
      chmod((root + "/" + d).c_str(), 0755);
    }
    policy = helper::Policy::Defaults();
    policy.unit_dir = root + "/units";
    policy.link_dir = root + "/bin";
    policy.state_dir = root + "/state";
    dirs = *helper::OpenHelperDirs(policy);
  }
  ~Tree() {
    for (int fd : {dirs.unit_dir, dirs.link_dir, dirs.state_dir}) close(fd);
    std::filesystem::remove_all(root);
  }
  std::string root;
  helper::Policy policy;
  helper::HelperDirs dirs;
};

void RoundTrip(benchmark::State& state, int fd) {
  for (auto _ : state) {
    if (!SendFrame(fd, kStatusFrame)) state.SkipWithError("send failed");
    auto reply = RecvFrame(fd);
    if (!reply) state.SkipWithError("receive failed");
    benchmark::DoNotOptimize(reply);
  }
}

void BM_BareEcho(benchmark::State& state) {
  Pair pair;
  std::thread echo([fd = pair.fd[1]] {
    while (auto frame = RecvFrame(fd)) {
      if (!SendFrame(fd, *frame)) break;
    }
    close(fd);
  });
  RoundTrip(state, pair.fd[0]);
  shutdown(pair.fd[0], SHUT_WR);
  echo.join();
}
BENCHMARK(BM_BareEcho)->UseRealTime();

void BM_HelperProtocolPath(benchmark::State& state) {
  Tree tree;
  Unreachable systemd;
  Pair pair;
  std::thread helper([&, fd = pair.fd[1]] {
    helper::Serve(fd, tree.policy, tree.dirs, systemd, {.notify = false});
    close(fd);
  });
  if (!SendFrame(pair.fd[0], kHelloFrame) || !RecvFrame(pair.fd[0])) {
    state.SkipWithError("hello failed");
  }
  RoundTrip(state, pair.fd[0]);
  shutdown(pair.fd[0], SHUT_WR);
  helper.join();
}
BENCHMARK(BM_HelperProtocolPath)->UseRealTime();

void BM_WriteUnitWithFsync(benchmark::State& state) {
  Tree tree;
  Unreachable systemd;
  auto units = *helper::UnitRecord::Load(tree.dirs.state_dir);
  helper::Session session{tree.policy, tree.dirs, systemd, units, "", helper::Phase::kServing, {}};
  auto name = *UnitName::Parse("decnet-bench.service");
  std::string base =
      "[Unit]\nDescription=bench\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
      "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n# revision ";
  uint64_t n = 0;
  for (auto _ : state) {
    auto r = helper::HandleWriteUnit(session, {name, base + std::to_string(n++) + "\n"});
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
}
BENCHMARK(BM_WriteUnitWithFsync)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
