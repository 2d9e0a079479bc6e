// The pinned client against a tiny TLS updater made in the test: it requires the master's
// certificate, answers /health, swallows /update while counting every request byte.
#include "fleet/worker_client.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <thread>

#include "fleet/host_ops.h"
#include "tests/daemon/test_pki.h"
#include "tests/fleet/tls_updater_stub.h"

namespace decnet::fleet {
namespace {

using testing::TestCa;
using testing::TlsUpdaterStub;

// What the updater answers: /health, /update with `update_status` (a rolled-back gate when
// it is not 200), and 404 for anything else.
TlsUpdaterStub::Script Updating(int update_status) {
  return [update_status](const std::string& path, int) -> testing::StubAnswer {
    if (path == "/health")
      return {200, R"({"status":"ok","role":"updater","version":"0.1.0","releases":[]})"};
    if (path == "/update")
      return {
          update_status,
          update_status == 200
              ? R"({"status":"updated","release":{"slot":"active","version":"1.2.0"},"probe":""})"
              : R"({"error":"health gate failed","stderr":"","detail":{"error":"health gate failed","stderr":"","rolled_back":true,"rule":"gate-unhealthy"}})"};
    return {404, R"({"detail":"Not Found"})"};
  };
}

class APinnedClient : public testing_support::AgainstAStubUpdater {
 protected:
  APinnedClient() : AgainstAStubUpdater("fleet-test-ca") {
    // A 3 MiB "tarball": random bytes, so that nothing in it looks like a boundary.
    std::string bytes(3 * 1024 * 1024 + 17, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    tarball_ = bytes;
    release_.path = dir_.Write("r.tgz", bytes);
    release_.file_name = "r.tgz";
    release_.size = bytes.size();
    release_.sha256 = *FileSha256(release_.path, nullptr);
    release_.descriptor = "{\"format\":1,\"note\":\"descriptor bytes\"}\n";
    release_.signatures = {"ed25519 0123456789abcdef SIGNATURE-ONE",
                           "ed25519 fedcba9876543210 SIGNATURE-TWO"};
    release_.version = "1.2.0";
    settings_.release = &release_;
  }

  ReleaseFile release_;
  std::string tarball_;
};

TEST_F(APinnedClient, RefusesAWrongPinWithoutWritingASingleRequestByte) {
  TlsUpdaterStub updater(ca_, server_, Updating(200));
  const std::string wrong(64, 'b');
  auto conn = PinnedConnection::Open(tls_, At(updater, wrong), settings_.timeouts);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().rule, "pin-mismatch");
  EXPECT_NE(conn.error().message.find(server_.fingerprint), std::string::npos);

  HostOutcome o = UpdateHost(At(updater, wrong), settings_, progress_);
  EXPECT_EQ(o.result, HostResult::kFailed);
  EXPECT_EQ(o.failure, FailureKind::kPinMismatch);
  EXPECT_EQ(o.bytes_sent, 0u);
  // Let the server notice both connections end, then: handshakes done, not one byte read.
  for (int i = 0; i < 50 && updater.seen().connections < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(updater.seen().connections, 2);
  EXPECT_EQ(updater.seen().request_bytes, 0u);
}

TEST_F(APinnedClient, UploadsTheWholeBodyWithDescriptorAndSignaturesBeforeTheTarball) {
  TlsUpdaterStub updater(ca_, server_, Updating(200));
  std::uint64_t last_total = 0, last_sent = 0;
  class Recording final : public ProgressSink {
   public:
    std::uint64_t* sent;
    std::uint64_t* total;
    void Phase(const std::string&, std::string_view) override {}
    void Bytes(const std::string&, std::uint64_t s, std::uint64_t t) override {
      *sent = s;
      *total = t;
    }
    void Finished(const HostOutcome&) override {}
  } recording;
  recording.sent = &last_sent;
  recording.total = &last_total;
  HostOutcome o = UpdateHost(At(updater, server_.fingerprint), settings_, recording);
  ASSERT_EQ(o.result, HostResult::kOk) << o.cause;
  EXPECT_EQ(o.release["version"], "1.2.0");
  const auto seen = updater.seen();
  EXPECT_EQ(seen.client_cn, "decnet-master");
  EXPECT_EQ(seen.last_path, "/update");
  EXPECT_EQ(seen.last_body.size(), o.bytes_sent);
  EXPECT_EQ(last_sent, last_total);
  EXPECT_EQ(last_total, o.bytes_sent);
  const std::string& body = seen.last_body;
  const size_t tarball_part = body.find("name=\"tarball\"");
  ASSERT_NE(tarball_part, std::string::npos);
  const size_t descriptor = body.find("name=\"descriptor\"");
  const size_t sig1 = body.find("SIGNATURE-ONE");
  const size_t sig2 = body.find("SIGNATURE-TWO");
  const size_t sha = body.find("name=\"sha256\"\r\n\r\n" + release_.sha256);
  for (size_t at : {descriptor, sig1, sig2, sha}) {
    EXPECT_NE(at, std::string::npos);
    EXPECT_LT(at, tarball_part);
  }
  EXPECT_NE(body.find("descriptor bytes"), std::string::npos);
  // The tarball arrives byte for byte.
  EXPECT_NE(body.find(tarball_), std::string::npos);
}

TEST_F(APinnedClient, ReportsAWorkerThatRolledBack) {
  TlsUpdaterStub updater(ca_, server_, Updating(409));
  HostOutcome o = UpdateHost(At(updater, server_.fingerprint), settings_, progress_);
  EXPECT_EQ(o.result, HostResult::kFailed);
  EXPECT_EQ(o.failure, FailureKind::kRolledBack);
  EXPECT_EQ(o.rule, "gate-unhealthy");
  EXPECT_EQ(o.http_status, 409);
}

TEST_F(APinnedClient, ReportsAClosedPortAsUnreachable) {
  std::uint16_t port;
  {
    TlsUpdaterStub gone(ca_, server_, Updating(200));
    port = gone.port();
  }
  HostOutcome o =
      UpdateHost(Target{"w1", "127.0.0.1", port, server_.fingerprint}, settings_, progress_);
  EXPECT_EQ(o.failure, FailureKind::kUnreachable);
  EXPECT_EQ(o.bytes_sent, 0u);
}

TEST_F(APinnedClient, ReadsHealthOverThePinnedConnection) {
  TlsUpdaterStub updater(ca_, server_, Updating(200));
  auto conn = PinnedConnection::Open(tls_, At(updater, server_.fingerprint), settings_.timeouts);
  ASSERT_TRUE(conn) << conn.error().message;
  EXPECT_EQ(conn->peer_fingerprint(), server_.fingerprint);
  auto r = conn->Request("GET", "/health");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"updater\""), std::string::npos);
}

TEST_F(APinnedClient, FailsTheChainCheckWhenACaIsGivenThatDidNotSignTheUpdater) {
  TlsUpdaterStub updater(ca_, server_, Updating(200));
  TestCa other("other-ca");
  const std::string other_ca = dir_.Write("other-ca.crt", other.ca().cert_pem);
  auto pem = testing::WritePem(dir_, "master2", master_);
  auto strict = ClientTls::Load({pem.cert, pem.key, other_ca});
  ASSERT_TRUE(strict);
  auto conn = PinnedConnection::Open(*strict, At(updater, server_.fingerprint), settings_.timeouts);
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().rule, "tls-handshake");
}

}  // namespace
}  // namespace decnet::fleet
