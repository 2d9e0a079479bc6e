// decnet-updaterd-faults: decnet-updaterd with injection points, for the crash matrix
// (crash_e2e_test.cc) and nothing else; it is built only with the tests and never installed.
//
// Started by the real helper exactly like decnet-updaterd. With DECNET_FAULT_FIFO and
// DECNET_FAULT_POINT in its environment (the helper passes DECNET_* variables through), the
// first time the update reaches the named point it writes the point's name and a newline to
// the FIFO, then stops itself with SIGSTOP; the test, blocked on the FIFO, kills it from
// outside. Without them it is decnet-updaterd.
//
// The points, each reached through a hook the daemon's own code calls, during an update or
// update-self (once its upload was verified; never in start-up's reconciliation):
//   * every UpdatePipeline step ("extracted", "complete", "flipped", "unit-written", ...,
//     "self-complete", "self-flipped"): at the step;
//   * "extracting", "self-extracting": mid-extraction, once the extractor has created the
//     DECNET_FAULT_NTH-th file (default 1) of the release or build, counted at the
//     openat2(O_CREAT) the extraction writer issues (the link-time wrap of syscall() below);
//   * "installing": mid-install, once the daemon has read the line "decnet-fault: installing"
//     from the install command's output (the wrap of read() below): the test's install command
//     prints it, then blocks on a FIFO until it is killed with the unit;
//   * "uploading": at the first chunk of an update's body after which the spool file holds
//     data on disk; "spooled": once the upload's digest was verified;
//   * "gate": once the new release's health gate has given its verdict, before the pipeline
//     acts on it (commit or rollback).
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/api.h"
#include "daemon/daemon_main.h"
#include "daemon/health_gate.h"
#include "daemon/sanitizer_defaults.h"
#include "daemon/update_pipeline.h"

namespace {

struct FaultPlan {
  std::string fifo;   // where the point is announced
  std::string point;  // "" : no injection
  int nth = 1;        // mid-extraction: which created file
};

FaultPlan& Plan() {
  static FaultPlan plan;
  return plan;
}

std::atomic<bool> g_fired{false};
// Pipeline steps count only inside an operation the API started (its upload was verified):
// start-up's reconciliation writes units too, and must run through.
std::atomic<bool> g_in_operation{false};
// Mid-extraction counting: armed at the extracting step, files created since.
std::atomic<bool> g_counting{false};
std::atomic<int> g_created{0};
// Mid-install: armed at the installing step, until the marker is read.
std::atomic<bool> g_installing{false};
constexpr std::string_view kInstallMarker = "decnet-fault: installing";

FaultPlan ReadPlan() {
  FaultPlan plan;
  const char* fifo = std::getenv("DECNET_FAULT_FIFO");
  const char* point = std::getenv("DECNET_FAULT_POINT");
  const char* nth = std::getenv("DECNET_FAULT_NTH");
  if (fifo == nullptr || point == nullptr || *fifo == '\0') return plan;
  plan.fifo = fifo;
  plan.point = point;
  if (nth != nullptr) plan.nth = std::max(1, std::atoi(nth));
  return plan;
}

// Announces `point` once and stops the whole process (every thread) right there.
void AnnounceAndStop(std::string_view point) {
  if (g_fired.exchange(true)) return;
  const std::string line = std::string(point) + "\n";
  const int fd = ::open(Plan().fifo.c_str(), O_WRONLY | O_CLOEXEC);  // waits for the reader
  if (fd >= 0) {
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  }
  ::raise(SIGSTOP);
}

void Reached(std::string_view point) {
  if (!Plan().point.empty() && point == Plan().point) AnnounceAndStop(point);
}

// The pipeline's step hook: the named steps, and the start and end of extraction.
void OnStep(std::string_view step) {
  if (!g_in_operation.load()) return;
  const std::string& point = Plan().point;
  if ((step == "extracting" || step == "self-extracting") && step == point) {
    g_created.store(0);
    g_counting.store(true);
    return;
  }
  if (step == "extracted" || step == "self-extracted") g_counting.store(false);
  if (step == "installing" && step == point) {
    g_installing.store(true);
    return;
  }
  if (step == "installed") g_installing.store(false);
  Reached(step);
}

// True when this process holds an open file beneath a spool directory with data in it (the
// spool file is anonymous: its link reads ".../spool/#N (deleted)").
bool SpoolHoldsData() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(e.path(), link_ec).string();
    if (link_ec || target.find("/spool/") == std::string::npos) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) return true;
  }
  return false;
}

void OnUpload(std::string_view step) {
  if (step == "spooled") g_in_operation.store(true);
  if (step == "uploading" && Plan().point == "uploading" && !SpoolHoldsData()) return;
  Reached(step);
}

// The real gate, announcing once its verdict is in.
class AnnouncingGate final : public decnet::daemon::HealthGate {
 public:
  explicit AnnouncingGate(std::unique_ptr<HealthGate> inner) : inner_(std::move(inner)) {}
  decnet::daemon::GateVerdict Check(const std::map<decnet::UnitName, uint32_t>& restarts,
                                    const std::string& version,
                                    std::chrono::steady_clock::time_point deadline) override {
    auto verdict = inner_->Check(restarts, version, deadline);
    if (g_in_operation.load()) Reached("gate");
    return verdict;
  }

 private:
  std::unique_ptr<HealthGate> inner_;
};

}  // namespace

// Every syscall() of this binary comes through here (-Wl,--wrap=syscall on this target only).
// The extraction writer creates each file with openat2(O_CREAT); counted while armed. Other
// calls pass through untouched (also between fork and exec: nothing here allocates then).
// Reading six arguments whatever the call is what glibc's own syscall() does on x86-64 and
// aarch64.
extern "C" long __real_syscall(long number, ...);
extern "C" long __wrap_syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& arg : a) arg = va_arg(ap, long);
  va_end(ap);
  const long result = __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (number == SYS_openat2 && result >= 0 && g_counting.load()) {
    const auto* how = reinterpret_cast<const open_how*>(a[2]);
    if (how != nullptr && (how->flags & O_CREAT) && g_created.fetch_add(1) + 1 == Plan().nth) {
      g_counting.store(false);
      AnnounceAndStop(Plan().point);
    }
  }
  return result;
}

// Every read() of this binary's own code (-Wl,--wrap=read): while the install step is armed,
// output carrying the marker means the install command is running.
extern "C" ssize_t __real_read(int fd, void* buf, size_t count);
extern "C" ssize_t __wrap_read(int fd, void* buf, size_t count) {
  const ssize_t n = __real_read(fd, buf, count);
  if (n > 0 && g_installing.load() &&
      std::string_view(static_cast<const char*>(buf), static_cast<size_t>(n))
              .find(kInstallMarker) != std::string_view::npos) {
    g_installing.store(false);
    AnnounceAndStop("installing");
  }
  return n;
}

int main(int argc, char** argv) {
  Plan() = ReadPlan();
  decnet::daemon::DaemonTestSeams seams;
  if (!Plan().point.empty()) {
    seams.wrap_gate = [](std::unique_ptr<decnet::daemon::HealthGate> gate)
        -> std::unique_ptr<decnet::daemon::HealthGate> {
      return std::make_unique<AnnouncingGate>(std::move(gate));
    };
    seams.serving = [](decnet::daemon::UpdatePipeline& pipeline, decnet::daemon::UpdaterApi& api) {
      pipeline.SetStepHook(OnStep);
      api.SetUploadHook(OnUpload);
    };
  }
  return decnet::daemon::RunDaemon(argc, argv, seams);
}
