#include "tests/helper/helper_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/sha256.h"
#include "tests/support/wait.h"

extern char** environ;

namespace decnet::test {
namespace fs = std::filesystem;

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << content; }
  ::chmod(path.c_str(), mode);
}

// Starts a dbus-daemon on a socket in `dir` and returns its pid once it listens (it prints
// its address then), or -1.
int StartBus(const std::string& dir, std::string& address) {
  address = "unix:path=" + dir + "/bus";
  return SpawnDbusDaemon({"--session", "--address=" + address}).pid;
}

}  // namespace

bool HelperRun::ExitedCleanly() const {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}
int HelperRun::ExitCode() const { return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1; }

std::string HelperHarness::HelperBinary() { return DECNET_HELPER_BINARY_PATH; }
std::string HelperHarness::ClientBinary() { return DECNET_CLIENT_BINARY_PATH; }

HelperHarness::HelperHarness(std::string bus_address, std::string unit_dir)
    : bus_address_(std::move(bus_address)) {
  char tmpl[] = "/tmp/decnet-helper-run.XXXXXX";
  root_ = ::mkdtemp(tmpl);
  ::chmod(root_.c_str(), 0755);
  for (const char* d :
       {"units", "bin", "opt", "opt/current", "opt/current/bin", "payloads", "bus"}) {
    fs::create_directories(root_ + "/" + d);
    ::chmod((root_ + "/" + d).c_str(), 0755);
  }
  WriteFile(root_ + "/opt/current/bin/decnet", "#!/bin/sh\necho decnet\n", 0755);
  if (bus_address_.empty()) dbus_pid_ = StartBus(root_ + "/bus", bus_address_);
  policy_ = helper::Policy::Defaults();
  policy_.unit_dir = unit_dir.empty() ? root_ + "/units" : unit_dir;
  policy_.link_dir = root_ + "/bin";
  policy_.state_dir = root_ + "/state";
  policy_.daemon_binary = ClientBinary();
  policy_.daemon_args.clear();
  policy_.links = {{"decnet", root_ + "/opt/current"}};
  policy_.hello_timeout_ms = 10'000;
  policy_.restart_timeout_ms = 20'000;
}

HelperHarness::~HelperHarness() {
  if (dbus_pid_ > 0) {
    ::kill(dbus_pid_, SIGTERM);
    ::waitpid(dbus_pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::string HelperHarness::Payload(const std::string& name, const std::string& content) {
  std::string path = root_ + "/payloads/" + name;
  WriteFile(path, content, 0644);
  return path;
}

HelperRun HelperHarness::Run(const std::string& script, std::chrono::seconds timeout,
                             const std::map<std::string, std::string>& env) {
  WriteFile(config_path(), helper::PolicyToJson(policy_), 0644);
  std::string script_path = root_ + "/script.txt", out_path = root_ + "/replies.txt",
              log_path = root_ + "/helper.log";
  WriteFile(script_path, script, 0644);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, script_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<std::string> envs = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                   "DBUS_SYSTEM_BUS_ADDRESS=" + bus_address_,
                                   "ASAN_OPTIONS=detect_leaks=0"};
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string bin = HelperBinary(), config = config_path();
  const char* argv[] = {bin.c_str(), "--config", config.c_str(), nullptr};
  pid_t pid = -1;
  HelperRun run;
  if (posix_spawn(&pid, bin.c_str(), &actions, nullptr, const_cast<char**>(argv), envp.data()) !=
      0) {
    run.log = "posix_spawn failed";
    return run;
  }
  posix_spawn_file_actions_destroy(&actions);
  if (const auto status = WaitForChild(pid, timeout)) {
    run.wait_status = *status;
  } else {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &run.wait_status, 0);
    run.timed_out = true;
  }
  // The stand-in daemon's stdout reaches the helper's relayed under the daemon's name.
  std::istringstream replies(Slurp(out_path));
  constexpr std::string_view kRelayed = "decnet-updaterd: ";
  for (std::string line; std::getline(replies, line);)
    run.replies.push_back(line.starts_with(kRelayed) ? line.substr(kRelayed.size()) : line);
  run.log = Slurp(log_path);
  return run;
}

std::map<std::string, std::string> SnapshotTree(const std::string& root) {
  std::map<std::string, std::string> snap;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string desc = std::to_string(st.st_mode) + " " + std::to_string(st.st_uid) + ":" +
                       std::to_string(st.st_gid) + " ";
    if (S_ISLNK(st.st_mode)) {
      desc += "-> " + fs::read_symlink(it->path()).string();
      it.disable_recursion_pending();
    } else if (S_ISREG(st.st_mode)) {
      desc += Sha256Hex(Slurp(it->path()));
    }
    // Lexically: fs::relative would resolve a symlink and file it under its target's name.
    snap[it->path().lexically_relative(root).string()] = desc;
  }
  return snap;
}

}  // namespace decnet::test
