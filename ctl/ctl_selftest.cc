// `helperctl selftest`: runs the helper binary in --selftest mode and judges it. The helper
// prints its checks and announces the forbidden call it is about to make; the run passes only
// if every check was ok AND the process then died by SIGSYS, so a helper that crashed for
// another reason, or exited, cannot pass. Where the kernel log is readable, the seccomp audit
// record (type=1326) is used to confirm which system call was refused.
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "ctl/ctl.h"

namespace decnet::helper::ctl {
namespace {

constexpr std::string_view kAnnounce = "calling forbidden system call: ";

struct Announced {
  std::string name;
  long nr = -1;
};

// Parses "calling forbidden system call: NAME (NR)".
std::optional<Announced> ParseAnnounce(std::string_view line) {
  if (line.substr(0, kAnnounce.size()) != kAnnounce) return std::nullopt;
  line.remove_prefix(kAnnounce.size());
  const size_t open = line.find(" (");
  if (open == std::string_view::npos || line.back() != ')') return std::nullopt;
  Announced a;
  a.name = std::string(line.substr(0, open));
  const std::string nr(line.substr(open + 2, line.size() - open - 3));
  char* end = nullptr;
  a.nr = std::strtol(nr.c_str(), &end, 10);
  if (nr.empty() || *end != '\0') return std::nullopt;
  return a;
}

// Looks for the kernel's seccomp audit record of `pid` in /dev/kmsg and returns the system
// call number it names, if the log is readable and the record is there.
std::optional<long> AuditedSyscall(pid_t pid) {
  const std::string pid_key = " pid=" + std::to_string(pid) + " ";
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int fd = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    char buf[8192];
    ssize_t n = 0;
    std::optional<long> found;
    while ((n = ::read(fd, buf, sizeof buf)) != 0) {
      if (n < 0) {
        if (errno == EPIPE) continue;  // a record was overwritten while we read
        break;                         // EAGAIN: the end of the buffer
      }
      const std::string_view rec(buf, static_cast<size_t>(n));
      if (rec.find("type=1326") == std::string_view::npos ||
          rec.find(pid_key) == std::string_view::npos)
        continue;
      const size_t at = rec.find(" syscall=");
      if (at != std::string_view::npos)
        found = std::atol(std::string(rec.substr(at + 9, 12)).c_str());
    }
    ::close(fd);
    if (found) return found;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // kauditd prints asynchronously
  }
  return std::nullopt;
}

std::string SyscallName(long nr) {
  char* name = ::seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(nr));
  if (name == nullptr) return "?";
  std::string out = name;
  std::free(name);
  return out;
}

}  // namespace

int RunSelftest(const std::string& config_path, const std::string& helper_binary) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "helperctl: pipe: %s\n", std::strerror(errno));
    return 2;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "helperctl: fork: %s\n", std::strerror(errno));
    return 2;
  }
  if (child == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    // The SIGSYS death is expected: no core file for it.
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    const char* argv[] = {helper_binary.c_str(), "--selftest", "--config", config_path.c_str(),
                          nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    std::fprintf(stderr, "helperctl: exec %s: %s\n", helper_binary.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);

  FILE* lines = ::fdopen(out[0], "r");
  int ok = 0, failed = 0;
  std::optional<Announced> announced;
  bool output_after_announce = false;
  char* line = nullptr;
  size_t cap = 0;
  ssize_t len = 0;
  while (lines != nullptr && (len = ::getline(&line, &cap, lines)) > 0) {
    std::string_view text(line, static_cast<size_t>(len));
    if (text.back() == '\n') text.remove_suffix(1);
    std::printf("%.*s\n", static_cast<int>(text.size()), text.data());
    std::fflush(stdout);
    if (announced) output_after_announce = true;
    if (text.substr(0, 4) == "ok: ") ++ok;
    if (text.substr(0, 6) == "FAIL: ") ++failed;
    if (auto a = ParseAnnounce(text)) announced = a;
  }
  std::free(line);
  if (lines != nullptr) std::fclose(lines);

  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  const bool sigsys = WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
  if (WIFSIGNALED(status))
    std::printf("helper killed by signal %d (%s)\n", WTERMSIG(status),
                ::strsignal(WTERMSIG(status)));
  else
    std::printf("helper exited with status %d\n", WEXITSTATUS(status));

  bool pass = failed == 0 && ok > 0 && announced.has_value() && !output_after_announce && sigsys;
  if (announced && SyscallName(announced->nr) != announced->name) {
    std::printf("FAIL: announced call %s does not match number %ld (%s)\n", announced->name.c_str(),
                announced->nr, SyscallName(announced->nr).c_str());
    pass = false;
  }
  if (sigsys && announced) {
    if (const auto audited = AuditedSyscall(child)) {
      const bool same = *audited == announced->nr;
      std::printf("%s: kernel audit record: seccomp killed pid %d at syscall=%ld (%s)\n",
                  same ? "ok" : "FAIL", static_cast<int>(child), *audited,
                  SyscallName(*audited).c_str());
      pass = pass && same;
    } else {
      std::printf("note: no kernel audit record readable to confirm the refused call\n");
    }
  }
  if (pass) {
    std::printf("selftest passed: %d checks ok; forbidden system call %s (%ld) killed by SIGSYS\n",
                ok, announced->name.c_str(), announced->nr);
    return 0;
  }
  std::printf("selftest FAILED: %d checks failed%s%s\n", failed,
              announced ? "" : "; the forbidden call was never announced",
              sigsys ? "" : "; the helper did not die by SIGSYS");
  return 1;
}

}  // namespace decnet::helper::ctl
