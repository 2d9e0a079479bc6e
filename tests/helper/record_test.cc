// The helper's records: the change record survives any flood of refusals, fills closed, and
// the unit record is capped when saved as when loaded.
#include "helper/record.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/helper/test_dirs.h"

namespace decnet::helper {
namespace {

namespace fs = std::filesystem;

class AStateDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(State());
    fd_ = ::open(State().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override { ::close(fd_); }
  std::string State() const { return dirs_.root() + "/state"; }
  std::string Slurp(const std::string& name) const {
    std::ifstream in(State() + "/" + name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  test::TestDirs dirs_;
  int fd_ = -1;
};

RequestEntry Refusal(uint64_t id) {
  return {id, "restart_unit", "ssh.service", "denied", "unit-name-allowlist", "not allowed"};
}

TEST_F(AStateDirectory, KeepsTheRecordOfAChangeThroughAFloodOfRefusals) {
  auto record = RequestRecord::Open(fd_, RecordLimits{4096, 1 << 20});
  ASSERT_TRUE(record) << record.error().message;
  ASSERT_TRUE(record->AdmitChange());
  ASSERT_TRUE(record->Append({1, "repoint_link", "decnet", "ok", "", ""}, Effect::kChangesState));
  for (uint64_t id = 2; id < 2000; ++id) ASSERT_TRUE(record->Append(Refusal(id)));
  // The rotating record kept only the latest refusals...
  const std::string rotating =
      Slurp(kRequestRecordFile) + Slurp(std::string(kRequestRecordFile) + ".1");
  EXPECT_EQ(rotating.find("repoint_link"), std::string::npos);
  EXPECT_LT(rotating.size(), 3u * 4096);
  // ...while the change record still names the repointed link, and nothing refused.
  const std::string changes = Slurp(kChangeRecordFile);
  EXPECT_NE(changes.find("\"type\":\"repoint_link\""), std::string::npos) << changes;
  EXPECT_EQ(changes.find("ssh.service"), std::string::npos) << changes;
}

TEST_F(AStateDirectory, RecordsInTheChangeRecordOnlyStateChangesThatWereNotRefused) {
  auto record = RequestRecord::Open(fd_);
  ASSERT_TRUE(record);
  ASSERT_TRUE(record->Append({1, "unit_status", "decnet-a.service", "ok", "", ""}));
  for (const char* result : {"denied", "malformed", "not_found", "violation"})
    ASSERT_TRUE(record->Append({2, "write_unit", "decnet-b.service", result, "r", "m"},
                               Effect::kChangesState));
  ASSERT_TRUE(record->Append({3, "restart_unit", "decnet-c.service", "failed", "r", "m"},
                             Effect::kChangesState));
  ASSERT_TRUE(record->Append({4, "write_unit", "decnet-d.service", "ok", "", "changed"},
                             Effect::kChangesState));
  const std::string changes = Slurp(kChangeRecordFile);
  EXPECT_EQ(changes.find("decnet-a.service"), std::string::npos) << changes;
  EXPECT_EQ(changes.find("decnet-b.service"), std::string::npos) << changes;
  EXPECT_NE(changes.find("decnet-c.service"), std::string::npos)
      << "a failed restart may have acted";
  EXPECT_NE(changes.find("decnet-d.service"), std::string::npos) << changes;
  // requests.jsonl still lists every request.
  const std::string all = Slurp(kRequestRecordFile);
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 7);
}

TEST_F(AStateDirectory, RefusesFurtherChangesOnceTheChangeRecordIsFull) {
  const RecordLimits limits{1 << 20, 4 * kMaxRecordLine};
  auto record = RequestRecord::Open(fd_, limits);
  ASSERT_TRUE(record);
  int admitted = 0;
  while (record->AdmitChange() && admitted < 1000) {
    ASSERT_TRUE(record->Append({static_cast<uint64_t>(admitted), "write_unit", "decnet-x.service",
                                "ok", "", std::string(3000, 'd')},
                               Effect::kChangesState));
    ++admitted;
  }
  ASSERT_LT(admitted, 1000);
  auto refused = record->AdmitChange();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kDenied);
  EXPECT_EQ(refused.error().rule, "change-record-full");
  EXPECT_LE(fs::file_size(State() + "/" + kChangeRecordFile), limits.change_cap_bytes);
  // A new session (the helper restarted) still finds it full: fail closed.
  auto reopened = RequestRecord::Open(fd_, limits);
  ASSERT_TRUE(reopened);
  EXPECT_FALSE(reopened->AdmitChange());
}

TEST_F(AStateDirectory, CutsALongDetailSoEveryLineFitsWhatAdmissionReserves) {
  auto record = RequestRecord::Open(fd_);
  ASSERT_TRUE(record);
  ASSERT_TRUE(record->Append(
      {1, "write_unit", std::string(300, 's'), "failed", "fs-write", std::string(100'000, 'x')},
      Effect::kChangesState));
  EXPECT_LE(Slurp(kChangeRecordFile).size(), kMaxRecordLine);
}

TEST_F(AStateDirectory, NeverSavesAUnitRecordItCouldNotLoadAgain) {
  constexpr size_t kCap = 2048;
  auto units = UnitRecord::Load(fd_, kCap);
  ASSERT_TRUE(units);
  size_t saved = 0;
  Result<void> last = {};
  for (int i = 0; i < 100 && last; ++i) {
    last = units->BeginWrite("decnet-" + std::string(150, 'a') + std::to_string(i) + ".service",
                             std::string(64, 'f'));
    if (last) ++saved;
  }
  ASSERT_FALSE(last) << "the cap was never reached";
  EXPECT_EQ(last.error().rule, "unit-record-cap");
  EXPECT_EQ(units->Count(), saved) << "a refused save leaves the record as it was";
  EXPECT_LE(fs::file_size(State() + "/" + kUnitRecordFile), kCap);
  auto reloaded = UnitRecord::Load(fd_, kCap);
  ASSERT_TRUE(reloaded) << reloaded.error().rule << ": " << reloaded.error().message;
  EXPECT_EQ(reloaded->Count(), saved);
}

}  // namespace
}  // namespace decnet::helper
