// docs/operations.md holds to the code. Its configuration tables list every key the daemon's
// and the helper's parsers take, each with the default the parser really holds. Its ```sh
// blocks are run as written: every curl command, with the document's variables set to a real
// updater (the mTLS server, API, update pipeline and both stores, the helper's serve loop in
// front of a mocked systemd), a real release and a build packed by the updater-build script;
// each route must have its command, and each answer must be what the document says.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/api.h"
#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/self_update.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "policy/policy.h"
#include "proto/helper_protocol.h"
#include "tests/daemon/served_stack.h"
#include "tests/daemon/test_pki.h"
#include "tests/daemon/test_tarball.h"
#include "tests/helper/test_dirs.h"
#include "tests/support/daemon_config_json.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace decnet::daemon {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

const std::string& Doc() {
  static const std::string text = Slurp(std::string(DECNET_SOURCE_DIR) + "/docs/operations.md");
  return text;
}

// The lines of every ```sh block, in order.
std::vector<std::string> ShLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    const std::string trimmed = std::regex_replace(line, std::regex("^\\s+|\\s+$"), "");
    if (!inside && trimmed == "```sh") {
      inside = true;
    } else if (inside && trimmed == "```") {
      inside = false;
    } else if (inside) {
      out.push_back(trimmed);
    }
  }
  return out;
}

// The rows of the table under the "## HEADING" section: key (first cell, without backticks)
// to default (third cell, without backticks).
std::map<std::string, std::string> TableUnder(const std::string& heading) {
  std::map<std::string, std::string> rows;
  std::istringstream in(Doc());
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("## ")) inside = line == "## " + heading;
    if (!inside || !line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '|' && line[i - 1] != '\\') {
        cells.push_back(std::regex_replace(cell, std::regex("^\\s+|\\s+$"), ""));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    if (cells.size() < 3) {
      ADD_FAILURE() << "a row with fewer than 3 cells: " << line;
      continue;
    }
    auto bare = [](const std::string& s) {
      return s.size() >= 2 && s.front() == '`' && s.back() == '`' ? s.substr(1, s.size() - 2) : s;
    };
    EXPECT_EQ(rows.count(bare(cells[0])), 0u) << "listed twice: " << cells[0];
    rows[bare(cells[0])] = bare(cells[2]);
  }
  return rows;
}

std::set<std::string> KeysOf(const std::map<std::string, std::string>& rows) {
  std::set<std::string> keys;
  for (const auto& [k, v] : rows) keys.insert(k);
  return keys;
}

TEST(TheOperationsDocument, ListsEveryDaemonKeyWithItsDefault) {
  const auto rows = TableUnder("The daemon's configuration");
  // The keys the parser takes, read from its table of setters and its probe object.
  const std::string source = Slurp(std::string(DECNET_SOURCE_DIR) + "/daemon/config.cc");
  std::set<std::string> parsed;
  const std::regex setter("\\{\"([a-z_]+)\",\\s*(String|Integer|StringList|Boolean|Parse)");
  for (auto it = std::sregex_iterator(source.begin(), source.end(), setter);
       it != std::sregex_iterator(); ++it)
    if ((*it)[1] != "probe") parsed.insert((*it)[1]);
  const std::regex probe_key("k == \"([a-z_]+)\"");
  for (auto it = std::sregex_iterator(source.begin(), source.end(), probe_key);
       it != std::sregex_iterator(); ++it)
    parsed.insert("probe." + (*it)[1].str());
  ASSERT_GT(parsed.size(), 20u) << "the setters' table was not found in daemon/config.cc";
  EXPECT_EQ(KeysOf(rows), parsed) << "docs/operations.md and daemon/config.cc list other keys";

  const json defaults = test::DaemonConfigFields(DaemonConfig::Defaults());
  for (const auto& [key, shown] : rows) {
    const json value = json::parse(shown, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(value.is_discarded()) << key << ": the default shown is not JSON: " << shown;
    const size_t dot = key.find('.');
    const json doc = dot == std::string::npos
                         ? json{{key, value}}
                         : json{{key.substr(0, dot), {{key.substr(dot + 1), value}}}};
    auto config = ParseDaemonConfig(doc.dump());
    ASSERT_TRUE(config) << key << ": " << config.error().message;
    EXPECT_EQ(test::DaemonConfigFields(*config), defaults)
        << key << ": the default shown is not the parser's";
  }
}

TEST(TheOperationsDocument, ListsEveryPolicyKeyWithItsDefault) {
  const auto rows = TableUnder("The helper's policy");
  const json defaults = json::parse(helper::PolicyToJson(helper::Policy::Defaults()));
  std::set<std::string> keys;
  for (const auto& [k, v] : defaults.items()) keys.insert(k);
  EXPECT_EQ(KeysOf(rows), keys) << "docs/operations.md and policy/policy.cc list other keys";
  for (const auto& [key, shown] : rows) {
    const json value = json::parse(shown, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(value.is_discarded()) << key << ": the default shown is not JSON: " << shown;
    auto policy = helper::ParsePolicy(json{{key, value}}.dump());
    ASSERT_TRUE(policy) << key << ": " << policy.error().message;
    EXPECT_EQ(json::parse(helper::PolicyToJson(*policy)), defaults)
        << key << ": the default shown is not the parser's";
  }
}

// What one command printed and how it ended.
struct Ran {
  int exit_code = -1;
  std::string out, err;
  json body;  // stdout as JSON, null when it is not
};

class TheOperationsDocumentsCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    install_ = test::LayOutHost(dirs_, dirs_.root(), config_, test::SelfUpdate::kOn);
    config_.units = {"decnet-agent.service"};
    ASSERT_TRUE(test::InstallOperatorUnit(
        dirs_, "decnet-agent.service",
        test::OperatorUnit("agent", "/opt/decnet/current/.venv/bin/decnet agent")));
    ASSERT_TRUE(test::InstallOperatorUnit(dirs_, "decnet-updater.service", test::kUpdaterUnit));
    ASSERT_NO_FATAL_FAILURE(stack_.Open(
        dirs_, config_, {.client = "operations-doc", .self_update = test::SelfUpdate::kOn}));

    ApiOptions options = test::TestApiOptions(dirs_);
    options.audit = &*stack_.audit;
    options.self_restart_delay = std::chrono::milliseconds(1);
    ASSERT_NO_FATAL_FAILURE(front_.Start(*stack_.pipeline, options, pki_));
    vars_["UPDATER"] = front_.Url();
    vars_["TLS"] = pki_.CurlAsMaster();
  }
  void TearDown() override {
    front_.Stop();
    stack_.Close();
  }

  // A release of the suite: VERSION and the link's target, DECNET's layout.
  std::string Release(const std::string& version) {
    const std::string tree = dirs_.root() + "/release-" + version;
    fs::create_directories(tree + "/.venv/bin");
    std::ofstream(tree + "/VERSION") << version << "\n";
    std::ofstream(tree + "/.venv/bin/decnet") << "#!/bin/sh\necho " << version << "\n";
    return test::PackTree(tree).path;
  }
  std::string CurrentVersion() const {
    std::ifstream in(install_ + "/current/VERSION");
    std::string v;
    std::getline(in, v);
    return v;
  }

  // Runs `command` as the document shows it, in bash, after setting the document's variables
  // to this updater's values.
  Ran Run(const std::string& command) {
    const std::string dir = dirs_.root() + "/run-" + std::to_string(++runs_);
    fs::create_directories(dir);
    std::string script = "set -o pipefail\n";
    for (const auto& [name, value] : vars_) script += name + "='" + value + "'\n";
    script += command + "\n";
    std::ofstream(dir + "/command.sh") << script;
    auto run = helper::testing_support::RunCaptured({"/bin/bash", dir + "/command.sh"}, dir);
    Ran ran{run.exit_code, run.out, run.err, json::parse(run.out, nullptr, false)};
    if (ran.body.is_discarded()) ran.body = nullptr;
    return ran;
  }

  test::TestDirs dirs_;
  std::string install_;
  DaemonConfig config_;
  test::ServedStack<test::HealthyGate> stack_;
  const test::UpdaterPki pki_;
  test::ServedFront front_;  // after the pipeline it borrows
  std::map<std::string, std::string> vars_;
  int runs_ = 0;
};

TEST_F(TheOperationsDocumentsCommands, RunAsWrittenAgainstARealUpdater) {
  // The document's commands by route; its settings (NAME=value lines) are replaced by ours.
  std::map<std::string, std::vector<std::string>> by_route;
  std::set<std::string> settings;
  const std::regex assignment("^([A-Z_]+)=.*");
  const std::regex route("\"\\$UPDATER(/[a-z-]+)\"");
  for (const std::string& line : ShLines(Doc())) {
    std::smatch m;
    if (line.empty() || line.starts_with("#")) continue;
    if (std::regex_match(line, m, assignment)) {
      settings.insert(m[1]);
    } else if (line.starts_with("curl ") && std::regex_search(line, m, route)) {
      by_route[m[1]].push_back(line);
    } else {
      ADD_FAILURE() << "a ```sh line this test does not run: " << line;
    }
  }
  EXPECT_EQ(settings, (std::set<std::string>{"UPDATER", "TLS", "RELEASE", "BUILD"}));
  for (const char* r :
       {"/health", "/releases", "/update", "/rollback", "/update-self", "/metrics", "/audit"})
    ASSERT_FALSE(by_route[r].empty()) << "docs/operations.md has no curl command for " << r;
  EXPECT_EQ(by_route.size(), 7u) << "a command for a route the updater does not serve";

  // The daemon's build as the updater-build target packs it.
  const std::string out = dirs_.root() + "/build";
  fs::create_directories(out);
  auto packed = helper::testing_support::RunCaptured(
      {"/bin/bash", std::string(DECNET_SOURCE_DIR) + "/scripts/pack-updater-build.sh", "--binary",
       DECNET_DAEMON_BINARY, "--version", "9.9.9", "--source-dir", DECNET_SOURCE_DIR, "--out-dir",
       out},
      dirs_.root());
  ASSERT_EQ(packed.exit_code, 0) << packed.err;
  vars_["BUILD"] = out + "/decnet-updater-9.9.9-" + HostArch() + ".tar.gz";

  for (const std::string& command : by_route["/health"]) {
    Ran r = Run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    EXPECT_EQ(r.body.value("status", ""), "ok") << r.out;
    EXPECT_EQ(r.body.value("role", ""), "updater") << r.out;
  }
  // Each update command twice, with two releases, so that a rollback has somewhere to go.
  int pushed = 0;
  for (const std::string& command : by_route["/update"]) {
    for (int i = 0; i < 2; ++i) {
      const std::string version = "1." + std::to_string(pushed++);
      vars_["RELEASE"] = Release(version);
      Ran r = Run(command);
      ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
      EXPECT_EQ(r.body.value("status", ""), "updated") << r.out;
      EXPECT_EQ(CurrentVersion(), version);
    }
  }
  const std::string last = "1." + std::to_string(pushed - 1);
  const std::string before_last = "1." + std::to_string(pushed - 2);
  for (const std::string& command : by_route["/releases"]) {
    Ran r = Run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    ASSERT_TRUE(r.body.contains("releases")) << r.out;
    EXPECT_GE(r.body["releases"].size(), 2u) << r.out;
  }
  ASSERT_EQ(by_route["/rollback"].size(), 1u) << "one rollback command: a second has no target";
  {
    Ran r = Run(by_route["/rollback"].front());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.body.value("status", ""), "rolled_back") << r.out;
    EXPECT_EQ(CurrentVersion(), before_last) << "rolled back from " << last;
  }
  const std::string build_id = Slurp(vars_["BUILD"] + ".sha256").substr(0, 16);
  for (const std::string& command : by_route["/update-self"]) {
    Ran r = Run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    EXPECT_EQ(r.body, (json{{"status", "self_update_queued"}, {"via", "systemd"}})) << r.out;
    ASSERT_TRUE(test::Eventually([&] { return !front_.api->busy(); }));
    ASSERT_TRUE(stack_.updater_store->Active());
    EXPECT_EQ(stack_.updater_store->Active()->str(), build_id);
  }
  for (const std::string& command : by_route["/metrics"]) {
    Ran r = Run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    EXPECT_NE(r.out.find("decnet_updater_updates_total{op=\"update\",result=\"updated\"}"),
              std::string::npos)
        << r.out;
  }
  for (const std::string& command : by_route["/audit"]) {
    Ran r = Run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
    std::multiset<std::string> ops;
    for (const json& e : r.body.value("entries", json::array())) ops.insert(e.value("op", ""));
    EXPECT_EQ(ops.count("update"), static_cast<size_t>(pushed)) << r.out;
    EXPECT_EQ(ops.count("rollback"), 1u) << r.out;
    EXPECT_EQ(ops.count("update-self"), by_route["/update-self"].size()) << r.out;
  }
}

}  // namespace
}  // namespace decnet::daemon
