// Shared by the pack and sign tests: a scratch directory, the commands called in process with
// their output captured, and a tarball read back with libarchive.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fleet/commands.h"

namespace decnet::fleet::testing_support {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/decnet-fleet-test.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    root_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const fs::path& root() const { return root_; }
  std::string Path(const std::string& rel) const { return (root_ / rel).string(); }

  // Writes `content` at `rel`, creating its directories, with `mode`.
  void File(const std::string& rel, std::string_view content = "x\n", mode_t mode = 0644) const {
    const fs::path p = root_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    if (chmod(p.c_str(), mode) != 0) std::abort();
  }

 private:
  fs::path root_;
};

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a command returned and printed.
struct CommandRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Calls a decnet-rollout command in process with `args` (the words after its name).
inline CommandRun Call(int (*command)(Args), const std::vector<std::string>& args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  CommandRun run;
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  run.exit_code = command(views);
  std::fflush(stdout);
  std::fflush(stderr);
  run.out = ::testing::internal::GetCapturedStdout();
  run.err = ::testing::internal::GetCapturedStderr();
  return run;
}

// One entry of a tarball as libarchive reads it back.
struct TarEntry {
  std::string path;
  mode_t type = 0;
  mode_t perm = 0;
  int64_t uid = -1, gid = -1;
  std::string uname, gname;
  int64_t mtime = -1;
  long mtime_nsec = -1;
  bool atime_set = false, ctime_set = false, birthtime_set = false;
  int xattrs = 0;
  std::string content;
};

// Reads every entry of a gzip'd tar; a test failure (and what was read) when it does not read.
inline std::vector<TarEntry> ReadTarball(const fs::path& path) {
  std::vector<TarEntry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path.c_str(), 10240) != ARCHIVE_OK) {
    ADD_FAILURE() << "cannot open " << path << ": " << archive_error_string(a);
    archive_read_free(a);
    return out;
  }
  struct archive_entry* e = nullptr;
  int r = ARCHIVE_OK;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    TarEntry t;
    t.path = archive_entry_pathname(e);
    t.type = archive_entry_filetype(e);
    t.perm = archive_entry_perm(e);
    t.uid = archive_entry_uid(e);
    t.gid = archive_entry_gid(e);
    t.uname = archive_entry_uname(e) ? archive_entry_uname(e) : "";
    t.gname = archive_entry_gname(e) ? archive_entry_gname(e) : "";
    t.mtime = archive_entry_mtime(e);
    t.mtime_nsec = archive_entry_mtime_nsec(e);
    t.atime_set = archive_entry_atime_is_set(e);
    t.ctime_set = archive_entry_ctime_is_set(e);
    t.birthtime_set = archive_entry_birthtime_is_set(e);
    t.xattrs = archive_entry_xattr_count(e);
    char buffer[8192];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buffer, sizeof buffer)) > 0) {
      t.content.append(buffer, static_cast<size_t>(n));
    }
    out.push_back(std::move(t));
  }
  if (r != ARCHIVE_EOF) ADD_FAILURE() << "cannot read " << path << ": " << archive_error_string(a);
  archive_read_free(a);
  return out;
}

inline std::vector<std::string> EntryPaths(const std::vector<TarEntry>& entries) {
  std::vector<std::string> paths;
  for (const TarEntry& e : entries) paths.push_back(e.path);
  return paths;
}

}  // namespace decnet::fleet::testing_support
