// The daemon's HTTP surface under abuse, through the real mTLS server and the real API
// (a fake Operations behind it), with a raw TLS client that writes exactly the bytes under
// test: trailers and chunk extensions over the caps, huge and numerous header fields,
// obs-fold, HTTP/1.0 without Host, and handlers that throw. After each, the next connection
// must still be served.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <string>

#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/tls.h"
#include "tests/daemon/test_pki.h"
#include "tests/support/loopback.h"

namespace decnet::daemon {
namespace {

using decnet::testing::CertSpec;
using decnet::testing::CtxPtr;
using decnet::testing::Issued;
using decnet::testing::TempDir;
using decnet::testing::TestCa;

constexpr char kForm[] = "Content-Type: multipart/form-data; boundary=b\r\n";

// Operations that answer at once and count what ran.
class CountingOps : public Operations {
 public:
  UpdateOutcome Update(const Caller&, const VerifiedTarball&) override {
    ++ran;
    return outcome::Updated{};
  }
  SelfUpdateOutcome UpdateSelf(const Caller&, const VerifiedTarball&,
                               std::function<void()>*) override {
    ++ran;
    return outcome::SelfQueued{};
  }
  RollbackOutcome Rollback(const Caller&) override {
    ++ran;
    return outcome::Restored{};
  }
  std::vector<nlohmann::json> Releases() override { return {}; }
  std::atomic<int> ran{0};
};

// What one connection wrote and read.
struct Talk {
  std::uint64_t streamed = 0;  // bytes of the streamed middle part the server took
  std::string response;
  std::string Status() const { return response.size() >= 12 ? response.substr(9, 3) : ""; }
  bool Names(const std::string& rule) const {
    return response.find("\"rule\":\"" + rule + "\"") != std::string::npos;
  }
};

// One TLS connection: writes `head`, then `stream` bytes of `fill` in 64 KiB writes (until
// the server stops taking them), then `tail`, then reads until the server closes.
Talk Converse(SSL_CTX* ctx, std::uint16_t port, const std::string& head, std::uint64_t stream = 0,
              const std::string& tail = "", char fill = 'a') {
  Talk out;
  signal(SIGPIPE, SIG_IGN);  // the server closing under our writes must not kill the test
  const int fd = test::ConnectLoopback(port);
  if (fd < 0) return out;
  decnet::testing::SslPtr ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) == 1) {
    auto write_all = [&](const std::string& bytes) {
      for (std::size_t at = 0; at < bytes.size();) {
        int n = SSL_write(ssl.get(), bytes.data() + at, static_cast<int>(bytes.size() - at));
        if (n <= 0) return false;
        at += static_cast<std::size_t>(n);
      }
      return true;
    };
    bool open = write_all(head);
    std::string piece(64 * 1024, fill);
    while (open && out.streamed < stream) {
      std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), stream - out.streamed));
      int wrote = SSL_write(ssl.get(), piece.data(), static_cast<int>(n));
      if (wrote <= 0)
        open = false;
      else
        out.streamed += static_cast<std::uint64_t>(wrote);
    }
    if (open) write_all(tail);
    char buf[4096];
    for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) out.response.append(buf, n);
  }
  close(fd);
  return out;
}

// A line of /proc/self/status, in bytes.
std::uint64_t StatusBytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return 0;
}

// A chunked request head for `path` and its first chunk, before a trailer.
std::string Chunked(const std::string& path, bool form) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\n" + (form ? kForm : "") +
         "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";
}

class AServerUnderAbuse : public ::testing::Test {
 protected:
  AServerUnderAbuse() {
    Issued server = ca_.Issue(CertSpec{{"updater"}, true});
    auto paths = WritePem(dir_, "server", server);
    files_ = TlsFiles{dir_.Write("ca.crt", ca_.ca().cert_pem), paths.cert, paths.key};
    master_ = ca_.Issue(CertSpec{{"decnet-master"}});
    worker_ = ca_.Issue(CertSpec{{"worker"}});
    master_ctx_ = decnet::testing::MakeClientContext(ca_, &master_);
    worker_ctx_ = decnet::testing::MakeClientContext(ca_, &worker_);
    ApiOptions options;
    options.spool_dir = (dir_.path() / "spool").string();
    auto api = UpdaterApi::Create(ops_, options);
    if (!api) throw std::runtime_error(api.error().message);
    api_ = std::move(*api);
  }

  // Starts the server in front of `app` (the real API unless given).
  void Start(Limits limits = {}, Application* app = nullptr) {
    auto ctx = MakeServerTlsContext(files_);
    ASSERT_TRUE(ctx.has_value());
    ServerConfig config;
    config.limits = limits;
    auto server = HttpServer::Create(std::move(*ctx), config, app ? *app : *api_);
    ASSERT_TRUE(server.has_value());
    server_ = std::move(*server);
    auto bound = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(bound.has_value());
    port_ = *bound;
  }

  Talk AsMaster(const std::string& head, std::uint64_t stream = 0, const std::string& tail = "") {
    return Converse(master_ctx_.get(), port_, head, stream, tail);
  }

  // The next connection is served: GET /health answers 200.
  bool StillServes() {
    Talk health = Converse(worker_ctx_.get(), port_,
                           "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return health.Status() == "200";
  }

  TestCa ca_{"decnet-test-ca"};
  TempDir dir_;
  TlsFiles files_;
  Issued master_, worker_;
  CtxPtr master_ctx_, worker_ctx_;
  CountingOps ops_;
  std::unique_ptr<UpdaterApi> api_;
  std::unique_ptr<HttpServer> server_;  // declared last: stopped first
  std::uint16_t port_ = 0;
};

// --- chunked bodies ------------------------------------------------------------------------

TEST_F(AServerUnderAbuse, RefusesATrailerFieldOver64KibOnUpdateAndRollbackAndKeepsServing) {
  Start();
  std::string trailer = "X-Big: " + std::string(70 * 1024, 't') + "\r\n\r\n";
  for (auto [path, form] : {std::pair{"/update", true}, std::pair{"/rollback", false}}) {
    Talk talk = AsMaster(Chunked(path, form) + trailer);
    EXPECT_EQ(talk.Status(), "400") << path << ": " << talk.response;
    EXPECT_TRUE(talk.Names("http-chunk-metadata-too-large")) << path << ": " << talk.response;
    EXPECT_TRUE(StillServes()) << path;
  }
  EXPECT_EQ(ops_.ran, 0);
  EXPECT_FALSE(api_->busy());
}

TEST_F(AServerUnderAbuse, AnswersATrailerOverBeastsFieldCapWith400WhenTheBufferWouldHoldIt) {
  Limits limits;
  limits.read_buffer_bytes = 256 * 1024;  // the buffer no longer stops it; the parser throws
  Start(limits);
  Talk talk =
      AsMaster(Chunked("/rollback", false) + "X-Big: " + std::string(70 * 1024, 't') + "\r\n\r\n");
  EXPECT_EQ(talk.Status(), "400") << talk.response;
  EXPECT_TRUE(talk.Names("http-trailer-too-large")) << talk.response;
  EXPECT_EQ(ops_.ran, 0);
  EXPECT_TRUE(StillServes());
}

TEST_F(AServerUnderAbuse, AcceptsATrailerUnderTheCap) {
  Start();
  Talk talk =
      AsMaster(Chunked("/rollback", false) + "X-Small: " + std::string(1024, 't') + "\r\n\r\n");
  EXPECT_EQ(talk.Status(), "200") << talk.response;
  EXPECT_EQ(ops_.ran, 1);
}

TEST_F(AServerUnderAbuse, CutsOffA300MibChunkExtensionEarlyWithoutGrowingTheProcess) {
  Start();
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
  std::uint64_t before = StatusBytes("VmRSS");
  Talk talk = AsMaster("POST /update HTTP/1.1\r\nHost: x\r\n" + std::string(kForm) +
                           "Transfer-Encoding: chunked\r\n\r\n5;ext=",
                       300ull << 20, "\r\nhello\r\n0\r\n\r\n");
  std::uint64_t peak = StatusBytes("VmHWM");
  ASSERT_GT(before, 0u);
  EXPECT_LT(peak - std::min(peak, before), 32ull << 20)
      << "VmRSS before " << before << ", VmHWM after " << peak;
  EXPECT_LT(talk.streamed, 64ull << 20) << "the server stopped the client long before 300 MiB";
  EXPECT_LE(server_->Stats().lingered_bytes, (4u << 20) + (64u << 10));
  EXPECT_EQ(talk.Status(), "400") << talk.response.substr(0, 200);
  EXPECT_TRUE(talk.Names("http-chunk-metadata-too-large"));
  EXPECT_FALSE(api_->busy());
  EXPECT_TRUE(StillServes());
}

// --- the request head ----------------------------------------------------------------------

std::string Fields(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "X-F" + std::to_string(i) + ": v\r\n";
  return out;
}

struct HeadRow {
  const char* name;
  std::string request;
  const char* status;
  const char* rule;  // named in the body; "" for a 200
};

TEST_F(AServerUnderAbuse, JudgesRequestHeadsByTheTable) {
  Start();
  const std::string end = "Connection: close\r\n\r\n";
  const HeadRow rows[] = {
      {"plain control", "GET /health HTTP/1.1\r\nHost: x\r\n" + end, "200", ""},
      {"HTTP/1.0 with Host", "GET /health HTTP/1.0\r\nHost: x\r\n\r\n", "200", ""},
      {"64 fields", "GET /health HTTP/1.1\r\nHost: x\r\n" + Fields(62) + end, "200", ""},
      {"HTTP/1.0 without Host", "GET /health HTTP/1.0\r\n\r\n", "400", "http-host-required"},
      {"HTTP/1.1 without Host", "GET /health HTTP/1.1\r\n" + end, "400", "http-host-required"},
      {"two Hosts", "GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + end, "400",
       "http-host-required"},
      {"obs-fold with SP", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n" + end, "400",
       "http-obs-fold"},
      {"obs-fold with HTAB", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n" + end, "400",
       "http-obs-fold"},
      {"obs-fold on a POST", "POST /rollback HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n" + end, "400",
       "http-obs-fold"},
      {"65 fields", "GET /health HTTP/1.1\r\nHost: x\r\n" + Fields(63) + end, "431",
       "http-too-many-fields"},
      {"a 20 KiB field",
       "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 << 10, 'b') + "\r\n" + end,
       "431", "http-header-too-large"},
      {"a 70 KiB field",
       "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70 << 10, 'b') + "\r\n" + end,
       "431", "http-header-too-large"},
      {"a 70 KiB target", "GET /" + std::string(70 << 10, 'p') + " HTTP/1.1\r\nHost: x\r\n" + end,
       "431", "http-header-too-large"},
      {"chunked, any case, with spaces",
       "GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n" + end + "0\r\n\r\n",
       "200", ""},
      {"a coding that would be ignored before chunked",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n" + end +
           "0\r\n\r\n",
       "501", "http-transfer-encoding"},
      {"chunked that is not the last coding",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n" + end +
           "0\r\n\r\n",
       "501", "http-transfer-encoding"},
      {"a coding in a field of its own before chunked",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
       "Transfer-Encoding: chunked\r\n" +
           end + "0\r\n\r\n",
       "501", "http-transfer-encoding"},
      {"chunked twice (the parser's own refusal)",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: chunked\r\n" +
           end + "0\r\n\r\n",
       "400", "http-malformed"},
      {"Content-Length beside chunked",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n" +
           end + "0\r\n\r\n",
       "400", "http-malformed"},
      {"two Content-Lengths that differ",
       "POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n" + end,
       "400", "http-malformed"},
  };
  for (const HeadRow& row : rows) {
    Talk talk = AsMaster(row.request);
    EXPECT_EQ(talk.Status(), row.status) << row.name << ": " << talk.response.substr(0, 200);
    if (*row.rule) {
      EXPECT_TRUE(talk.Names(row.rule)) << row.name << ": " << talk.response;
    }
    EXPECT_TRUE(StillServes()) << row.name;
  }
  EXPECT_EQ(ops_.ran, 0);
}

// A HEAD answered with a body would make a pipelining client read that body as the start of
// the next response.
TEST_F(AServerUnderAbuse, AnswersHeadWithoutABodySoThePipelinedNextResponseStaysFramed) {
  Start();
  Talk talk = AsMaster(
      "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(talk.response.rfind("HTTP/1.1 405", 0), 0u) << talk.response;
  std::size_t head_end = talk.response.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << talk.response;
  EXPECT_NE(talk.response.substr(0, head_end).find("Content-Length: "), std::string::npos)
      << talk.response;
  EXPECT_EQ(talk.response.compare(head_end + 4, 12, "HTTP/1.1 200"), 0)
      << "bytes between the HEAD's answer and the next response:\n"
      << talk.response;
  EXPECT_EQ(ops_.ran, 0);
}

TEST_F(AServerUnderAbuse, Answers431ToAFieldOverBeastsCapWhenTheHeadLimitWouldAllowIt) {
  Limits limits;
  limits.header_bytes = 256 * 1024;  // the head limit no longer stops it; the parser throws
  Start(limits);
  Talk talk = AsMaster("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70 << 10, 'b') +
                       "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(talk.Status(), "431") << talk.response.substr(0, 200);
  EXPECT_TRUE(talk.Names("http-header-too-large"));
  EXPECT_GE(server_->Stats().handler_exceptions, 1u);
  EXPECT_TRUE(StillServes());
}

TEST_F(AServerUnderAbuse, RefusesManyFieldsBeforeParsingThemAll) {
  Start();
  // 4000 four-byte fields fit in the 16 KiB head; the screen stops them at the 65th.
  std::string many;
  for (int i = 0; i < 4000; ++i) many += "a:\r\n";
  Talk talk = AsMaster("GET /health HTTP/1.1\r\nHost: x\r\n" + many + "\r\n");
  EXPECT_EQ(talk.Status(), "431") << talk.response;
  EXPECT_TRUE(talk.Names("http-too-many-fields"));
  EXPECT_TRUE(StillServes());
}

// --- handlers that throw -------------------------------------------------------------------

// An Application whose every stage can throw, chosen by the path.
class ThrowingApp : public Application {
 public:
  Route OnHead(const RequestHead& head, const Peer&) override {
    if (head.target == "/health") return Response{200, "application/json", "{}"};
    if (head.target == "/head") throw std::runtime_error("OnHead failed");
    return std::make_unique<Thrower>(head.target);
  }

 private:
  class Thrower : public BodyConsumer {
   public:
    explicit Thrower(std::string target) : target_(std::move(target)) {}
    ConsumeResult Consume(std::string_view) override {
      if (target_ == "/consume") throw std::runtime_error("Consume failed");
      return {};
    }
    void Finish(Reply) override { throw std::logic_error("Finish failed"); }
    void Abandon(const Error&) override {}

   private:
    std::string target_;
  };
};

TEST_F(AServerUnderAbuse, Answers500WhenAHandlerThrowsAndKeepsServing) {
  ThrowingApp app;
  Start({}, &app);
  for (const char* path : {"/head", "/consume", "/finish"}) {
    Talk talk = AsMaster(std::string("POST ") + path +
                         " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_EQ(talk.Status(), "500") << path << ": " << talk.response;
    EXPECT_TRUE(talk.Names("http-internal-error")) << path;
    EXPECT_TRUE(StillServes()) << path;
  }
  EXPECT_EQ(server_->Stats().handler_exceptions, 3u);
  server_->Stop();  // before `app` goes
}

}  // namespace
}  // namespace decnet::daemon
