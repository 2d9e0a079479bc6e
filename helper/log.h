// The root binary's one logger. One line per call, written with a single write(2) (no stdio:
// under the seccomp filter its first use would probe the terminal with ioctl), prefixed with
// the helper's name. Every byte outside printable ASCII is escaped as \xNN, so nothing that
// reached the message from the daemon (a unit or key name, an error text quoting it) can
// forge a second line or steer a terminal.
#pragma once

#include <string>
#include <string_view>

namespace decnet::helper {

// The prefix of every line the helper writes, and of no line anyone else can write to its
// output (the daemon has its own stream, helper/daemon_log.h).
inline constexpr std::string_view kHelperLogPrefix = "decnet-update-helper: ";

// `text` with every byte below 0x20 (but tab), 0x7f and above as \xNN, cut at `max_bytes`
// with "..." appended when longer.
std::string EscapeForLog(std::string_view text, size_t max_bytes = 4096);

// Writes kHelperLogPrefix + EscapeForLog(message) + "\n" to the log descriptor (stderr
// unless SetLogFd chose another). Failures are ignored: there is nowhere else to report them.
void LogLine(std::string_view message);

// Points LogLine at `fd` (tests); returns the previous descriptor.
int SetLogFd(int fd);

}  // namespace decnet::helper
