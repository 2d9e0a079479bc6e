// No busy window: once an operation's answer is sent, the next request is served as if the
// daemon were idle, as DECNET's master expects (it sends update-self right after an update, a
// rollback right after a push). Through the real mTLS server and API in front of the real
// pipeline, release store, extractor and the helper's real serve loop (systemd mocked), curl as
// the master, each second request sent the moment the first answer is read: on the same
// connection (curl --next) and on a new one. The pruning of old releases runs beside the next
// operation: held inside the deletion of a 10 001-file release until the next update has been
// answered, it delays and refuses nothing, and it still finishes afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/self_update.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_pki.h"
#include "tests/daemon/test_tarball.h"
#include "tests/daemon/test_updater_build.h"
#include "tests/helper/test_dirs.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using test::Tarball;

// One request of a sequence: its path and curl's arguments for its body.
struct Request {
  std::string path;
  std::string args;
};

class ANextRequest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The stores, trees and tarballs on a tmpfs when there is one: a 10 001-file release is
    // written, extracted and deleted several times, which a busy disk makes slow for no gain.
    char tmpl[] = "/dev/shm/decnet-no-busy-window.XXXXXX";
    scratch_ = fs::is_directory("/dev/shm") && ::mkdtemp(tmpl) != nullptr ? std::string(tmpl)
                                                                          : dirs_.root();
    install_ = test::LayOutHost(dirs_, scratch_, config_, test::SelfUpdate::kOn);
    config_.units = {"decnet-agent.service"};
    config_.links = {{"decnet", "venv/bin/decnet"}};
    ASSERT_TRUE(test::InstallOperatorUnit(
        dirs_, "decnet-agent.service",
        test::OperatorUnit("agent", "/opt/decnet/current/venv/bin/decnet agent")));
    ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-updater.service", test::kUpdaterUnit));
    ASSERT_NO_FATAL_FAILURE(stack_.Open(
        dirs_, config_, {.client = "no-busy-window", .self_update = test::SelfUpdate::kOn}));
  }
  void TearDown() override {
    front_.Stop();
    stack_.Close();
    if (scratch_ != dirs_.root()) fs::remove_all(scratch_);
  }

  // The API and the mTLS server in front of the pipeline, on an ephemeral port.
  void Serve() {
    ApiOptions options = test::TestApiOptions(dirs_);
    options.audit = &*stack_.audit;
    options.self_restart_delay = std::chrono::milliseconds(1);
    ASSERT_NO_FATAL_FAILURE(front_.Start(*stack_.pipeline, options, pki_));
  }

  // A release: VERSION, the link's target, and `bulk` more files.
  Tarball Pack(const std::string& version, int bulk = 0) {
    std::string tree = scratch_ + "/tree-" + std::to_string(++packed_);
    fs::create_directories(tree + "/venv/bin");
    std::ofstream(tree + "/VERSION") << version << "\n";
    std::ofstream(tree + "/venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    for (int i = 0; i < bulk; ++i) {
      const std::string sub = tree + "/venv/lib/" + std::to_string(i % 100);
      if (i < 100) fs::create_directories(sub);
      std::ofstream(sub + "/m" + std::to_string(i) + ".py") << i;
    }
    return test::PackTree(tree);
  }
  // A build of the daemon for update-self: its manifest and a binary answering --version.
  Tarball PackBuild(const std::string& version) {
    return test::PackUpdaterBuild(scratch_ + "/build-" + std::to_string(++packed_), version);
  }
  static Request Update(const Tarball& t) {
    return {"/update", "-F tarball=@" + t.path + " --form-string sha256=" + t.sha256};
  }
  static Request UpdateSelf(const Tarball& t) {
    return {"/update-self", "-F tarball=@" + t.path + " --form-string sha256=" + t.sha256 +
                                " --form-string confirm_self=true"};
  }
  static Request Rollback() { return {"/rollback", "-X POST"}; }

  // Sends `requests` one after the other, each as soon as the previous answer was read: with
  // one curl on one connection (--next), or with one curl each on fresh connections. Returns
  // each status, a body after it ("200 {...}").
  std::vector<std::string> Send(const std::vector<Request>& requests, bool one_connection) {
    std::string command;
    for (size_t i = 0; i < requests.size(); ++i) {
      const std::string body = dirs_.root() + "/answer-" + std::to_string(++answers_);
      bodies_.push_back(body);
      std::string one = pki_.CurlAsMaster() + " -sS --max-time 60 -o " + body +
                        " -w '%{http_code}\\n' " + requests[i].args + " " + front_.Url() +
                        requests[i].path;
      if (one_connection) {
        command += (i == 0 ? "curl " : " --next ") + one;
      } else {
        command += (i == 0 ? "" : "; ") + std::string("curl ") + one;
      }
    }
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (pipe != nullptr && (n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    if (pipe != nullptr) ::pclose(pipe);
    std::vector<std::string> statuses;
    std::istringstream lines(out);
    std::string line;
    size_t first = bodies_.size() - requests.size();
    while (std::getline(lines, line)) {
      std::ifstream in(bodies_[first + statuses.size()]);
      statuses.push_back(line + " " + std::string(std::istreambuf_iterator<char>(in), {}));
      if (statuses.size() == requests.size()) break;
    }
    return statuses;
  }
  static std::string StatusOf(const std::string& answer) { return answer.substr(0, 3); }
  std::string CurrentVersion() {
    std::ifstream in(install_ + "/current/VERSION");
    std::string v;
    std::getline(in, v);
    return v;
  }
  // Every pair, on one connection and on two: both served, neither refused with 503.
  void ExpectBothServed(const std::vector<Request>& pair, bool one_connection) {
    auto answers = Send(pair, one_connection);
    ASSERT_EQ(answers.size(), 2u) << ::testing::PrintToString(answers);
    for (const auto& a : answers) EXPECT_EQ(StatusOf(a), "200") << a;
  }

  test::TestDirs dirs_;
  std::string scratch_, install_;
  DaemonConfig config_;
  // Always healthy: these tests are about when requests are served, not about the gate.
  test::ServedStack<test::HealthyGate> stack_;
  const test::UpdaterPki pki_;
  test::ServedFront front_;  // after the pipeline it borrows
  int packed_ = 0;
  int answers_ = 0;
  std::vector<std::string> bodies_;
};

TEST_F(ANextRequest, PushThenPushIsServedOnTheSameConnectionAndOnANewOne) {
  Serve();
  ExpectBothServed({Update(Pack("1.0")), Update(Pack("2.0"))}, true);
  ExpectBothServed({Update(Pack("3.0")), Update(Pack("4.0"))}, false);
  EXPECT_EQ(CurrentVersion(), "4.0");
}

TEST_F(ANextRequest, PushThenRollbackIsServed) {
  Serve();
  ExpectBothServed({Update(Pack("1.0")), Update(Pack("2.0"))}, true);
  ExpectBothServed({Update(Pack("3.0")), Rollback()}, true);
  EXPECT_EQ(CurrentVersion(), "2.0");
  ExpectBothServed({Update(Pack("4.0")), Rollback()}, false);
  EXPECT_EQ(CurrentVersion(), "2.0") << "4.0 was active, 2.0 previous";
}

TEST_F(ANextRequest, UpdateThenUpdateSelfIsServed) {
  Serve();
  ExpectBothServed({Update(Pack("1.0")), UpdateSelf(PackBuild("2.0.0"))}, true);
  ASSERT_TRUE(test::Eventually([&] { return !front_.api->busy(); }));  // the restart was asked for
  ExpectBothServed({Update(Pack("2.0")), UpdateSelf(PackBuild("3.0.0"))}, false);
  EXPECT_EQ(CurrentVersion(), "2.0");
  EXPECT_EQ(stack_.updater_store->Active()->str().size(), 16u);
}

TEST_F(ANextRequest, IsServedWhilstA10001FileReleaseIsBeingPruned) {
  // The pruner is held inside the deletion of the first release it prunes until the next
  // update has been answered: if pruning delayed or refused requests, that update could not
  // be answered 200 (refused with 503, or waiting behind the latch until curl gives up).
  test::PruneLatch prune(*stack_.pipeline);
  Serve();
  Tarball big = Pack("1.0", 9'999);  // with VERSION and the link's target: 10 001 files
  const std::string big_id = big.sha256.substr(0, 16);
  ExpectBothServed({Update(big), Update(Pack("2.0"))}, true);
  // The store keeps 3: the fourth release prunes the big one, whose deletion then blocks.
  ExpectBothServed({Update(Pack("3.0")), Update(Pack("4.0"))}, true);
  prune.WaitHeld();
  EXPECT_FALSE(fs::exists(install_ + "/releases/" + big_id)) << "not moved out of releases/";
  auto next = Send({Update(Pack("5.0"))}, false);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(StatusOf(next[0]), "200") << next[0];
  EXPECT_EQ(CurrentVersion(), "5.0");
  EXPECT_EQ(prune.deleted(), 0) << "the prune was not running beside the update";
  prune.Release();
  ASSERT_TRUE(stack_.pipeline->WaitForPruning());
  EXPECT_TRUE(fs::is_empty(install_ + "/pruned")) << "pruning still happens";
  EXPECT_GE(prune.deleted(), 2) << "the big release and the one the fifth update pruned";
  std::set<std::string> dirs;
  for (const auto& e : fs::directory_iterator(install_ + "/releases"))
    dirs.insert(e.path().filename());
  EXPECT_EQ(dirs.size(), 3u);
  EXPECT_FALSE(dirs.contains(big_id));
}

}  // namespace
}  // namespace decnet::daemon
