// Fuzz target: the daemon's whole HTTP session. One input is one connection: its first byte
// picks the server and the client certificate, the rest is what the client sends. The bytes
// go through the real server (read loop, head screen, Beast's parser, limits, 100-continue,
// keep-alive and pipelining, chunked bodies, trailers, graceful close) into the real API
// (routing, authorisation, the multipart reader and upload form) in front of a fake
// Operations; only TLS is left out: the server adopts one end of a socket pair as a plain
// connection (http_server_testing.h) whose client certificate the harness states.
//
// The harness sends everything, shuts its write side, reads until the server closes, and
// then checks, beyond "no crash, no sanitizer report, no hang" (a broken one aborts):
//  * the output is a sequence of well-formed HTTP/1.x responses, each with one
//    Content-Length and its exact body; nothing follows a response that closes the
//    connection; a JSON body parses;
//  * each status is one the contract allows for that client; never 500 (no exception, no
//    spool failure) or 503 (the busy flag never outlives its request);
//  * a client that is not the master gets no 100 Continue, no 2xx but the liveness answer of
//    /health, no 400 but the server's own refusals, and nothing of the master's data;
//  * Operations runs exactly once per operation answer the client read, never for anyone
//    else, and only with a tarball whose digest is the one it is told;
//  * afterwards no connection is left in any pool, no exception was caught, no reply was
//    dropped, the busy flag is free, and the spool directory is empty.
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/api.h"
#include "daemon/audit_log.h"
#include "daemon/http_server.h"
#include "daemon/http_server_testing.h"
#include "proto/sha256.h"

namespace decnet::daemon::fuzzing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What every fake answer and every piece of the master's data carries, to be recognised.
constexpr std::string_view kOpMarker = "fuzz-op-";
constexpr std::string_view kSecret = "fuzz-secret";
constexpr std::string_view kLiveness = R"({"role":"updater","status":"ok"})";
constexpr auto kBound = 5s;  // an iteration takes milliseconds: this long is a hang

std::string g_output;  // the current iteration's output, shown when an invariant breaks

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "http_session_fuzz: invariant broken: %s\n--- output (%zu bytes) ---\n%s\n",
               what.c_str(), g_output.size(), g_output.substr(0, 4096).c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// Operations that succeed at once, count their calls, and check what they are handed. Their
// answers carry kOpMarker as the probe (update-self's has a fixed body).
class FakeOps final : public Operations {
 public:
  UpdateOutcome Update(const Caller&, const VerifiedTarball& tarball) override {
    CheckTarball(tarball);
    ++calls;
    return outcome::Updated{std::nullopt, std::string(kOpMarker) + "update"};
  }
  SelfUpdateOutcome UpdateSelf(const Caller&, const VerifiedTarball& tarball,
                               std::function<void()>*) override {
    CheckTarball(tarball);
    ++calls;
    return outcome::SelfQueued{};
  }
  RollbackOutcome Rollback(const Caller&) override {
    ++calls;
    return outcome::Restored{std::nullopt, std::string(kOpMarker) + "rollback"};
  }
  std::vector<json> Releases() override {
    return {json{{"id", std::string(kSecret) + "-release"}, {"slot", "active"}}};
  }

  std::atomic<int> calls{0};

 private:
  static void CheckTarball(const VerifiedTarball& tarball) {
    std::string bytes;
    char buf[16384];
    off_t at = 0;
    for (ssize_t n; (n = ::pread(tarball.fd, buf, sizeof buf, at)) > 0; at += n)
      bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() != tarball.size || Sha256Hex(bytes) != tarball.sha256)
      Broken("Operations was handed a tarball that does not match its digest");
  }
};

// A server with the real API in front of a FakeOps.
struct Stand {
  const char* name;
  bool pinned;   // the master is known by its pin; else by the CN decnet-master
  bool audited;  // with an audit log; else /audit answers 503 "audit-unavailable"
  fs::path spool;
  std::optional<AuditLog> audit;
  FakeOps ops;
  std::unique_ptr<UpdaterApi> api;
  std::unique_ptr<HttpServer> server;
};

// A client certificate as the server would read it, and whom each stand takes it for.
struct Client {
  const char* name;
  ClientIdentity identity;
  bool master_when_pinned;
  bool master_by_cn;
};

std::string Fingerprint(char digit) { return std::string(64, digit); }

ClientIdentity Identity(char digit, std::optional<std::string> cn) {
  ClientIdentity id;
  id.fingerprint = Fingerprint(digit);
  id.cn = cn;
  id.cn_for_log = cn.value_or("decnet-master,decnet-master");
  return id;
}

const std::vector<Client>& Clients() {
  static const std::vector<Client> clients = {
      {"the pinned master", Identity('1', "decnet-master"), true, true},
      {"an unpinned decnet-master", Identity('2', "decnet-master"), false, true},
      {"a worker", Identity('3', "worker"), false, false},
      {"a certificate with two CNs", Identity('4', std::nullopt), false, false},
      {"the pinned certificate under another CN", Identity('1', "worker"), true, false},
  };
  return clients;
}

Limits SmallTimeouts(Limits l) {
  l.handshake_timeout = 2s;
  l.handshake_timeout_min = 1s;
  l.header_timeout = 2s;
  l.body_read_timeout = 2s;
  l.write_timeout = 2s;
  l.linger_timeout = 500ms;
  return l;
}

void Build(Stand& stand, const fs::path& root, ServerConfig config, std::uint64_t max_upload) {
  stand.spool = root / stand.name;
  ApiOptions options;
  options.spool_dir = stand.spool.string();
  options.max_upload_bytes = max_upload;
  options.update_deadline = 60s;
  options.self_restart_delay = 0ms;
  options.version = std::string(kSecret) + "-version";
  options.policy_digest = std::string(kSecret) + "-digest";
  options.helper_alive = [] { return true; };
  if (stand.audited) {
    auto audit = AuditLog::Open((root / (std::string(stand.name) + "-audit.jsonl")).string());
    if (!audit) Broken("AuditLog::Open: " + audit.error().message);
    stand.audit.emplace(std::move(*audit));
    options.audit = &*stand.audit;
  }
  auto api = UpdaterApi::Create(stand.ops, options);
  if (!api) Broken("UpdaterApi::Create: " + api.error().message);
  stand.api = std::move(*api);
  config.io_threads = 1;
  auto server = HttpServer::Create(SslCtxPtr(SSL_CTX_new(TLS_server_method())), std::move(config),
                                   *stand.api);
  if (!server) Broken("HttpServer::Create: " + server.error().message);
  stand.server = std::move(*server);
  if (auto started = StartForTesting(*stand.server); !started)
    Broken("StartForTesting: " + started.error().message);
}

// Two servers, built once and kept across inputs: production limits with the master pinned,
// and small limits with the master known by its CN, where every cap is within an input's
// reach.
struct Harness {
  fs::path root;
  Stand stands[2] = {{"pinned", true, true, {}, {}, {}, {}, {}},
                     {"by-cn", false, false, {}, {}, {}, {}, {}}};

  Harness() {
    std::signal(SIGPIPE, SIG_IGN);
    // tmpfs when there is one: the audit log fsyncs each refusal.
    fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string dir = (base / "http-session-fuzz-XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) Broken("mkdtemp");
    root = dir;
    ServerConfig pinned;
    pinned.limits = SmallTimeouts(Limits{});
    pinned.limits.body_bytes = 1 << 20;
    pinned.master_pins = {Fingerprint('1')};
    Build(stands[0], root, pinned, 1 << 20);
    ServerConfig by_cn;
    by_cn.limits = SmallTimeouts(Limits{});
    by_cn.limits.header_bytes = 2048;
    by_cn.limits.header_fields = 16;
    by_cn.limits.read_buffer_bytes = 4096;
    by_cn.limits.body_bytes = 16 * 1024;
    by_cn.limits.linger_bytes = 8 * 1024;
    Build(stands[1], root, by_cn, 8 * 1024);
  }
};

Harness& TheHarness() {
  static Harness* harness = [] {
    auto* h = new Harness();  // never destroyed: its threads serve until the process ends
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(TheHarness().root, ignored);
    });
    return h;
  }();
  return *harness;
}

// Sends `input` on `fd`, shuts the write side, and returns everything read until the server
// closes. Breaks when that takes longer than kBound.
std::string Converse(int fd, std::string_view input) {
  std::string out;
  std::size_t sent = 0;
  bool shut = false;
  Clock::time_point end = Clock::now() + kBound;
  for (;;) {
    if (!shut && sent == input.size()) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (left.count() <= 0) Broken("the server neither answered nor closed within 5 s");
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) return out;  // the server closed
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    if (!shut && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) sent = input.size();  // the server left
    }
  }
}

// One response as read.
struct Reply {
  unsigned status = 0;
  bool keep_alive = false;
  std::string content_type;
  std::string body;
  bool head = false;  // the answer to a HEAD: its Content-Length, no body
};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// The HEAD requests in an input: request lines that start with "HEAD " (at most that many
// answers may come without their body).
int HeadRequests(std::string_view input) {
  int n = input.starts_with("HEAD ") ? 1 : 0;
  for (std::size_t at = input.find("\nHEAD "); at != std::string_view::npos;
       at = input.find("\nHEAD ", at + 1))
    ++n;
  return n;
}

// Parses the whole output as responses; breaks on anything else. An answer to HEAD has no
// body: one is recognised, up to `heads` times, by its end being the end of the output or the
// start of the next response (no body this server sends starts with "HTTP/1.").
std::vector<Reply> ParseResponses(const std::string& out, int heads) {
  std::vector<Reply> replies;
  std::size_t at = 0;
  while (at < out.size()) {
    std::size_t head_end = out.find("\r\n\r\n", at);
    if (head_end == std::string::npos) Broken("a response head without its end");
    std::string_view head(out.data() + at, head_end + 2 - at);
    std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    // "HTTP/1.x NNN reason"
    if (line.size() < 13 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || !std::isdigit(static_cast<unsigned char>(line[9])) ||
        !std::isdigit(static_cast<unsigned char>(line[10])) ||
        !std::isdigit(static_cast<unsigned char>(line[11])) || line[12] != ' ')
      Broken("a malformed status line: " + std::string(line.substr(0, 80)));
    Reply reply;
    reply.status = static_cast<unsigned>(std::stoul(std::string(line.substr(9, 3))));
    bool http11 = line[7] == '1';
    std::optional<std::uint64_t> length;
    std::optional<std::string> connection;
    for (std::size_t pos = eol + 2; pos < head.size();) {
      std::size_t next = head.find("\r\n", pos);
      std::string_view field = head.substr(pos, next - pos);
      pos = next + 2;
      std::size_t colon = field.find(':');
      if (colon == std::string_view::npos || !IsToken(field.substr(0, colon)))
        Broken("a malformed response field: " + std::string(field.substr(0, 80)));
      std::string name = Lower(field.substr(0, colon));
      std::string_view value = field.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-length") {
        if (length || value.empty() || value.size() > 12 ||
            !std::all_of(value.begin(), value.end(),
                         [](unsigned char c) { return std::isdigit(c); }))
          Broken("a missing, repeated or malformed Content-Length");
        length = std::stoull(std::string(value));
      } else if (name == "connection") {
        connection = Lower(value);
      } else if (name == "content-type") {
        reply.content_type = std::string(value);
      } else if (name == "transfer-encoding") {
        Broken("a response with Transfer-Encoding");
      }
    }
    at = head_end + 4;
    if (reply.status / 100 == 1) {
      if (reply.status != 100 || length) Broken("an interim response other than 100 Continue");
      reply.keep_alive = true;
      replies.push_back(std::move(reply));
      continue;
    }
    if (!length) Broken("a final response without Content-Length");
    if (*length > 0 && heads > 0 && (at == out.size() || out.compare(at, 7, "HTTP/1.") == 0)) {
      --heads;
      reply.head = true;
      length = 0;
    }
    if (out.size() - at < *length) Broken("a response body shorter than its Content-Length");
    reply.body = out.substr(at, *length);
    at += *length;
    reply.keep_alive = http11 ? connection != "close" : connection == "keep-alive";
    if (!reply.keep_alive && at != out.size())
      Broken("bytes after a response that closes the connection");
    replies.push_back(std::move(reply));
  }
  return replies;
}

// The statuses the contract allows a client: DECNET's answers, ours, and the server's own
// refusals (400 malformed, 413 too large, 431 head too large). 500 cannot happen with an
// Operations that succeeds at once, nor 503 "busy" one connection at a time; 503 is only
// /audit's without an audit log.
bool Allowed(const Reply& r, bool master) {
  switch (r.status) {
    case 200:
    case 400:
    case 404:
    case 405:
    case 431:
      return true;
    case 403:
      return !master;
    case 100:
    case 413:
    case 422:
      return master;
    case 501:  // a HEAD's answer carries no body to name the rule
      return r.head || r.body.find(R"("rule":"http-transfer-encoding")") != std::string::npos;
    case 503:
      return master &&
             (r.head || r.body.find(R"("rule":"audit-unavailable")") != std::string::npos);
    default:
      return false;
  }
}

// One of FakeOps' answers, as api_answers.h shapes them. Decided on the parsed body, which a
// client cannot forge by having its own text echoed in an error.
bool IsOperationAnswer(const Reply& r) {
  if (r.status != 200) return false;
  json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("status")) return false;
  if (body["status"] == "self_update_queued") return true;
  return body.contains("probe") && body["probe"].is_string() &&
         body["probe"].get<std::string>().starts_with(kOpMarker);
}

void Check(const std::vector<Reply>& replies, bool master, int calls) {
  int op_answers = 0;
  bool interim = false;
  for (const Reply& r : replies) {
    std::string what = "status " + std::to_string(r.status) + " to " +
                       (master ? "the master" : "a client") + ": " + r.body.substr(0, 200);
    if (!Allowed(r, master)) Broken("a status the contract does not allow: " + what);
    if (r.status == 100) {
      if (interim) Broken("two 100 Continue for one request");
      interim = true;
      continue;
    }
    interim = false;
    if (r.head) {  // nothing to read in it but its status
      if (!master && r.status / 100 == 2) Broken("a 2xx to a HEAD from a client: " + what);
      continue;
    }
    if (r.content_type.starts_with("application/json") && !json::accept(r.body))
      Broken("a JSON response that does not parse: " + what);
    if (IsOperationAnswer(r)) ++op_answers;
    if (master) continue;
    // SECURITY: what a client other than the master may ever read.
    if (r.status / 100 == 2 && r.body != kLiveness)
      Broken("a 2xx other than /health's liveness answer: " + what);
    if (r.body.find(kSecret) != std::string::npos) Broken("the master's data leaked: " + what);
    if (r.status == 400 && r.body.find(R"("rule":"http-)") == std::string::npos)
      Broken("a 400 that is not the server's own refusal: " + what);
  }
  if (op_answers != calls)
    Broken("Operations ran " + std::to_string(calls) + " times for " + std::to_string(op_answers) +
           " operation answers");
}

// Waits until the connection is gone from every pool and the busy flag is free.
ServerStats Settle(Stand& stand) {
  Clock::time_point end = Clock::now() + kBound;
  for (;;) {
    ServerStats s = stand.server->Stats();
    if (s.open_connections == 0 && s.pending_connections == 0 && s.authenticated_connections == 0 &&
        s.master_connections == 0 && !stand.api->busy())
      return s;
    if (Clock::now() > end)
      Broken("a connection leaked: open " + std::to_string(s.open_connections) + ", pending " +
             std::to_string(s.pending_connections) + ", authenticated " +
             std::to_string(s.authenticated_connections) + ", master " +
             std::to_string(s.master_connections) + ", busy " + std::to_string(stand.api->busy()));
    std::this_thread::sleep_for(50us);
  }
}

void RunOne(const std::uint8_t* data, std::size_t size) {
  Harness& h = TheHarness();
  std::uint8_t pick = size > 0 ? data[0] : 0;
  Stand& stand = h.stands[pick & 1];
  const Client& client = Clients()[(pick >> 1) % Clients().size()];
  bool master = stand.pinned ? client.master_when_pinned : client.master_by_cn;
  std::string_view input = size > 0
                               ? std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)
                               : std::string_view();

  ServerStats before = Settle(stand);
  int calls_before = stand.ops.calls.load();
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) Broken("socketpair");
  if (auto adopted = AdoptForTesting(*stand.server, fds[1], client.identity); !adopted)
    Broken("AdoptForTesting: " + adopted.error().message);
  g_output = Converse(fds[0], input);
  ::close(fds[0]);
  std::vector<Reply> replies = ParseResponses(g_output, HeadRequests(input));
  if (std::getenv("HTTP_SESSION_FUZZ_VERBOSE") != nullptr) {  // what each input got, for seeds
    std::fprintf(stderr, "%s on %s:", client.name, stand.name);
    for (const Reply& r : replies) std::fprintf(stderr, " %u", r.status);
    std::fprintf(stderr, " (%d operations)\n", stand.ops.calls.load() - calls_before);
  }
  ServerStats after = Settle(stand);
  int calls = stand.ops.calls.load() - calls_before;
  if (!master && calls != 0) Broken(std::string("Operations ran for ") + client.name);
  Check(replies, master, calls);
  if (after.handler_exceptions != before.handler_exceptions)
    Broken("the server caught an exception");
  if (after.dropped_replies != before.dropped_replies) Broken("a reply was dropped");
  if (after.handshake_failures != before.handshake_failures ||
      after.refused_over_cap != before.refused_over_cap)
    Broken("the connection was not admitted");
  if (!fs::is_empty(stand.spool)) Broken("the spool directory is not empty");
  if (stand.audit) {  // every refusal appends a line: keep the log short across inputs
    fs::path log = h.root / (std::string(stand.name) + "-audit.jsonl");
    std::error_code ignored;
    if (fs::file_size(log, ignored) > (1u << 20)) fs::resize_file(log, 0, ignored);
  }
}

}  // namespace
}  // namespace decnet::daemon::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  decnet::daemon::fuzzing::RunOne(data, size);
  return 0;
}
