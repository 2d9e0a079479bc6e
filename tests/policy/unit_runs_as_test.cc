// Differential check against systemd's own reader: for every .service fixture (and a few
// contents built in code), our reader's conclusion "runs as root" must match what
// `systemd-analyze security --offline=true` (systemd 252) reports for the same file.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "policy/unit_file.h"
#include "policy/unit_policy.h"
#include "tests/support/unit_test_support.h"

namespace decnet::helper {
namespace {

using namespace testing_support;
using namespace std::string_literals;

enum class Verdict { kRoot, kNotRoot, kLoadFailed, kUnknown };

const char* Name(Verdict v) {
  switch (v) {
    case Verdict::kRoot:
      return "root";
    case Verdict::kNotRoot:
      return "not root";
    case Verdict::kLoadFailed:
      return "load failed";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

// Runs systemd-analyze on `path` and reads its verdict on the User=/DynamicUser= line.
Verdict AnalyzeVerdict(const std::string& path, std::string& output) {
  const std::string cmd = "systemd-analyze security --offline=true --no-pager '" + path + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return Verdict::kUnknown;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  if (output.find("Service runs as root user") != std::string::npos) return Verdict::kRoot;
  if (output.find("Service runs under") != std::string::npos) return Verdict::kNotRoot;
  if (status != 0 && output.find("failed to load") != std::string::npos)
    return Verdict::kLoadFailed;
  return Verdict::kUnknown;
}

Verdict OurVerdict(const std::string& unit_name, const std::string& content) {
  const ParsedUnitFile f = ReadUnitFile(content, SystemdSectionsFor(unit_name));
  for (const auto& p : f.problems) {
    if (p.fatal) return Verdict::kLoadFailed;
  }
  return UnitRunsAsRoot(unit_name, content) ? Verdict::kRoot : Verdict::kNotRoot;
}

struct Case {
  std::string label;
  std::string unit_name;
  std::string content;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (bool refused : {false, true}) {
    for (auto& f : LoadUnitFixtures(refused)) {
      if (!f.unit_name.ends_with(".service")) continue;  // targets run nothing
      cases.push_back({f.file, f.unit_name, f.content});
    }
  }
  const std::string svc = "decnet-x.service";
  // Each starts with an ExecStart= so that systemd loads it at all.
  cases.push_back({"nul", svc, "[Service]\nExecStart=/bin/true\nUser=decnet\0User=root\n"s});
  cases.push_back({"nul-in-continuation", svc,
                   "[Service]\nExecStart=/bin/true\nUser=root\nEnvironment=A \\\0User=decnet\n"s});
  cases.push_back({"lf-cr", svc, "[Service]\nExecStart=/bin/true\n\rUser=decnet\n\r"});
  cases.push_back({"cr-cr", svc, "[Service]\r\rExecStart=/bin/true\rUser=decnet\r\r"});
  cases.push_back({"escaped-backslash", svc,
                   "[Service]\nExecStart=/bin/true\nEnvironment=A\\\\\nUser=decnet\n"});
  cases.push_back({"continuation-eof", svc,
                   "[Service]\nExecStart=/bin/true\nEnvironment=A \\\nUser=decnet \\"});
  cases.push_back({"dynamic-user", svc, "[Service]\nExecStart=/bin/true\nDynamicUser=yes\n"});
  cases.push_back(
      {"user-reset-then-set", svc, "[Service]\nExecStart=/bin/true\nUser=\nUser=decnet\n"});
  cases.push_back({"user-numeric-zero", svc, "[Service]\nExecStart=/bin/true\nUser=0\n"});
  cases.push_back({"user-in-unit", svc, "[Unit]\nUser=decnet\n[Service]\nExecStart=/bin/true\n"});
  cases.push_back({"x-section", svc, "[Service]\nExecStart=/bin/true\n[X-A]\nUser=decnet\n"});
  cases.push_back(
      {"comment-mid-continuation", svc,
       "[Service]\nExecStart=/bin/true\nUser=root\nEnvironment=A=1 \\\n  ;c\nUser=decnet\n"});
  return cases;
}

TEST(UnitRunsAsRoot, AgreesWithSystemdAnalyzeOnEveryServiceFixture) {
  TempTree tree;
  int rows = 0;
  int root_rows = 0;
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.label);
    const std::string dir = tree.Path("/" + std::to_string(rows));
    tree.Dir("/" + std::to_string(rows));
    const std::string path = dir + "/" + c.unit_name;
    std::ofstream(path, std::ios::binary) << c.content;
    std::string output;
    const Verdict theirs = AnalyzeVerdict(path, output);
    const Verdict ours = OurVerdict(c.unit_name, c.content);
    ASSERT_NE(theirs, Verdict::kUnknown) << output;
    EXPECT_EQ(ours, theirs) << "ours: " << Name(ours) << ", systemd: " << Name(theirs) << "\n"
                            << output;
    ++rows;
    if (theirs == Verdict::kRoot) ++root_rows;
  }
  RecordProperty("rows", rows);
  RecordProperty("root_rows", root_rows);
  std::printf("differential rows: %d (runs as root: %d)\n", rows, root_rows);
  EXPECT_GE(rows, 60);
  EXPECT_GE(root_rows, 10);
}

}  // namespace
}  // namespace decnet::helper
