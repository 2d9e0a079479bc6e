// The daemon's HelperClient against the helper's real serve loop over a real socketpair:
// every request pairs with its handler, typed errors come back typed, and a broken pair
// poisons the client.
#include "daemon/helper_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>

#include "helper/serve.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

using ::testing::_;
using ::testing::Return;

constexpr char kUnit[] =
    "[Unit]\nDescription=x\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";

class AHelperClient : public ::testing::Test {
 protected:
  void SetUp() override {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    auto opened = helper::OpenHelperDirs(dirs_.policy());
    ASSERT_TRUE(opened);
    helper_dirs_ = *opened;
    test::AnswerCleanLoadedViews(systemd_, dirs_.policy());
    served_ = std::async(std::launch::async, [this, fd = pair[1]] {
      auto end = helper::Serve(fd, dirs_.policy(), helper_dirs_, systemd_, {.notify = false});
      ::close(fd);
      return end;
    });
    client_.emplace(pair[0], std::chrono::seconds(5));
  }
  void TearDown() override {
    client_.reset();
    served_.wait();
    for (int fd : {helper_dirs_.unit_dir, helper_dirs_.link_dir, helper_dirs_.state_dir})
      ::close(fd);
  }
  static UnitName Unit(const char* n) { return *UnitName::Parse(n); }

  test::TestDirs dirs_;
  helper::HelperDirs helper_dirs_{};
  ::testing::NiceMock<test::MockSystemd> systemd_;
  std::future<helper::ServeEnd> served_;
  std::optional<HelperClient> client_;
};

TEST_F(AHelperClient, SaysHelloAndLearnsThePolicyDigest) {
  auto hello = client_->Hello("test");
  ASSERT_TRUE(hello) << hello.error().message;
  EXPECT_EQ(hello->policy_digest, helper::PolicyDigest(dirs_.policy()));
}

TEST_F(AHelperClient, PairsEveryRequestWithItsHandler) {
  ASSERT_TRUE(client_->Hello("test"));
  auto written = client_->WriteUnit(Unit("decnet-demo.service"), kUnit);
  ASSERT_TRUE(written) << written.error().rule;
  EXPECT_TRUE(written->changed);
  EXPECT_CALL(systemd_, Reload()).WillOnce(Return(Result<void>{}));
  EXPECT_TRUE(client_->DaemonReload());
  proto::UnitState active{"loaded", "active", "running", 42, 0};
  EXPECT_CALL(systemd_, RestartUnit(Unit("decnet-demo.service"), _))
      .WillOnce(Return(helper::JobOutcome{"done"}));
  EXPECT_CALL(systemd_, GetUnitState(Unit("decnet-demo.service"))).WillRepeatedly(Return(active));
  auto restarted = client_->RestartUnit(Unit("decnet-demo.service"));
  ASSERT_TRUE(restarted);
  EXPECT_EQ(restarted->job_result, "done");
  EXPECT_EQ(*client_->UnitStatus(Unit("decnet-demo.service")), active);
  EXPECT_CALL(systemd_, StopUnit(Unit("decnet-demo.service"), _))
      .WillOnce(Return(helper::JobOutcome{"done"}));
  EXPECT_TRUE(client_->RemoveUnit(Unit("decnet-demo.service"))->removed);
  std::filesystem::create_directories(dirs_.root() + "/opt/current/bin");
  auto linked = client_->RepointLink(*LinkName::Parse("decnet"),
                                     *AbsPath::Parse(dirs_.root() + "/opt/current/bin"));
  ASSERT_TRUE(linked) << linked.error().message;
  EXPECT_TRUE(linked->changed);
}

TEST_F(AHelperClient, ReturnsTheHelpersRefusalWithItsRule) {
  ASSERT_TRUE(client_->Hello("test"));
  auto r = client_->RestartUnit(Unit("ssh.service"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kDenied);
  EXPECT_EQ(r.error().rule, "unit-name-allowlist");
  EXPECT_TRUE(client_->healthy());
}

TEST_F(AHelperClient, IsPoisonedWhenTheHelperEndsTheSession) {
  // A request before hello is a violation: the helper ends the session.
  auto r = client_->DaemonReload();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().rule, "helper-unavailable");
  EXPECT_FALSE(client_->healthy());
  EXPECT_EQ(client_->Hello("late").error().rule, "helper-unavailable");
}

}  // namespace
}  // namespace decnet::daemon
