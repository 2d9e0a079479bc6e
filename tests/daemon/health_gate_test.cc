// The health gate end to end in-process: settle through a HelperClient talking to the
// helper's real serve loop (systemd mocked), then probe a real TLS agent on loopback.
// Durations are kept small; the only time assertions bound hangs, generously.
#include "daemon/health_gate.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>

#include "helper/serve.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_pki.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

using std::chrono::milliseconds;
using ::testing::_;
using testing::AgentReply;
using ::testing::Invoke;
using ::testing::Return;
using Clock = std::chrono::steady_clock;
using Kind = AgentReply::Kind;

const proto::UnitState kActive{"loaded", "active", "running", 42, 2};
const proto::UnitState kFailed{"loaded", "failed", "failed", 0, 2};
constexpr char kVersionBody[] = R"({"status":"ok","version":"1.2.3"})";

class AHealthGate : public ::testing::Test {
 protected:
  void SetUp() override {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    auto opened = helper::OpenHelperDirs(dirs_.policy());
    ASSERT_TRUE(opened);
    helper_dirs_ = *opened;
    served_ = std::async(std::launch::async, [this, fd = pair[1]] {
      auto end = helper::Serve(fd, dirs_.policy(), helper_dirs_, systemd_, {.notify = false});
      ::close(fd);
      return end;
    });
    client_.emplace(pair[0], std::chrono::seconds(5));
    ASSERT_TRUE(client_->Hello("gate-test"));

    config_.settle_ms = 400;
    config_.probe.url = agent_.Url();
    config_.probe.ca = dir_.Write("ca.crt", ca_.ca().cert_pem);
    auto worker = testing::WritePem(dir_, "worker", worker_);
    config_.probe.cert = worker.cert;
    config_.probe.key = worker.key;
    config_.probe.attempts = 3;
    config_.probe.interval_ms = 50;
    config_.probe.timeout_ms = 5000;
    ON_CALL(systemd_, GetUnitState(_)).WillByDefault(Return(kActive));
  }
  void TearDown() override {
    client_.reset();
    served_.wait();
    for (int fd : {helper_dirs_.unit_dir, helper_dirs_.link_dir, helper_dirs_.state_dir})
      ::close(fd);
  }

  static UnitName Agent() { return *UnitName::Parse("decnet-agent.service"); }
  GateVerdict Check(std::map<UnitName, uint32_t> before = {{Agent(), 2}},
                    const std::string& version = "1.2.3",
                    milliseconds deadline = milliseconds(60'000)) {
    auto gate = MakeHealthGate(config_, *client_);
    return gate->Check(before, version, Clock::now() + deadline);
  }

  // --- the helper side
  test::TestDirs dirs_;
  helper::HelperDirs helper_dirs_{};
  ::testing::NiceMock<test::MockSystemd> systemd_;
  std::future<helper::ServeEnd> served_;
  std::optional<HelperClient> client_;
  // --- the agent side
  testing::TestCa ca_{"agent-ca"};
  testing::Issued server_ = ca_.Issue({.common_names = {"agent"}, .server = true});
  testing::Issued worker_ = ca_.Issue({.common_names = {"worker"}});
  testing::TempDir dir_;
  testing::TestAgent agent_{server_, ca_};
  DaemonConfig config_;
};

// ------------------------------------------------------------------ settle

TEST_F(AHealthGate, PassesAUnitThatStaysActiveAndAHealthyAgent) {
  std::atomic<int> looks{0};
  EXPECT_CALL(systemd_, GetUnitState(Agent())).WillRepeatedly(Invoke([&](const UnitName&) {
    ++looks;
    return Result<proto::UnitState>(kActive);
  }));
  auto v = Check();
  EXPECT_TRUE(v.healthy) << v.rule << ": " << v.detail;
  EXPECT_EQ(v.probe, R"({"status":"ok"})");
  EXPECT_EQ(v.rule, "");
  EXPECT_GE(looks, 2);  // watched over the window, not looked at once
  EXPECT_EQ(agent_.requests(), 1);
}

TEST_F(AHealthGate, FailsAUnitThatFailsDuringTheSettleWindow) {
  std::atomic<int> looks{0};
  EXPECT_CALL(systemd_, GetUnitState(Agent())).WillRepeatedly(Invoke([&](const UnitName&) {
    return Result<proto::UnitState>(++looks > 1 ? kFailed : kActive);
  }));
  auto v = Check();
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-unit-inactive");
  EXPECT_NE(v.detail.find("decnet-agent.service is failed/failed"), std::string::npos) << v.detail;
  EXPECT_EQ(agent_.connections(), 0);  // no probe once settling failed
}

TEST_F(AHealthGate, FailsAUnitThatRestartsDuringTheSettleWindow) {
  std::atomic<int> looks{0};
  EXPECT_CALL(systemd_, GetUnitState(Agent())).WillRepeatedly(Invoke([&](const UnitName&) {
    proto::UnitState s = kActive;
    if (++looks > 1) s.n_restarts = 3;  // restarted once more, and already active again
    return Result<proto::UnitState>(s);
  }));
  auto v = Check();
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-unit-restarted");
  EXPECT_NE(v.detail.find("decnet-agent.service restarted 1 time"), std::string::npos) << v.detail;
  EXPECT_EQ(agent_.connections(), 0);
}

TEST_F(AHealthGate, FailsWhenAUnitsStateCannotBeRead) {
  EXPECT_CALL(systemd_, GetUnitState(Agent()))
      .WillRepeatedly(Return(
          Result<proto::UnitState>(Fail(ErrorCode::kFailed, "systemd-call", "bus said no"))));
  auto v = Check();
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-unit-inactive");
  EXPECT_NE(v.detail.find("decnet-agent.service"), std::string::npos) << v.detail;
  EXPECT_NE(v.detail.find("bus said no"), std::string::npos) << v.detail;
}

TEST_F(AHealthGate, WatchesEveryRestartedUnit) {
  auto sniffer = *UnitName::Parse("decnet-sniffer.service");
  EXPECT_CALL(systemd_, GetUnitState(Agent())).WillRepeatedly(Return(kActive));
  EXPECT_CALL(systemd_, GetUnitState(sniffer)).WillRepeatedly(Return(kFailed));
  auto v = Check({{Agent(), 2}, {sniffer, 2}});
  EXPECT_EQ(v.rule, "gate-unit-inactive");
  EXPECT_NE(v.detail.find("decnet-sniffer.service"), std::string::npos) << v.detail;
}

TEST_F(AHealthGate, RunsOutOfDeadlineWhileSettling) {
  config_.settle_ms = 60'000;
  auto v = Check({{Agent(), 2}}, "1.2.3", milliseconds(300));
  EXPECT_EQ(v.rule, "gate-deadline");
  EXPECT_EQ(agent_.connections(), 0);
}

// ------------------------------------------------------------------ probe

TEST_F(AHealthGate, PassesWhenA503TurnsInto200WithinTheAttempts) {
  agent_.Script({{Kind::kAnswer, 503, "starting"}, {Kind::kAnswer, 200, "up"}});
  auto v = Check();
  EXPECT_TRUE(v.healthy) << v.detail;
  EXPECT_EQ(v.probe, "up");
  EXPECT_NE(v.detail.find("attempt 2 of 3"), std::string::npos) << v.detail;
  EXPECT_EQ(agent_.requests(), 2);
}

TEST_F(AHealthGate, FailsAfterExactlyItsAttemptsWhenTheAgentAlwaysAnswers500) {
  agent_.Script({{Kind::kAnswer, 500, "broken"}});
  auto v = Check();
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-probe");
  EXPECT_NE(v.detail.find("attempt 3 of 3"), std::string::npos) << v.detail;
  EXPECT_NE(v.probe.find("500"), std::string::npos) << v.probe;
  EXPECT_NE(v.probe.find("broken"), std::string::npos) << v.probe;
  EXPECT_EQ(agent_.requests(), 3);
}

TEST_F(AHealthGate, BoundsEachAttemptAtAnAgentThatNeverAnswers) {
  agent_.Script({{Kind::kSilent}});
  config_.probe.attempts = 2;
  config_.probe.timeout_ms = 300;
  auto started = Clock::now();
  auto v = Check();
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-probe");
  EXPECT_NE(v.probe.find("timed out after 300 ms"), std::string::npos) << v.probe;
  EXPECT_EQ(agent_.connections(), 2);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(30));  // bounds a hang only
}

TEST_F(AHealthGate, FailsAnAgentWhoseCertificateIsFromAnotherCa) {
  testing::TestCa rogue("rogue-ca");
  testing::TestAgent impostor(rogue.Issue({.common_names = {"agent"}, .server = true}), ca_);
  config_.probe.url = impostor.Url();
  auto v = Check();
  EXPECT_EQ(v.rule, "gate-probe");
  EXPECT_NE(v.probe.find("handshake"), std::string::npos) << v.probe;
  EXPECT_EQ(impostor.requests(), 0);
}

TEST_F(AHealthGate, FailsWhenTheAgentRefusesTheClientCertificate) {
  testing::TestCa rogue("rogue-ca");
  auto stranger = testing::WritePem(dir_, "stranger", rogue.Issue({.common_names = {"worker"}}));
  config_.probe.cert = stranger.cert;
  config_.probe.key = stranger.key;
  auto v = Check();
  EXPECT_EQ(v.rule, "gate-probe");
  EXPECT_EQ(agent_.requests(), 0);
}

TEST_F(AHealthGate, FailsWhenTheClientCertificateIsMissing) {
  config_.probe.cert = dir_.path() / "absent.crt";
  auto v = Check();
  EXPECT_EQ(v.rule, "gate-probe");
  EXPECT_NE(v.probe.find("absent.crt"), std::string::npos) << v.probe;
}

TEST_F(AHealthGate, PassesTheExpectedVersion) {
  config_.probe.check_version = true;
  agent_.Script({{Kind::kAnswer, 200, kVersionBody}});
  auto v = Check({{Agent(), 2}}, "1.2.3");
  EXPECT_TRUE(v.healthy) << v.detail;
  EXPECT_EQ(v.probe, kVersionBody);
}

TEST_F(AHealthGate, FailsAnotherVersion) {
  config_.probe.check_version = true;
  agent_.Script({{Kind::kAnswer, 200, kVersionBody}});
  auto v = Check({{Agent(), 2}}, "1.2.4");
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-version");
  EXPECT_NE(v.detail.find(R"(reports version "1.2.3", expected "1.2.4")"), std::string::npos)
      << v.detail;
  EXPECT_EQ(v.probe, kVersionBody);  // the agent's body, for the reply
  EXPECT_EQ(agent_.requests(), 3);   // an old agent may linger: retried like any failure
}

TEST_F(AHealthGate, FailsABodyThatIsNotJsonWhenCheckingTheVersion) {
  config_.probe.check_version = true;
  agent_.Script({{Kind::kAnswer, 200, "OK"}});
  auto v = Check();
  EXPECT_EQ(v.rule, "gate-version");
  EXPECT_NE(v.detail.find("not a JSON object"), std::string::npos) << v.detail;
}

TEST_F(AHealthGate, IgnoresTheBodyWhenNotCheckingTheVersion) {
  agent_.Script({{Kind::kAnswer, 200, "OK"}});
  auto v = Check({{Agent(), 2}}, "1.2.4");
  EXPECT_TRUE(v.healthy) << v.detail;
}

TEST_F(AHealthGate, StopsAtTheDeadlineBeforeUsingAllAttempts) {
  agent_.Script({{Kind::kAnswer, 500, "broken"}});
  config_.settle_ms = 0;
  config_.probe.attempts = 1000;
  config_.probe.interval_ms = 100;
  // Room for several probes even on a loaded machine under a sanitizer; far below 1000.
  auto v = Check({{Agent(), 2}}, "1.2.3", milliseconds(3000));
  EXPECT_FALSE(v.healthy);
  EXPECT_EQ(v.rule, "gate-deadline");
  EXPECT_NE(v.probe.find("broken"), std::string::npos)
      << "the last answer, not the cut attempt: " << v.probe;
  EXPECT_LT(agent_.requests(), 1000);
}

TEST_F(AHealthGate, CutsAnAttemptShortAtTheDeadline) {
  agent_.Script({{Kind::kSilent}});
  config_.settle_ms = 0;
  config_.probe.timeout_ms = 60'000;
  auto started = Clock::now();
  auto v = Check({{Agent(), 2}}, "1.2.3", milliseconds(400));
  EXPECT_EQ(v.rule, "gate-deadline");
  EXPECT_EQ(agent_.connections(), 1);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(30));  // bounds a hang only
}

TEST_F(AHealthGate, ProbesWithoutSettlingWhenNoUnitWasRestarted) {
  EXPECT_CALL(systemd_, GetUnitState(_)).Times(0);
  auto v = Check({});
  EXPECT_TRUE(v.healthy) << v.detail;
}

}  // namespace
}  // namespace decnet::daemon
