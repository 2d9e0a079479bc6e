// Fuzz target for extraction: arbitrary bytes are handed to ExtractRelease as the archive and
// extracted beside canaries (see extract_fuzz.h). Any outcome is fine except a crash, a
// sanitizer report, a write outside the destination, or a forbidden kind of file inside it.
#include "tests/daemon/extract_fuzz.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>

#include "daemon/extract.h"

namespace decnet::daemon::fuzzing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDest = "dest";

[[noreturn]] void Broken(const std::string& what) {
  std::fprintf(stderr, "extract_fuzz: invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
  if (::chmod(p.c_str(), 0644) != 0) Broken("cannot set up canary " + p.string());
}

std::string Octal(mode_t mode) {
  std::ostringstream o;
  o << std::oct << mode;
  return o.str();
}

// One entry as lstat and a read see it; timestamps left out (reading a file changes atime).
std::string Describe(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return "gone";
  std::ostringstream d;
  d << std::oct << st.st_mode << std::dec << " nlink " << st.st_nlink << " uid " << st.st_uid
    << " size " << st.st_size << " ino " << st.st_ino;
  if (S_ISLNK(st.st_mode)) d << " -> " << fs::read_symlink(p).string();
  if (S_ISREG(st.st_mode)) d << " content " << Slurp(p);
  return d.str();
}

// Everything in `parent` except what lies beneath dest (dest itself is included).
std::map<std::string, std::string> SnapshotOutsideDest(const fs::path& parent) {
  std::map<std::string, std::string> snap;
  snap["."] = Describe(parent);
  for (auto it = fs::recursive_directory_iterator(parent); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = it->path().lexically_relative(parent).string();
    snap[rel] = Describe(it->path());
    if (rel == kDest) it.disable_recursion_pending();
  }
  // dest's own size and link count change with what it holds: only its type and mode count.
  struct stat st {};
  snap[kDest] = ::lstat((parent / kDest).c_str(), &st) == 0
                    ? "mode " + std::to_string(st.st_mode) + " uid " + std::to_string(st.st_uid)
                    : "gone";
  return snap;
}

void CheckOutsideUnchanged(const std::map<std::string, std::string>& before,
                           const std::map<std::string, std::string>& after) {
  for (const auto& [path, was] : before) {
    auto now = after.find(path);
    if (now == after.end()) Broken("outside the destination, " + path + " was removed");
    if (now->second != was)
      Broken("outside the destination, " + path + " changed: was [" + was + "], is [" +
             now->second + "]");
  }
  for (const auto& [path, now] : after)
    if (!before.contains(path)) Broken("outside the destination, " + path + " appeared: " + now);
}

// Only what the extraction policy allows lies beneath dest.
void CheckDestHoldsOnlyPlainFiles(const fs::path& dest) {
  const uid_t me = ::geteuid();
  for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    const fs::path& p = it->path();
    if (::lstat(p.c_str(), &st) != 0) Broken("cannot lstat " + p.string());
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
      Broken(p.string() + " is neither a regular file nor a directory (mode " + Octal(st.st_mode) +
             ")");
    if (st.st_uid != me) Broken(p.string() + " belongs to uid " + std::to_string(st.st_uid));
    const mode_t perm = st.st_mode & 07777;
    if ((perm & ~mode_t{0755}) != 0)
      Broken(p.string() + " has mode bits outside 0755: " + Octal(perm));
    if (S_ISREG(st.st_mode) && st.st_nlink != 1)
      Broken(p.string() + " has " + std::to_string(st.st_nlink) + " links");
  }
}

bool IsKnownRule(const std::string& rule) {
  return std::find(std::begin(kExtractRules), std::end(kExtractRules), rule) !=
         std::end(kExtractRules);
}

// PARENT with dest (empty) and the canaries of extract_fuzz.h.
fs::path MakeParent() {
  char tmpl[] = "/tmp/extract-fuzz-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Broken("mkdtemp failed");
  const fs::path parent = tmpl;
  for (const char* dir : {kDest, "canary-dir"}) {
    if (::mkdir((parent / dir).c_str(), 0755) != 0 || ::chmod((parent / dir).c_str(), 0755) != 0)
      Broken("cannot set up " + std::string(dir));
  }
  WriteFile(parent / "canary", "written before the extraction\n");
  WriteFile(parent / "canary-dir" / "inner", "also before\n");
  if (::link((parent / "canary").c_str(), (parent / "canary-hard").c_str()) != 0 ||
      ::symlink((parent / "canary-dir").c_str(), (parent / "outside-link").c_str()) != 0 ||
      ::symlink("../canary-dir", (parent / "relative-link").c_str()) != 0)
    Broken("cannot set up the canary links");
  return parent;
}

int MemoryFileWith(std::string_view bytes) {
  const int fd = ::memfd_create("fuzz-archive", MFD_CLOEXEC);
  if (fd < 0) Broken("memfd_create failed");
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w <= 0) Broken("cannot write the archive to a memfd");
    off += static_cast<size_t>(w);
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace

std::string ExtractAndCheck(std::string_view archive) {
  const int archive_fd = MemoryFileWith(archive);
  const fs::path parent = MakeParent();
  const auto before = SnapshotOutsideDest(parent);
  const int dest_fd = ::open((parent / kDest).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dest_fd < 0) Broken("cannot open dest");

  ExtractLimits limits;
  limits.max_total_bytes = 64u << 20;  // keep a fuzzing run's disk use small
  limits.max_entries = 2000;
  limits.durability = Durability::kNotDurable;  // no syncfs per input
  const auto extracted = ExtractRelease(archive_fd, dest_fd, limits);
  ::close(dest_fd);
  ::close(archive_fd);

  CheckOutsideUnchanged(before, SnapshotOutsideDest(parent));
  CheckDestHoldsOnlyPlainFiles(parent / kDest);
  std::string outcome = "accept";
  if (!extracted) {
    if (!IsKnownRule(extracted.error().rule))
      Broken("refused with an unlisted rule \"" + extracted.error().rule + "\"");
    outcome = "refuse:" + extracted.error().rule;
  }
  std::error_code ec;
  fs::remove_all(parent, ec);
  return outcome;
}

}  // namespace decnet::daemon::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)decnet::daemon::fuzzing::ExtractAndCheck(
      std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
