// Runs the real decnet-update-helper binary the way systemd would, with a test policy, and
// the decnet-helper-client stand-in as its daemon. The client's commands come from a script
// (one per line, see tests/tools/helper_client.cc); its replies and the helper's log come
// back for assertions.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "policy/policy.h"

namespace decnet::test {

struct HelperRun {
  int wait_status = 0;               // as from waitpid
  std::vector<std::string> replies;  // one line per reply, "closed" when the helper ended
  std::string log;                   // the helper's stderr
  bool timed_out = false;
  bool ExitedCleanly() const;
  int ExitCode() const;  // -1 when it did not exit normally
};

class HelperHarness {
 public:
  // A fresh temporary tree (units/, bin/, state/, opt/current/, payloads/) and, unless a
  // bus address is given, a private dbus-daemon standing in for the system bus (the helper
  // connects at start-up; requests that need systemd then fail with its error).
  explicit HelperHarness(std::string bus_address = "", std::string unit_dir = "");
  ~HelperHarness();
  HelperHarness(const HelperHarness&) = delete;
  HelperHarness& operator=(const HelperHarness&) = delete;

  helper::Policy& policy() { return policy_; }
  const std::string& root() const { return root_; }
  std::string config_path() const { return root_ + "/helper.json"; }
  // Writes a file the client may read (world-readable) and returns its path.
  std::string Payload(const std::string& name, const std::string& content);
  // Writes the policy file and runs the helper until it exits (or `timeout`, then SIGKILL).
  HelperRun Run(const std::string& script, std::chrono::seconds timeout = std::chrono::seconds(30),
                const std::map<std::string, std::string>& env = {});

  static std::string HelperBinary();
  static std::string ClientBinary();

 private:
  std::string root_;
  std::string bus_address_;
  int dbus_pid_ = -1;
  helper::Policy policy_;
};

// A snapshot of a tree: path -> kind, mode, owner and content digest or link target.
std::map<std::string, std::string> SnapshotTree(const std::string& root);

}  // namespace decnet::test
