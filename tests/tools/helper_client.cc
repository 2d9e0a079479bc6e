// decnet-helper-client: a small stand-in for the daemon, for tests and the demo. The helper
// execs it with the pair on fd 3; it reads commands from stdin, one per line, sends the
// matching frames and prints every reply (or "closed") on stdout as one line.
//
//   hello [MIN MAX]              write_unit NAME FILE        remove_unit NAME
//   daemon_reload                restart_unit NAME           unit_status NAME
//   repoint_link NAME TARGET     raw JSON...                 rawhex HEX
//   oversize N                   empty                       sleep MS
//   fdpass                       (send a frame carrying a descriptor)
//   wait-close                   (wait until the helper closes the pair)
//   await PATH                   (wait until PATH exists: a gate the test opens; prints
//                                "await: PATH" and stops reading commands if it never does)
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "proto/framing.h"
#include "proto/helper_protocol.h"
#include "tests/support/wait.h"

namespace {

using namespace decnet;
constexpr int kPairFd = 3;
uint64_t next_id = 1;

void Print(const std::string& line) { std::cout << line << std::endl; }

// Sends `frame` raw and prints the reply; false when the helper is gone.
bool Exchange(std::string_view frame) {
  if (::send(kPairFd, frame.data(), frame.size(), MSG_NOSIGNAL) < 0) {
    Print("closed");
    return false;
  }
  auto reply = RecvFrame(kPairFd, 120'000);
  if (!reply) {
    Print("closed");
    return false;
  }
  Print(*reply);
  return true;
}

bool SendTyped(const proto::RequestBody& body) {
  return Exchange(proto::EncodeRequest(next_id++, body));
}

// Builds the JSON of a request without validating its values, so that bad names reach the
// helper exactly as a hostile daemon would send them.
std::string Loose(const std::string& type, const nlohmann::json& fields) {
  nlohmann::json j = {{"v", 1}, {"id", next_id++}, {"type", type}};
  j.update(fields);
  return j.dump();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool SendFd() {
  int passed = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  char data[] = "{}";
  iovec iov{data, 2};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
  ::sendmsg(kPairFd, &msg, MSG_NOSIGNAL);
  ::close(passed);
  auto reply = RecvFrame(kPairFd, 10'000);
  Print(reply ? *reply : "closed");
  return bool(reply);
}

bool Run(const std::string& line) {
  std::istringstream in(line);
  std::string cmd, a, b;
  in >> cmd >> a >> b;
  if (cmd.empty() || cmd[0] == '#') return true;
  if (cmd == "hello") {
    int min = a.empty() ? 1 : std::stoi(a), max = b.empty() ? 1 : std::stoi(b);
    return Exchange(Loose(
        "hello", {{"min_version", min}, {"max_version", max}, {"client", "decnet-helper-client"}}));
  }
  if (cmd == "write_unit") return Exchange(Loose(cmd, {{"name", a}, {"content", ReadFile(b)}}));
  if (cmd == "remove_unit" || cmd == "restart_unit" || cmd == "unit_status") {
    return Exchange(Loose(cmd, {{"name", a}}));
  }
  if (cmd == "daemon_reload") return SendTyped(proto::DaemonReloadRequest{});
  if (cmd == "repoint_link") return Exchange(Loose(cmd, {{"name", a}, {"target", b}}));
  if (cmd == "raw") return Exchange(line.substr(4));
  if (cmd == "rawhex") {
    std::string bytes;
    for (size_t i = 0; i + 1 < a.size(); i += 2)
      bytes += static_cast<char>(std::stoi(a.substr(i, 2), nullptr, 16));
    return Exchange(bytes);
  }
  if (cmd == "oversize") return Exchange(std::string(std::stoul(a), '{'));
  if (cmd == "empty") return Exchange("");
  if (cmd == "fdpass") return SendFd();
  if (cmd == "sleep") {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(a)));
    return true;
  }
  if (cmd == "await") {
    if (decnet::test::WaitForPath(a)) return true;
    Print("await: " + a);
    return false;
  }
  if (cmd == "wait-close") {
    auto r = RecvFrame(kPairFd, 30'000);
    Print(r ? "unexpected " + *r : "closed");
    return false;
  }
  Print("client: unknown command " + cmd);
  return true;
}

}  // namespace

int main() {
  int size = 256 * 1024;
  ::setsockopt(kPairFd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!Run(line)) break;
  }
  return 0;
}
