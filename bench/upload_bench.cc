// The upload path alone: curl pushes a release as DECNET's master does (-F tarball=@F
// -F sha256=HEX) over loopback mTLS into the daemon's HTTP server and API (TLS, HTTP parser,
// multipart reader, spool file, SHA-256 on the fly, digest check), answered by operations
// that do nothing. Beside it, in the same run, the same bytes through the work that cannot be
// avoided: `sha256sum F` and a copy of F into a file in the same directory.
//
// usage: upload_bench FILE [RUNS] [IO_THREADS]   (prints one line per variant: median seconds)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench/null_ops.h"
#include "daemon/api.h"
#include "daemon/http_server.h"
#include "daemon/tls.h"
#include "tests/daemon/test_pki.h"

namespace fs = std::filesystem;
using namespace decnet;
using namespace decnet::daemon;

namespace {

using bench::NullOps;

void Write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

double Seconds(const std::string& command) {
  const auto start = std::chrono::steady_clock::now();
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n", command.c_str());
    std::exit(1);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: upload_bench FILE [RUNS] [IO_THREADS]\n");
    return 2;
  }
  const std::string file = argv[1];
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const unsigned io_threads = argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 2;
  char tmpl[] = "/tmp/decnet-upload-bench.XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);

  testing::TestCa ca("bench-ca");
  const auto server = ca.Issue({{"decnet-updater"}, true});
  const auto master = ca.Issue({{"decnet-master"}, false});
  Write(dir / "ca.crt", ca.ca().cert_pem);
  Write(dir / "server.crt", server.cert_pem);
  Write(dir / "server.key", server.key_pem);
  Write(dir / "master.crt", master.cert_pem);
  Write(dir / "master.key", master.key_pem);

  NullOps ops;
  ApiOptions options;
  options.spool_dir = (dir / "spool").string();
  options.max_upload_bytes = 4ull << 30;
  auto api = UpdaterApi::Create(ops, options);
  auto tls = MakeServerTlsContext(TlsFiles{(dir / "ca.crt").string(), (dir / "server.crt").string(),
                                           (dir / "server.key").string()});
  if (!api || !tls) {
    std::fprintf(stderr, "set-up failed\n");
    return 1;
  }
  ServerConfig config;
  config.limits.body_bytes = (4ull << 30) + (1 << 20);
  config.io_threads = io_threads;
  auto http = HttpServer::Create(std::move(*tls), config, **api);
  auto port = http ? (*http)->Start("127.0.0.1", 0) : Result<std::uint16_t>(0);
  if (!http || !port) {
    std::fprintf(stderr, "server failed\n");
    return 1;
  }

  const std::string digest = [&] {
    FILE* p = ::popen(("sha256sum " + file).c_str(), "r");
    char buf[65] = {};
    if (p == nullptr || std::fread(buf, 1, 64, p) != 64) std::exit(1);
    ::pclose(p);
    return std::string(buf, 64);
  }();
  const std::string curl =
      "curl -sS -o /dev/null --fail --cacert " + (dir / "ca.crt").string() + " --cert " +
      (dir / "master.crt").string() + " --key " + (dir / "master.key").string() + " -F tarball=@" +
      file + " -F sha256=" + digest + " https://127.0.0.1:" + std::to_string(*port) + "/update";
  const std::string floor = "sha256sum " + file + " >/dev/null && cat " + file + " > " +
                            (dir / "copy").string() + " && rm -f " + (dir / "copy").string();
  std::vector<double> ours, base;
  for (int i = 0; i < runs; ++i) {
    if (i % 2 == 0) {
      ours.push_back(Seconds(curl));
      base.push_back(Seconds(floor));
    } else {
      base.push_back(Seconds(floor));
      ours.push_back(Seconds(curl));
    }
  }
  struct stat st {};
  ::stat(file.c_str(), &st);
  const double mb = static_cast<double>(st.st_size) / 1e6;
  std::printf("upload through the daemon (io_threads %u): %.3f s (%.0f MB/s)\n", io_threads,
              Median(ours), mb / Median(ours));
  std::printf("sha256sum + copy of the same file:        %.3f s (%.0f MB/s)\n", Median(base),
              mb / Median(base));
  std::printf("ratio: %.2fx\n", Median(ours) / Median(base));
  (*http)->Stop();
  fs::remove_all(dir);
  return 0;
}
