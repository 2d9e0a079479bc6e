// Running a shell command line from a test and reading a file whole: shared by the tests that
// drive systemd-analyze, dpkg, systemctl and the test container from the host.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace decnet::test {

// What a command line did: its exit status (-1 when it could not be run or did not exit) and
// what it wrote to stdout and stderr, together.
struct CommandRun {
  int status = -1;
  std::string output;
};

// Runs `command` with /bin/sh (the caller quotes its arguments: Quote) and waits for it.
inline CommandRun RunCommand(const std::string& command) {
  CommandRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) run.output.append(buf, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// `s` as one shell word: in single quotes, each quote in it closed, escaped and reopened.
inline std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The whole content of `path`; empty when it cannot be read.
inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace decnet::test
