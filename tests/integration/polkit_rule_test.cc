// The shipped polkit rule (polkit/50-decnet-updater.rules) judged by a real polkitd and a real
// systemd: the throw-away container gets the file where the package installs it, an operator
// group with a member (alice), a non-member (bob), the daemon's and the units' users as members,
// and test units; each user then runs systemctl non-interactively, as an operator would, and
// the outcome is read from systemd's own state. A control without the rule shows the rule is
// what allows; a later rule that allows more shows the rule answers nothing where it does not
// allow, so the next rule or polkit's defaults decide. The package's file is a conffile in
// /etc, the one file enrolment renders again for another operators' group: the rendering
// replaces the rule in place, and polkitd, which watches the directory, follows.
#include "polkit/polkit_rule.h"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/container_setup.h"
#include "tests/integration/testbed.h"
#include "tests/support/shell.h"

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kShippedRule[] = DECNET_SOURCE_DIR "/polkit/50-decnet-updater.rules";
constexpr char kInstalledRule[] = "/etc/polkit-1/rules.d/50-decnet-updater.rules";
// What docs/operations.md tells operators to run, run here verbatim.
constexpr char kCreateGroup[] = "groupadd --system decnet-admin";
constexpr char kAddOperator[] = "usermod --append --groups decnet-admin alice";
constexpr char kOperatorCheck[] =
    "runuser -u alice -- systemctl --no-ask-password restart decnet-agent.service";

constexpr char kSleeper[] =
    "[Service]\nType=exec\nExecStart=/bin/sleep infinity\n"
    "ExecReload=/bin/touch /run/reloaded-%n\n"
    "[Install]\nWantedBy=multi-user.target\n";

// A container with the operators' group, the users and the test units, and (unless a test
// says otherwise) the shipped rule at the package's path.
class APolkitRule : public TestbedShellTest {
 protected:
  Testbed::Options TestbedOptions() const override {
    Testbed::Options options;
    options.name_prefix = "polkit";
    if (install_rule_) {
      options.extra_nspawn_args.push_back(std::string("--bind-ro=") + kShippedRule + ":" +
                                          kInstalledRule);
    }
    for (const std::string& bind : extra_binds_) options.extra_nspawn_args.push_back(bind);
    return options;
  }

  void SetUp() override {
    TestbedShellTest::SetUp();
    if (HasFatalFailure()) return;

    for (const char* unit : {"decnet-a-b-c.service", "decnet-x.service", "decnet-agent.service",
                             "decnet-updater.service", "ssh.service"}) {
      ASSERT_TRUE(testbed().WriteUnit(unit, kSleeper)) << unit;
    }
    ASSERT_TRUE(testbed().WriteUnit("decnet-x.timer",
                                    "[Timer]\nOnActiveSec=1h\nUnit=decnet-x.service\n"
                                    "[Install]\nWantedBy=timers.target\n"));
    ASSERT_TRUE(
        testbed().WriteUnit("decnet-x.socket",
                            "[Socket]\nListenStream=/run/decnet-x.sock\nService=decnet-x.service\n"
                            "[Install]\nWantedBy=sockets.target\n"));
    for (const char* setup : {
             "systemctl daemon-reload",
             kCreateGroup,
             "useradd --no-create-home alice",
             kAddOperator,
             "useradd --no-create-home bob",
             "useradd --system --no-create-home --groups decnet-admin decnet-updater",
             "usermod --append --groups decnet-admin decnet",
             // polkitd is D-Bus activated; start it now and make sure it answers.
             "systemctl start polkit.service",
         }) {
      const CommandRun run = InContainer(setup);
      ASSERT_EQ(run.status, 0) << setup << ": " << run.output;
    }
    ASSERT_EQ(InContainer("systemctl is-active polkit.service").output, "active\n");
    ASSERT_EQ(InContainer("id -nG alice").output, "alice decnet-admin\n");
    ASSERT_EQ(InContainer("id -nG bob").output, "bob\n");
  }

  // systemctl as `user`, never asking for a password.
  CommandRun AsUser(const std::string& user, const std::string& verb, const std::string& unit) {
    return InContainer("runuser -u " + user + " -- systemctl --no-ask-password " + verb + " " +
                       unit);
  }

  std::string Property(const std::string& unit, const std::string& name) {
    auto value = testbed().UnitProperty(unit, "org.freedesktop.systemd1.Unit", name);
    EXPECT_TRUE(value.has_value()) << unit << " " << name << ": " << value.error();
    return value.value_or("?");
  }
  std::string ActiveState(const std::string& unit) { return Property(unit, "ActiveState"); }
  std::string InvocationId(const std::string& unit) { return Property(unit, "InvocationID"); }

  void StartAsRoot(const std::string& unit) {
    const CommandRun run = InContainer("systemctl start " + unit);
    ASSERT_EQ(run.status, 0) << unit << ": " << run.output;
    ASSERT_EQ(ActiveState(unit), "active") << unit;
  }

  std::string PolkitJournal() {
    return InContainer("journalctl --no-pager -o cat -u polkit.service").output;
  }

  // The refusal came from polkit: systemd asked it, got no YES, and says so.
  static void ExpectPolkitRefused(const CommandRun& run, const std::string& what) {
    EXPECT_NE(run.status, 0) << what << " succeeded: " << run.output;
    const bool by_polkit =
        run.output.find("Interactive authentication required") != std::string::npos ||
        run.output.find("Access denied") != std::string::npos;
    EXPECT_TRUE(by_polkit) << what << " was refused, but not by the authorisation: " << run.output;
  }

  // `user` tries start (unit inactive), then stop and restart (unit started by root); each is
  // refused by polkit, and systemd's state shows nothing happened.
  void ExpectRefusedEveryVerb(const std::string& user, const std::string& unit) {
    ASSERT_EQ(ActiveState(unit), "inactive") << unit;
    ExpectPolkitRefused(AsUser(user, "start", unit), user + " start " + unit);
    EXPECT_EQ(ActiveState(unit), "inactive") << user << " started " << unit;
    StartAsRoot(unit);
    const std::string invocation = InvocationId(unit);
    ExpectPolkitRefused(AsUser(user, "stop", unit), user + " stop " + unit);
    EXPECT_EQ(ActiveState(unit), "active") << user << " stopped " << unit;
    ExpectPolkitRefused(AsUser(user, "restart", unit), user + " restart " + unit);
    EXPECT_EQ(ActiveState(unit), "active") << user << " restarted " << unit;
    EXPECT_EQ(InvocationId(unit), invocation) << user << " restarted " << unit;
    ASSERT_EQ(InContainer("systemctl stop " + unit).status, 0);
  }

  void TearDown() override {
    if (HasFailure() && init_pid_ > 0) std::cerr << "--- polkitd ---\n" << PolkitJournal();
    TestbedShellTest::TearDown();
  }

  bool install_rule_ = true;
  std::vector<std::string> extra_binds_;
};

TEST_F(APolkitRule, IsLoadedByTheRealPolkitdWithoutErrors) {
  // Any question makes polkitd load its rules; wait for it to report them.
  (void)AsUser("alice", "start", "decnet-x.service");
  std::string journal;
  for (int i = 0; i < 50; ++i) {
    journal = PolkitJournal();
    if (journal.find("Finished loading, compiling and executing") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(journal.find("Finished loading, compiling and executing"), std::string::npos)
      << journal;
  EXPECT_EQ(journal.find("Error"), std::string::npos) << journal;
  EXPECT_EQ(InContainer("cat " + std::string(kInstalledRule)).output, ReadFile(kShippedRule));
}

TEST_F(APolkitRule, LetsAMemberStartRestartAndStopAllowListedUnits) {
  for (const std::string unit : {"decnet-a-b-c.service", "decnet-x.service"}) {
    ASSERT_EQ(ActiveState(unit), "inactive") << unit;
    CommandRun run = AsUser("alice", "start", unit);
    EXPECT_EQ(run.status, 0) << "start " << unit << ": " << run.output;
    EXPECT_EQ(ActiveState(unit), "active") << unit;
    const std::string invocation = InvocationId(unit);
    run = AsUser("alice", "restart", unit);
    EXPECT_EQ(run.status, 0) << "restart " << unit << ": " << run.output;
    EXPECT_EQ(ActiveState(unit), "active") << unit;
    EXPECT_NE(InvocationId(unit), invocation) << unit << " was not restarted";
    run = AsUser("alice", "stop", unit);
    EXPECT_EQ(run.status, 0) << "stop " << unit << ": " << run.output;
    EXPECT_EQ(ActiveState(unit), "inactive") << unit;
  }
}

TEST_F(APolkitRule, PassesTheOperatorsDocumentedCommands) {
  StartAsRoot("decnet-agent.service");
  const std::string invocation = InvocationId("decnet-agent.service");
  const CommandRun run = InContainer(kOperatorCheck);
  EXPECT_EQ(run.status, 0) << kOperatorCheck << ": " << run.output;
  EXPECT_NE(InvocationId("decnet-agent.service"), invocation);
  const std::string docs = ReadFile(DECNET_SOURCE_DIR "/docs/operations.md");
  for (const char* command : {kCreateGroup, kAddOperator, kOperatorCheck}) {
    EXPECT_NE(docs.find(command), std::string::npos)
        << "docs/operations.md no longer gives operators: " << command;
  }
}

TEST_F(APolkitRule, RefusesAMemberUnitsOutsideTheAllowList) {
  ExpectRefusedEveryVerb("alice", "ssh.service");
  ExpectRefusedEveryVerb("alice", "decnet-updater.service");
  ExpectRefusedEveryVerb("alice", "decnet-x.timer");
  ExpectRefusedEveryVerb("alice", "decnet-x.socket");
}

TEST_F(APolkitRule, RefusesAMemberOtherVerbsOnAnAllowedUnit) {
  StartAsRoot("decnet-x.service");
  const std::string invocation = InvocationId("decnet-x.service");
  ExpectPolkitRefused(AsUser("alice", "reload", "decnet-x.service"), "alice reload");
  EXPECT_NE(InContainer("test -e /run/reloaded-decnet-x.service").status, 0) << "it reloaded";
  ExpectPolkitRefused(AsUser("alice", "kill", "decnet-x.service"), "alice kill");
  ExpectPolkitRefused(AsUser("alice", "try-restart", "decnet-x.service"), "alice try-restart");
  ExpectPolkitRefused(AsUser("alice", "reload-or-restart", "decnet-x.service"),
                      "alice reload-or-restart");
  EXPECT_EQ(ActiveState("decnet-x.service"), "active");
  EXPECT_EQ(InvocationId("decnet-x.service"), invocation);
  // enable is another action (manage-unit-files): refused, nothing linked.
  ExpectPolkitRefused(AsUser("alice", "enable", "decnet-x.service"), "alice enable");
  EXPECT_EQ(Property("decnet-x.service", "UnitFileState"), "disabled");
  EXPECT_FALSE(fs::exists(testbed().unit_dir() / "multi-user.target.wants/decnet-x.service"));
  ExpectPolkitRefused(AsUser("alice", "daemon-reload", ""), "alice daemon-reload");
}

TEST_F(APolkitRule, RefusesANonMember) { ExpectRefusedEveryVerb("bob", "decnet-x.service"); }

TEST_F(APolkitRule, RefusesTheDaemonsAndTheUnitsUsersThoughTheyAreMembers) {
  ASSERT_EQ(InContainer("id -nG decnet-updater").output, "decnet-updater decnet-admin\n");
  ASSERT_EQ(InContainer("id -nG decnet").output, "decnet decnet-admin\n");
  ExpectRefusedEveryVerb("decnet-updater", "decnet-x.service");
  ExpectRefusedEveryVerb("decnet", "decnet-x.service");
}

// The control: the same container and users without the rule; alice is refused too.
class APolkitWithoutTheRule : public APolkitRule {
 protected:
  APolkitWithoutTheRule() { install_rule_ = false; }
};

TEST_F(APolkitWithoutTheRule, RefusesTheMemberWhomTheRuleWouldAllow) {
  ASSERT_NE(InContainer(std::string("test -e ") + kInstalledRule).status, 0);
  ExpectRefusedEveryVerb("alice", "decnet-x.service");
  ExpectRefusedEveryVerb("alice", "decnet-a-b-c.service");
}

// A later rule allowing alice ssh.service and bob decnet-x.service: it decides, so the shipped
// rule gave no answer (rather than a NO) for what it does not allow.
class APolkitRuleBeforeALaterRule : public APolkitRule {
 protected:
  APolkitRuleBeforeALaterRule() {
    const fs::path later = fs::temp_directory_path() /
                           ("decnet-polkit-later-" + std::to_string(::getpid()) + ".rules");
    std::ofstream(later) << "polkit.addRule(function (action, subject) {\n"
                            "    if (action.id !== \"org.freedesktop.systemd1.manage-units\") "
                            "return null;\n"
                            "    var unit = action.lookup(\"unit\");\n"
                            "    if (subject.user === \"alice\" && unit === \"ssh.service\") "
                            "return polkit.Result.YES;\n"
                            "    if (subject.user === \"bob\" && unit === \"decnet-x.service\") "
                            "return polkit.Result.YES;\n"
                            "    return null;\n"
                            "});\n";
    fs::permissions(later, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                               fs::perms::others_read);
    later_rule_ = later;
    extra_binds_.push_back("--bind-ro=" + later.string() +
                           ":/etc/polkit-1/rules.d/90-decnet-test-later.rules");
  }
  ~APolkitRuleBeforeALaterRule() override {
    std::error_code ec;
    fs::remove(later_rule_, ec);
  }
  fs::path later_rule_;
};

TEST_F(APolkitRuleBeforeALaterRule, LeavesWhatItDoesNotAllowToTheNextRule) {
  CommandRun run = AsUser("alice", "start", "ssh.service");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(ActiveState("ssh.service"), "active");
  run = AsUser("bob", "start", "decnet-x.service");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(ActiveState("decnet-x.service"), "active");
  // Still nothing for what neither rule allows.
  ExpectPolkitRefused(AsUser("bob", "start", "decnet-a-b-c.service"), "bob start decnet-a-b-c");
  EXPECT_EQ(ActiveState("decnet-a-b-c.service"), "inactive");
}

// Enrolment's rendering for another operators' group (`decnet-updater-enrol --admin-group ops`)
// written over the package's file, as enrolment writes it (a new file renamed into place),
// while polkitd runs. Nothing of the rule is anywhere but in /etc.
class APolkitRuleRenderedForAnotherGroup : public APolkitRule {
 protected:
  APolkitRuleRenderedForAnotherGroup() { install_rule_ = false; }

  // `content` at the rule's path, root's and 0644, renamed over what is there.
  void PutRule(const std::string& content) {
    const std::string tmp = std::string(kInstalledRule) + ".new";
    const CommandRun run = InContainer("umask 022 && printf '%s' " + Quote(content) + " > " + tmp +
                                       " && chown root:root " + tmp + " && chmod 0644 " + tmp +
                                       " && mv " + tmp + " " + kInstalledRule);
    ASSERT_EQ(run.status, 0) << run.output;
  }

  // How often polkitd has (re)loaded its rules so far.
  size_t Loads() {
    const std::string journal = PolkitJournal();
    size_t count = 0;
    const std::string marker = "Finished loading, compiling and executing";
    for (size_t at = journal.find(marker); at != std::string::npos;
         at = journal.find(marker, at + 1))
      ++count;
    return count;
  }

  // Waits until polkitd has loaded its rules more than `loads` times.
  void AwaitReload(size_t loads) {
    for (int i = 0; i < 100 && Loads() <= loads; ++i) std::this_thread::sleep_for(100ms);
    ASSERT_GT(Loads(), loads) << "polkitd did not reload its rules:\n" << PolkitJournal();
  }
};

TEST_F(APolkitRuleRenderedForAnotherGroup, ReplacesThePackagesRuleSoOnlyTheNewGroupIsAllowed) {
  for (const char* setup : {"groupadd ops", "useradd --no-create-home --groups ops carol",
                            "usermod --append --groups ops decnet"}) {
    const CommandRun run = InContainer(setup);
    ASSERT_EQ(run.status, 0) << setup << ": " << run.output;
  }
  // The package's rule, at the package's path: alice (decnet-admin) is allowed, carol not.
  ASSERT_NO_FATAL_FAILURE(PutRule(ReadFile(kShippedRule)));
  CommandRun run = AsUser("alice", "start", "decnet-x.service");
  ASSERT_EQ(run.status, 0) << run.output;
  ASSERT_EQ(InContainer("systemctl stop decnet-x.service").status, 0);
  ExpectRefusedEveryVerb("carol", "decnet-x.service");

  // Enrolment's rendering for the group ops replaces it.
  polkit::PolkitRuleParams params;
  params.admin_group = "ops";
  auto rendered = polkit::RenderPolkitRule(params);
  ASSERT_TRUE(rendered.has_value());
  const size_t loads = Loads();
  ASSERT_NO_FATAL_FAILURE(PutRule(*rendered));
  ASSERT_NO_FATAL_FAILURE(AwaitReload(loads));
  EXPECT_EQ(InContainer("cat /etc/polkit-1/rules.d/*.rules /usr/share/polkit-1/rules.d/*.rules | "
                        "grep -c 'var admin_group'")
                .output,
            "1\n")
      << "exactly one decnet-updater rule is loaded";

  run = AsUser("carol", "start", "decnet-x.service");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(ActiveState("decnet-x.service"), "active");
  run = AsUser("carol", "stop", "decnet-x.service");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(ActiveState("decnet-x.service"), "inactive");
  ExpectPolkitRefused(AsUser("carol", "start", "decnet-updater.service"), "carol self unit");
  ExpectPolkitRefused(AsUser("carol", "start", "ssh.service"), "carol ssh");
  // The package's group lost its grant; the units' user and a non-member never had one.
  ExpectRefusedEveryVerb("alice", "decnet-x.service");
  ExpectRefusedEveryVerb("alice", "decnet-a-b-c.service");
  ExpectRefusedEveryVerb("decnet", "decnet-x.service");
  ExpectRefusedEveryVerb("bob", "decnet-x.service");

  // Back to the default group: the package's rendering again, and alice is allowed again.
  const size_t reloads = Loads();
  ASSERT_NO_FATAL_FAILURE(PutRule(ReadFile(kShippedRule)));
  ASSERT_NO_FATAL_FAILURE(AwaitReload(reloads));
  run = AsUser("alice", "start", "decnet-a-b-c.service");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(ActiveState("decnet-a-b-c.service"), "active");
  ExpectRefusedEveryVerb("carol", "decnet-x.service");
}

}  // namespace
}  // namespace decnet::test
