// The loaded-view judgement (policy/loaded_view.h), pure: a view systemd could report, the
// facts about the helper's file and a stand-in file check go in; the refusals come out. Each
// negative row changes one thing of an approved view and must be refused by its own rule.
#include "policy/loaded_view.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>

#include "policy/rules.h"
#include "tests/support/loaded_view_support.h"
#include "tests/support/param_name.h"

namespace decnet::helper {
namespace {

constexpr char kUnit[] = "decnet-demo.service";
constexpr char kOperatorDropIn[] = "/etc/systemd/system/decnet-demo.service.d/10-operator.conf";

UnitName Name(std::string_view n) { return *UnitName::Parse(n); }

Policy TestPolicy() {
  Policy p = Policy::Defaults();
  p.unit_dir = "/etc/systemd/system";
  p.unit_root = "/";
  p.allowances["decnet-net.service"] = {{"CAP_NET_ADMIN", "CAP_NET_RAW"}, {"docker"}, false};
  p.allowances["decnet-loose.service"] = {{"CAP_NET_RAW"}, {}, true};
  return p;
}

// An approved view of `unit`: the helper's file, no drop-in, the unit user, bounded.
LoadedView Approved(std::string_view unit = kUnit) {
  LoadedView v = testing_support::BoundedServiceView("/etc/systemd/system/" + std::string(unit),
                                                     "decnet", "decnet");
  v.exec = {{"ExecStart", "/opt/decnet/current/bin/agent", {}},
            {"ExecStartPre", "/bin/true", {"ignore-failure", "no-env-expand"}}};
  v.directories = {{"StateDirectory", {"decnet-demo"}}, {"LogsDirectory", {}}};
  return v;
}

FragmentFacts HelpersFile() {
  FragmentFacts f;
  f.exists = f.regular = true;
  f.uid = 0;
  f.mode = S_IFREG | 0644;
  f.nlink = 1;
  f.recorded = f.matches_record = true;
  return f;
}

// Operator drop-ins are fine; every other path is "not root's" (a stand-in for the walk).
// /lib stands for a merged-/usr link to usr/lib.
OperatorFile FakeFileCheck(std::string_view path) {
  if (path == kOperatorDropIn || path == "/usr/lib/systemd/system/decnet-updater.service" ||
      path == "/run/systemd/system/decnet-demo.service.d/20-runtime.conf")
    return {std::string(path), ""};
  if (path.starts_with("/lib/systemd/system/decnet-updater.service"))
    return {"/usr" + std::string(path), ""};
  return {std::string(path), std::string(path) + " is owned by uid 990"};
}

std::vector<std::string> Rules(const std::vector<LoadedViewRefusal>& refusals) {
  std::vector<std::string> out;
  for (const auto& r : refusals) out.push_back(r.rule);
  return out;
}

std::string Describe(const std::vector<LoadedViewRefusal>& refusals) {
  std::string out;
  for (const auto& r : refusals) out += "  [" + r.rule + "] " + r.message + "\n";
  return out;
}

std::vector<LoadedViewRefusal> Judge(const LoadedView& v, const FragmentFacts& f = HelpersFile(),
                                     std::string_view unit = kUnit,
                                     const Policy& policy = TestPolicy()) {
  return JudgeLoadedView(policy, Name(unit), v, f, FakeFileCheck);
}

TEST(ALoadedView, IsApprovedWhenItIsTheHelpersFileAloneWithinPolicy) {
  const auto refusals = Judge(Approved());
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, IsApprovedWithAnOperatorsOwnDropIn) {
  LoadedView v = Approved();
  v.drop_in_paths = {kOperatorDropIn, "/run/systemd/system/decnet-demo.service.d/20-runtime.conf"};
  const auto refusals = Judge(v);
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, IsApprovedForARootOwnedFileTheHelperDidNotWrite) {
  FragmentFacts f = HelpersFile();
  f.recorded = f.matches_record = false;
  const auto refusals = Judge(Approved(), f);
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, IsApprovedForCapabilitiesWithinTheAllowance) {
  LoadedView v = Approved("decnet-net.service");
  v.ambient_capabilities = CapabilityMask({"CAP_NET_ADMIN", "CAP_NET_RAW"});
  v.supplementary_groups = {"docker"};
  const auto refusals = Judge(v, HelpersFile(), "decnet-net.service");
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, IsApprovedForATargetWithNoServiceSettings) {
  LoadedView v;
  v.load_state = "loaded";
  v.fragment_path = "/etc/systemd/system/decnet.target";
  v.start_limit_interval_usec = 10'000'000;
  const auto refusals = Judge(v, HelpersFile(), "decnet.target");
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

// ---- the updater's own unit

TEST(ALoadedView, ApprovesTheUpdatersOwnUnitInstalledByTheOperatorRunningAsRoot) {
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/usr/lib/systemd/system/decnet-updater.service";
  v.user = "";  // root, by design
  v.group = "";
  v.no_new_privileges = true;
  FragmentFacts none;  // not in the helper's unit directory
  const auto refusals = Judge(v, none, "decnet-updater.service");
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, ApprovesTheUpdatersOwnUnitNamedThroughMergedUsr) {
  // systemd 252 on a merged-/usr system names /usr/lib/systemd/system's file by /lib/...
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/lib/systemd/system/decnet-updater.service";
  v.drop_in_paths = {"/lib/systemd/system/decnet-updater.service.d/10-package.conf"};
  v.user = "";
  v.group = "";
  v.no_new_privileges = true;
  const auto refusals = Judge(v, FragmentFacts{}, "decnet-updater.service");
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST(ALoadedView, RefusesTheUpdatersOwnUnitWhoseLinksLeadOutOfTheUnitDirectories) {
  // Every link on the way root's, the file root's alone: but it is not in a unit directory.
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/lib/systemd/system/decnet-updater.service";
  v.drop_in_paths = {"/lib/systemd/system/decnet-updater.service.d/10-package.conf"};
  v.user = "";
  v.group = "";
  v.no_new_privileges = true;
  const OperatorFileCheck leads_to_opt = [](std::string_view path) {
    return OperatorFile{"/opt/vendor" + std::string(path), ""};
  };
  const auto refusals = JudgeLoadedView(TestPolicy(), Name("decnet-updater.service"), v,
                                        FragmentFacts{}, leads_to_opt);
  EXPECT_EQ(Rules(refusals),
            (std::vector<std::string>{"unit-loaded-fragment", "unit-loaded-dropin"}))
      << Describe(refusals);
  // The same file check with the links leading into /usr/lib approves it: the refusal is
  // the resolved place's.
  const OperatorFileCheck leads_to_usr = [](std::string_view path) {
    return OperatorFile{"/usr" + std::string(path), ""};
  };
  EXPECT_TRUE(JudgeLoadedView(TestPolicy(), Name("decnet-updater.service"), v, FragmentFacts{},
                              leads_to_usr)
                  .empty());
}

TEST(ALoadedView, RefusesTheUpdatersOwnUnitWithAForeignDropIn) {
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/usr/lib/systemd/system/decnet-updater.service";
  v.drop_in_paths = {"/etc/systemd/system/decnet-updater.service.d/evil.conf"};
  FragmentFacts none;
  EXPECT_EQ(Rules(Judge(v, none, "decnet-updater.service")),
            std::vector<std::string>{"unit-loaded-dropin"});
}

TEST(ALoadedView, RefusesTheUpdatersOwnUnitFromARuntimeDirectory) {
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/run/systemd/system/decnet-updater.service";
  FragmentFacts none;
  EXPECT_EQ(Rules(Judge(v, none, "decnet-updater.service")),
            std::vector<std::string>{"unit-loaded-fragment"});
}

TEST(ALoadedView, RefusesTheUpdatersOwnUnitFromAFileNotRootsAlone) {
  LoadedView v = Approved("decnet-updater.service");
  v.fragment_path = "/etc/systemd/system/decnet-updater.service";
  FragmentFacts f = HelpersFile();
  f.recorded = f.matches_record = false;
  f.uid = 990;
  EXPECT_EQ(Rules(Judge(v, f, "decnet-updater.service")),
            std::vector<std::string>{"unit-loaded-fragment-owner"});
}

// ---- one change per row, each refused by its own rule

struct Row {
  const char* what;
  std::function<void(LoadedView&, FragmentFacts&)> change;
  const char* rule;
  const char* unit = kUnit;
};

class ALoadedViewChangedInOneWay : public ::testing::TestWithParam<Row> {};

TEST_P(ALoadedViewChangedInOneWay, IsRefusedByItsOwnRule) {
  LoadedView v = Approved(GetParam().unit);
  FragmentFacts f = HelpersFile();
  GetParam().change(v, f);
  const auto refusals = Judge(v, f, GetParam().unit);
  ASSERT_FALSE(refusals.empty()) << GetParam().what;
  EXPECT_EQ(refusals.front().rule, GetParam().rule) << GetParam().what << "\n"
                                                    << Describe(refusals);
  for (const auto& r : refusals) {
    EXPECT_FALSE(r.message.empty()) << r.rule;
    // Every rule the check names is listed for `helperctl policy`.
    EXPECT_NE(FindLoadedViewRule(r.rule), nullptr) << r.rule;
  }
}

using V = LoadedView;
using F = FragmentFacts;

const Row kRows[] = {
    // what systemd loaded from
    {"not found", [](V& v, F&) { v.load_state = "not-found"; }, "unit-loaded-state"},
    {"masked", [](V& v, F&) { v.load_state = "masked"; }, "unit-loaded-state"},
    {"bad setting", [](V& v, F&) { v.load_state = "bad-setting"; }, "unit-loaded-state"},
    {"transient", [](V& v, F&) { v.transient = true; }, "unit-loaded-transient"},
    {"generated", [](V& v, F&) { v.source_path = "/etc/fstab"; }, "unit-loaded-source"},
    {"fragment in /run shadows the helper's",
     [](V& v, F&) { v.fragment_path = "/run/systemd/system/decnet-demo.service"; },
     "unit-loaded-fragment"},
    {"fragment in system.control",
     [](V& v, F&) { v.fragment_path = "/etc/systemd/system.control/decnet-demo.service"; },
     "unit-loaded-fragment"},
    {"fragment in /usr/lib",
     [](V& v, F&) { v.fragment_path = "/usr/lib/systemd/system/decnet-demo.service"; },
     "unit-loaded-fragment"},
    {"fragment of another name (an alias)",
     [](V& v, F&) { v.fragment_path = "/etc/systemd/system/decnet-other.service"; },
     "unit-loaded-fragment"},
    {"fragment path empty", [](V& v, F&) { v.fragment_path = ""; }, "unit-loaded-fragment"},
    {"helper's file gone", [](V&, F& f) { f.exists = false; }, "unit-loaded-fragment"},
    {"helper's file a symlink now", [](V&, F& f) { f.regular = false; }, "unit-loaded-fragment"},
    {"helper's file changed", [](V&, F& f) { f.matches_record = false; },
     "unit-loaded-fragment-changed"},
    {"operator file owned by the unit user",
     [](V&, F& f) {
       f.recorded = f.matches_record = false;
       f.uid = 990;
     },
     "unit-loaded-fragment-owner"},
    {"operator file group-writable",
     [](V&, F& f) {
       f.recorded = f.matches_record = false;
       f.mode = S_IFREG | 0664;
     },
     "unit-loaded-fragment-owner"},
    {"operator file with two links",
     [](V&, F& f) {
       f.recorded = f.matches_record = false;
       f.nlink = 2;
     },
     "unit-loaded-fragment-owner"},
    // drop-ins
    {"unit-user-owned drop-in next to the helper's file",
     [](V& v, F&) { v.drop_in_paths = {"/etc/systemd/system/decnet-demo.service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"prefix drop-in decnet-.service.d not root's",
     [](V& v, F&) { v.drop_in_paths = {"/etc/systemd/system/decnet-.service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"type drop-in service.d not root's",
     [](V& v, F&) { v.drop_in_paths = {"/etc/systemd/system/service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"transient drop-in",
     [](V& v, F&) { v.drop_in_paths = {"/run/systemd/transient/decnet-demo.service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"generator drop-in",
     [](V& v, F&) { v.drop_in_paths = {"/run/systemd/generator/decnet-demo.service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"drop-in outside any search path",
     [](V& v, F&) { v.drop_in_paths = {"/tmp/decnet-demo.service.d/x.conf"}; },
     "unit-loaded-dropin"},
    {"drop-in not in a .d directory",
     [](V& v, F&) { v.drop_in_paths = {"/etc/systemd/system/x.conf"}; }, "unit-loaded-dropin"},
    {"operator drop-in next to a foreign one",
     [](V& v, F&) {
       v.drop_in_paths = {kOperatorDropIn, "/etc/systemd/system/decnet-demo.service.d/z.conf"};
     },
     "unit-loaded-dropin"},
    // identity
    {"User=root", [](V& v, F&) { v.user = "root"; }, "unit-loaded-user"},
    {"User=0", [](V& v, F&) { v.user = "0"; }, "unit-loaded-user"},
    {"no User=", [](V& v, F&) { v.user = ""; }, "unit-loaded-user"},
    {"the daemon's user", [](V& v, F&) { v.user = "decnet-updater"; }, "unit-loaded-user"},
    {"a user not in the list", [](V& v, F&) { v.user = "nobody"; }, "unit-loaded-user"},
    {"Group=root", [](V& v, F&) { v.group = "root"; }, "unit-loaded-group"},
    {"Group=0", [](V& v, F&) { v.group = "0"; }, "unit-loaded-group"},
    {"no Group=", [](V& v, F&) { v.group = ""; }, "unit-loaded-group"},
    {"the daemon's group", [](V& v, F&) { v.group = "decnet-updater"; }, "unit-loaded-group"},
    {"DynamicUser=yes", [](V& v, F&) { v.dynamic_user = true; }, "unit-loaded-dynamic-user"},
    {"supplementary docker without allowance",
     [](V& v, F&) { v.supplementary_groups = {"docker"}; }, "unit-loaded-supplementary-groups"},
    {"supplementary root even with an allowance",
     [](V& v, F&) { v.supplementary_groups = {"root"}; }, "unit-loaded-supplementary-groups",
     "decnet-net.service"},
    // exec flags
    {"ExecStartPre=+",
     [](V& v, F&) {
       v.exec.push_back({"ExecStartPre", "/bin/sh", {"privileged"}});
     },
     "unit-loaded-exec-flags"},
    {"ExecStopPost=!",
     [](V& v, F&) {
       v.exec.push_back({"ExecStopPost", "/bin/sh", {"no-setuid"}});
     },
     "unit-loaded-exec-flags"},
    {"ExecStart=!!",
     [](V& v, F&) {
       v.exec.push_back({"ExecStart", "/bin/sh", {"ambient"}});
     },
     "unit-loaded-exec-flags"},
    {"an unknown flag",
     [](V& v, F&) {
       v.exec.push_back({"ExecReload", "/bin/sh", {"future"}});
     },
     "unit-loaded-exec-flags"},
    // capabilities
    {"ambient CAP_SYS_ADMIN",
     [](V& v, F&) { v.ambient_capabilities = CapabilityMask({"CAP_SYS_ADMIN"}); },
     "unit-loaded-capabilities"},
    {"ambient beyond the allowance",
     [](V& v, F&) {
       v.ambient_capabilities = CapabilityMask({"CAP_NET_RAW", "CAP_SETUID"});
     },
     "unit-loaded-capabilities", "decnet-net.service"},
    {"an unnamed capability bit", [](V& v, F&) { v.ambient_capabilities = uint64_t{1} << 62; },
     "unit-loaded-capabilities"},
    {"NoNewPrivileges off", [](V& v, F&) { v.no_new_privileges = false; },
     "unit-loaded-no-new-privileges"},
    {"NoNewPrivileges off, allowed, with a full bounding set",
     [](V& v, F&) { v.no_new_privileges = false; }, "unit-loaded-capabilities",
     "decnet-loose.service"},
    // directories
    {"two-component StateDirectory",
     [](V& v, F&) {
       v.directories = {{"StateDirectory", {"decnet-demo/sub"}}};
     },
     "unit-loaded-directory"},
    {"RuntimeDirectory ..",
     [](V& v, F&) {
       v.directories = {{"RuntimeDirectory", {".."}}};
     },
     "unit-loaded-directory"},
    {"the helper's state directory",
     [](V& v, F&) {
       v.directories = {{"StateDirectory", {"decnet-update-helper"}}};
     },
     "unit-loaded-directory"},
    {"a name beginning with the daemon's",
     [](V& v, F&) {
       v.directories = {{"CacheDirectory", {"decnet-updater-x"}}};
     },
     "unit-loaded-directory"},
    {"an empty name",
     [](V& v, F&) {
       v.directories = {{"LogsDirectory", {""}}};
     },
     "unit-loaded-directory"},
    // bounded and stoppable
    {"KillMode=none", [](V& v, F&) { v.kill_mode = "none"; }, "unit-loaded-kill-mode"},
    {"KillMode=process", [](V& v, F&) { v.kill_mode = "process"; }, "unit-loaded-kill-mode"},
    {"SendSIGKILL=no", [](V& v, F&) { v.send_sigkill = false; }, "unit-loaded-kill-mode"},
    {"TimeoutStopSec=infinity", [](V& v, F&) { v.timeout_stop_usec = kLoadedInfinity; },
     "unit-loaded-stop-timeout"},
    {"LimitNPROC=infinity", [](V& v, F&) { v.limit_nproc = kLoadedInfinity; }, "unit-loaded-limit"},
    {"LimitNOFILE=infinity", [](V& v, F&) { v.limit_nofile = kLoadedInfinity; },
     "unit-loaded-limit"},
    {"TasksMax=infinity", [](V& v, F&) { v.tasks_max = kLoadedInfinity; }, "unit-loaded-limit"},
    {"StartLimitIntervalSec=0", [](V& v, F&) { v.start_limit_interval_usec = 0; },
     "unit-loaded-start-limit"},
    // settings the policy refuses outright
    {"RootDirectory=", [](V& v, F&) { v.root_directory = "/srv/root"; },
     "unit-loaded-root-settings"},
    {"RootImage=", [](V& v, F&) { v.root_image = "/srv/img.raw"; }, "unit-loaded-root-settings"},
    {"PAMName=", [](V& v, F&) { v.pam_name = "login"; }, "unit-loaded-root-settings"},
    {"LoadCredential=", [](V& v, F&) { v.credentials = {"key"}; }, "unit-loaded-credentials"},
    // files systemd opens as root
    {"EnvironmentFile outside the directories",
     [](V& v, F&) { v.environment_files = {"/etc/shadow"}; }, "unit-loaded-environment-file"},
    {"EnvironmentFile beside the directory",
     [](V& v, F&) { v.environment_files = {"/etc/decnet-evil/env"}; },
     "unit-loaded-environment-file"},
    {"StandardOutput=socket", [](V& v, F&) { v.standard_output = "socket"; }, "unit-loaded-stdio"},
    {"StandardInput=tty", [](V& v, F&) { v.standard_input = "tty"; }, "unit-loaded-stdio"},
    {"StandardError=fd", [](V& v, F&) { v.standard_error = "fd"; }, "unit-loaded-stdio"},
    {"StandardOutput=append: next to an operator drop-in",
     [](V& v, F&) {
       v.standard_output = "append";
       v.drop_in_paths = {kOperatorDropIn};
     },
     "unit-loaded-stdio-file"},
    {"StandardInput=file: from a file the helper did not write",
     [](V& v, F& f) {
       v.standard_input = "file";
       f.recorded = f.matches_record = false;
     },
     "unit-loaded-stdio-file"},
};

INSTANTIATE_TEST_SUITE_P(Rows, ALoadedViewChangedInOneWay, ::testing::ValuesIn(kRows),
                         decnet::test::NameFromWhat{});

TEST(ALoadedView, EvenWithOperatorDropInsKeepsTheEffectiveSettingsWithinPolicy) {
  LoadedView v = Approved();
  v.drop_in_paths = {kOperatorDropIn};
  v.exec.push_back({"ExecStartPre", "/bin/touch", {"privileged"}});
  v.user = "root";
  EXPECT_EQ(Rules(Judge(v)),
            (std::vector<std::string>{"unit-loaded-user", "unit-loaded-exec-flags"}));
}

TEST(ALoadedView, SaysNothingLoadedOnlyWhenNothingIs) {
  LoadedView v;
  v.load_state = "not-found";
  EXPECT_TRUE(NothingLoaded(v));
  v.drop_in_paths = {"/etc/systemd/system/decnet-demo.service.d/x.conf"};
  EXPECT_FALSE(NothingLoaded(v));
  EXPECT_FALSE(NothingLoaded(Approved()));
}

TEST(ASystemdUnitDir, IsTheUnitDirectoryWithTheUnitRootRemoved) {
  Policy p = TestPolicy();
  EXPECT_EQ(SystemdUnitDir(p), "/etc/systemd/system");
  p.unit_root = "/srv/c";
  p.unit_dir = "/srv/c/etc/systemd/system/";
  EXPECT_EQ(SystemdUnitDir(p), "/etc/systemd/system");
  p.unit_dir = "/srv/cx/units";  // not beneath: systemd's first search directory
  EXPECT_EQ(SystemdUnitDir(p), "/etc/systemd/system");
}

TEST(ACapabilityMask, MapsNamesToTheKernelsBits) {
  EXPECT_EQ(CapabilityMask({"CAP_NET_ADMIN", "CAP_NET_RAW"}), uint64_t{12288});
  EXPECT_EQ(CapabilityMask({"CAP_CHOWN"}), uint64_t{1});
  EXPECT_EQ(CapabilityMask({"CAP_CHECKPOINT_RESTORE"}), uint64_t{1} << 40);
  EXPECT_EQ(CapabilityNames(12288), (std::vector<std::string>{"CAP_NET_ADMIN", "CAP_NET_RAW"}));
  EXPECT_EQ(CapabilityNames(uint64_t{1} << 63), std::vector<std::string>{"cap_63"});
}

// The real file check, on files made here (tests run as root).
class ARootOwnedFileCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/decnet-loaded-view.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ::chmod(root_.c_str(), 0755);
    std::filesystem::create_directories(root_ + "/etc/systemd/system/x.service.d");
    for (const char* d :
         {"/etc", "/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/x.service.d"})
      ::chmod((root_ + d).c_str(), 0755);
    // The walk resolves the reader's (root's) credentials beneath the root.
    { std::ofstream(root_ + "/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"; }
    { std::ofstream(root_ + "/etc/group") << "root:x:0:\n"; }
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string Make(const std::string& rel, mode_t mode, uid_t uid = 0) {
    const std::string path = root_ + rel;
    { std::ofstream(path) << "[Service]\n"; }
    ::chmod(path.c_str(), mode);
    if (::chown(path.c_str(), uid, 0) != 0) ADD_FAILURE() << "chown " << path;
    return rel;
  }
  std::string root_;
};

TEST_F(ARootOwnedFileCheck, AcceptsARootOwnedFileInARootOnlyChain) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to own files";
  const auto rel = Make("/etc/systemd/system/x.service.d/ok.conf", 0644);
  const OperatorFile file = RootOwnedFileCheck(root_)(rel);
  EXPECT_EQ(file.why, "");
  EXPECT_EQ(file.resolved, rel);
}

TEST_F(ARootOwnedFileCheck, RefusesMissingForeignWritableLinkedAndRedirectedFiles) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to own files";
  const auto check = [c = RootOwnedFileCheck(root_)](std::string_view p) { return c(p).why; };
  EXPECT_NE(check("/etc/systemd/system/x.service.d/missing.conf"), "");
  EXPECT_NE(check(Make("/etc/systemd/system/x.service.d/user.conf", 0644, 990)), "");
  EXPECT_NE(check(Make("/etc/systemd/system/x.service.d/gw.conf", 0664)), "");
  EXPECT_NE(check(Make("/etc/systemd/system/x.service.d/ow.conf", 0646)), "");
  const auto linked = Make("/etc/systemd/system/x.service.d/linked.conf", 0644);
  ASSERT_EQ(::link((root_ + linked).c_str(), (root_ + "/etc/linked-twice").c_str()), 0);
  EXPECT_NE(check(linked), "");
  Make("/etc/hostname", 0644);  // root's alone: only following the link could approve it
  ASSERT_EQ(::symlink("/etc/hostname", (root_ + "/etc/systemd/system/x.service.d/l.conf").c_str()),
            0);
  EXPECT_NE(check("/etc/systemd/system/x.service.d/l.conf"), "");
  // A drop-in directory the unit's user owns (as a *Directory= trick would make it).
  std::filesystem::create_directories(root_ + "/etc/systemd/system/y.service.d");
  ASSERT_EQ(::chown((root_ + "/etc/systemd/system/y.service.d").c_str(), 990, 990), 0);
  EXPECT_NE(check(Make("/etc/systemd/system/y.service.d/evil.conf", 0644)), "");
}

// A merged-/usr root: /lib -> usr/lib, the unit installed in /usr/lib/systemd/system, as
// systemd 252 names it (/lib/systemd/system/...). Each attack changes one link or directory.
class AMergedUsrRoot : public ARootOwnedFileCheck {
 protected:
  static constexpr char kNamed[] = "/lib/systemd/system/decnet-updater.service";
  static constexpr char kReal[] = "/usr/lib/systemd/system/decnet-updater.service";

  void SetUp() override {
    ARootOwnedFileCheck::SetUp();
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to own files";
    Dirs("/usr/lib/systemd/system/decnet-updater.service.d");
    Make(kReal, 0644);
    Make("/usr/lib/systemd/system/decnet-updater.service.d/10-package.conf", 0644);
    Link("usr/lib", "/lib");
  }
  void Dirs(const std::string& rel, mode_t mode = 0755, uid_t uid = 0) {
    std::filesystem::create_directories(root_ + rel);
    for (std::filesystem::path p = rel; p != "/" && !p.empty(); p = p.parent_path()) {
      ::chmod((root_ + p.string()).c_str(), p == rel ? mode : 0755);
      if (::chown((root_ + p.string()).c_str(), p == rel ? uid : 0, 0) != 0) ADD_FAILURE();
    }
  }
  void Link(const std::string& target, const std::string& rel, uid_t uid = 0) {
    std::filesystem::remove(root_ + rel);
    ASSERT_EQ(::symlink(target.c_str(), (root_ + rel).c_str()), 0) << rel;
    ASSERT_EQ(::lchown((root_ + rel).c_str(), uid, uid), 0) << rel;
  }
  OperatorFile Check(std::string_view path) { return RootOwnedFileCheck(root_)(path); }
  // The updater's own unit as systemd would report it, judged with the real file check.
  std::vector<LoadedViewRefusal> JudgeOwnUnit(const std::string& fragment) {
    Policy p = TestPolicy();
    p.unit_root = root_;
    p.unit_dir = root_ + "/etc/systemd/system";
    LoadedView v = Approved("decnet-updater.service");
    v.fragment_path = fragment;
    v.drop_in_paths = {Parent(fragment) + "/decnet-updater.service.d/10-package.conf"};
    v.user = "";
    v.group = "";
    v.no_new_privileges = true;
    return JudgeLoadedView(p, Name("decnet-updater.service"), v, FragmentFacts{},
                           RootOwnedFileCheck(root_));
  }
  static std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }
};

TEST_F(AMergedUsrRoot, ApprovesTheUnitSystemdNamesThroughRootsOwnLink) {
  const OperatorFile file = Check(kNamed);
  EXPECT_EQ(file.why, "");
  EXPECT_EQ(file.resolved, kReal);
  const auto refusals = JudgeOwnUnit(kNamed);
  EXPECT_TRUE(refusals.empty()) << Describe(refusals);
}

TEST_F(AMergedUsrRoot, FollowsAbsoluteRelativeAndChainedTargetsBeneathTheRootOnly) {
  for (const auto& [target, why] : std::vector<std::pair<std::string, std::string>>{
           {"/usr/lib", "absolute: taken beneath the unit root"},
           {"./usr/./lib/", "relative, with . and a trailing slash"},
           {"usr/lib/systemd/..", "relative, with .."},
           {"../../../../usr/lib", "\"..\" never climbs above the unit root"},
           {"lib2", "a chain of two root-owned links"}}) {
    Link("usr/lib", "/lib2");
    Link(target, "/lib");
    const OperatorFile file = Check(kNamed);
    EXPECT_EQ(file.why, "") << why;
    EXPECT_EQ(file.resolved, kReal) << why;
  }
}

TEST_F(AMergedUsrRoot, RefusesALinkNotOwnedByRoot) {
  Link("usr/lib", "/lib", 990);
  EXPECT_NE(Check(kNamed).why.find("not owned by root"), std::string::npos) << Check(kNamed).why;
  EXPECT_EQ(Rules(JudgeOwnUnit(kNamed)),
            (std::vector<std::string>{"unit-loaded-fragment-owner", "unit-loaded-dropin"}));
}

TEST_F(AMergedUsrRoot, RefusesALinkInADirectoryOthersCanChange) {
  // /lib is root's, but lives in a directory that is group- or world-writable, or not root's.
  for (const auto& [mode, uid] :
       std::vector<std::pair<mode_t, uid_t>>{{0775, 0}, {0757, 0}, {01777, 0}, {0755, 990}}) {
    Dirs("/shared", mode, uid);
    Link("../usr/lib", "/shared/lib");
    const OperatorFile file = Check("/shared/lib/systemd/system/decnet-updater.service");
    EXPECT_NE(file.why, "") << std::oct << mode << " uid " << std::dec << uid;
  }
  // The control: the same link in a directory root's alone is followed.
  Dirs("/shared", 0755, 0);
  EXPECT_EQ(Check("/shared/lib/systemd/system/decnet-updater.service").why, "");
}

TEST_F(AMergedUsrRoot, RefusesALinkThatLeadsThroughADirectoryOthersCanChange) {
  // The link is root's, in a root-only directory, but its target passes a writable one.
  Dirs("/srv/open/systemd/system");
  Make("/srv/open/systemd/system/decnet-updater.service", 0644);
  Link("srv/open", "/lib");
  EXPECT_EQ(Check(kNamed).why, "") << "the control: root's alone all the way";
  Dirs("/srv/open", 0777);
  Link("srv/open", "/lib");
  EXPECT_NE(Check(kNamed).why, "");
}

TEST_F(AMergedUsrRoot, RefusesALinkThatLeadsOutOfTheUnitDirectories) {
  // Root's links and files all the way, but the unit is then in /opt, not a unit directory.
  Dirs("/opt/vendor/systemd/system/decnet-updater.service.d");
  Make("/opt/vendor/systemd/system/decnet-updater.service", 0644);
  Make("/opt/vendor/systemd/system/decnet-updater.service.d/10-package.conf", 0644);
  Link("opt/vendor", "/lib");
  const OperatorFile file = Check(kNamed);
  EXPECT_EQ(file.why, "");
  EXPECT_EQ(file.resolved, "/opt/vendor/systemd/system/decnet-updater.service");
  EXPECT_EQ(Rules(JudgeOwnUnit(kNamed)),
            (std::vector<std::string>{"unit-loaded-fragment", "unit-loaded-dropin"}));
}

TEST_F(AMergedUsrRoot, RefusesLoopsAndDanglingLinks) {
  Link("loop-b", "/lib");
  Link("lib", "/loop-b");
  EXPECT_NE(Check(kNamed).why.find("too many symbolic links"), std::string::npos)
      << Check(kNamed).why;
  Link("lib", "/lib");  // itself
  EXPECT_NE(Check(kNamed).why.find("too many symbolic links"), std::string::npos);
  Link("usr/lib-gone", "/lib");
  EXPECT_NE(Check(kNamed).why, "");
  Link("/usr/lib/systemd/system/decnet-updater.service/x", "/lib");  // through a file
  EXPECT_NE(Check(kNamed).why, "");
}

TEST_F(AMergedUsrRoot, NeverFollowsTheFileItself) {
  Dirs("/etc/systemd/system");
  Link(kReal, "/etc/systemd/system/decnet-updater.service");
  EXPECT_NE(Check("/etc/systemd/system/decnet-updater.service").why, "");
  EXPECT_EQ(Rules(JudgeOwnUnit("/etc/systemd/system/decnet-updater.service")).front(),
            "unit-loaded-fragment-owner");
}

}  // namespace
}  // namespace decnet::helper
