// The serve loop over a real socketpair: every structural fault ends the session, value
// faults get typed replies, and the record lists everything.
#include "helper/serve.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>

#include "helper/log.h"
#include "proto/framing.h"
#include "proto/helper_protocol.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

using ::testing::NiceMock;

constexpr char kHello[] =
    R"({"v":1,"id":1,"type":"hello","min_version":1,"max_version":1,"client":"t"})";
constexpr char kGoodUnit[] =
    "[Unit]\nDescription=demo\n\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\n"
    "NoNewPrivileges=yes\nExecStart=/bin/sleep infinity\n";

class AHelperSession : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair_), 0);
    dirs_.policy().hello_timeout_ms = 2000;
    options_.notify = false;
    Configure();
    auto opened = OpenHelperDirs(dirs_.policy());
    ASSERT_TRUE(opened);
    helper_dirs_ = *opened;
    end_ = std::async(std::launch::async, [this] {
      ServeEnd end = Serve(pair_[1], dirs_.policy(), helper_dirs_, systemd_, options_);
      ::close(pair_[1]);
      return end;
    });
  }
  // Runs before serving starts: derived fixtures change the policy or the options here.
  virtual void Configure() {}
  void TearDown() override {
    if (pair_[0] >= 0) ::close(pair_[0]);
    if (end_.valid()) end_.wait();
    if (log_fd_ >= 0) {
      SetLogFd(STDERR_FILENO);
      ::close(log_fd_);
    }
    for (int fd : {helper_dirs_.unit_dir, helper_dirs_.link_dir, helper_dirs_.state_dir})
      ::close(fd);
  }
  // Sends raw bytes as one frame and returns the reply, or "" when the helper closed.
  std::string Send(std::string_view frame) {
    if (::send(pair_[0], frame.data(), frame.size(), MSG_NOSIGNAL) < 0) return "";
    auto reply = RecvFrame(pair_[0], 5000);
    return reply ? *reply : "";
  }
  ServeEnd End() {
    ::shutdown(pair_[0], SHUT_WR);
    return end_.get();
  }
  std::string Record() {
    std::ifstream in(dirs_.root() + "/state/requests.jsonl");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void ExpectViolation(std::string_view frame, const std::string& rule) {
    EXPECT_EQ(Send(frame), "");
    EXPECT_EQ(end_.get(), ServeEnd::kProtocolViolation);
    EXPECT_NE(Record().find("\"rule\":\"" + rule + "\""), std::string::npos) << Record();
  }

  // Sends the helper's log to a file (call from Configure); Log() reads it back.
  void CaptureLog() {
    log_path_ = dirs_.root() + "/helper.log";
    log_fd_ = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(log_fd_, 0);
    SetLogFd(log_fd_);
  }
  std::string Log() {
    std::ifstream in(log_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string WriteUnit(int id, const std::string& name) {
    nlohmann::json j = {
        {"v", 1}, {"id", id}, {"type", "write_unit"}, {"name", name}, {"content", kGoodUnit}};
    return Send(j.dump());
  }

  test::TestDirs dirs_;
  ServeOptions options_;
  std::string log_path_;
  int log_fd_ = -1;
  HelperDirs helper_dirs_;
  NiceMock<test::MockSystemd> systemd_;
  int pair_[2] = {-1, -1};
  std::future<ServeEnd> end_;
};

TEST_F(AHelperSession, AnswersHelloWithVersionAndPolicyDigest) {
  auto reply = proto::DecodeReply(Send(kHello), proto::RequestType::kHello);
  ASSERT_TRUE(reply);
  ASSERT_TRUE(reply->body);
  const auto& hello = std::get<proto::HelloReply>(*reply->body);
  EXPECT_EQ(hello.version, 1);
  EXPECT_EQ(hello.policy_digest, PolicyDigest(dirs_.policy()));
  EXPECT_EQ(End(), ServeEnd::kPeerClosed);
}

TEST_F(AHelperSession, EndsOnARequestBeforeHello) {
  ExpectViolation(R"({"v":1,"id":1,"type":"daemon_reload"})", "request-out-of-phase");
}

TEST_F(AHelperSession, EndsOnASecondHello) {
  ASSERT_NE(Send(kHello), "");
  ExpectViolation(kHello, "request-out-of-phase");
}

TEST_F(AHelperSession, EndsAfterRefusingAHelloOfAnotherVersion) {
  auto reply =
      Send(R"({"v":1,"id":1,"type":"hello","min_version":2,"max_version":3,"client":"t"})");
  EXPECT_NE(reply.find("protocol-version"), std::string::npos) << reply;
  EXPECT_EQ(end_.get(), ServeEnd::kProtocolViolation);
}

TEST_F(AHelperSession, EndsOnAWrongEnvelopeVersion) {
  ExpectViolation(R"({"v":2,"id":1,"type":"hello","min_version":1,"max_version":1,"client":"t"})",
                  "envelope-version");
}

TEST_F(AHelperSession, EndsOnBadJson) { ExpectViolation("{\"v\":1,", "json-syntax"); }

TEST_F(AHelperSession, EndsOnAnUnknownType) {
  ASSERT_NE(Send(kHello), "");
  ExpectViolation(R"({"v":1,"id":2,"type":"exec","cmd":"sh"})", "request-type-unknown");
}

TEST_F(AHelperSession, EndsOnAnEmptyFrame) { ExpectViolation("", "frame-empty"); }

TEST_F(AHelperSession, EndsOnAnOversizeFrame) {
  int size = 256 * 1024;
  ::setsockopt(pair_[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  ExpectViolation(std::string(kMaxFrame + 1, ' '), "frame-too-large");
}

TEST_F(AHelperSession, EndsWhenTheDaemonNeverSaysHello) {
  EXPECT_EQ(end_.get(), ServeEnd::kHelloTimeout);
}

TEST_F(AHelperSession, EndsQuietlyOnEofMidExchange) {
  ASSERT_NE(Send(kHello), "");
  ::close(pair_[0]);
  pair_[0] = -1;
  EXPECT_EQ(end_.get(), ServeEnd::kPeerClosed);
}

TEST_F(AHelperSession, AnswersBadValuesWithTypedRepliesAndCarriesOn) {
  ASSERT_NE(Send(kHello), "");
  auto bad = Send(R"({"v":1,"id":2,"type":"restart_unit","name":"../../x.service"})");
  EXPECT_NE(bad.find("\"result\":\"malformed\""), std::string::npos) << bad;
  auto denied = Send(R"({"v":1,"id":3,"type":"restart_unit","name":"ssh.service"})");
  EXPECT_NE(denied.find("\"result\":\"denied\""), std::string::npos) << denied;
  EXPECT_NE(denied.find("\"id\":3"), std::string::npos) << denied;
  EXPECT_EQ(End(), ServeEnd::kPeerClosed);
  std::string record = Record();
  EXPECT_NE(record.find("\"type\":\"hello\""), std::string::npos);
  EXPECT_NE(record.find("\"result\":\"malformed\""), std::string::npos);
  EXPECT_NE(record.find("\"subject\":\"ssh.service\""), std::string::npos);
}

class AHelperSessionThatCanBeStopped : public AHelperSession {
 protected:
  void Configure() override {
    ASSERT_EQ(::pipe2(stop_, O_CLOEXEC), 0);
    options_.stop_fd = stop_[0];
  }
  void TearDown() override {
    AHelperSession::TearDown();
    for (int fd : stop_) ::close(fd);
  }
  void Stop() { ASSERT_EQ(::write(stop_[1], "x", 1), 1); }
  int stop_[2] = {-1, -1};
};

TEST_F(AHelperSessionThatCanBeStopped, EndsWhenAskedToStopWhileTheDaemonIsQuiet) {
  ASSERT_NE(Send(kHello), "");
  Stop();
  ASSERT_EQ(end_.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "still serving after the stop";
  EXPECT_EQ(end_.get(), ServeEnd::kStopped);
}

TEST_F(AHelperSessionThatCanBeStopped, EndsWhenAskedToStopBeforeTheDaemonSaidHello) {
  Stop();
  ASSERT_EQ(end_.wait_for(std::chrono::seconds(1)), std::future_status::ready)
      << "waited for the hello instead of stopping";
  EXPECT_EQ(end_.get(), ServeEnd::kStopped);
}

TEST_F(AHelperSessionThatCanBeStopped, ServesAsUsualUntilAskedToStop) {
  ASSERT_NE(Send(kHello), "");
  EXPECT_NE(WriteUnit(2, "decnet-a.service").find("\"result\":\"ok\""), std::string::npos);
  EXPECT_EQ(end_.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  EXPECT_EQ(End(), ServeEnd::kPeerClosed);
}

// --- the helper's own resources against a hostile daemon ------------------------------------

class AHelperSessionCappedAtTwoUnits : public AHelperSession {
 protected:
  void Configure() override { dirs_.policy().max_units = 2; }
};

TEST_F(AHelperSessionCappedAtTwoUnits, RefusesAThirdUnitButStillRewritesTheFirstTwo) {
  ASSERT_NE(Send(kHello), "");
  EXPECT_NE(WriteUnit(2, "decnet-a.service").find("\"result\":\"ok\""), std::string::npos);
  EXPECT_NE(WriteUnit(3, "decnet-b.service").find("\"result\":\"ok\""), std::string::npos);
  const std::string third = WriteUnit(4, "decnet-c.service");
  EXPECT_NE(third.find("\"rule\":\"unit-count-cap\""), std::string::npos) << third;
  EXPECT_FALSE(std::filesystem::exists(dirs_.units() + "/decnet-c.service"));
  EXPECT_NE(WriteUnit(5, "decnet-a.service").find("\"result\":\"ok\""), std::string::npos);
  EXPECT_EQ(End(), ServeEnd::kPeerClosed);
}

class AHelperSessionWithRoomForOneChange : public AHelperSession {
 protected:
  void Configure() override { options_.record_limits.change_cap_bytes = kMaxRecordLine; }
};

TEST_F(AHelperSessionWithRoomForOneChange, RefusesTheNextChangeButStillAnswersReads) {
  ASSERT_NE(Send(kHello), "");
  EXPECT_NE(WriteUnit(2, "decnet-a.service").find("\"result\":\"ok\""), std::string::npos);
  const std::string refused = WriteUnit(3, "decnet-b.service");
  EXPECT_NE(refused.find("\"rule\":\"change-record-full\""), std::string::npos) << refused;
  EXPECT_FALSE(std::filesystem::exists(dirs_.units() + "/decnet-b.service"));
  const std::string status =
      Send(R"({"v":1,"id":4,"type":"unit_status","name":"decnet-a.service"})");
  EXPECT_NE(status.find("\"result\":\"ok\""), std::string::npos) << status;
  EXPECT_EQ(End(), ServeEnd::kPeerClosed);
  std::ifstream in(dirs_.root() + "/state/" + kChangeRecordFile);
  const std::string changes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(changes.find("decnet-a.service"), std::string::npos) << changes;
}

class AHelperSessionWithItsLogCaptured : public AHelperSession {
 protected:
  void Configure() override { CaptureLog(); }
};

TEST_F(AHelperSessionWithItsLogCaptured, EscapesNamesAndKeysFromTheDaemonBeforeLoggingThem) {
  ASSERT_NE(Send(kHello), "");
  const std::string bad_name =
      Send(R"({"v":1,"id":2,"type":"restart_unit","name":"x\nFORGED name.service"})");
  EXPECT_NE(bad_name.find("\"result\":\"malformed\""), std::string::npos) << bad_name;
  EXPECT_EQ(
      Send(
          R"({"v":1,"id":3,"type":"unit_status","name":"decnet-a.service","k\nFORGED key\r\u001b[2J":1})"),
      "");
  EXPECT_EQ(end_.get(), ServeEnd::kProtocolViolation);
  const std::string log = Log();
  EXPECT_NE(log.find("x\\x0aFORGED name"), std::string::npos) << log;
  EXPECT_NE(log.find("k\\x0aFORGED key\\x0d\\x1b[2J"), std::string::npos) << log;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);)
    EXPECT_TRUE(line.starts_with("decnet-update-helper: ")) << line;
}

}  // namespace
}  // namespace decnet::helper
