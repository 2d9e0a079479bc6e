#include "daemon/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "proto/sha256.h"

namespace decnet::daemon {
namespace {

// A scratch directory, removed with what it holds.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = "/tmp/decnet-spool-test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    fd_ = open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  ~ScratchDir() {
    for (const std::string& name : Names()) unlinkat(fd_, name.c_str(), 0);
    close(fd_);
    rmdir(path_.c_str());
  }
  int fd() const { return fd_; }
  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    DIR* dir = opendir(path_.c_str());
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    return names;
  }
  std::string ReadFile(const std::string& name) const {
    std::ifstream in(path_ + "/" + name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
  int fd_ = -1;
};

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// An independent digest (OpenSSL's one-shot API) to compare the streaming one with.
std::string OneShotSha256(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string Pattern(size_t n) {
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>((i * 7919) >> 3);
  return data;
}

// Peak resident set of this process, in KiB.
long PeakRssKiB() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

struct VectorRow {
  std::string data;
  const char* sha256;
};

void PrintTo(const VectorRow& row, std::ostream* os) { *os << row.data.size() << " bytes"; }

class ASpoolDigest : public ::testing::TestWithParam<VectorRow> {};

TEST_P(ASpoolDigest, MatchesTheKnownVector) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 1 << 20);
  ASSERT_TRUE(spool) << spool.error().message;
  ASSERT_TRUE(spool->Write(GetParam().data));
  auto done = spool->Finish();
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(done->sha256, GetParam().sha256);
  EXPECT_EQ(done->size, GetParam().data.size());
}

INSTANTIATE_TEST_SUITE_P(
    Fips180, ASpoolDigest,
    ::testing::Values(
        VectorRow{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        VectorRow{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        VectorRow{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        VectorRow{std::string(1000000, 'a'),
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"}));

TEST(ASpool, DigestsUnevenWritesAsOneStreamAndReadsBackTheSameBytes) {
  ScratchDir dir;
  const std::string data = Pattern(300001);
  auto spool = Spool::Create(dir.fd(), data.size());
  ASSERT_TRUE(spool);
  size_t at = 0;
  for (size_t step = 1; at < data.size(); step = step * 3 + 1) {
    size_t n = std::min(step, data.size() - at);
    ASSERT_TRUE(spool->Write(std::string_view(data).substr(at, n)));
    at += n;
  }
  EXPECT_EQ(spool->size(), data.size());
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->sha256, OneShotSha256(data));
  EXPECT_EQ(done->sha256, Sha256Hex(data));
  EXPECT_EQ(lseek(done->fd.get(), 0, SEEK_CUR), 0);
  EXPECT_TRUE(ReadAll(done->fd.get()) == data);
}

TEST(ASpool, IsAnonymousPrivateAndReadOnlyOnceFinished) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 100);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->Write("secret"));
  EXPECT_TRUE(dir.Names().empty());
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  struct stat st {};
  ASSERT_EQ(fstat(done->fd.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_LT(write(done->fd.get(), "x", 1), 0);
  EXPECT_NE(fcntl(done->fd.get(), F_GETFD) & FD_CLOEXEC, 0);
  EXPECT_TRUE(dir.Names().empty());
}

TEST(ASpool, AcceptsExactlyItsCapAndRefusesOneByteMore) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 10);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->Write("12345"));
  ASSERT_TRUE(spool->Write("67890"));
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->size, 10u);

  auto over = Spool::Create(dir.fd(), 10);
  ASSERT_TRUE(over);
  ASSERT_TRUE(over->Write("12345"));
  auto refused = over->Write("678901");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "upload-too-large");
  EXPECT_EQ(refused.error().code, ErrorCode::kDenied);
  EXPECT_EQ(over->size(), 5u);  // nothing of the refused write landed
  EXPECT_FALSE(over->Write("1"));
  auto finish = over->Finish();
  ASSERT_FALSE(finish);
  EXPECT_EQ(finish.error().rule, "spool-finish");
}

TEST(ASpool, WithAZeroCapAcceptsOnlyAnEmptyUpload) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 0);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->Write(""));
  auto refused = spool->Write("x");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().rule, "upload-too-large");
}

TEST(ASpool, RefusesASecondFinish) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 10);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->Finish());
  auto again = spool->Finish();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().rule, "spool-finish");
  EXPECT_FALSE(spool->Write("x"));
}

TEST(ASpool, FailsToCreateInADirectoryThatIsNotOne) {
  auto spool = Spool::Create(-1, 10);
  ASSERT_FALSE(spool);
  EXPECT_EQ(spool.error().rule, "spool-create");
  EXPECT_EQ(spool.error().code, ErrorCode::kFailed);
}

TEST(ASpool, MadeUnlinkedLeavesNoNameAndDigestsTheSame) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 100, SpoolFileKind::kUnlinked);
  ASSERT_TRUE(spool) << spool.error().message;
  ASSERT_TRUE(spool->Write("abc"));
  EXPECT_TRUE(dir.Names().empty());
  auto link = spool->Link(dir.fd(), "named");
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().rule, "spool-link");
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ReadAll(done->fd.get()), "abc");
  struct stat st {};
  ASSERT_EQ(fstat(done->fd.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST(ASpool, LinksAnAnonymousFileUnderAName) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 100);
  ASSERT_TRUE(spool);
  ASSERT_TRUE(spool->Write("release bytes"));
  auto linked = spool->Link(dir.fd(), "upload.tgz");
  ASSERT_TRUE(linked) << linked.error().message;
  auto exists = spool->Link(dir.fd(), "upload.tgz");
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().rule, "spool-link");
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  ASSERT_TRUE(done->Link(dir.fd(), "after-finish.tgz"));
  EXPECT_EQ(dir.ReadFile("upload.tgz"), "release bytes");
  EXPECT_EQ(dir.ReadFile("after-finish.tgz"), "release bytes");
  auto closed = spool->Link(dir.fd(), "too-late");
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().rule, "spool-link");
}

class ASpoolLinkName : public ::testing::TestWithParam<std::string> {};

TEST_P(ASpoolLinkName, IsRefused) {
  ScratchDir dir;
  auto spool = Spool::Create(dir.fd(), 100);
  ASSERT_TRUE(spool);
  auto linked = spool->Link(dir.fd(), GetParam());
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().rule, "spool-link-name");
  EXPECT_EQ(linked.error().code, ErrorCode::kMalformed);
  EXPECT_TRUE(dir.Names().empty());
}

INSTANTIATE_TEST_SUITE_P(Table, ASpoolLinkName,
                         ::testing::Values("", ".", "..", "a/b", "/abs", "../up", "dir/",
                                           std::string("a\0b", 3), std::string(256, 'n')));

TEST(ASpool, KeepsMemoryFlatFor64MiBIn64KiBChunks) {
  ScratchDir dir;
  const std::string chunk = Pattern(64 * 1024);
  const long before = PeakRssKiB();
  ASSERT_GT(before, 0);
  auto spool = Spool::Create(dir.fd(), uint64_t{64} << 20);
  ASSERT_TRUE(spool);
  for (int i = 0; i < 1024; ++i) ASSERT_TRUE(spool->Write(chunk));
  auto done = spool->Finish();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->size, uint64_t{64} << 20);
  EXPECT_LT(PeakRssKiB() - before, 16 * 1024) << "VmHWM grew while spooling";
}

}  // namespace
}  // namespace decnet::daemon
