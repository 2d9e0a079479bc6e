// ReadClientIdentity's own check of the peer certificate, on connections whose handshake
// completed although the client was not verified: the server context here asks for a client
// certificate but lets every verification failure through (and does not insist on a
// certificate), so only ReadClientIdentity stands between such a client and an identity.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/client_identity.h"
#include "tests/daemon/test_pki.h"

namespace decnet::daemon {
namespace {

using decnet::testing::CertSpec;
using decnet::testing::CtxPtr;
using decnet::testing::Issued;
using decnet::testing::MemoryHandshake;
using decnet::testing::TestCa;
using namespace std::chrono_literals;

// Accepts whatever the chain verification concluded; the SSL object keeps the verdict.
int AcceptEveryCertificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) { return 1; }

class ALenientServerContext : public ::testing::Test {
 protected:
  ALenientServerContext() {
    server_.reset(SSL_CTX_new(TLS_server_method()));
    if (!server_ || SSL_CTX_use_certificate(server_.get(), server_cert_.cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(server_.get(), server_cert_.key.get()) != 1 ||
        X509_STORE_add_cert(SSL_CTX_get_cert_store(server_.get()), ca_.ca().cert.get()) != 1) {
      throw std::runtime_error("lenient server context");
    }
    SSL_CTX_set_verify(server_.get(), SSL_VERIFY_PEER, AcceptEveryCertificate);
  }

  MemoryHandshake Connect(const Issued* client) {
    CtxPtr client_ctx = decnet::testing::MakeClientContext(ca_, client);
    return decnet::testing::HandshakeInMemory(server_.get(), client_ctx.get());
  }

  TestCa ca_{"decnet-test-ca"};
  Issued server_cert_ = ca_.Issue(CertSpec{{"updater"}, true});
  CtxPtr server_;
};

TEST_F(ALenientServerContext, StillYieldsTheIdentityOfAVerifiedClient) {
  // Positive control: the lenient context completes handshakes and a good client passes.
  Issued client = ca_.Issue(CertSpec{{"decnet-master"}});
  MemoryHandshake h = Connect(&client);
  ASSERT_TRUE(h.server_ok);
  ASSERT_EQ(SSL_get_verify_result(h.server.get()), X509_V_OK);
  auto id = ReadClientIdentity(h.server.get());
  ASSERT_TRUE(id.has_value()) << id.error().rule;
  EXPECT_EQ(id->fingerprint, client.fingerprint);
}

TEST_F(ALenientServerContext, YieldsNoIdentityForAClientWhoseVerificationFailed) {
  TestCa other("decnet-test-ca");  // same name, another key
  struct Row {
    const char* what;
    Issued client;
    long expected_error;
  };
  std::vector<Row> rows;
  rows.push_back({"signed by another CA", other.Issue(CertSpec{{"decnet-master"}}),
                  X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE});
  rows.push_back({"expired", ca_.Issue(CertSpec{{"decnet-master"}, false, -48h, -24h}),
                  X509_V_ERR_CERT_HAS_EXPIRED});
  rows.push_back({"not yet valid", ca_.Issue(CertSpec{{"decnet-master"}, false, 24h, 48h}),
                  X509_V_ERR_CERT_NOT_YET_VALID});
  for (Row& row : rows) {
    MemoryHandshake h = Connect(&row.client);
    ASSERT_TRUE(h.server_ok) << row.what << ": the handshake must complete for this test";
    ASSERT_NE(SSL_get0_peer_certificate(h.server.get()), nullptr) << row.what;
    EXPECT_EQ(SSL_get_verify_result(h.server.get()), row.expected_error) << row.what;
    auto id = ReadClientIdentity(h.server.get());
    ASSERT_FALSE(id.has_value()) << row.what << " was read as " << id->fingerprint;
    EXPECT_EQ(id.error().code, ErrorCode::kDenied) << row.what;
    EXPECT_EQ(id.error().rule, "client-cert-unverified") << row.what;
  }
}

TEST_F(ALenientServerContext, YieldsNoIdentityForAClientThatPresentedNoCertificate) {
  MemoryHandshake h = Connect(nullptr);
  ASSERT_TRUE(h.server_ok) << "the handshake must complete for this test";
  ASSERT_EQ(SSL_get0_peer_certificate(h.server.get()), nullptr);
  auto id = ReadClientIdentity(h.server.get());
  ASSERT_FALSE(id.has_value());
  EXPECT_EQ(id.error().code, ErrorCode::kDenied);
  EXPECT_EQ(id.error().rule, "client-cert-missing");
}

}  // namespace
}  // namespace decnet::daemon
