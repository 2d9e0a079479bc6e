// The crash matrix, on the real thing: the real decnet-update-helper (root) forks the daemon
// as in service, here decnet-updaterd-faults (decnet-updaterd plus injection points, see
// faults_daemon_main.cc), against the real systemd of a throw-away container, with curl over
// mTLS as the master (updater_e2e_fixture.h). For each named point of an update (and of
// update-self) the unit starts with that point armed; the daemon announces the point on a
// FIFO and stops itself there (SIGSTOP); the test, blocked on the FIFO, SIGKILLs from outside
// either the daemon alone (the helper then ends as its pair closes) or the whole unit (helper
// and daemon together, as systemd's kill of the cgroup). Then the unit starts again as
// systemd would, and the host must be on ONE complete release: what curl reads (/health,
// /releases), the files (current, the store's records and directories, units, links, no
// leftovers) and the container's systemd (unit states and files) agree; the next update then
// succeeds. Nothing waits on a timer: every wait is for the event itself, bounded only so a
// broken build fails instead of hanging.
//
// One container per test: the cases of a matrix run one after another on the same host,
// each starting from the release the previous case's next update left.
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/updater_e2e_fixture.h"
#include "tests/support/shell.h"

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The points of POST /update, in the order an update reaches them.
const std::vector<std::string> kUpdatePoints = {
    "uploading", "spooled",   "extracting",   "extracted", "installing",
    "complete",  "flipped",   "unit-written", "reloaded",  "restarted",
    "gate",      "committed", "rolling-back", "reverted"};
// The points of POST /update-self.
const std::vector<std::string> kSelfPoints = {"self-extracting", "self-extracted", "self-complete",
                                              "self-flipped"};
// What the push thread writes to the FIFO once curl has returned: the point was never reached.
constexpr char kPushEnded[] = "(the push ended)";
// Mid-extraction points stop once this many files of the release exist.
constexpr char kNthFile[] = "2";

// The install command of every release: a release whose version ends in -hold prints the
// marker the faults build waits for, then blocks on a FIFO in its own directory (confined,
// it may write nowhere else) until the unit is killed. Others install nothing.
constexpr char kInstallScript[] =
    "case '{version}' in *-hold) mkfifo hold && echo 'decnet-fault: installing' && exec cat hold;; "
    "esac";

std::string Str(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::set<std::string> Entries(const fs::path& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.insert(e.path().filename().string());
  return names;
}

// The state letter of /proc/PID/stat ('T' stopped), 0 when the process is gone.
char ProcessState(pid_t pid) {
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? 0 : stat[paren + 2];
}

// Waits until `pid` is stopped (it raised SIGSTOP right after announcing).
bool WaitUntilStopped(pid_t pid) {
  const auto deadline = Clock::now() + 10s;
  while (ProcessState(pid) != 'T') {
    if (Clock::now() >= deadline || ProcessState(pid) == 0) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The largest file the process holds open beneath a spool directory (-1: none).
long long SpoolBytesHeldBy(pid_t pid) {
  long long held = -1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const std::string target = fs::read_symlink(e.path(), link_ec).string();
    if (link_ec || target.find("/spool/") == std::string::npos) continue;
    struct stat st {};
    if (::stat(e.path().c_str(), &st) == 0) held = std::max<long long>(held, st.st_size);
  }
  return held;
}

// The FIFO the faults build announces on. The test holds both ends: its writer keeps the
// reader from seeing end-of-file between announcements, and lets the push thread say that
// curl returned.
class Announcements {
 public:
  ~Announcements() {
    if (read_fd_ >= 0) ::close(read_fd_);
    if (write_fd_ >= 0) ::close(write_fd_);
  }
  void Open(const fs::path& path, uid_t uid, gid_t gid) {
    path_ = path;
    fs::create_directories(path.parent_path());
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << path;
    ASSERT_EQ(::chown(path.c_str(), uid, gid), 0) << path;
    read_fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    write_fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(read_fd_, 0);
    ASSERT_GE(write_fd_, 0);
  }
  const fs::path& path() const { return path_; }
  void Say(const std::string& what) {
    const std::string line = what + "\n";
    EXPECT_EQ(::write(write_fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  // The next line; "" when none came within `timeout`.
  std::string Next(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd pfd{read_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) <= 0) {
        if (left.count() <= 0) return "";
        continue;
      }
      char buf[256];
      const ssize_t n = ::read(read_fd_, buf, sizeof buf);
      if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  fs::path path_;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::string buffer_;
};

// The case's name in failure messages.
std::string CaseName(const std::string& point, Kill how) {
  return point + (how == Kill::kDaemonAlone ? " / daemon killed alone" : " / whole unit killed");
}

class ACrashedUpdater : public AnUpdaterOnARealSystemd {
 protected:
  void SetUp() override {
    const passwd* daemon_user = ::getpwnam("decnet-updater");
    ASSERT_NE(daemon_user, nullptr);
    ASSERT_NO_FATAL_FAILURE(
        announcements_.Open(root() / "faults/announce", daemon_user->pw_uid, daemon_user->pw_gid));
    ::chmod((root() / "faults").c_str(), 0755);
    AnUpdaterOnARealSystemd::SetUp();
  }

  void AdjustDaemonConfig(json& config) const override {
    config["install_command"] = {"/bin/sh", "-c", kInstallScript};
    // Shorter gates: the matrix makes many updates; the rollback cases still fail theirs.
    config["settle_ms"] = 300;
    config["probe"]["attempts"] = 3;
    config["probe"]["interval_ms"] = 100;
  }

  // Starts the unit with `point` armed, runs `push` (curl) beside, waits for the point's
  // announcement, checks the daemon is stopped there, and kills the unit as `how` says.
  // Returns what curl got.
  HttpReply CrashAt(const std::string& point, Kill how, std::function<HttpReply()> push,
                    uint64_t tarball_size) {
    StopUpdater();
    StartHelperWith({"DECNET_FAULT_FIFO=" + announcements_.path().string(),
                     "DECNET_FAULT_POINT=" + point, std::string("DECNET_FAULT_NTH=") + kNthFile});
    if (HasFatalFailure()) return {};
    const pid_t daemon = DaemonPid();
    auto pushed = std::async(std::launch::async, [this, push] {
      HttpReply reply = push();
      announcements_.Say(kPushEnded);
      return reply;
    });
    const std::string said = announcements_.Next(120s);
    EXPECT_EQ(said, point) << "the update did not stop at " << point << " (\"\": nothing came)";
    if (said == point) {
      EXPECT_TRUE(WaitUntilStopped(daemon))
          << "the daemon announced " << point << " but did not stop";
      if (point == "uploading") {
        // Mid-body: tarball bytes are on disk, not all of them.
        const long long held = SpoolBytesHeldBy(daemon);
        EXPECT_GT(held, 0) << "no tarball bytes in the spool yet";
        EXPECT_LT(held, static_cast<long long>(tarball_size)) << "the whole body had arrived";
      }
    }
    const auto helper_status = KillUnit(how);
    EXPECT_TRUE(helper_status.has_value()) << "the helper did not end";
    HttpReply reply = pushed.get();
    if (said != point) return reply;
    // The daemon died before answering: curl saw no status, or only the 100 Continue.
    EXPECT_TRUE(reply.status == 0 || reply.status == 100) << reply.Describe();
    EXPECT_EQ(announcements_.Next(0ms), kPushEnded);
    return reply;
  }

  // Starts the unit as systemd does after the crash, and waits until the daemon has made units
  // and links match its store (its "recovery" audit line).
  void RestartAfterCrash() {
    const size_t recoveries = Recoveries();
    StartHelperWith({});
    if (HasFatalFailure()) return;
    const auto deadline = Clock::now() + 60s;
    while (Recoveries() == recoveries) {
      ASSERT_LT(Clock::now(), deadline) << "no recovery line in the audit log\n" << Logs();
      std::this_thread::sleep_for(20ms);
    }
    const json last = LastRecovery();
    EXPECT_EQ(Str(last, "result"), "reconciled") << last.dump();
  }

  size_t Recoveries() const {
    size_t n = 0;
    for (const json& e : AuditLog()) n += Str(e, "op") == "recovery";
    return n;
  }
  json LastRecovery() const {
    json last;
    for (const json& e : AuditLog())
      if (Str(e, "op") == "recovery") last = e;
    return last;
  }

  // The agent in the container answers /health with `version` (it may still be starting after
  // a restart: a few attempts).
  void ExpectAgentAnswers(const std::string& version) {
    HttpReply health;
    for (int attempt = 0; attempt < 50; ++attempt) {
      health = AgentHealth();
      if (health.status == 200) break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(health.status, 200) << health.Describe();
    EXPECT_EQ(Str(health.json, "version"), version) << health.Describe();
  }

  // Waits until the store's pruned/ directory is empty (the pruner deletes there in the
  // background; a crash may have interrupted it).
  void ExpectNothingPruned(const fs::path& store) {
    const auto deadline = Clock::now() + 30s;
    while (!Entries(store / "pruned").empty() && Clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    EXPECT_TRUE(Entries(store / "pruned").empty()) << "left beneath " << store / "pruned";
  }

  // A store (the suite's or the daemon's own) is on `active`: state.json has no pending change
  // and names it, `current` points at it, every release directory is complete and recorded,
  // and nothing else lies at its root.
  void ExpectStoreOn(const fs::path& store, const std::string& active) {
    const json state = json::parse(ReadFile(store / "state.json"), nullptr, false);
    ASSERT_TRUE(state.is_object()) << store / "state.json";
    EXPECT_TRUE(state["pending"].is_null()) << state.dump();
    EXPECT_EQ(state["active"], active) << state.dump();
    std::error_code ec;
    EXPECT_EQ(fs::read_symlink(store / "current", ec).string(), "releases/" + active);
    std::set<std::string> recorded;
    for (const auto& [id, record] : state["releases"].items()) {
      recorded.insert(id);
      const json complete =
          json::parse(ReadFile(store / "releases" / id / ".decnet-complete"), nullptr, false);
      EXPECT_TRUE(complete.is_object() && complete["sha256"] == record["sha256"])
          << "recorded release " << id << " is not complete";
    }
    EXPECT_EQ(Entries(store / "releases"), recorded) << "directories and records disagree";
    ExpectNothingPruned(store);
    for (const std::string& name : Entries(store))
      EXPECT_TRUE(name == "releases" || name == "current" || name == "state.json" ||
                  name == "pruned")
          << "left at the root of " << store << ": " << name;
  }

  // The host is on `release` (which ships decnet-extra.service when `extra`), and only on it:
  // through curl, the store's files, the unit and link directories and systemd.
  void ExpectOnOneCompleteRelease(const BuiltRelease& release, bool extra) {
    HttpReply health = Get("/health");
    EXPECT_EQ(health.status, 200) << health.Describe();
    EXPECT_TRUE(health.json.is_object() && health.json.value("/helper/alive"_json_pointer, false))
        << health.Describe();
    HttpReply releases = Get("/releases");
    ASSERT_EQ(releases.status, 200) << releases.Describe();
    const json list = releases.json.value("releases", json::array());
    ASSERT_GE(list.size(), 1u) << releases.Describe();
    EXPECT_EQ(Str(list[0], "slot"), "active") << releases.Describe();
    EXPECT_EQ(Str(list[0], "id"), release.id()) << releases.Describe();
    EXPECT_EQ(Str(list[0], "state"), "ready") << releases.Describe();
    std::set<std::string> listed;
    for (const json& r : list) listed.insert(Str(r, "id"));
    EXPECT_EQ(listed, Entries(install_dir() / "releases")) << releases.Describe();

    ExpectStoreOn(install_dir(), release.id());
    EXPECT_TRUE(Entries(root() / "daemon-state/spool").empty()) << "a spool file was left";

    // Units: exactly those the release ships, as it ships them; links: into current.
    const fs::path shipped = install_dir() / "releases" / release.id() / "etc/systemd/system";
    std::set<std::string> want = {kAgent};
    if (extra) want.insert(kExtra);
    EXPECT_EQ(Entries(testbed().unit_dir()), want);
    for (const std::string& unit : want)
      EXPECT_EQ(ReadFile(testbed().unit_dir() / unit), ReadFile(shipped / unit)) << unit;
    EXPECT_EQ(Entries(link_dir()), std::set<std::string>{"decnet-test-agent"});
    std::error_code ec;
    EXPECT_EQ(fs::read_symlink(link_dir() / "decnet-test-agent", ec),
              install_dir() / "current/bin/decnet-test-agent");

    // systemd runs what the files say.
    EXPECT_EQ(Property(kAgent, kUnitIface, "ActiveState"), "active");
    EXPECT_EQ(Property(kAgent, kUnitIface, "NeedDaemonReload"), "false");
    EXPECT_EQ(Property(kAgent, kUnitIface, "FragmentPath"),
              std::string("/etc/systemd/system/") + kAgent);
    EXPECT_EQ(Property(kAgent, kUnitIface, "Description"), "DECNET test agent " + release.version);
    if (extra) {
      EXPECT_EQ(Property(kExtra, kUnitIface, "ActiveState"), "active");
    } else {
      EXPECT_EQ(Property(kExtra, kUnitIface, "LoadState"), "not-found");
      EXPECT_EQ(Property(kExtra, kUnitIface, "ActiveState"), "inactive");
    }
    ExpectAgentAnswers(release.version);
  }

  Announcements announcements_;
};

// Update points up to the flip change nothing the services run: the agent keeps its process.
bool BeforeTheFlip(const std::string& point) {
  for (const char* p :
       {"uploading", "spooled", "extracting", "extracted", "installing", "complete"})
    if (point == p) return true;
  return false;
}

class ACrashedUpdate : public ACrashedUpdater, public ::testing::WithParamInterface<Kill> {
 protected:
  void RunMatrix() {
    const Kill how = GetParam();
    BuiltRelease on = Install(ReleaseSpec{"1.0.0", {}, false});
    ASSERT_FALSE(HasFailure());
    int n = 0;
    for (const std::string& point : kUpdatePoints) {
      SCOPED_TRACE(CaseName(point, how));
      ++n;
      const auto started = Clock::now();
      // The doomed release ships a second unit, so units written for it must go again; the
      // rollback points need a release that fails its gate, "installing" one that holds.
      const bool rollback = point == "rolling-back" || point == "reverted";
      ReleaseSpec spec{
          std::to_string(2 * n) + ".0.0" + (point == "installing" ? "-hold" : ""),
          rollback ? std::vector<std::string>{"--unhealthy"} : std::vector<std::string>{}, true};
      const BuiltRelease doomed = BuildRelease(spec);
      const std::string agent_pid = Property(kAgent, kServiceIface, "MainPID");
      CrashAt(
          point, how, [this, doomed] { return Push(doomed); }, fs::file_size(doomed.tarball));
      if (HasFatalFailure()) return;
      ASSERT_NO_FATAL_FAILURE(RestartAfterCrash());
      const bool committed = point == "committed";
      ExpectOnOneCompleteRelease(committed ? doomed : on, committed);
      if (BeforeTheFlip(point)) {
        EXPECT_EQ(Property(kAgent, kServiceIface, "MainPID"), agent_pid)
            << "nothing was activated, yet the agent was restarted";
      }
      // The next update succeeds, and the matrix goes on from it (versions rise throughout:
      // the worker refuses anything not newer than what it activated).
      const BuiltRelease next =
          BuildRelease(ReleaseSpec{std::to_string(2 * n + 1) + ".0.0", {}, false});
      HttpReply reply = Push(next);
      ASSERT_EQ(reply.status, 200) << reply.Describe() << "\n" << Logs();
      EXPECT_EQ(CurrentRelease(), next.id());
      ExpectAgentAnswers(next.version);
      on = next;
      std::cerr
          << "[ case     ] " << CaseName(point, how) << ": "
          << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
          << " ms\n";
      if (HasFailure()) return;  // later cases would start from a host in doubt
    }
  }
};

TEST_P(ACrashedUpdate, AtEachPointLeavesTheHostOnOneCompleteReleaseAndTheNextUpdateSucceeds) {
  RunMatrix();
}

INSTANTIATE_TEST_SUITE_P(Kills, ACrashedUpdate,
                         ::testing::Values(Kill::kDaemonAlone, Kill::kWholeUnit),
                         [](const auto& info) {
                           return info.param == Kill::kDaemonAlone ? std::string("DaemonAlone")
                                                                   : std::string("WholeUnit");
                         });

// update-self: the daemon runs from its own store; a crash at each of its steps leaves that
// store on the build that ran before (nothing was committed), the suite untouched, and the
// next update-self runs its build after the restart.
class ACrashedUpdateSelf : public ACrashedUpdate {
 protected:
  bool DaemonFromItsStore() const override { return true; }
};

TEST_P(ACrashedUpdateSelf,
       AtEachPointLeavesTheDaemonOnOneCompleteBuildAndTheNextUpdateSelfSucceeds) {
  const Kill how = GetParam();
  const BuiltRelease suite = Install(ReleaseSpec{"1.0.0", {}, false});
  ASSERT_FALSE(HasFailure());
  std::string good = RunningDaemonBuild();
  ASSERT_EQ(good.size(), 16u) << "the daemon runs from its store: " << good;
  int n = 0;
  for (const std::string& point : kSelfPoints) {
    SCOPED_TRACE(CaseName(point, how));
    ++n;
    const auto started = Clock::now();
    const BuiltRelease doomed = BuildUpdaterBuild(std::to_string(2 * n) + ".0.0");
    const std::string agent_pid = Property(kAgent, kServiceIface, "MainPID");
    CrashAt(
        point, how, [this, doomed] { return PushSelf(doomed); }, fs::file_size(doomed.tarball));
    if (HasFatalFailure()) return;
    ASSERT_NO_FATAL_FAILURE(RestartAfterCrash());
    // Killed between the flip and the commit, the switch is kept: the helper started what
    // `current` names, and the daemon's store commits it (on the helper's probation) rather
    // than pointing elsewhere. Killed anywhere else, nothing was switched.
    const bool switched = point == "self-flipped";
    const std::string expected = switched ? doomed.id() : good;
    ExpectStoreOn(updater_dir(), expected);
    EXPECT_EQ(RunningDaemonBuild(), expected) << "the unit runs another build than its store's";
    bool audited = false;
    for (const auto& entry : AuditLog())
      audited = audited || (entry.value("rule", "") == "update-self-interrupted" &&
                            entry.value("release", "") == doomed.id());
    EXPECT_EQ(audited, switched) << "the audit log and the kept switch disagree";
    ExpectOnOneCompleteRelease(suite, false);
    EXPECT_EQ(Property(kAgent, kServiceIface, "MainPID"), agent_pid) << "the suite was restarted";

    const BuiltRelease next = BuildUpdaterBuild(std::to_string(2 * n + 1) + ".0.0");
    HttpReply queued = PushSelf(next);
    ASSERT_EQ(queued.status, 200) << queued.Describe() << "\n" << Logs();
    RestartHelper();  // what the unit's restart does
    EXPECT_EQ(RunningDaemonBuild(), next.id());
    ExpectStoreOn(updater_dir(), next.id());
    good = next.id();
    std::cerr
        << "[ case     ] " << CaseName(point, how) << ": "
        << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()
        << " ms\n";
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Kills, ACrashedUpdateSelf,
                         ::testing::Values(Kill::kDaemonAlone, Kill::kWholeUnit),
                         [](const auto& info) {
                           return info.param == Kill::kDaemonAlone ? std::string("DaemonAlone")
                                                                   : std::string("WholeUnit");
                         });

}  // namespace
}  // namespace decnet::test
