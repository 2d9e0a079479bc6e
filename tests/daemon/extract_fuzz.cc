// Fuzz target for the extractor's header handling: arbitrary bytes are handed to
// ExtractRelease as the archive, extracted into a fresh temporary directory that is removed
// afterwards. Any outcome is fine except a crash, a sanitizer report, or a write outside it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include "daemon/extract.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int archive_fd = memfd_create("fuzz-archive", MFD_CLOEXEC);
  if (archive_fd < 0) return 0;
  size_t off = 0;
  while (off < size) {
    const ssize_t w = write(archive_fd, data + off, size - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  lseek(archive_fd, 0, SEEK_SET);

  char dir_template[] = "/tmp/extract-fuzz-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    close(archive_fd);
    return 0;
  }
  const int dest_fd = open(dir_template, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  decnet::daemon::ExtractLimits limits;
  limits.max_total_bytes = 64u << 20;  // keep a fuzzing run's disk use small
  limits.max_entries = 2000;
  limits.durability = decnet::daemon::Durability::kNotDurable;  // no syncfs per input
  (void)decnet::daemon::ExtractRelease(archive_fd, dest_fd, limits);
  close(dest_fd);
  close(archive_fd);
  std::error_code ec;
  std::filesystem::remove_all(dir_template, ec);
  return 0;
}
