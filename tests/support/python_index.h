// Python material made at test time with Debian's own tooling, for the tests of the built-in
// Python installer: the wheel of a one-module project, and a simple package index (PEP 503
// layout) served on loopback by `python3 -m http.server`.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/loopback.h"

namespace decnet::test {

// Runs `command` with /bin/sh; returns its exit status (-1 when it did not exit) and what it
// wrote to stdout and stderr together.
inline std::pair<int, std::string> ShellWithOutput(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Builds NAME-1.0-py3-none-any.whl, a project whose one module NAME holds VALUE = 42, into
// `out_dir` with the system's pip and setuptools (no index, no build isolation); its sources
// go beneath `scratch`. A fatal test failure, with pip's output, when the build fails.
inline void BuildDependencyWheel(const std::string& scratch, const std::string& name,
                                 const std::string& out_dir) {
  const std::string src = scratch + "/src-" + name;
  std::filesystem::create_directories(src + "/" + name);
  std::ofstream(src + "/pyproject.toml")
      << "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = "
         "\"setuptools.build_meta\"\n[project]\nname = \""
      << name << "\"\nversion = \"1.0\"\n[tool.setuptools]\npackages = [\"" << name << "\"]\n";
  std::ofstream(src + "/" + name + "/__init__.py") << "VALUE = 42\n";
  auto [code, text] = ShellWithOutput("cd " + scratch +
                                      " && PIP_CONFIG_FILE=/dev/null /usr/bin/python3 -m "
                                      "pip wheel -q --no-build-isolation --no-index --no-deps -w " +
                                      out_dir + " " + src);
  ASSERT_EQ(code, 0) << text;
}

// A simple package index of the given wheels beneath `root`/simple, served on a free port of
// 127.0.0.1 for the object's lifetime (or until Stop()). A test failure when the server does
// not accept connections within 5 s.
class LocalIndex {
 public:
  LocalIndex(const std::string& root, const std::vector<std::string>& wheels) {
    for (const std::string& wheel : wheels) {
      const std::string file = std::filesystem::path(wheel).filename().string();
      const std::string project = file.substr(0, file.find('-'));
      const std::string dir = root + "/simple/" + project;
      std::filesystem::create_directories(dir);
      std::filesystem::copy_file(wheel, dir + "/" + file,
                                 std::filesystem::copy_options::overwrite_existing);
      std::ofstream(dir + "/index.html") << "<!DOCTYPE html><html><body><a href=\"" << file << "\">"
                                         << file << "</a></body></html>\n";
    }
    port_ = FreeLoopbackPort();
    pid_ = ::fork();
    if (pid_ == 0) {
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl("/usr/bin/python3", "python3", "-m", "http.server", std::to_string(port_).c_str(),
              "--bind", "127.0.0.1", "--directory", root.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !Accepts(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    EXPECT_TRUE(Accepts(port_)) << "the local index did not start";
  }
  ~LocalIndex() { Stop(); }
  LocalIndex(const LocalIndex&) = delete;
  LocalIndex& operator=(const LocalIndex&) = delete;

  // Ends the server (SIGTERM) and reaps it. Idempotent.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // The index's URL, as pip's --index-url takes it.
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/simple"; }

 private:
  static bool Accepts(uint16_t port) {
    const int fd = ConnectLoopback(port, 1);
    if (fd >= 0) ::close(fd);
    return fd >= 0;
  }

  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace decnet::test
