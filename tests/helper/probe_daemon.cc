// A stand-in for decnet-updaterd that the real helper execs in the confinement tests. It
// reports, one "key=value" line each on stdout, what it was given: ids, groups, the five
// capability sets, NoNewPrivs, Seccomp, its open descriptors and environment names; then it
// says hello over fd 3 and reports the reply; then it idles until EOF on stdin (or the pair
// closes), and exits.
//
// Arguments (from the test policy's daemon_args):
//   --hello-delay-ms N   wait N ms before saying hello (READY=1 ordering test)
//   --exit-after-hello   exit 0 right after the hello reply (the helper should then end)
//   --garbage-after-hello  send a frame that is not JSON (a protocol violation), then idle
//   --hostile-output     before hello, set its stdout and stderr non-blocking and write lines
//                        dressed as the helper's (with a CR and an escape sequence) to both
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>

#include "proto/framing.h"
#include "proto/helper_protocol.h"

extern char** environ;

namespace {

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void ReportStatus() {
  std::ifstream in("/proc/self/status");
  std::string line;
  for (const char* key : {"Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:", "CapBnd:",
                          "CapAmb:", "NoNewPrivs:", "Seccomp:"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) != 0) continue;
      std::string value = line.substr(std::string_view(key).size());
      const size_t first = value.find_first_not_of(" \t");
      value = first == std::string::npos ? "" : value.substr(first);
      Say(std::string(key, std::string_view(key).size() - 1) + "=" + value);
    }
  }
}

void ReportFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  std::string fds;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == ::dirfd(dir)) continue;
    fds += (fds.empty() ? "" : ",") + std::to_string(fd);
  }
  ::closedir(dir);
  Say("fds=" + fds);
}

void ReportEnv() {
  std::string names;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view var(*e);
    names += (names.empty() ? "" : ",") + std::string(var.substr(0, var.find('=')));
  }
  Say("env=" + names);
}

}  // namespace

int main(int argc, char** argv) {
  int hello_delay_ms = 0;
  bool exit_after_hello = false;
  bool garbage_after_hello = false;
  bool hostile_output = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--hello-delay-ms" && i + 1 < argc) hello_delay_ms = std::atoi(argv[++i]);
    if (arg == "--exit-after-hello") exit_after_hello = true;
    if (arg == "--garbage-after-hello") garbage_after_hello = true;
    if (arg == "--hostile-output") hostile_output = true;
  }
  Say("probe=started pid=" + std::to_string(::getpid()) + " ppid=" + std::to_string(::getppid()));
  ReportStatus();
  ReportFds();
  ReportEnv();
  if (hostile_output) {
    for (int fd : {1, 2}) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      const std::string forged =
          "decnet-update-helper: FORGED by the daemon\rdecnet-update-helper: FORGED\x1b[2J\n";
      if (::write(fd, forged.data(), forged.size()) < 0) return 1;
    }
    Say("hostile=written");
  }

  if (hello_delay_ms > 0) {
    // Busy before hello (as the daemon is during recovery), but watching the pair.
    pollfd pair{3, POLLIN, 0};
    if (::poll(&pair, 1, hello_delay_ms) > 0) {
      Say("probe=pair-closed");
      return 0;
    }
  }
  decnet::proto::HelloRequest hello;
  hello.client = "probe-daemon";
  Say("hello=sending");
  if (auto sent = decnet::SendFrame(3, decnet::proto::EncodeRequest(1, hello)); !sent) {
    Say("hello=send-failed " + std::string(decnet::FrameErrorRule(sent.error())));
    return 1;
  }
  auto frame = decnet::RecvFrame(3, 10'000);
  if (!frame) {
    Say("hello=recv-failed " + std::string(decnet::FrameErrorRule(frame.error())));
    return 1;
  }
  auto reply = decnet::proto::DecodeReply(*frame, decnet::proto::RequestType::kHello);
  if (!reply) {
    Say("hello=bad-reply " + reply.error().rule);
    return 1;
  }
  Say(reply->body ? "hello=ok" : "hello=error " + reply->body.error().rule);
  if (exit_after_hello) return 0;
  if (garbage_after_hello) {
    const bool sent = decnet::SendFrame(3, "this is not json").has_value();
    Say(sent ? "garbage=sent" : "garbage=send-failed");
  }

  // Idle until stdin reaches EOF (the test closes it) or the helper closes the pair.
  pollfd fds[2] = {{0, POLLIN, 0}, {3, POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents & (POLLHUP | POLLERR | POLLIN)) {
      Say("probe=pair-closed");
      return 0;
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      char c;
      if (::read(0, &c, 1) <= 0) {
        Say("probe=stdin-eof");
        return 0;
      }
    }
  }
}
