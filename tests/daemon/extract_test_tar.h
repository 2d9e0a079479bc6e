// Test-only tar and gzip writers that can produce any header at all, valid or hostile, and the
// harness shared by the extraction tests. Nothing here is used by the daemon.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

#include "daemon/extract.h"

namespace decnet::daemon::testing {

// One 512-byte ustar header, every field settable.
struct TarHeader {
  std::string name;
  char type = '0';
  unsigned mode = 0644;
  uint64_t size = 0;
  std::string linkname;
  std::string prefix;
  std::string magic = std::string("ustar\0", 6);
  std::string version = "00";
  unsigned devmajor = 0;
  unsigned devminor = 0;
  bool corrupt_checksum = false;
};

inline void PutField(char* at, size_t width, std::string_view value) {
  std::memcpy(at, value.data(), value.size() < width ? value.size() : width);
}

inline void PutOctal(char* at, size_t width, uint64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
  std::memcpy(at, buf, width - 1);
  at[width - 1] = 0;
}

inline std::string HeaderBlock(const TarHeader& h) {
  std::string b(512, '\0');
  char* p = b.data();
  PutField(p, 100, h.name);
  PutOctal(p + 100, 8, h.mode);
  PutOctal(p + 108, 8, 0);  // uid
  PutOctal(p + 116, 8, 0);  // gid
  PutOctal(p + 124, 12, h.size);
  PutOctal(p + 136, 12, 1700000000);
  std::memset(p + 148, ' ', 8);
  p[156] = h.type;
  PutField(p + 157, 100, h.linkname);
  PutField(p + 257, 6, h.magic);
  PutField(p + 263, 2, h.version);
  PutField(p + 265, 32, "root");
  PutField(p + 297, 32, "root");
  PutOctal(p + 329, 8, h.devmajor);
  PutOctal(p + 337, 8, h.devminor);
  PutField(p + 345, 155, h.prefix);
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  if (h.corrupt_checksum) sum += 7;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06o", sum);
  std::memcpy(p + 148, buf, 6);
  p[154] = 0;
  p[155] = ' ';
  return b;
}

// Builds a tar stream in memory.
class TestTar {
 public:
  TestTar& Header(const TarHeader& h) {
    bytes_ += HeaderBlock(h);
    return *this;
  }
  TestTar& Data(std::string_view data) {
    bytes_ += data;
    bytes_.append((512 - data.size() % 512) % 512, '\0');
    return *this;
  }
  TestTar& File(const std::string& name, std::string_view content, unsigned mode = 0644) {
    TarHeader h;
    h.name = name;
    h.mode = mode;
    h.size = content.size();
    return Header(h).Data(content);
  }
  TestTar& Dir(const std::string& name, unsigned mode = 0755) {
    TarHeader h;
    h.name = name;
    h.type = '5';
    h.mode = mode;
    return Header(h);
  }
  TestTar& Special(const std::string& name, char type, const std::string& link = {}) {
    TarHeader h;
    h.name = name;
    h.type = type;
    h.linkname = link;
    return Header(h);
  }
  // A pax extended header ('x') carrying `records` ("key=value" each); its length prefixes are
  // computed unless `declared_size` overrides the size field.
  TestTar& Pax(const std::map<std::string, std::string>& records, uint64_t declared_size = 0) {
    std::string body;
    for (const auto& [k, v] : records) {
      const std::string rest = " " + k + "=" + v + "\n";
      size_t len = rest.size() + 1;
      while (std::to_string(len).size() + rest.size() != len) ++len;
      body += std::to_string(len) + rest;
    }
    TarHeader h;
    h.name = "PaxHeaders/x";
    h.type = 'x';
    h.size = declared_size ? declared_size : body.size();
    Header(h);
    return declared_size ? *this : Data(body);
  }
  // A GNU long-name record ('L') naming the next entry.
  TestTar& GnuLongName(const std::string& name) {
    TarHeader h;
    h.name = "././@LongLink";
    h.type = 'L';
    h.magic = "ustar ";
    h.version = std::string(" \0", 2);
    h.size = name.size() + 1;
    Header(h);
    return Data(name + std::string(1, '\0'));
  }
  TestTar& End() {
    bytes_.append(1024, '\0');
    return *this;
  }
  TestTar& Raw(std::string_view raw) {
    bytes_ += raw;
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// Incremental gzip (zlib, RFC 1952 framing) to a string or a file descriptor.
class GzipSink {
 public:
  explicit GzipSink(int fd = -1, int level = 6) : fd_(fd) {
    deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  }
  ~GzipSink() { deflateEnd(&z_); }
  // False once the reading end went away.
  bool Write(std::string_view data) { return Pump(data, Z_NO_FLUSH); }
  bool Finish() { return Pump({}, Z_FINISH); }
  const std::string& out() const { return out_; }

 private:
  bool Pump(std::string_view data, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    char buf[1 << 16];
    int r = Z_OK;
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      r = deflate(&z_, flush);
      const size_t n = sizeof buf - z_.avail_out;
      if (!Emit(buf, n)) return false;
    } while (z_.avail_in > 0 || (flush == Z_FINISH && r != Z_STREAM_END));
    return true;
  }
  bool Emit(const char* p, size_t n) {
    if (fd_ < 0) {
      out_.append(p, n);
      return true;
    }
    while (n > 0) {
      const ssize_t w = write(fd_, p, n);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }
  z_stream z_{};
  int fd_;
  std::string out_;
};

inline std::string Gzip(std::string_view data, int level = 6) {
  GzipSink sink(-1, level);
  sink.Write(data);
  sink.Finish();
  return sink.out();
}

// The bytes in a memfd positioned at 0, as the spool file would be.
inline int MemFdWith(std::string_view bytes) {
  const int fd = memfd_create("archive", MFD_CLOEXEC);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = write(fd, bytes.data() + off, bytes.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

// A generator thread writing a gzip stream into a pipe, for archives too large to hold: it
// stops when the extractor stops reading (SIGPIPE must be ignored).
class PipeFeeder {
 public:
  explicit PipeFeeder(std::function<void(GzipSink&)> produce) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    read_fd_ = fds[0];
    const int write_fd = fds[1];
    thread_ = std::thread([write_fd, produce = std::move(produce)] {
      {
        GzipSink sink(write_fd, 6);
        produce(sink);
      }
      close(write_fd);
    });
  }
  ~PipeFeeder() {
    if (read_fd_ >= 0) close(read_fd_);
    if (thread_.joinable()) thread_.join();
  }
  int read_fd() const { return read_fd_; }

 private:
  int read_fd_ = -1;
  std::thread thread_;
};

// Peak resident set size of this process, from /proc/self/status, in KiB.
inline long VmHwmKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Every path beneath `root` with its type, mode, size and content digest, one line each.
inline std::string Snapshot(const std::filesystem::path& root,
                            const std::filesystem::path& skip = {}) {
  std::ostringstream out;
  std::map<std::string, std::string> lines;
  for (auto it = std::filesystem::recursive_directory_iterator(root);
       it != std::filesystem::recursive_directory_iterator(); ++it) {
    if (!skip.empty() && it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    lstat(it->path().c_str(), &st);
    std::string content;
    if (S_ISREG(st.st_mode)) {
      std::ifstream f(it->path(), std::ios::binary);
      std::ostringstream s;
      s << f.rdbuf();
      content = std::to_string(std::hash<std::string>{}(s.str()));
    }
    std::ostringstream l;
    l << std::oct << st.st_mode << std::dec << " " << st.st_size << " " << st.st_mtim.tv_sec << "."
      << st.st_mtim.tv_nsec << " " << content;
    lines[std::filesystem::relative(it->path(), root).string()] = l.str();
  }
  for (const auto& [k, v] : lines) out << k << " " << v << "\n";
  return out.str();
}

}  // namespace decnet::daemon::testing
