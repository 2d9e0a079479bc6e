// Extracts one release tarball with daemon/extract.cc, for bench/extract_bench.sh.
// usage: extract_tool ARCHIVE DEST_DIR [--fsync-each | --no-sync]
// Prints one line: seconds, files, bytes, and the process's peak RSS (VmHWM) in KiB.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "daemon/extract.h"

namespace {

long VmHwmKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ARCHIVE DEST_DIR [--fsync-each | --no-sync]\n", argv[0]);
    return 2;
  }
  decnet::daemon::ExtractLimits limits;
  if (argc > 3 && std::strcmp(argv[3], "--fsync-each") == 0) {
    limits.durability = decnet::daemon::Durability::kFsyncEachFile;
  }
  if (argc > 3 && std::strcmp(argv[3], "--no-sync") == 0) {  // diagnosis only: not durable
    limits.durability = decnet::daemon::Durability::kNotDurable;
  }
  const int archive_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  mkdir(argv[2], 0755);
  const int dest_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (archive_fd < 0 || dest_fd < 0) {
    std::perror("open");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = decnet::daemon::ExtractRelease(archive_fd, dest_fd, limits);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!r) {
    std::fprintf(stderr, "refused: %s: %s\n", r.error().rule.c_str(), r.error().message.c_str());
    return 1;
  }
  std::printf("seconds=%.3f files=%llu bytes=%llu vmhwm_kib=%ld\n", seconds,
              static_cast<unsigned long long>(r->files),
              static_cast<unsigned long long>(r->file_bytes), VmHwmKiB());
  return 0;
}
