#include "helper/log.h"

#include <unistd.h>

#include <algorithm>

#include "helper/fs_ops.h"

namespace decnet::helper {
namespace {

int g_log_fd = STDERR_FILENO;

}  // namespace

std::string EscapeForLog(std::string_view text, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 16);
  for (const char c : text.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    // SECURITY: a newline or CR from the daemon would forge a line; ESC would steer a terminal.
    if ((u < 0x20 && c != '\t') || u >= 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

void LogLine(std::string_view message) {
  std::string line(kHelperLogPrefix);
  line += EscapeForLog(message);
  line += '\n';
  (void)WriteAll(g_log_fd, line);
}

int SetLogFd(int fd) {
  const int previous = g_log_fd;
  g_log_fd = fd;
  return previous;
}

}  // namespace decnet::helper
