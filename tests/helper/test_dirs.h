// A throw-away tree of helper directories for tests: unit, link and state directories under
// a fresh temporary root, owned by root with the modes the helper requires.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "helper/dirs.h"
#include "policy/policy.h"

namespace decnet::test {

class TestDirs {
 public:
  TestDirs() {
    char tmpl[] = "/tmp/decnet-helper-test.XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ::chmod(root_.c_str(), 0755);
    for (const char* d : {"units", "bin", "opt", "opt/current"}) {
      std::filesystem::create_directories(root_ + "/" + d);
      ::chmod((root_ + "/" + d).c_str(), 0755);
    }
    policy_ = helper::Policy::Defaults();
    policy_.unit_dir = root_ + "/units";
    policy_.link_dir = root_ + "/bin";
    policy_.state_dir = root_ + "/state";
    policy_.links = {{"decnet", root_ + "/opt/current"}};
  }
  ~TestDirs() { std::filesystem::remove_all(root_); }
  TestDirs(const TestDirs&) = delete;
  TestDirs& operator=(const TestDirs&) = delete;

  const std::string& root() const { return root_; }
  helper::Policy& policy() { return policy_; }
  std::string units() const { return root_ + "/units"; }

 private:
  std::string root_;
  helper::Policy policy_;
};

}  // namespace decnet::test
