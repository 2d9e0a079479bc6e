#include "helper/daemon_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "helper/log.h"

namespace decnet::helper {
namespace {

constexpr size_t kMaxRelayLine = 4096;
constexpr int kRelayPipeBytes = 1 << 20;

Result<LineRelay> MakePipe(UniqueFd& daemon_end, int out_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return Fail(ErrorCode::kFailed, "daemon-log", std::string("pipe2: ") + std::strerror(errno));
  UniqueFd read_end(p[0]);
  daemon_end.reset(p[1]);
  // Room for the daemon's lines while the helper waits on systemd; best effort.
  (void)::fcntl(p[0], F_SETPIPE_SZ, kRelayPipeBytes);
  // SECURITY: only the helper's end is non-blocking; the file description is the helper's
  // alone, so the daemon cannot change it.
  if (::fcntl(p[0], F_SETFL, O_NONBLOCK) != 0)
    return Fail(ErrorCode::kFailed, "daemon-log", std::string("fcntl: ") + std::strerror(errno));
  return LineRelay(std::move(read_end), out_fd);
}

}  // namespace

void LineRelay::Emit(std::string_view line) {
  std::string out(kDaemonLogIdentifier);
  out += ": ";
  // SECURITY: escaped: a relayed line cannot carry a second line or a terminal sequence.
  out += EscapeForLog(line, kMaxRelayLine);
  out += '\n';
  (void)WriteAll(out_fd_, out);
}

bool LineRelay::Pump() {
  char buf[16 * 1024];
  while (open_) {
    const ssize_t n = ::read(in_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // EAGAIN: nothing more for now
    if (n == 0) {
      open_ = false;
      break;
    }
    partial_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
      Emit(std::string_view(partial_).substr(start, nl - start));
    partial_.erase(0, start);
    while (partial_.size() > kMaxRelayLine) {
      Emit(std::string_view(partial_).substr(0, kMaxRelayLine));
      partial_.erase(0, kMaxRelayLine);
    }
  }
  return open_;
}

void LineRelay::Flush() {
  Pump();
  if (!partial_.empty()) Emit(partial_);
  partial_.clear();
}

bool StderrIsJournal(const char* journal_stream) {
  if (journal_stream == nullptr) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  return std::string(journal_stream) == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

Result<DaemonOutput> OpenDaemonOutput(bool use_journal) {
  DaemonOutput out;
  if (use_journal) {
    const std::string id(kDaemonLogIdentifier);
    const int fd = ::sd_journal_stream_fd(id.c_str(), LOG_INFO, 1);
    struct stat st {};
    if (fd >= 0 && ::fstat(fd, &st) == 0) {
      out.daemon_stdout.reset(fd);
      out.daemon_stderr.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
      out.journal_stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
      if (out.daemon_stderr.valid()) return out;
    } else if (fd >= 0) {
      ::close(fd);
    }
    out = DaemonOutput{};
  }
  auto relay_out = MakePipe(out.daemon_stdout, STDOUT_FILENO);
  if (!relay_out) return tl::make_unexpected(relay_out.error());
  auto relay_err = MakePipe(out.daemon_stderr, STDERR_FILENO);
  if (!relay_err) return tl::make_unexpected(relay_err.error());
  out.relays.push_back(std::move(*relay_out));
  out.relays.push_back(std::move(*relay_err));
  return out;
}

void SetDaemonJournalStream(std::vector<std::string>& env, const DaemonOutput& output) {
  std::erase_if(env, [](const std::string& e) { return e.starts_with("JOURNAL_STREAM="); });
  if (!output.journal_stream.empty()) env.push_back("JOURNAL_STREAM=" + output.journal_stream);
}

}  // namespace decnet::helper
