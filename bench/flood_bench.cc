// The daemon's HTTP server and API under a connection flood, over loopback only. A child
// process runs the server in front of the real API (operations that do nothing); this
// process plays the attacker and the master. Waves of hostile connections at growing
// counts, each held open a few seconds then closed:
//   idle       TCP connections that never send a byte;
//   stalled    a ClientHello, then silence (the server has done its part of the handshake);
//   slowloris  a full handshake with a CA-signed non-master certificate, then half a request.
// They come from 64 loopback addresses (127.1.0.x), the master from 127.0.0.1. Meanwhile the
// master asks GET /health on a new connection every 100 ms (each a full mTLS handshake)
// and pushes one small release (POST /update) per wave. Reported per wave: the master's
// success rate and latency (p50, p99, max), and the server process's RSS at its peak during
// the wave and 3 s after it.
//
// usage: flood_bench [MAX_CONNECTIONS]   (default 10000; bounded: about two minutes)
// Prints a Markdown table. Raises its RLIMIT_NOFILE to the hard limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/null_ops.h"
#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/tls.h"
#include "tests/daemon/multipart_encoder.h"
#include "tests/daemon/test_pki.h"

namespace fs = std::filesystem;
using namespace decnet;
using namespace decnet::daemon;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kSources = 64;
constexpr auto kHold = 3s;          // a wave stays open this long once opened
constexpr auto kOpenBudget = 30s;   // opening a wave stops after this, whatever its count
constexpr auto kAfter = 3s;         // RSS is read this long after a wave closed
constexpr auto kPollEvery = 100ms;  // the master's GET /health

using bench::NullOps;

void Write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// The child: the server in front of the API; prints its port, serves until stdin closes.
int Serve(const fs::path& dir) {
  NullOps ops;
  ApiOptions options;
  options.spool_dir = (dir / "spool").string();
  auto api = UpdaterApi::Create(ops, options);
  auto tls = MakeServerTlsContext(TlsFiles{(dir / "ca.crt").string(), (dir / "server.crt").string(),
                                           (dir / "server.key").string()});
  if (!api || !tls) return 1;
  auto http = HttpServer::Create(std::move(*tls), ServerConfig{}, **api);
  if (!http) return 1;
  auto port = (*http)->Start("127.0.0.1", 0);
  if (!port) return 1;
  std::printf("%u\n", *port);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  ServerStats s = (*http)->Stats();
  std::fprintf(stderr,
               "server: accepted %llu, shed %llu per source + %llu oldest, %llu handshake "
               "deadlines, %llu refused over cap, peak pending %llu, %llu trims\n",
               (unsigned long long)s.accepted, (unsigned long long)s.shed_per_source,
               (unsigned long long)s.shed_oldest, (unsigned long long)s.handshake_timeouts,
               (unsigned long long)s.refused_over_cap, (unsigned long long)s.peak_pending,
               (unsigned long long)s.memory_trims);
  (*http)->Stop();
  return 0;
}

std::uint64_t RssOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

int ConnectFrom(const std::string& source, std::uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  // Without it Nagle adds 40 ms to each request whatever the server does (asyncio sets it).
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in from{}, to{};
  from.sin_family = to.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string ClientHello(SSL_CTX* ctx) {
  SSL* ssl = SSL_new(ctx);
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, BIO_new(BIO_s_mem()), out);
  SSL_connect(ssl);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  return hello;
}

// One request on a new mTLS connection from 127.0.0.1: the status ("" if none) and the time
// from connect to the end of the response.
struct Answer {
  std::string status;
  double seconds = 0;
};
Answer Ask(SSL_CTX* ctx, std::uint16_t port, const std::string& request) {
  Answer out;
  auto start = Clock::now();
  int fd = ConnectFrom("127.0.0.1", port);
  if (fd >= 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1 &&
        SSL_write(ssl, request.data(), static_cast<int>(request.size())) > 0) {
      std::string response;
      char buf[4096];
      for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) response.append(buf, n);
      if (response.size() >= 12) out.status = response.substr(9, 3);
    }
    SSL_free(ssl);
    close(fd);
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

struct Row {
  std::string kind;
  int count = 0;   // asked for
  int opened = 0;  // connected (the rest failed or ran out of time)
  int polls = 0, served = 0;
  std::vector<double> latency;
  bool pushed = false;
  double push_seconds = 0;
  std::uint64_t rss_peak = 0, rss_after = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && std::string(argv[1]) == "serve") return Serve(argv[2]);
  const int max = argc > 1 ? std::atoi(argv[1]) : 10'000;
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < static_cast<rlim_t>(max) + 256) {
    std::fprintf(stderr, "RLIMIT_NOFILE %llu is too low for %d connections\n",
                 (unsigned long long)files.rlim_cur, max);
    return 1;
  }

  char tmpl[] = "/tmp/decnet-flood-bench.XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  decnet::testing::TestCa ca("bench-ca");
  const auto server = ca.Issue({{"decnet-updater"}, true});
  const auto master = ca.Issue({{"decnet-master"}, false});
  const auto worker = ca.Issue({{"worker"}, false});
  Write(dir / "ca.crt", ca.ca().cert_pem);
  Write(dir / "server.crt", server.cert_pem);
  Write(dir / "server.key", server.key_pem);
  auto master_ctx = decnet::testing::MakeClientContext(ca, &master);
  auto worker_ctx = decnet::testing::MakeClientContext(ca, &worker);
  const std::string hello = ClientHello(worker_ctx.get());

  // The server process.
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    dup2(to_child[0], 0);
    dup2(from_child[1], 1);
    close(to_child[1]);
    close(from_child[0]);
    execl("/proc/self/exe", argv[0], "serve", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(to_child[0]);
  close(from_child[1]);
  char portline[16] = {};
  if (read(from_child[0], portline, sizeof portline - 1) <= 0) return 1;
  const auto port = static_cast<std::uint16_t>(std::atoi(portline));

  // A small release for the master's push.
  const std::string release = "a small release, pushed under fire\n";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  EVP_Digest(release.data(), release.size(), md, &md_len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned i = 0; i < md_len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    hex += b;
  }
  const std::string form = daemon::testing::EncodeMultipart(
      {{"tarball", release, "release.tar.gz", "application/gzip"}, {"sha256", hex}}, "b0und");
  const std::string push =
      "POST /update HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: " +
      daemon::testing::ContentTypeFor("b0und") +
      "\r\nContent-Length: " + std::to_string(form.size()) + "\r\n\r\n" + form;
  const std::string health = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

  std::vector<std::pair<std::string, int>> waves = {{"none (idle server)", 0}};
  for (const char* kind : {"idle", "stalled"}) {
    for (int count : {1000, 3000, 10'000})
      if (count <= max) waves.emplace_back(kind, count);
  }
  for (int count : {600, 2000})
    if (count <= max) waves.emplace_back("slowloris", count);

  std::vector<Row> rows;
  for (const auto& [kind, count] : waves) {
    Row row;
    row.kind = kind;
    row.count = count;
    std::atomic<bool> done{false};
    std::mutex mu;
    // The master: polls, and pushes once.
    std::thread master_thread([&] {
      bool pushed = false;
      while (!done) {
        auto next = Clock::now() + kPollEvery;
        Answer a = Ask(master_ctx.get(), port, health);
        {
          std::lock_guard lock(mu);
          ++row.polls;
          row.served += a.status == "200";
          row.latency.push_back(a.seconds);
        }
        if (!pushed && row.polls >= 5) {
          pushed = true;
          Answer p = Ask(master_ctx.get(), port, push);
          row.pushed = p.status == "200";
          row.push_seconds = p.seconds;
        }
        std::this_thread::sleep_until(next);
      }
    });
    // RSS of the server, sampled.
    std::thread sampler([&] {
      while (!done) {
        row.rss_peak = std::max(row.rss_peak, RssOf(child));
        std::this_thread::sleep_for(50ms);
      }
    });
    // The attacker.
    std::vector<int> fds;
    std::vector<std::pair<int, SSL*>> tls;
    auto open_until = Clock::now() + kOpenBudget;
    for (int i = 0; i < count && Clock::now() < open_until; ++i) {
      std::string source = "127.1." + std::to_string(i % kSources / 256) + "." +
                           std::to_string(1 + i % kSources % 255);
      int fd = ConnectFrom(source, port);
      if (fd < 0) continue;
      ++row.opened;
      if (kind == "stalled") {
        (void)!write(fd, hello.data(), hello.size());
      } else if (kind == "slowloris") {
        SSL* ssl = SSL_new(worker_ctx.get());
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1) SSL_write(ssl, "GET /health HTTP/1.1\r\nX-A: ", 27);
        tls.emplace_back(fd, ssl);
        continue;
      }
      fds.push_back(fd);
    }
    std::this_thread::sleep_for(count > 0 ? kHold : kHold + kHold);
    for (int fd : fds) close(fd);
    for (auto& [fd, ssl] : tls) {
      SSL_free(ssl);
      close(fd);
    }
    std::this_thread::sleep_for(500ms);  // the master keeps polling while the wave drains
    done = true;
    master_thread.join();
    sampler.join();
    std::this_thread::sleep_for(kAfter);
    row.rss_after = RssOf(child);
    rows.push_back(std::move(row));
    const Row& r = rows.back();
    std::fprintf(stderr, "%s %d: opened %d, master %d/%d, p99 %.3f s, RSS %.1f -> %.1f MiB\n",
                 r.kind.c_str(), r.count, r.opened, r.served, r.polls, Percentile(r.latency, 0.99),
                 r.rss_peak / 1048576.0, r.rss_after / 1048576.0);
  }
  close(to_child[1]);  // the server stops and prints its counters
  waitpid(child, nullptr, 0);
  fs::remove_all(dir);

  std::printf(
      "| hostile connections | opened | master GET /health served | p50 | p99 | max | "
      "push (POST /update) | server RSS peak | RSS 3 s after |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const Row& r : rows) {
    std::printf(
        "| %s%s | %d | %d / %d (%.0f %%) | %.0f ms | %.0f ms | %.0f ms | %s (%.0f ms) | "
        "%.1f MiB | %.1f MiB |\n",
        r.kind.c_str(), r.count ? (" " + std::to_string(r.count)).c_str() : "", r.opened, r.served,
        r.polls, r.polls ? 100.0 * r.served / r.polls : 0.0, 1e3 * Percentile(r.latency, 0.5),
        1e3 * Percentile(r.latency, 0.99), 1e3 * Percentile(r.latency, 1.0),
        r.pushed ? "200" : "failed", 1e3 * r.push_seconds, r.rss_peak / 1048576.0,
        r.rss_after / 1048576.0);
  }
  return 0;
}
