// An empty tarball is the client's error: the pipeline answers 400 in DECNET's failure shape
// with the rule "archive-empty" (not 500, which says the host failed), leaves nothing in the
// store and records the attempt as refused. A tarball that is merely broken stays a 500, as
// DECNET answers a bad archive.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "daemon/update_pipeline.h"
#include "proto/sha256.h"
#include "tests/daemon/served_stack.h"
#include "tests/helper/test_dirs.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;

class NoGate : public HealthGate {
 public:
  GateVerdict Check(const std::map<UnitName, uint32_t>&, const std::string&,
                    std::chrono::steady_clock::time_point) override {
    ADD_FAILURE() << "an empty tarball reached the health gate";
    return {};
  }
};

std::string Gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class AnEmptyTarball : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = dirs_.root() + "/opt/decnet";
    fs::create_directories(install_);
    config_.install_dir = install_;
    config_.units = {"decnet-agent.service"};
    ASSERT_NO_FATAL_FAILURE(stack_.Open(dirs_, config_));
  }

  ApiAnswer Push(const std::string& bytes) {
    const std::string path = dirs_.root() + "/upload-" + std::to_string(++pushed_);
    std::ofstream(path, std::ios::binary) << bytes;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ApiAnswer a =
        stack_.pipeline->Update({"fp", "decnet-master"}, {fd, bytes.size(), Sha256Hex(bytes), {}});
    ::close(fd);
    return a;
  }
  size_t ReleaseDirectories() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(install_ + "/releases")) ++n;
    return n;
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
  test::ServedStack<NoGate> stack_;
  int pushed_ = 0;
};

TEST_F(AnEmptyTarball, IsAClientErrorWithItsRuleAndLeavesNothing) {
  struct Row {
    const char* name;
    std::string bytes;
  };
  const Row rows[] = {
      {"zero bytes", ""},
      {"a gzip stream of nothing", Gzip("")},
      {"a tar of only its end blocks", Gzip(std::string(1024, '\0'))},
      {"a tar of only end blocks and padding", Gzip(std::string(10240, '\0'))},
  };
  for (const Row& row : rows) {
    ApiAnswer a = Push(row.bytes);
    EXPECT_EQ(a.status, 400u) << row.name << ": " << a.body.dump();
    EXPECT_EQ(a.body["detail"]["rule"], "archive-empty") << row.name;
    EXPECT_EQ(a.body["detail"]["rolled_back"], false) << row.name;
    EXPECT_TRUE(a.body["detail"]["error"].is_string()) << row.name;
    EXPECT_EQ(ReleaseDirectories(), 0u) << row.name;
    EXPECT_TRUE(stack_.store->Releases().empty()) << row.name;
    auto last = stack_.audit->Tail(1);
    ASSERT_TRUE(last);
    ASSERT_EQ(last->size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(last->front())["result"], "refused") << row.name;
  }
}

TEST_F(AnEmptyTarball, IsNotConfusedWithABrokenOneWhichStaysAServerAnswer) {
  const std::string tar = Gzip(std::string(1024, '\0'));
  ApiAnswer truncated = Push(tar.substr(0, tar.size() / 2));
  EXPECT_EQ(truncated.status, 500u) << truncated.body.dump();
  EXPECT_EQ(truncated.body["detail"]["rule"], "archive-corrupt");
  ApiAnswer not_gzip = Push("plain text, not a tarball");
  EXPECT_EQ(not_gzip.status, 500u) << not_gzip.body.dump();
  EXPECT_EQ(not_gzip.body["detail"]["rule"], "archive-not-gzip");
}

}  // namespace
}  // namespace decnet::daemon
