// The plan is built in full before anything changes, so --dry-run prints exactly the steps a
// real run takes and every refusal happens before the first change. The record in
// BACKUP/adoption.json is written before the first change and is what --undo works from.
#include "adopt/adopt.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "adopt/key_acl.h"
#include "adopt/systemd_bus.h"
#include "adopt/unit_rewrite.h"
#include "daemon/config.h"
#include "policy/policy.h"
#include "policy/unit_file.h"

namespace decnet::adopt {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// DECNET's restart order on workers; other decnet-*.service files follow, sorted.
const std::vector<std::string> kDecnetOrder = {"decnet-agent.service", "decnet-forwarder.service",
                                               "decnet-collector.service", "decnet-prober.service",
                                               "decnet-sniffer.service"};
const std::vector<std::string> kDecnetTrees = {"releases", "current", "venv"};
// What our store keeps in the install dir; moved aside by --undo.
const std::vector<std::string> kStoreEntries = {"releases", "current", "state.json", "wheelhouse",
                                                "pruned"};

struct Refusal {
  std::string rule;
  std::string message;
};

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

bool Exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(p, ec));
}

// Writes `content` to `path` durably: a fresh temporary beside it (O_EXCL, O_NOFOLLOW), fsync,
// rename, fsync of the directory.
tl::expected<void, Refusal> WriteAtomic(const fs::path& path, const std::string& content,
                                        mode_t mode) {
  const fs::path tmp = path.string() + ".adopt-tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  bool ok = fd >= 0 && ::fchmod(fd, mode) == 0 &&
            ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return tl::make_unexpected(Refusal{"adopt-io", "cannot write " + path.string() + ": " + why});
  }
  const int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

tl::expected<void, Refusal> Rename(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) == 0) return {};
  if (errno == EXDEV)
    return tl::make_unexpected(
        Refusal{"adopt-backup-filesystem", from.string() + " and " + to.string() +
                                               " are on different file systems: choose a "
                                               "--backup-dir on the install dir's file system"});
  return tl::make_unexpected(Refusal{"adopt-io", "cannot move " + from.string() + " to " +
                                                     to.string() + ": " + std::strerror(errno)});
}

tl::expected<void, Refusal> PointLink(const fs::path& link, const std::string& target) {
  const fs::path tmp = link.string() + ".adopt-tmp";
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), link.c_str()) != 0)
    return tl::make_unexpected(Refusal{"adopt-io", "cannot point " + link.string() + " at " +
                                                       target + ": " + std::strerror(errno)});
  return {};
}

Refusal FromError(const Error& e) { return Refusal{e.rule, e.message}; }

// One step of the plan: what it does (printed) and how.
struct Step {
  std::string what;
  std::function<tl::expected<void, Refusal>()> run;
};

class Adoption {
 public:
  Adoption(const AdoptOptions& o, FILE* out, FILE* err) : o_(o), out_(out), err_(err) {
    if (o_.unit_install_dir.empty()) o_.unit_install_dir = o_.install_dir;
    install_ = o_.install_dir;
    backup_ = o_.backup_dir;
    record_path_ = backup_ / "adoption.json";
  }

  int Run() {
    auto plan = o_.undo ? PlanUndo() : PlanAdopt();
    if (!plan) return Refuse(plan.error());
    if (plan->empty()) return 0;
    fprintf(out_, "%s%s:\n", o_.dry_run ? "would " : "",
            o_.undo ? "undo the adoption" : "adopt this host");
    int n = 0;
    for (const Step& s : *plan) {
      fprintf(out_, "  %2d. %s\n", ++n, s.what.c_str());
      if (o_.dry_run) continue;
      fflush(out_);
      if (auto ok = s.run(); !ok) return Refuse(ok.error());
    }
    fprintf(out_, o_.dry_run ? "dry run: nothing was changed\n" : "done\n");
    for (const auto& w : warnings_) fprintf(out_, "warning: %s\n", w.c_str());
    return 0;
  }

 private:
  int Refuse(const Refusal& r) {
    fprintf(err_, "refused: %s [%s]\n", r.message.c_str(), r.rule.c_str());
    return 1;
  }

  // ---- the record
  json LoadRecord() const {
    if (!Exists(record_path_)) return json();
    json j = json::parse(Slurp(record_path_), nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  tl::expected<void, Refusal> SaveRecord() {
    return WriteAtomic(record_path_, record_.dump(2) + "\n", 0600);
  }

  // ---- checks shared by the plan
  tl::expected<void, Refusal> CheckUsers() {
    for (const std::string& u : {o_.daemon_user, o_.units_user})
      if (::getpwnam(u.c_str()) == nullptr)
        return tl::make_unexpected(Refusal{"adopt-user-missing", "no user " + u + " on this host"});
    if (o_.daemon_user == o_.units_user)
      return tl::make_unexpected(
          Refusal{"adopt-same-user", "the daemon and the units must run as different users"});
    const passwd* d = ::getpwnam(o_.daemon_user.c_str());
    daemon_uid_ = d->pw_uid;
    daemon_gid_ = d->pw_gid;
    return {};
  }

  // Where DECNET's trees are: in the install dir, or (resuming) already in the backup.
  fs::path DecnetTree(const std::string& name) const {
    return Exists(backup_ / "decnet" / name) ? backup_ / "decnet" / name : install_ / name;
  }
  // A unit's original file: its backup copy once taken.
  fs::path OriginalUnit(const std::string& name) const {
    return Exists(backup_ / "units" / name) ? backup_ / "units" / name
                                            : fs::path(o_.unit_dir) / name;
  }

  tl::expected<void, Refusal> CheckLayout() {
    const fs::path active = DecnetTree("releases") / "active";
    if (!fs::is_directory(fs::symlink_status(active)))
      return tl::make_unexpected(Refusal{"adopt-not-decnet-layout",
                                         active.string() + " is not a directory: this is not a "
                                                           "host laid out by DECNET's updater"});
    const fs::path current = DecnetTree("current");
    std::error_code ec;
    const fs::path target = fs::read_symlink(current, ec);
    if (ec || (target != "releases/active" && target != install_ / "releases/active" &&
               target != fs::path(o_.unit_install_dir) / "releases/active"))
      return tl::make_unexpected(
          Refusal{"adopt-not-decnet-layout", current.string() + " is not DECNET's symlink to "
                                                                "releases/active"});
    if (Exists(install_ / "state.json") && !Exists(record_path_))
      return tl::make_unexpected(Refusal{
          "adopt-store-present", (install_ / "state.json").string() +
                                     " exists: this host is already managed by the updater"});
    has_prev_ = fs::is_directory(fs::symlink_status(DecnetTree("releases") / "prev"));
    return {};
  }

  // DECNET's units in the unit directory (or the backup), DECNET's order first.
  tl::expected<void, Refusal> FindUnits() {
    std::set<std::string> names;
    for (const fs::path& dir : {fs::path(o_.unit_dir), backup_ / "units"}) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        if (!n.starts_with("decnet-") || !n.ends_with(".service") || n.ends_with(".adopt-tmp"))
          continue;
        if (e.is_directory()) continue;
        names.insert(n);
      }
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string n = e.path().filename().string();
        if (n.starts_with("decnet-") && n.ends_with(".service.d"))
          return tl::make_unexpected(Refusal{
              "adopt-unit-dropin", e.path().string() + ": drop-ins are not adopted; "
                                                       "fold them into the unit file first"});
      }
    }
    names.erase(o_.updater_unit);
    for (const std::string& n : kDecnetOrder)
      if (names.erase(n)) units_.push_back(n);
    units_.insert(units_.end(), names.begin(), names.end());
    const fs::path updater = OriginalUnit(o_.updater_unit);
    has_decnet_updater_ = Exists(updater) && IsDecnetUpdaterUnit(Slurp(updater));
    if (units_.empty())
      return tl::make_unexpected(
          Refusal{"adopt-no-units", "no decnet-*.service unit in " + o_.unit_dir});
    return {};
  }

  tl::expected<void, Refusal> BuildConfigs() {
    auto policy = helper::LoadPolicyFile(o_.config_dir + "/helper.json");
    if (!policy) return tl::make_unexpected(FromError(policy.error()));
    policy_ = *policy;
    policy_.unit_dir = o_.unit_dir;
    policy_.link_dir = o_.link_dir;
    policy_.unit_root = o_.unit_root;
    policy_.unit_users = {o_.units_user};
    policy_.unit_groups = {o_.units_group};
    policy_.daemon_user = o_.daemon_user;
    if (!o_.daemon_binary.empty()) policy_.daemon_binary = o_.daemon_binary;
    policy_.daemon_args = {"--config", o_.config_dir + "/daemon.json"};
    policy_.links = {{"decnet", o_.install_dir + "/current"}};
    policy_.adoptable_units = std::set<std::string>(units_.begin(), units_.end());
    // The units as rewritten, judged by this very policy.
    RewriteOptions ro{o_.unit_install_dir, o_.units_user, o_.units_group};
    for (const std::string& name : units_) {
      const std::string original = Slurp(OriginalUnit(name));
      auto rewritten = RewriteDecnetUnit(name, original, ro);
      if (!rewritten) return tl::make_unexpected(FromError(rewritten.error()));
      const auto parsed =
          helper::ReadUnitFile(rewritten->content, helper::SystemdSectionsFor(name));
      for (const auto& a : helper::EffectiveAssignments(parsed, "Service", "SupplementaryGroups"))
        for (const std::string& g : helper::SplitWords(a.value))
          if (g == "docker" && o_.grant_docker)
            policy_.allowances[name].supplementary_groups.insert(g);
      rewritten_[name] = *rewritten;
    }
    auto check = helper::RootOnlyPathCheck(o_.unit_root);
    for (const std::string& name : units_) {
      auto refusals = PolicyRefusals(policy_, name, rewritten_[name].content, check);
      if (!refusals.empty()) {
        std::string msg = name + " cannot be made to pass the unit policy:";
        std::string rules;
        for (const auto& r : refusals) {
          msg += "\n    line " + r;
          const auto a = r.find(": "), b = r.find(": ", a + 2);
          if (a != std::string::npos && b != std::string::npos)
            rules += (rules.empty() ? "" : ",") + r.substr(a + 2, b - a - 2);
        }
        if (msg.find("docker") != std::string::npos && !o_.grant_docker)
          msg +=
              "\n    (SupplementaryGroups=docker is root-equivalent: grant it deliberately with "
              "--grant-docker)";
        return tl::make_unexpected(Refusal{"adopt-unit-policy:" + rules, msg});
      }
    }
    // The daemon's configuration, merged into what is there.
    json daemon = json::object();
    const fs::path daemon_path = fs::path(o_.config_dir) / "daemon.json";
    if (Exists(daemon_path)) {
      daemon = json::parse(Slurp(OriginalConfig("daemon.json")), nullptr, false);
      if (!daemon.is_object())
        return tl::make_unexpected(
            Refusal{"adopt-config", daemon_path.string() + " is not a JSON object"});
    }
    const std::string etc = o_.etc_dir;
    daemon["install_dir"] = o_.install_dir;
    daemon["tls_ca"] = etc + "/updater/ca.crt";
    daemon["tls_cert"] = etc + "/updater/updater.crt";
    daemon["tls_key"] = etc + "/updater/updater.key";
    if (!daemon.contains("probe") || !daemon["probe"].is_object()) daemon["probe"] = json::object();
    daemon["probe"]["ca"] = etc + "/agent/ca.crt";
    daemon["probe"]["cert"] = etc + "/agent/worker.crt";
    daemon["probe"]["key"] = etc + "/agent/worker.key";
    daemon["units"] = units_;
    daemon["links"] = json::array({{{"name", "decnet"}, {"target", ".venv/bin/decnet"}}});
    daemon["helper_policy"] = o_.config_dir + "/helper.json";
    daemon.erase("install_command");  // DECNET's trees install with the built-in Python installer
    auto parsed = daemon::ParseDaemonConfig(daemon.dump());
    if (!parsed) return tl::make_unexpected(FromError(parsed.error()));
    daemon_json_ = daemon.dump(2) + "\n";
    policy_json_ = helper::PolicyToJson(policy_) + "\n";
    key_files_ = {etc + "/updater/ca.crt",      etc + "/updater/updater.crt",
                  etc + "/updater/updater.key", etc + "/agent/ca.crt",
                  etc + "/agent/worker.crt",    etc + "/agent/worker.key"};
    key_dirs_ = {etc, etc + "/updater", etc + "/agent"};
    for (const auto& f : key_files_)
      if (!fs::is_regular_file(fs::symlink_status(f)))
        return tl::make_unexpected(Refusal{"adopt-tls-missing", f + " is not a regular file"});
    return {};
  }

  fs::path OriginalConfig(const std::string& name) const {
    return Exists(backup_ / "config" / name) ? backup_ / "config" / name
                                             : fs::path(o_.config_dir) / name;
  }

  // ---- the adoption plan
  tl::expected<std::vector<Step>, Refusal> PlanAdopt() {
    record_ = LoadRecord();
    if (record_.is_object() && record_.value("state", "") == "adopted") {
      fprintf(out_, "already adopted (record: %s); nothing to do\n", record_path_.c_str());
      return std::vector<Step>{};
    }
    if (auto ok = CheckUsers(); !ok) return tl::make_unexpected(ok.error());
    if (auto ok = CheckLayout(); !ok) return tl::make_unexpected(ok.error());
    if (auto ok = FindUnits(); !ok) return tl::make_unexpected(ok.error());
    if (auto ok = BuildConfigs(); !ok) return tl::make_unexpected(ok.error());
    if (!Exists(o_.updater_unit_file))
      return tl::make_unexpected(Refusal{
          "adopt-updater-unit-missing", o_.updater_unit_file +
                                            " (the updater's own unit) is not "
                                            "installed: install the decnet-updater package first"});
    const std::string daemon_binary = policy_.daemon_binary;
    if (::access(daemon_binary.c_str(), X_OK) != 0)
      return tl::make_unexpected(Refusal{
          "adopt-daemon-missing",
          daemon_binary + " is not executable: seed the daemon's "
                          "store (decnet-updaterd --install-build) or pass --daemon-binary"});
    std::vector<Step> plan;
    std::string unit_list;
    for (const auto& u : units_) unit_list += (unit_list.empty() ? "" : ", ") + u;
    plan.push_back(
        {"record the host's state in " + record_path_.string(), [this] { return Record(); }});
    if (has_decnet_updater_)
      plan.push_back({"stop and disable DECNET's updater (" + o_.updater_unit + ")",
                      [this] { return StopDisable(o_.updater_unit); }});
    plan.push_back({"stop DECNET's units: " + unit_list, [this] { return StopUnits(); }});
    plan.push_back({"move " + o_.install_dir + "/{releases,current,venv} into " +
                        (backup_ / "decnet").string() + " (kept for --undo)",
                    [this] { return MoveTreesAside(); }});
    plan.push_back(
        {"keep copies of the unit files and configuration it replaces in " + backup_.string(),
         [this] { return BackUpFiles(); }});
    plan.push_back({"write " + o_.config_dir + "/daemon.json and " + o_.config_dir +
                        "/helper.json (units: " + unit_list +
                        "; link decnet -> the active "
                        "release's .venv/bin/decnet; TLS from " +
                        o_.etc_dir + ")",
                    [this] { return WriteConfigs(); }});
    plan.push_back({"hand " + o_.install_dir + " to " + o_.daemon_user + " (the release store)",
                    [this] { return HandInstallDir(); }});
    if (has_prev_)
      plan.push_back({"import DECNET's releases/prev as " + o_.daemon_user +
                          " (its own environment), to become the previous release",
                      [this] { return Import("prev", "previous"); }});
    plan.push_back({"import DECNET's releases/active as " + o_.daemon_user +
                        " (its own environment), as the active release",
                    [this] { return Import("active", "active"); }});
    for (const auto& name : units_) {
      std::string what = "rewrite " + name + " (accepted by the unit policy)";
      for (const auto& c : rewritten_[name].changes) what += "\n        - " + c;
      plan.push_back({what, [this, name] {
                        return WriteAtomic(fs::path(o_.unit_dir) / name, rewritten_[name].content,
                                           0644);
                      }});
    }
    if (has_decnet_updater_)
      plan.push_back({"remove DECNET's " + o_.updater_unit + " from " + o_.unit_dir +
                          " (moved into the backup) and reload systemd",
                      [this] { return RemoveDecnetUpdaterUnit(); }});
    else
      plan.push_back({"reload systemd", [this] { return ReloadBus(); }});
    plan.push_back(
        {"point " + o_.link_dir + "/decnet at " + o_.install_dir + "/current/.venv/bin/decnet",
         [this] {
           return PointLink(fs::path(o_.link_dir) / "decnet",
                            o_.install_dir + "/current/.venv/bin/decnet");
         }});
    plan.push_back({"let " + o_.daemon_user +
                        " read its TLS bundle and the agent's client bundle "
                        "(POSIX ACLs; owners and the other bits unchanged; search on " +
                        o_.etc_dir + ", " + o_.etc_dir + "/updater, " + o_.etc_dir + "/agent)",
                    [this] { return GrantKeys(); }});
    plan.push_back({"restart the adopted units: " + unit_list, [this] { return RestartUnits(); }});
    plan.push_back({"enable and start " + o_.updater_unit + " (" + o_.updater_unit_file + ")",
                    [this] { return StartOurs(); }});
    plan.push_back({"mark the adoption complete", [this] {
                      record_["state"] = "adopted";
                      return SaveRecord();
                    }});
    return plan;
  }

  tl::expected<SystemdBus*, Refusal> Bus() {
    if (!bus_) {
      auto bus = SystemdBus::Connect();
      if (!bus) return tl::make_unexpected(FromError(bus.error()));
      bus_.emplace(std::move(*bus));
    }
    return &*bus_;
  }

  tl::expected<void, Refusal> Record() {
    std::error_code ec;
    fs::create_directories(backup_ / "decnet", ec);
    fs::create_directories(backup_ / "units", ec);
    fs::create_directories(backup_ / "config", ec);
    for (const fs::path& d : {backup_, backup_ / "decnet", backup_ / "units", backup_ / "config"})
      if (::chown(d.c_str(), 0, 0) != 0 || ::chmod(d.c_str(), 0755) != 0)
        return tl::make_unexpected(Refusal{"adopt-io", "cannot prepare " + d.string()});
    if (record_.is_object()) return {};  // resuming: what was recorded first stays
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    record_ = json{
        {"format", 1}, {"state", "adopting"}, {"units", json::object()}, {"acl", json::object()}};
    struct stat st {};
    if (::stat(o_.install_dir.c_str(), &st) != 0)
      return tl::make_unexpected(Refusal{"adopt-io", "cannot stat " + o_.install_dir});
    record_["install_dir"] = {{"uid", st.st_uid}, {"gid", st.st_gid}, {"mode", st.st_mode & 07777}};
    std::vector<std::string> all = units_;
    if (has_decnet_updater_) all.push_back(o_.updater_unit);
    for (const auto& u : all) {
      auto active = (*bus)->ActiveState(u);
      auto enabled = (*bus)->UnitFileState(u);
      record_["units"][u] = {{"active", active ? *active : ""},
                             {"enabled", enabled ? *enabled : ""}};
    }
    std::error_code lec;
    const fs::path link = fs::path(o_.link_dir) / "decnet";
    const fs::path target = fs::read_symlink(link, lec);
    record_["link"] = lec ? json(nullptr) : json(target.string());
    for (const auto& f : key_files_) {
      auto snap = Snapshot(f);
      if (!snap) return tl::make_unexpected(FromError(snap.error()));
      record_["acl"][f] = {{"mode", snap->mode},
                           {"xattr", snap->xattr ? json(Hex(*snap->xattr)) : json(nullptr)}};
    }
    for (const auto& d : key_dirs_) {
      auto snap = Snapshot(d);
      if (!snap) return tl::make_unexpected(FromError(snap.error()));
      record_["acl"][d] = {{"mode", snap->mode},
                           {"xattr", snap->xattr ? json(Hex(*snap->xattr)) : json(nullptr)}};
    }
    record_["configs"] = {{"daemon.json", Exists(fs::path(o_.config_dir) / "daemon.json")},
                          {"helper.json", Exists(fs::path(o_.config_dir) / "helper.json")}};
    return SaveRecord();
  }

  tl::expected<void, Refusal> StopDisable(const std::string& unit) {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    if (auto ok = (*bus)->Stop(unit, std::chrono::seconds(o_.unit_timeout_sec)); !ok)
      return tl::make_unexpected(FromError(ok.error()));
    if (auto ok = (*bus)->Disable(unit); !ok) return tl::make_unexpected(FromError(ok.error()));
    return {};
  }

  tl::expected<void, Refusal> StopUnits() {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    for (auto it = units_.rbegin(); it != units_.rend(); ++it)
      if (auto ok = (*bus)->Stop(*it, std::chrono::seconds(o_.unit_timeout_sec)); !ok)
        return tl::make_unexpected(FromError(ok.error()));
    return {};
  }

  tl::expected<void, Refusal> MoveTreesAside() {
    for (const std::string& name : kDecnetTrees) {
      const fs::path from = install_ / name, to = backup_ / "decnet" / name;
      if (!Exists(from)) continue;
      if (Exists(to))
        return tl::make_unexpected(
            Refusal{"adopt-backup-conflict", to.string() + " already exists"});
      if (auto ok = Rename(from, to); !ok) return ok;
    }
    return {};
  }

  tl::expected<void, Refusal> CopyOnce(const fs::path& from, const fs::path& to) {
    if (Exists(to) || !Exists(from)) return {};
    return WriteAtomic(to, Slurp(from), 0644);
  }

  tl::expected<void, Refusal> BackUpFiles() {
    std::vector<std::string> all = units_;
    if (has_decnet_updater_) all.push_back(o_.updater_unit);
    for (const auto& u : all)
      if (auto ok = CopyOnce(fs::path(o_.unit_dir) / u, backup_ / "units" / u); !ok) return ok;
    for (const char* c : {"daemon.json", "helper.json"})
      if (auto ok = CopyOnce(fs::path(o_.config_dir) / c, backup_ / "config" / c); !ok) return ok;
    return {};
  }

  tl::expected<void, Refusal> WriteConfigs() {
    std::error_code ec;
    fs::create_directories(o_.config_dir, ec);
    if (auto ok = WriteAtomic(fs::path(o_.config_dir) / "helper.json", policy_json_, 0644); !ok)
      return ok;
    return WriteAtomic(fs::path(o_.config_dir) / "daemon.json", daemon_json_, 0644);
  }

  tl::expected<void, Refusal> HandInstallDir() {
    // SECURITY: only the directory itself changes hands; what DECNET left beside its trees keeps
    // its owner.
    if (::chown(o_.install_dir.c_str(), daemon_uid_, daemon_gid_) != 0 ||
        ::chmod(o_.install_dir.c_str(), 0755) != 0)
      return tl::make_unexpected(
          Refusal{"adopt-io", "cannot hand " + o_.install_dir + " over: " + std::strerror(errno)});
    return {};
  }

  // Runs the daemon's import mode as the daemon's user: no groups, no capabilities, NoNewPrivs.
  tl::expected<void, Refusal> Import(const std::string& slot_dir, const std::string& slot) {
    const std::string source = (backup_ / "decnet/releases" / slot_dir).string();
    const std::string config = o_.config_dir + "/daemon.json";
    const std::string binary = policy_.daemon_binary;
    fflush(out_);
    const pid_t pid = ::fork();
    if (pid < 0) return tl::make_unexpected(Refusal{"adopt-import", "fork failed"});
    if (pid == 0) {
      const char* argv[] = {binary.c_str(), "--import-release", source.c_str(), "--slot",
                            slot.c_str(),   "--config",         config.c_str(), nullptr};
      const char* envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", nullptr};
      // SECURITY: the release's build code runs under the daemon's identity, never root's.
      if (::setgroups(0, nullptr) != 0 || ::setresgid(daemon_gid_, daemon_gid_, daemon_gid_) != 0 ||
          ::setresuid(daemon_uid_, daemon_uid_, daemon_uid_) != 0 ||
          ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::chdir("/") != 0)
        _exit(126);
      ::execve(binary.c_str(), const_cast<char* const*>(argv), const_cast<char* const*>(envp));
      _exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return tl::make_unexpected(Refusal{
          "adopt-import", "importing " + source + " as " + o_.daemon_user + " failed (status " +
                              std::to_string(status) + "; its output is above)"});
    return {};
  }

  tl::expected<void, Refusal> ReloadBus() {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    if (auto ok = (*bus)->Reload(); !ok) return tl::make_unexpected(FromError(ok.error()));
    return {};
  }

  tl::expected<void, Refusal> RemoveDecnetUpdaterUnit() {
    const fs::path unit = fs::path(o_.unit_dir) / o_.updater_unit;
    if (Exists(unit) && IsDecnetUpdaterUnit(Slurp(unit))) {
      if (!Exists(backup_ / "units" / o_.updater_unit))
        return tl::make_unexpected(Refusal{"adopt-io", "no backup of " + unit.string()});
      if (::unlink(unit.c_str()) != 0)
        return tl::make_unexpected(Refusal{"adopt-io", "cannot remove " + unit.string()});
    }
    return ReloadBus();
  }

  tl::expected<void, Refusal> GrantKeys() {
    for (const auto& d : key_dirs_)
      if (auto ok = GrantUser(d, daemon_uid_, 1); !ok)
        return tl::make_unexpected(FromError(ok.error()));
    for (const auto& f : key_files_)
      if (auto ok = GrantUser(f, daemon_uid_, 4); !ok)
        return tl::make_unexpected(FromError(ok.error()));
    return {};
  }

  tl::expected<void, Refusal> RestartUnits() {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    for (const auto& u : units_) {
      const std::string was =
          record_["units"].contains(u) ? record_["units"][u].value("active", "") : "";
      if (was != "active" && was != "activating" && was != "reloading") continue;
      if (auto ok = (*bus)->Restart(u, std::chrono::seconds(o_.unit_timeout_sec)); !ok)
        warnings_.push_back(u + " did not start again: " + ok.error().message + " [" +
                            ok.error().rule + "]");
    }
    return {};
  }

  tl::expected<void, Refusal> StartOurs() {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    if (auto ok = (*bus)->Enable(o_.updater_unit); !ok)
      return tl::make_unexpected(FromError(ok.error()));
    if (auto ok = (*bus)->Reload(); !ok) return tl::make_unexpected(FromError(ok.error()));
    if (auto ok = (*bus)->Restart(o_.updater_unit, std::chrono::seconds(o_.unit_timeout_sec)); !ok)
      return tl::make_unexpected(FromError(ok.error()));
    return {};
  }

  // ---- the way back
  tl::expected<std::vector<Step>, Refusal> PlanUndo() {
    record_ = LoadRecord();
    if (!record_.is_object())
      return tl::make_unexpected(
          Refusal{"adopt-no-record", record_path_.string() + " does not exist: nothing to undo"});
    if (auto ok = CheckUsers(); !ok) return tl::make_unexpected(ok.error());
    std::vector<Step> plan;
    std::vector<std::string> units;
    for (const auto& [name, _] : record_["units"].items())
      if (name != o_.updater_unit) units.push_back(name);
    const bool decnet_updater = record_["units"].contains(o_.updater_unit);
    plan.push_back({"stop and disable " + o_.updater_unit + " (this updater)", [this] {
                      auto bus = Bus();
                      if (!bus)
                        return tl::expected<void, Refusal>(tl::make_unexpected(bus.error()));
                      const fs::path mine = fs::path(o_.unit_dir) / o_.updater_unit;
                      if (Exists(mine) && IsDecnetUpdaterUnit(Slurp(mine)))
                        return tl::expected<void, Refusal>();
                      return StopDisable(o_.updater_unit);
                    }});
    plan.push_back({"stop the adopted units", [this, units] {
                      units_ = units;
                      return StopUnits();
                    }});
    plan.push_back({"move the updater's store out of " + o_.install_dir + " into " +
                        (backup_ / "store").string(),
                    [this] { return MoveStoreAside(); }});
    plan.push_back({"move DECNET's trees back into " + o_.install_dir, [this] {
                      for (const std::string& name : kDecnetTrees) {
                        const fs::path from = backup_ / "decnet" / name, to = install_ / name;
                        if (!Exists(from) || Exists(to)) continue;
                        if (auto ok = Rename(from, to); !ok) return ok;
                      }
                      const json& d = record_["install_dir"];
                      if (::chown(o_.install_dir.c_str(), d.value("uid", 0u), d.value("gid", 0u)) !=
                              0 ||
                          ::chmod(o_.install_dir.c_str(), d.value("mode", 0755u)) != 0)
                        return tl::expected<void, Refusal>(tl::make_unexpected(
                            Refusal{"adopt-io", "cannot restore the owner of " + o_.install_dir}));
                      return tl::expected<void, Refusal>();
                    }});
    plan.push_back({"put DECNET's unit files back and reload systemd", [this] {
                      std::error_code ec;
                      for (const auto& e : fs::directory_iterator(backup_ / "units", ec))
                        if (auto ok = WriteAtomic(fs::path(o_.unit_dir) / e.path().filename(),
                                                  Slurp(e.path()), 0644);
                            !ok)
                          return ok;
                      return ReloadBus();
                    }});
    plan.push_back({"point " + o_.link_dir + "/decnet back where it pointed", [this] {
                      const fs::path link = fs::path(o_.link_dir) / "decnet";
                      if (record_["link"].is_string())
                        return PointLink(link, record_["link"].get<std::string>());
                      ::unlink(link.c_str());
                      return tl::expected<void, Refusal>();
                    }});
    plan.push_back({"put the TLS files' ACLs and modes back", [this] {
                      for (const auto& [path, snap] : record_["acl"].items()) {
                        AclSnapshot s;
                        s.mode = snap.value("mode", 0600u);
                        if (snap["xattr"].is_string())
                          s.xattr = Unhex(snap["xattr"].get<std::string>());
                        if (auto ok = Restore(path, s); !ok)
                          return tl::expected<void, Refusal>(
                              tl::make_unexpected(FromError(ok.error())));
                      }
                      return tl::expected<void, Refusal>();
                    }});
    plan.push_back({"put the updater's configuration back as it was", [this] {
                      for (const char* c : {"daemon.json", "helper.json"}) {
                        const fs::path target = fs::path(o_.config_dir) / c;
                        if (record_["configs"].value(c, false)) {
                          if (auto ok = WriteAtomic(target, Slurp(backup_ / "config" / c), 0644);
                              !ok)
                            return ok;
                        } else {
                          ::unlink(target.c_str());
                        }
                      }
                      return tl::expected<void, Refusal>();
                    }});
    plan.push_back({std::string("restart DECNET's units that ran") +
                        (decnet_updater ? ", enable and start DECNET's updater" : ""),
                    [this] { return RestartDecnet(); }});
    plan.push_back({"mark the adoption undone (" + record_path_.string() + " renamed)", [this] {
                      const fs::path to = backup_ / ("adoption.undone." +
                                                     std::to_string(::time(nullptr)) + ".json");
                      return Rename(record_path_, to);
                    }});
    return plan;
  }

  tl::expected<void, Refusal> MoveStoreAside() {
    const fs::path store = backup_ / "store" / std::to_string(::time(nullptr));
    std::error_code ec;
    fs::create_directories(store, ec);
    for (const std::string& name : kStoreEntries) {
      const fs::path from = install_ / name;
      if (!Exists(from)) continue;
      // DECNET's own `current` and `releases` are back only in the next step.
      if (auto ok = Rename(from, store / name); !ok) return ok;
    }
    return {};
  }

  tl::expected<void, Refusal> RestartDecnet() {
    auto bus = Bus();
    if (!bus) return tl::make_unexpected(bus.error());
    for (const auto& [name, was] : record_["units"].items()) {
      if (name == o_.updater_unit && was.value("enabled", "") == "enabled")
        if (auto ok = (*bus)->Enable(name); !ok) return tl::make_unexpected(FromError(ok.error()));
    }
    if (auto ok = (*bus)->Reload(); !ok) return tl::make_unexpected(FromError(ok.error()));
    for (const auto& [name, was] : record_["units"].items()) {
      if (was.value("active", "") != "active") continue;
      if (auto ok = (*bus)->Restart(name, std::chrono::seconds(o_.unit_timeout_sec)); !ok)
        warnings_.push_back(name + " did not start again: " + ok.error().message);
    }
    return {};
  }

  AdoptOptions o_;
  FILE* out_;
  FILE* err_;
  fs::path install_, backup_, record_path_;
  json record_;
  uid_t daemon_uid_ = 0;
  gid_t daemon_gid_ = 0;
  bool has_prev_ = false;
  bool has_decnet_updater_ = false;
  std::vector<std::string> units_;
  std::map<std::string, RewrittenUnit> rewritten_;
  helper::Policy policy_;
  std::string daemon_json_, policy_json_;
  std::vector<std::string> key_files_, key_dirs_;
  std::optional<SystemdBus> bus_;
  std::vector<std::string> warnings_;
};

}  // namespace

std::string Usage() {
  return "usage: decnet-adopt [--dry-run] [--undo] [--grant-docker] [--install-dir DIR]\n"
         "         [--unit-install-dir DIR] [--unit-dir DIR] [--unit-root DIR] [--link-dir DIR]\n"
         "         [--etc-dir DIR] [--config-dir DIR] [--backup-dir DIR] [--daemon-binary PATH]\n"
         "         [--daemon-user USER] [--units-user USER] [--units-group GROUP]\n"
         "         [--updater-unit-file PATH] [--unit-timeout SECONDS]\n";
}

bool ParseAdoptArgs(int argc, const char* const* argv, AdoptOptions* o, std::string* error) {
  const std::map<std::string, std::string*> values = {
      {"--install-dir", &o->install_dir},
      {"--unit-install-dir", &o->unit_install_dir},
      {"--unit-dir", &o->unit_dir},
      {"--unit-root", &o->unit_root},
      {"--link-dir", &o->link_dir},
      {"--etc-dir", &o->etc_dir},
      {"--config-dir", &o->config_dir},
      {"--backup-dir", &o->backup_dir},
      {"--daemon-binary", &o->daemon_binary},
      {"--daemon-user", &o->daemon_user},
      {"--units-user", &o->units_user},
      {"--units-group", &o->units_group},
      {"--updater-unit-file", &o->updater_unit_file}};
  const std::map<std::string, bool*> flags = {
      {"--dry-run", &o->dry_run}, {"--undo", &o->undo}, {"--grant-docker", &o->grant_docker}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (auto f = flags.find(arg); f != flags.end()) {
      *f->second = true;
      continue;
    }
    if (i + 1 >= argc) {
      *error = "unknown option or missing value: " + arg;
      return false;
    }
    const std::string value = argv[++i];
    if (auto v = values.find(arg); v != values.end()) {
      const bool is_name =
          arg == "--daemon-user" || arg == "--units-user" || arg == "--units-group";
      if (value.empty() || (!is_name && value[0] != '/')) {
        *error = arg + " takes " + (is_name ? "a name" : "an absolute path");
        return false;
      }
      *v->second = value;
    } else if (arg == "--unit-timeout" && (o->unit_timeout_sec = std::atoi(value.c_str())) > 0) {
    } else {
      *error = "unknown option or bad value: " + arg + " " + value;
      return false;
    }
  }
  return true;
}

int RunAdopt(const AdoptOptions& options, FILE* out, FILE* err) {
  if (::geteuid() != 0) {
    fprintf(err,
            "refused: decnet-adopt changes units, keys and owners: run it as root [adopt-root]\n");
    return 1;
  }
  ::umask(022);
  Adoption adoption(options, out, err);
  return adoption.Run();
}

}  // namespace decnet::adopt
