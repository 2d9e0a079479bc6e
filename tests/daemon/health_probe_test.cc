// The agent health probe: URL and response parsing as tables, and ProbeOnce against a real
// TLS agent in-process (certificates made at test time, real handshakes on loopback).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "daemon/health_gate.h"
#include "tests/daemon/test_agent.h"
#include "tests/daemon/test_pki.h"
#include "tests/support/param_name.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

using std::chrono::milliseconds;
using testing::AgentReply;
using Kind = AgentReply::Kind;

// ------------------------------------------------------------------ URL

struct UrlCase {
  const char* url;
  const char* host;  // nullptr: refused
  const char* port = "";
  const char* path = "";
  const char* authority = "";
};

class AProbeUrl : public ::testing::TestWithParam<UrlCase> {};

TEST_P(AProbeUrl, ParsesOrRefuses) {
  const UrlCase& c = GetParam();
  auto url = ParseProbeUrl(c.url);
  if (c.host == nullptr) {
    ASSERT_FALSE(url) << c.url;
    EXPECT_EQ(url.error().rule, "probe-url");
    EXPECT_EQ(url.error().code, ErrorCode::kMalformed);
    return;
  }
  ASSERT_TRUE(url) << c.url << ": " << url.error().message;
  EXPECT_EQ(url->host, c.host);
  EXPECT_EQ(url->port, c.port);
  EXPECT_EQ(url->path, c.path);
  EXPECT_EQ(url->authority, c.authority);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AProbeUrl,
    ::testing::Values(
        UrlCase{"https://127.0.0.1:8765/health", "127.0.0.1", "8765", "/health", "127.0.0.1:8765"},
        UrlCase{"HTTPS://agent.local/health", "agent.local", "443", "/health", "agent.local"},
        UrlCase{"https://[::1]:8765/health", "::1", "8765", "/health", "[::1]:8765"},
        UrlCase{"https://[::1]", "::1", "443", "/", "[::1]"},
        UrlCase{"https://host:8765", "host", "8765", "/", "host:8765"},
        UrlCase{"https://host:8765?x=1", "host", "8765", "/?x=1", "host:8765"},
        UrlCase{"https://host/health?full=1#frag", "host", "443", "/health?full=1", "host"},
        UrlCase{"https://host:08765/", "host", "8765", "/", "host:08765"},
        UrlCase{"http://127.0.0.1:8765/health", nullptr}, UrlCase{"127.0.0.1:8765/health", nullptr},
        UrlCase{"https://", nullptr}, UrlCase{"https:///health", nullptr},
        UrlCase{"https://:8765/health", nullptr}, UrlCase{"https://host:/health", nullptr},
        UrlCase{"https://host:0/", nullptr}, UrlCase{"https://host:65536/", nullptr},
        UrlCase{"https://host:-1/", nullptr}, UrlCase{"https://host:80a/", nullptr},
        UrlCase{"https://user@host/", nullptr}, UrlCase{"https://user:pw@host/", nullptr},
        UrlCase{"https://[::1/", nullptr}, UrlCase{"https://[::1]x/", nullptr},
        UrlCase{"https://[::1]:/", nullptr}, UrlCase{"https://[zz::1]/", nullptr},
        UrlCase{"https://ho_st/", nullptr}, UrlCase{"https://-host/", nullptr},
        UrlCase{"https://host/a b", nullptr}, UrlCase{"https://host/a\r\nX-Injected: 1", nullptr},
        UrlCase{"https://host/\x7f", nullptr}, UrlCase{"https://host/\t", nullptr}),
    [](const auto& info) { return decnet::test::IndexedName(info.index, info.param.url); });

// ------------------------------------------------------------------ response

struct ResponseCase {
  std::string bytes;
  bool closed;
  enum { kMore, kDone, kRefused } outcome;
  int status = 0;
  std::string body = "";
};

class AProbeResponse : public ::testing::TestWithParam<ResponseCase> {};

TEST_P(AProbeResponse, ParsesOrRefuses) {
  const ResponseCase& c = GetParam();
  auto r = ParseProbeResponse(c.bytes, c.closed);
  switch (c.outcome) {
    case ResponseCase::kRefused:
      ASSERT_FALSE(r) << c.bytes;
      EXPECT_EQ(r.error().rule, "probe-http");
      break;
    case ResponseCase::kMore:
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_FALSE(*r);
      break;
    case ResponseCase::kDone:
      ASSERT_TRUE(r) << r.error().message;
      ASSERT_TRUE(*r);
      EXPECT_EQ((*r)->status, c.status);
      EXPECT_EQ((*r)->body, c.body);
      break;
  }
}

const std::string kOk = "HTTP/1.1 200 OK\r\n";
INSTANTIATE_TEST_SUITE_P(
    Table, AProbeResponse,
    ::testing::Values(
        ResponseCase{kOk + "Content-Length: 2\r\n\r\nok", false, ResponseCase::kDone, 200, "ok"},
        ResponseCase{kOk + "content-length:  2 \r\n\r\nokEXTRA", false, ResponseCase::kDone, 200,
                     "ok"},
        ResponseCase{kOk + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", false,
                     ResponseCase::kDone, 200, "ok"},
        ResponseCase{"HTTP/1.0 503 Service Unavailable\r\n\r\ndown", true, ResponseCase::kDone, 503,
                     "down"},
        ResponseCase{"HTTP/1.1 200\r\n\r\n", true, ResponseCase::kDone, 200, ""},
        ResponseCase{"HTTP/1.1 204 No Content\r\n\r\n", false, ResponseCase::kDone, 204, ""},
        ResponseCase{kOk + "Content-Length: 5\r\n\r\nok", false, ResponseCase::kMore},
        ResponseCase{kOk + "Content-Length: 2\r\n", false, ResponseCase::kMore},
        ResponseCase{kOk + "\r\nstill reading", false, ResponseCase::kMore},
        ResponseCase{"", false, ResponseCase::kMore},
        ResponseCase{"", true, ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: 2\r\n", true, ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: 5\r\n\r\nok", true, ResponseCase::kRefused},
        ResponseCase{kOk + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", true,
                     ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nok", false,
                     ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: -1\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: 0x10\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length: 99999999999\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + "Content-Length:\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + "No colon here\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + ": empty name\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{kOk + "Bad Name: x\r\n\r\n", false, ResponseCase::kRefused},
        ResponseCase{"HTTP/2 200 OK\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{"HTTP/1.1 20 OK\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{"HTTP/1.1 2000 OK\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{"HTTP/1.1 abc OK\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{"HTTP/1.1 099 Low\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{"SSH-2.0-OpenSSH_9.2\r\n\r\n", true, ResponseCase::kRefused},
        ResponseCase{kOk + "\r\n" + std::string(kMaxProbeResponseBytes, 'x'), false,
                     ResponseCase::kRefused},
        ResponseCase{std::string(kMaxProbeResponseBytes + 1, 'x'), false, ResponseCase::kRefused}),
    [](const auto& info) { return decnet::test::IndexedName(info.index, info.param.bytes); });

// ------------------------------------------------------------------ version

TEST(AProbeVersionCheck, AcceptsTheExpectedVersionOnly) {
  EXPECT_TRUE(CheckProbeVersion(R"({"status":"ok","version":"1.2.3"})", "1.2.3"));
  EXPECT_TRUE(CheckProbeVersion(R"({"version":"1.2.3","deep":{"a":[1,{"b":2}]}})", "1.2.3"));
  for (const char* body :
       {R"({"version":"1.2.4"})", R"({"version":1.23})", R"({"status":"ok"})", "not json", "",
        R"(["version","1.2.3"])", R"({"version":"1.2.3"} trailing)",
        R"({"version":"1.2.3","version":"9"})", R"({"Version":"1.2.3"})"}) {
    auto r = CheckProbeVersion(body, "1.2.3");
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().rule, "gate-version") << body;
  }
}

// ------------------------------------------------------------------ against an agent

class AProbe : public ::testing::Test {
 protected:
  AProbe() {
    probe_.url = agent_.Url();
    probe_.ca = dir_.Write("ca.crt", ca_.ca().cert_pem);
    auto worker = testing::WritePem(dir_, "worker", worker_);
    probe_.cert = worker.cert;
    probe_.key = worker.key;
  }

  testing::TestCa ca_{"agent-ca"};
  testing::TestCa rogue_{"rogue-ca"};
  testing::Issued server_ = ca_.Issue({.common_names = {"agent"}, .server = true});
  testing::Issued worker_ = ca_.Issue({.common_names = {"worker"}});
  testing::TempDir dir_;
  testing::TestAgent agent_{server_, ca_};
  ProbeConfig probe_;
};

TEST_F(AProbe, ReturnsTheBodyOfA200WithAMinimalRequest) {
  agent_.Script({{Kind::kAnswer, 200, R"({"status":"ok","version":"7"})"}});
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_TRUE(body) << body.error().message;
  EXPECT_EQ(*body, R"({"status":"ok","version":"7"})");
  const std::string request = agent_.last_request();
  EXPECT_EQ(request.rfind("GET /health HTTP/1.1\r\n", 0), 0u) << request;
  EXPECT_NE(request.find("\r\nHost: 127.0.0.1:" + std::to_string(agent_.port()) + "\r\n"),
            std::string::npos);
  EXPECT_NE(request.find("\r\nConnection: close\r\n"), std::string::npos);
}

TEST_F(AProbe, ResolvesAHostName) {
  probe_.url = "https://localhost:" + std::to_string(agent_.port()) + "/health";
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_TRUE(body) << body.error().message;
}

TEST_F(AProbe, ReportsTheStatusAndBodyOfAnUnhealthyAnswer) {
  agent_.Script({{Kind::kAnswer, 500, R"({"detail":"db down"})"}});
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-status");
  EXPECT_NE(body.error().message.find("500"), std::string::npos);
  EXPECT_NE(body.error().message.find("db down"), std::string::npos);
}

TEST_F(AProbe, RefusesAnAgentChainedToAnotherCa) {
  testing::Issued impostor = rogue_.Issue({.common_names = {"agent"}, .server = true});
  testing::TestAgent impostor_agent(impostor, ca_);
  probe_.url = impostor_agent.Url();
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-handshake");
  EXPECT_NE(body.error().message.find("certificate"), std::string::npos) << body.error().message;
  EXPECT_EQ(impostor_agent.requests(), 0);
}

TEST_F(AProbe, IsRefusedByTheAgentForAClientCertificateOfAnotherCa) {
  auto stranger = testing::WritePem(dir_, "stranger", rogue_.Issue({.common_names = {"worker"}}));
  probe_.cert = stranger.cert;
  probe_.key = stranger.key;
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(agent_.requests(), 0);
  // The agent counts its refusal on its own thread once its handshake returns, after the
  // probe has seen the alert; the counter signals nothing, so this is a bounded poll.
  EXPECT_TRUE(test::Eventually([&] { return agent_.refused() >= 1; }));
  EXPECT_EQ(agent_.refused(), 1);
}

TEST_F(AProbe, NamesAMissingClientCertificate) {
  probe_.cert = dir_.path() / "absent.crt";
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-tls-config");
  EXPECT_NE(body.error().message.find("absent.crt"), std::string::npos);
  EXPECT_EQ(agent_.connections(), 0);
}

TEST_F(AProbe, RefusesAKeyThatDoesNotMatchTheCertificate) {
  auto other = testing::WritePem(dir_, "other", ca_.Issue({.common_names = {"worker"}}));
  probe_.key = other.key;
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-tls-config");
}

TEST_F(AProbe, TimesOutOnAnAgentThatNeverAnswers) {
  agent_.Script({{Kind::kSilent}});
  auto started = std::chrono::steady_clock::now();
  auto body = ProbeOnce(probe_, milliseconds(300));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(body.error().rule, "probe-timeout");
  EXPECT_NE(body.error().message.find("reading the response"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));  // no hang
}

TEST_F(AProbe, TimesOutOnAnAgentThatNeverHandshakes) {
  agent_.Script({{Kind::kSilentBeforeHandshake}});
  auto body = ProbeOnce(probe_, milliseconds(300));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-timeout");
  EXPECT_NE(body.error().message.find("handshake"), std::string::npos);
}

TEST_F(AProbe, FailsWhenTheAgentClosesWithoutAnswering) {
  agent_.Script({{Kind::kClose}});
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-http");
}

TEST_F(AProbe, FailsToConnectToAClosedPort) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);  // bound, never listening: nothing answers there now
  probe_.url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/health";
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-connect");
}

TEST_F(AProbe, RefusesABadUrlBeforeConnecting) {
  probe_.url = "http://127.0.0.1:" + std::to_string(agent_.port()) + "/health";
  auto body = ProbeOnce(probe_, milliseconds(10'000));
  ASSERT_FALSE(body);
  EXPECT_EQ(body.error().rule, "probe-url");
  EXPECT_EQ(agent_.connections(), 0);
}

}  // namespace
}  // namespace decnet::daemon
