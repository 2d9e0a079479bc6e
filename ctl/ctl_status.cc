// `helperctl status`: what the running helper is, read from the kernel rather than from the
// helper's own claims where possible: /proc/PID/status for ids, capability sets, NoNewPrivs
// and seccomp; /proc/PID/stat for uptime. Landlock is not visible in /proc, so it comes from
// the helper's confinement.json; request counts come from its record (requests.jsonl).
// The updater's own unit's loaded view (fragment and drop-ins, foreign ones marked) is read
// live from systemd with the helper's own check, or from the helper's start-up record.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "ctl/ctl.h"
#include "helper/confine.h"
#include "helper/loaded_view_check.h"
#include "helper/self_update.h"
#include "helper/systemd_manager.h"

namespace decnet::helper::ctl {
namespace {

constexpr const char* kHelperName = "decnet-update-helper";
constexpr const char* kCapKeys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> ParseStatus(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const size_t value = line.find_first_not_of(" \t", colon + 1);
    out[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return out;
}

// True when /proc/PID is the helper binary (so a stale pid file naming a reused pid is not
// reported as the helper).
bool IsHelper(pid_t pid) {
  char target[4096];
  const ssize_t n =
      ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), target, sizeof target - 1);
  if (n > 0) {
    std::string exe(target, static_cast<size_t>(n));
    if (const size_t del = exe.rfind(" (deleted)"); del != std::string::npos) exe.resize(del);
    return exe.substr(exe.rfind('/') + 1) == kHelperName;
  }
  const auto comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  // comm is truncated to 15 characters.
  return comm && std::string(kHelperName).rfind(comm->substr(0, comm->find('\n')), 0) == 0;
}

// Seconds since the process started: /proc/PID/stat field 22 (clock ticks after boot).
long UptimeSeconds(pid_t pid) {
  const auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const auto uptime = ReadFile("/proc/uptime");
  if (!stat || !uptime) return -1;
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat->substr(close + 2));
  std::string field;
  // Fields after "comm)" start at field 3 (state); starttime is field 22.
  for (int i = 3; i <= 22 && (fields >> field); ++i) {
  }
  const double start =
      std::strtod(field.c_str(), nullptr) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return static_cast<long>(std::strtod(uptime->c_str(), nullptr) - start);
}

struct RequestCounts {
  long served = 0;
  long refused = 0;
  std::map<std::string, long> by_result;
};

RequestCounts CountRequests(const std::string& record_path) {
  RequestCounts counts;
  std::ifstream in(record_path);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("result") || !j["result"].is_string()) continue;
    const std::string result = j["result"].get<std::string>();
    ++counts.by_result[result];
    ++(result == "ok" ? counts.served : counts.refused);
  }
  return counts;
}

// The loaded view of the updater's own unit: read live from systemd (the same check the
// helper makes before update-self's restart), or, when the bus cannot be reached, the helper's
// start-up record. {"source","fragment","drop_ins":[{"path","foreign","why"}],"refusals":[...]}
nlohmann::json SelfUnitView(const Policy& policy) {
  nlohmann::json out = {{"unit", policy.self_unit}};
  auto name = UnitName::Parse(policy.self_unit);
  auto systemd = ConnectSystemd();
  const int unit_dir = ::open(policy.unit_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  std::string live_error;
  if (name && systemd && unit_dir >= 0) {
    auto verdict = CheckLoadedView(policy, unit_dir, nullptr, **systemd, *name);
    if (verdict) {
      out["source"] = "live";
      out["load_state"] = verdict->view.load_state;
      out["fragment"] = verdict->view.fragment_path;
      out["drop_ins"] = nlohmann::json::array();
      for (const auto& [path, why] :
           JudgeDropIns(verdict->view, RootOwnedFileCheck(policy.unit_root))) {
        out["drop_ins"].push_back({{"path", path}, {"foreign", !why.empty()}, {"why", why}});
      }
      out["refusals"] = nlohmann::json::array();
      if (!NothingLoaded(verdict->view)) {
        for (const auto& r : verdict->refusals)
          out["refusals"].push_back({{"rule", r.rule}, {"message", r.message}});
      }
    } else {
      live_error = verdict.error().message;
    }
  } else {
    live_error = !name      ? name.error().message
                 : !systemd ? systemd.error().message
                            : "cannot open " + policy.unit_dir;
  }
  if (unit_dir >= 0) ::close(unit_dir);
  if (!live_error.empty()) {
    out["source"] = "start-up record";
    out["live_error"] = live_error;
    if (const auto text = ReadFile(policy.state_dir + "/" + kSelfUnitViewFile)) {
      const auto j = nlohmann::json::parse(*text, nullptr, false);
      if (j.is_object()) {
        for (const char* key : {"load_state", "fragment", "drop_ins", "refusals", "checked_at"}) {
          if (j.contains(key)) out[key] = j[key];
        }
      }
    }
  }
  return out;
}

void PrintSelfUnitView(const nlohmann::json& v) {
  const auto str = [&v](const char* key) {
    return v.contains(key) && v[key].is_string() ? v[key].get<std::string>() : std::string();
  };
  std::printf("self unit: %s (%s", str("unit").c_str(), str("source").c_str());
  if (!str("live_error").empty()) std::printf(": %s", str("live_error").c_str());
  std::printf(")\n");
  if (!v.contains("drop_ins")) {
    std::printf("  loaded view: unknown\n");
    return;
  }
  std::printf("  load state: %s, fragment: %s\n", str("load_state").c_str(),
              str("fragment").empty() ? "(none)" : str("fragment").c_str());
  for (const auto& d : v["drop_ins"]) {
    const std::string path = d.value("path", ""), why = d.value("why", "");
    if (d.value("foreign", true)) {
      std::printf("  drop-in: %s FOREIGN: %s\n", path.c_str(), why.c_str());
    } else {
      std::printf("  drop-in: %s (operator's own)\n", path.c_str());
    }
  }
  if (v["drop_ins"].empty()) std::printf("  drop-ins: none\n");
  const bool clean = !v.contains("refusals") || v["refusals"].empty();
  for (const auto& r : v.value("refusals", nlohmann::json::array())) {
    std::printf("  REFUSED [%s] %s\n", r.value("rule", "").c_str(), r.value("message", "").c_str());
  }
  std::printf("  restart (update-self): %s\n",
              clean ? "allowed" : "refused until the unit is clean");
}

// Why Landlock is not enforced, as the helper recorded it, and what that means. A filter
// that refused it ("blocked") is said as loudly as the helper's own log says it.
std::string LandlockStatusLine(const std::string& state, int err) {
  for (LandlockState s : {LandlockState::kAbsent, LandlockState::kDisabled, LandlockState::kBlocked,
                          LandlockState::kUnavailable}) {
    if (LandlockStateName(s) == state) return DescribeLandlock(s, err);
  }
  return state + " (the helper recorded no reason)";
}

}  // namespace

int RunStatus(const Policy& policy, bool json) {
  const auto pid_text = ReadFile(policy.state_dir + "/helper.pid");
  if (!pid_text) {
    std::fprintf(stderr, "helperctl: helper not running (no %s/helper.pid)\n",
                 policy.state_dir.c_str());
    return 1;
  }
  const pid_t pid = static_cast<pid_t>(std::atol(pid_text->c_str()));
  const auto status_text =
      pid > 0 ? ReadFile("/proc/" + std::to_string(pid) + "/status") : std::nullopt;
  if (!status_text || !IsHelper(pid)) {
    std::fprintf(stderr, "helperctl: helper not running (stale pid file names %d)\n",
                 static_cast<int>(pid));
    return 1;
  }
  auto status = ParseStatus(*status_text);
  const std::string uid = status["Uid"].substr(0, status["Uid"].find_first_of(" \t"));

  nlohmann::json landlock = {
      {"abi", nullptr}, {"enforced", nullptr}, {"state", nullptr}, {"errno", nullptr}};
  if (const auto conf = ReadFile(policy.state_dir + "/confinement.json")) {
    const auto j = nlohmann::json::parse(*conf, nullptr, false);
    if (j.is_object() && j.value("pid", -1) == pid) {
      landlock["abi"] = j.value("landlock_abi", 0);
      landlock["enforced"] = j.value("landlock_enforced", false);
      // "enforced", "absent", "disabled", "blocked" (a filter refused it), "unavailable".
      landlock["state"] = j.value("landlock_state", std::string("unknown"));
      landlock["errno"] = j.value("landlock_errno", 0);
    }
  }
  const RequestCounts counts = CountRequests(policy.state_dir + "/requests.jsonl");
  const long uptime = UptimeSeconds(pid);
  // update-self: which build of the daemon runs, and the last one proven (self_update.h).
  nlohmann::json daemon_build = nullptr;
  if (const auto record_text = ReadFile(policy.state_dir + "/" + kDaemonStartFile)) {
    if (auto record = ParseStartRecord(*record_text)) {
      daemon_build = {{"build", record->build},
                      {"proven", record->good},
                      {"said_hello", record->hello_ms != 0}};
    }
  }

  const nlohmann::json self_unit = SelfUnitView(policy);
  if (json) {
    nlohmann::json out = {{"pid", pid},
                          {"uid", std::atol(uid.c_str())},
                          {"no_new_privs", std::atoi(status["NoNewPrivs"].c_str())},
                          {"seccomp", std::atoi(status["Seccomp"].c_str())},
                          {"landlock", landlock},
                          {"uptime_s", uptime},
                          {"daemon_build", daemon_build},
                          {"requests",
                           {{"served", counts.served},
                            {"refused", counts.refused},
                            {"by_result", counts.by_result}}}};
    for (const char* key : kCapKeys) out["caps"][key] = status[key];
    out["self_unit"] = self_unit;
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("pid: %d\nuid: %s\n", static_cast<int>(pid), uid.c_str());
  for (const char* key : kCapKeys) std::printf("%s: %s\n", key, status[key].c_str());
  std::printf("NoNewPrivs: %s\nSeccomp: %s%s\n", status["NoNewPrivs"].c_str(),
              status["Seccomp"].c_str(), status["Seccomp"] == "2" ? " (filter)" : "");
  if (landlock["enforced"].is_null())
    std::printf("Landlock: unknown (no confinement.json for this pid)\n");
  else if (landlock["enforced"].get<bool>())
    std::printf("Landlock: enforced (ABI %d)\n", landlock["abi"].get<int>());
  else
    std::printf(
        "Landlock: not enforced: %s\n",
        LandlockStatusLine(landlock["state"].get<std::string>(), landlock["errno"].get<int>())
            .c_str());
  if (daemon_build.is_null()) {
    std::printf("daemon build: not run from its store (no update-self record)\n");
  } else {
    const std::string build = daemon_build["build"], proven = daemon_build["proven"];
    std::printf("daemon build: %s (%s; last proven: %s)\n", build.c_str(),
                daemon_build["said_hello"].get<bool>() ? "said hello" : "no hello yet",
                proven.empty() ? "none" : proven.c_str());
  }
  std::printf("uptime: %lds\nrequests: %ld served, %ld refused", uptime, counts.served,
              counts.refused);
  const char* sep = " (";
  for (const auto& [result, n] : counts.by_result) {
    if (result == "ok") continue;
    std::printf("%s%s %ld", sep, result.c_str(), n);
    sep = ", ";
  }
  std::printf("%s\n", std::string(sep) == ", " ? ")" : "");
  PrintSelfUnitView(self_unit);
  return 0;
}

}  // namespace decnet::helper::ctl
