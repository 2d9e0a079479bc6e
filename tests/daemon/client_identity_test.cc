// The client-certificate policy, handshaking over memory BIOs with certificates made here.
#include "daemon/client_identity.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "daemon/tls.h"
#include "tests/daemon/test_pki.h"

namespace decnet::daemon {
namespace {

using decnet::testing::CertSpec;
using decnet::testing::Issued;
using decnet::testing::TempDir;
using decnet::testing::TestCa;
using namespace std::chrono_literals;

class AServerContext : public ::testing::Test {
 protected:
  AServerContext() {
    Issued server = ca_.Issue(CertSpec{{"updater"}, true});
    auto paths = WritePem(dir_, "server", server);
    files_ = TlsFiles{dir_.Write("ca.crt", ca_.ca().cert_pem), paths.cert, paths.key};
    auto ctx = MakeServerTlsContext(files_);
    EXPECT_TRUE(ctx.has_value()) << (ctx ? "" : ctx.error().message);
    if (ctx) server_ = std::move(*ctx);
  }

  decnet::testing::MemoryHandshake Connect(const Issued* client, const TestCa* trust = nullptr) {
    auto client_ctx = MakeClientContext(trust ? *trust : ca_, client);
    return decnet::testing::HandshakeInMemory(server_.get(), client_ctx.get());
  }

  TestCa ca_{"decnet-test-ca"};
  TempDir dir_;
  TlsFiles files_;
  SslCtxPtr server_;
};

TEST_F(AServerContext, AcceptsAClientSignedByTheConfiguredCa) {
  Issued client = ca_.Issue(CertSpec{{"worker"}});
  auto h = Connect(&client);
  ASSERT_TRUE(h.server_ok);
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_3_VERSION);
  auto id = ReadClientIdentity(h.server.get());
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(id->fingerprint, client.fingerprint);
  EXPECT_EQ(id->cn, "worker");
}

TEST_F(AServerContext, RefusesAClientWithoutACertificate) {
  EXPECT_FALSE(Connect(nullptr).server_ok);
}

TEST_F(AServerContext, RefusesAClientFromAnotherCa) {
  TestCa other("decnet-test-ca");  // same name, different key
  Issued client = other.Issue(CertSpec{{"decnet-master"}});
  EXPECT_FALSE(Connect(&client).server_ok);
}

TEST_F(AServerContext, RefusesAnExpiredClientCertificate) {
  Issued client = ca_.Issue(CertSpec{{"decnet-master"}, false, -48h, -24h});
  EXPECT_FALSE(Connect(&client).server_ok);
}

TEST_F(AServerContext, RefusesANotYetValidClientCertificate) {
  Issued client = ca_.Issue(CertSpec{{"decnet-master"}, false, 24h, 48h});
  EXPECT_FALSE(Connect(&client).server_ok);
}

TEST_F(AServerContext, RefusesTls11EvenFromAClientThatAllowsIt) {
  Issued client = ca_.Issue(CertSpec{{"decnet-master"}});
  auto client_ctx = MakeClientContext(ca_, &client);
  SSL_CTX_set_min_proto_version(client_ctx.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_1_VERSION);
  ASSERT_EQ(SSL_CTX_set_cipher_list(client_ctx.get(), "DEFAULT:@SECLEVEL=0"), 1);
  EXPECT_FALSE(decnet::testing::HandshakeInMemory(server_.get(), client_ctx.get()).server_ok);

  // Positive control: the same client succeeds against a context loosened to allow 1.1, so
  // the refusal above is the server's.
  SSL_CTX_set_min_proto_version(server_.get(), TLS1_VERSION);
  SSL_CTX_set_security_level(server_.get(), 0);
  ASSERT_EQ(SSL_CTX_set_cipher_list(server_.get(), "DEFAULT:@SECLEVEL=0"), 1);
  auto h = decnet::testing::HandshakeInMemory(server_.get(), client_ctx.get());
  ASSERT_TRUE(h.server_ok);
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_1_VERSION);
}

TEST_F(AServerContext, NegotiatesTls12WithAForwardSecretAeadSuite) {
  Issued client = ca_.Issue(CertSpec{{"worker"}});
  auto client_ctx = MakeClientContext(ca_, &client);
  SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION);
  auto h = decnet::testing::HandshakeInMemory(server_.get(), client_ctx.get());
  ASSERT_TRUE(h.server_ok);
  EXPECT_EQ(SSL_version(h.server.get()), TLS1_2_VERSION);
  EXPECT_STREQ(SSL_get_cipher_name(h.server.get()), "ECDHE-ECDSA-AES128-GCM-SHA256");
}

TEST_F(AServerContext, IsNotBuiltFromAKeyThatDoesNotMatchItsCertificate) {
  Issued other = ca_.Issue(CertSpec{{"updater"}, true});
  TlsFiles files = files_;
  files.key_file = dir_.Write("other.key", other.key_pem);
  auto ctx = MakeServerTlsContext(files);
  ASSERT_FALSE(ctx.has_value());
  EXPECT_EQ(ctx.error().rule, "tls-context");
}

TEST_F(AServerContext, IsNotBuiltFromMissingFiles) {
  for (auto mutate : {+[](TlsFiles& f) { f.ca_file += ".missing"; },
                      +[](TlsFiles& f) { f.cert_file += ".missing"; },
                      +[](TlsFiles& f) { f.key_file += ".missing"; }}) {
    TlsFiles files = files_;
    mutate(files);
    EXPECT_FALSE(MakeServerTlsContext(files).has_value());
  }
}

// Identity and authorisation: certificates with the subjects an attacker would try.
class AClientIdentity : public AServerContext {
 protected:
  ClientIdentity IdentityOver(const Issued& client) {
    auto h = Connect(&client);
    EXPECT_TRUE(h.server_ok);
    auto id = ReadClientIdentity(h.server.get());
    EXPECT_TRUE(id.has_value());
    return id.value_or(ClientIdentity{});
  }
};

TEST_F(AClientIdentity, IsTheMasterByCnWhenNoPinIsConfigured) {
  Issued master = ca_.Issue(CertSpec{{"decnet-master"}});
  EXPECT_EQ(Authorise(IdentityOver(master), {}), Role::kMaster);
}

TEST_F(AClientIdentity, IsNotTheMasterByCnWhenPinsAreConfigured) {
  Issued master = ca_.Issue(CertSpec{{"decnet-master"}});
  Issued pinned = ca_.Issue(CertSpec{{"fleet"}});
  std::vector<std::string> pins{pinned.fingerprint};
  EXPECT_EQ(Authorise(IdentityOver(master), pins), Role::kClient);
}

TEST_F(AClientIdentity, IsTheMasterWhenItsFingerprintIsPinnedWhateverItsCn) {
  Issued pinned = ca_.Issue(CertSpec{{"fleet"}});
  std::vector<std::string> pins{std::string(64, '0'), pinned.fingerprint};
  EXPECT_EQ(Authorise(IdentityOver(pinned), pins), Role::kMaster);
}

TEST_F(AClientIdentity, IsOnlyAClientForEveryCnThatIsNotExactlyTheMasters) {
  const std::vector<std::vector<std::string>> subjects = {
      {"worker"},
      {"Decnet-master"},
      {"decnet-master "},
      {" decnet-master"},
      {"decnet-master.evil"},
      {std::string("decnet-master\0evil", 18)},
      {std::string("decnet-master\0", 14)},
      {"decnet-master", "decnet-master"},
      {"decnet-master", "worker"},
      {"worker", "decnet-master"},
      {},
  };
  for (const auto& cns : subjects) {
    Issued client = ca_.Issue(CertSpec{cns});
    ClientIdentity id = IdentityOver(client);
    EXPECT_EQ(Authorise(id, {}), Role::kClient) << "CN " << id.cn_for_log;
  }
}

TEST_F(AClientIdentity, HasNoCnWhenTheSubjectIsAmbiguous) {
  EXPECT_EQ(IdentityOver(ca_.Issue(CertSpec{{"a", "b"}})).cn, std::nullopt);
  EXPECT_EQ(IdentityOver(ca_.Issue(CertSpec{{std::string("a\0b", 3)}})).cn, std::nullopt);
  ClientIdentity nul = IdentityOver(ca_.Issue(CertSpec{{std::string("a\0b", 3)}}));
  EXPECT_EQ(nul.cn_for_log, "a\\0b");
}

TEST(AnAuthorisation, NeverUsesAnEmptyFallbackCn) {
  ClientIdentity id{std::string(64, 'a'), std::string(""), ""};
  EXPECT_EQ(Authorise(id, {}, ""), Role::kClient);
}

TEST(AFingerprintPin, IsNormalisedFromTheFormsOperatorsPaste) {
  const std::string hex(64, 'a');
  EXPECT_EQ(NormaliseFingerprint(hex), hex);
  EXPECT_EQ(NormaliseFingerprint(std::string(64, 'A')), hex);
  std::string colons;
  for (int i = 0; i < 32; ++i) colons += (i ? ":" : "") + std::string("AA");
  EXPECT_EQ(NormaliseFingerprint(colons), hex);
}

TEST(AFingerprintPin, IsRefusedWhenItIsNotOneSha256) {
  const std::vector<std::string> bad = {"",
                                        std::string(63, 'a'),
                                        std::string(65, 'a'),
                                        std::string(64, 'g'),
                                        std::string(62, 'a') + "::",
                                        ":" + std::string(64, 'a'),
                                        std::string(64, 'a') + ":",
                                        std::string(40, 'a'),
                                        "sha256:" + std::string(64, 'a'),
                                        std::string(32, 'a') + " " + std::string(32, 'a')};
  for (const auto& pin : bad) {
    auto r = NormaliseFingerprint(pin);
    ASSERT_FALSE(r.has_value()) << pin;
    EXPECT_EQ(r.error().rule, "fingerprint-pin");
  }
}

}  // namespace
}  // namespace decnet::daemon
