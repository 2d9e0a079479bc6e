#include "tests/integration/helper_testbed.h"

#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace decnet::test {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::pair<int, std::string> Command(const std::vector<std::string>& args) {
  char tmpl[] = "/tmp/decnet-test-cmd.XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) return {-1, "mkstemp failed"};
  ::close(fd);
  const int rc = RunToLog(args, tmpl);
  std::string out = Slurp(tmpl);
  ::unlink(tmpl);
  return {rc, out};
}

std::string Describe(const HelperRun& run) {
  std::ostringstream s;
  s << "exit " << run.ExitCode() << (run.timed_out ? " (timed out)" : "") << "\nreplies:\n";
  for (const auto& r : run.replies) s << "  " << r << "\n";
  s << "helper log:\n" << run.log;
  return s.str();
}

std::string Str(const nlohmann::json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

int EnterPrivateMountNamespace() {
  static const int failed = [] {
    if (::unshare(CLONE_NEWNS) != 0) return errno;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
    return 0;
  }();
  return failed;
}

std::string ContainerRoot(const Testbed& testbed) {
  const std::string nspawn = Slurp(testbed.workdir() / "nspawn.pid");
  const std::string pid = nspawn.substr(0, nspawn.find('\n'));
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::istringstream children(Slurp("/proc/" + pid + "/task/" + pid + "/children"));
    for (std::string child; children >> child;) {
      if (Slurp("/proc/" + child + "/comm") == "systemd\n") return "/proc/" + child + "/root";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

}  // namespace decnet::test
