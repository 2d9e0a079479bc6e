// Every check runs before the plan is returned, so a refusal never leaves a half-enrolled
// worker and --dry-run shows exactly what a real run would do. Paths in the plan are the
// host's (what the configuration names); only reads and writes go beneath --root.
#include "enrol/enrol_plan.h"

#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <filesystem>

#include "enrol/planner.h"
#include "polkit/polkit_rule.h"
#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet::enrol {
namespace plan_internal {

namespace fs = std::filesystem;

tl::unexpected<Error> Refuse(const std::string& rule, const std::string& message) {
  return Fail(ErrorCode::kDenied, rule, message);
}

// An operator's input file, read as given (never beneath --root).
Result<std::string> ReadInput(const std::string& path) {
  auto state = Inspect(path, true);
  if (!state) return tl::make_unexpected(state.error());
  if (!state->is_regular)
    return Refuse("enrol-tls-missing", path + " is not there or not a regular file");
  return state->content;
}

// A file step; the fields a call does not name keep FileStep's defaults.
FileStep Step(FileStep::Kind kind, const std::string& path, std::string content,
              std::string old_content, mode_t mode, Protection protection, bool secret,
              std::string why) {
  FileStep f;
  f.kind = kind;
  f.path = path;
  f.content = std::move(content);
  f.old_content = std::move(old_content);
  f.mode = mode;
  f.protection = protection;
  f.secret = secret;
  f.why = std::move(why);
  return f;
}

Result<Plan> Planner::Build() {
  auto steps = {&Planner::PlanConfigs, &Planner::PlanAccounts,    &Planner::PlanDirectories,
                &Planner::PlanTls,     &Planner::PlanConfigFiles, &Planner::PlanDropIn,
                &Planner::PlanRule};
  for (auto step : steps)
    if (auto ok = (this->*step)(); !ok) return tl::make_unexpected(ok.error());
  plan_.daemon_user = c_.policy.daemon_user;
  if (plan_.reload && (!o_.reload || o_.root != "/")) {
    plan_.reload = false;
    plan_.notes.push_back(std::string("the unit's drop-in changed: run systemctl daemon-reload "
                                      "(not run here: ") +
                          (o_.reload ? "--root" : "--no-reload") + ")");
  }
  return plan_;
}

Result<void> Planner::PlanConfigs() {
  auto helper = Look(HelperPath(), true);
  if (!helper) return tl::make_unexpected(helper.error());
  auto daemon = Look(DaemonPath(), true);
  if (!daemon) return tl::make_unexpected(daemon.error());
  helper_now_ = *helper;
  daemon_now_ = *daemon;
  pins_ = o_.master_pins;
  if (!o_.master_cert.empty()) {
    auto pem = ReadInput(o_.master_cert);
    if (!pem) return tl::make_unexpected(pem.error());
    master_pem_ = *pem;
    auto fp = Fingerprint(*pem);
    if (!fp) return tl::make_unexpected(fp.error());
    if (std::find(pins_.begin(), pins_.end(), *fp) == pins_.end()) pins_.push_back(*fp);
  }
  auto merged = MergeConfigs(o_, helper->content, daemon->content, pins_);
  if (!merged) return tl::make_unexpected(merged.error());
  c_ = *merged;
  auto written = strict_json::ParseObject(daemon->content.empty() ? "{}" : daemon->content, 8,
                                          strict_json::Comments::kIgnored);
  const bool cn_configured = written && written->contains("master_cn");
  if (c_.daemon.master_pins.empty() && !o_.master_cn && !cn_configured)
    return Refuse("enrol-master-identity",
                  "say who the master is: --master-cert FILE or --master-pin SHA256 (pinned), "
                  "or --master-cn NAME (any certificate of the CA with that name)");
  plan_.facts.master_pins = c_.daemon.master_pins;
  plan_.facts.master_cn = c_.daemon.master_cn;
  return {};
}

Result<void> Planner::NeedGroup(const std::string& name) {
  if (::getgrnam(name.c_str()) != nullptr || planned_accounts_.count("g:" + name)) return {};
  if (o_.root != "/")
    return Refuse("enrol-user-missing", "no group " + name + " on this host (--root creates none)");
  planned_accounts_.insert("g:" + name);
  plan_.accounts.push_back({AccountStep::Kind::kGroup, name, "", ""});
  return {};
}

Result<void> Planner::NeedUser(const std::string& name, const std::string& group,
                               const std::string& home) {
  if (::getpwnam(name.c_str()) != nullptr || planned_accounts_.count("u:" + name)) return {};
  if (o_.root != "/")
    return Refuse("enrol-user-missing", "no user " + name + " on this host (--root creates none)");
  if (auto ok = NeedGroup(group); !ok) return ok;
  planned_accounts_.insert("u:" + name);
  plan_.accounts.push_back({AccountStep::Kind::kUser, name, group, home});
  return {};
}

Result<void> Planner::PlanAccounts() {
  const helper::Policy& p = c_.policy;
  if (auto ok = NeedGroup(p.daemon_group); !ok) return ok;
  if (auto ok = NeedUser(p.daemon_user, p.daemon_group, c_.daemon.state_dir); !ok) return ok;
  for (const std::string& g : p.unit_groups)
    if (auto ok = NeedGroup(g); !ok) return ok;
  for (const std::string& u : p.unit_users) {
    const std::string group = p.unit_groups.empty() ? u : *p.unit_groups.begin();
    if (auto ok = NeedUser(u, group, c_.daemon.install_dir); !ok) return ok;
  }
  auto rule_now = Look(kPolkitRulePath, true);
  if (!rule_now) return tl::make_unexpected(rule_now.error());
  rule_now_ = *rule_now;
  rule_ = RenderRule(o_, c_, rule_now_.content);
  if (!rule_) return tl::make_unexpected(rule_.error());
  const std::string admin = AdminGroup(o_, rule_now_.content);
  if (*rule_ && (admin == p.daemon_group || p.unit_groups.count(admin)))
    return Refuse("enrol-admin-group", "the operators' group " + admin +
                                           " must be neither the daemon's nor the units' group");
  if (*rule_ && o_.root != "/" && ::getgrnam(admin.c_str()) == nullptr)
    plan_.notes.push_back("--root: the operators' group " + admin + " is not created");
  else if (*rule_)
    if (auto ok = NeedGroup(admin); !ok) return ok;
  return CheckAccounts();
}

Result<void> Planner::CheckAccounts() {
  const helper::Policy& p = c_.policy;
  const passwd* d = ::getpwnam(p.daemon_user.c_str());
  const group* dg = ::getgrnam(p.daemon_group.c_str());
  if (d == nullptr || dg == nullptr) return {};  // made by the plan: fresh ids, nothing shared
  const uid_t daemon_uid = d->pw_uid;
  const gid_t daemon_gid = dg->gr_gid;
  std::set<std::string> members;
  for (char** m = dg->gr_mem; m != nullptr && *m != nullptr; ++m) members.insert(*m);
  // SECURITY: a daemon running as root, or sharing an identity with the units it restarts,
  // would undo the separation the whole design rests on.
  if (daemon_uid == 0 || daemon_gid == 0)
    return Refuse("enrol-user-root", "the daemon's user and group must not have id 0");
  for (const std::string& name : p.unit_users) {
    const passwd* u = ::getpwnam(name.c_str());
    if (u == nullptr) continue;
    if (u->pw_uid == 0) return Refuse("enrol-user-root", "the units' user " + name + " has uid 0");
    if (u->pw_uid == daemon_uid)
      return Refuse("enrol-same-user", "the units' user " + name + " is the daemon's user");
    // SECURITY: the daemon's group owns its state; a unit in it could read the spool.
    if (u->pw_gid == daemon_gid || members.count(name))
      return Refuse("enrol-units-in-daemon-group",
                    "the units' user " + name + " is in the daemon's group " + p.daemon_group);
  }
  for (const std::string& name : p.unit_groups) {
    const group* g = ::getgrnam(name.c_str());
    if (g != nullptr && g->gr_gid == daemon_gid)
      return Refuse("enrol-same-user", "the units' group " + name + " is the daemon's group");
  }
  daemon_uid_ = daemon_uid;
  return {};
}

Result<void> Planner::WantDirectory(const std::string& path, const Owner& owner, mode_t mode,
                                    bool manage) {
  if (planned_dirs_.count(path)) return {};
  auto state = Look(path);
  if (!state) return tl::make_unexpected(state.error());
  if (state->exists && !state->is_dir)
    return Refuse("enrol-dir-not-directory", path + " exists and is not a directory");
  if (!state->exists) {
    const std::string parent = fs::path(path).parent_path().string();
    if (parent != path)
      if (auto ok = WantDirectory(parent, Owner{}, 0755, false); !ok) return ok;
    plan_.dirs.push_back({DirStep::Kind::kCreate, path, owner, mode});
  } else if (manage) {
    const auto ids = Ids(owner);
    if (!ids || !HasOwnership(*state, Ownership{ids->first, ids->second, mode, {}}))
      plan_.dirs.push_back({DirStep::Kind::kFix, path, owner, mode});
  }
  planned_dirs_.insert(path);
  return {};
}

Result<void> Planner::CheckDaemonDir(const std::string& path) const {
  static const std::vector<std::string> kSystem = {"/etc",  "/usr", "/boot", "/dev",
                                                   "/proc", "/sys", "/run",  "/tmp"};
  auto p = AbsPath::Parse(path);
  const bool top = std::count(path.begin(), path.end(), '/') < 2;
  bool system = false;
  for (const std::string& s : kSystem) system = system || (p && p->IsBeneath(*AbsPath::Parse(s)));
  // SECURITY: the daemon's user owns these; handing it a system directory gives it the host.
  if (!p || top || system)
    return Refuse("enrol-dir-unsafe", path +
                                          " cannot be given to the daemon's user: it is a "
                                          "top-level or system directory");
  return {};
}

Result<void> Planner::CheckOverlaps(const std::vector<std::string>& daemon_dirs) const {
  std::vector<std::string> root_dirs = {kConfigDir, c_.policy.state_dir};
  for (const std::string& f : TlsFiles()) root_dirs.push_back(fs::path(f).parent_path().string());
  auto beneath = [](const std::string& a, const std::string& b) {
    auto x = AbsPath::Parse(a), y = AbsPath::Parse(b);
    return x && y && x->IsBeneath(*y);
  };
  for (size_t i = 0; i < daemon_dirs.size(); ++i) {
    for (size_t j = 0; j < daemon_dirs.size(); ++j)
      if (i != j && beneath(daemon_dirs[i], daemon_dirs[j]))
        return Refuse("enrol-dir-overlap", daemon_dirs[i] + " lies within " + daemon_dirs[j] +
                                               ": the install, updater and state directories "
                                               "must be apart");
    for (const std::string& r : root_dirs)
      if (beneath(r, daemon_dirs[i]) || beneath(daemon_dirs[i], r))
        return Refuse("enrol-dir-overlap", daemon_dirs[i] + " and " + r +
                                               " overlap: the daemon's directories must not "
                                               "hold or lie in root's configuration, keys or "
                                               "state");
  }
  return {};
}

Result<void> Planner::PlanDirectories() {
  const Owner daemon{c_.policy.daemon_user, c_.policy.daemon_group};
  // Index 1 becomes the updater's top directory, which holds updater_dir by design.
  std::vector<std::string> daemon_dirs = {c_.daemon.install_dir, c_.daemon.updater_dir,
                                          c_.daemon.state_dir};
  const std::string& store = c_.daemon.updater_dir;
  if (store.ends_with("/updater")) daemon_dirs[1] = fs::path(store).parent_path().string();
  for (const std::string& dir : daemon_dirs)
    if (auto ok = CheckDaemonDir(dir); !ok) return ok;
  if (auto ok = CheckOverlaps(daemon_dirs); !ok) return ok;
  const std::vector<std::tuple<std::string, Owner, mode_t>> wanted = {
      {kConfigDir, Owner{}, 0755},         {c_.policy.state_dir, Owner{}, 0700},
      {c_.daemon.state_dir, daemon, 0750}, {c_.daemon.install_dir, daemon, 0755},
      {daemon_dirs[1], daemon, 0755},      {store, daemon, 0755}};
  for (const auto& [path, owner, mode] : wanted)
    if (auto ok = WantDirectory(path, owner, mode, true); !ok) return ok;
  for (const std::string& file : TlsFiles())
    if (auto ok = WantKeyDirectory(fs::path(file).parent_path().string()); !ok) return ok;
  return {};
}

Result<void> Planner::WantKeyDirectory(const std::string& path) {
  for (fs::path p = path; p != p.root_path(); p = p.parent_path()) {
    auto state = Look(p.string());
    if (!state) return tl::make_unexpected(state.error());
    if (!state->exists) continue;
    // SECURITY: whoever may write a directory above a key may swap the key out.
    if (state->uid != 0 || (state->mode & 022) != 0)
      return Refuse("enrol-tls-dir-unsafe", p.string() +
                                                " holds TLS material but is not "
                                                "root's alone (owner or mode)");
    if ((state->mode & 01) == 0 && !DaemonMaySearch(*state) && !granted_.count(p.string())) {
      plan_.dirs.push_back({DirStep::Kind::kGrantSearch, p.string(), Owner{}, state->mode});
      granted_.insert(p.string());
    }
  }
  return WantDirectory(path, Owner{}, 0755, false);
}

bool Planner::DaemonMaySearch(const PathState& state) const {
  if (!state.acl || !daemon_uid_) return false;
  auto entries = adopt::ParseAcl(*state.acl);
  if (!entries) return false;
  bool user = false, mask = true;
  for (const auto& e : *entries) {
    if (e.tag == adopt::kAclUser && e.id == *daemon_uid_) user = (e.perm & 1) != 0;
    if (e.tag == adopt::kAclMask) mask = (e.perm & 1) != 0;
  }
  return user && mask;
}

Result<void> Planner::PlanDropIn() {
  auto now = Look(kDropInPath, true);
  if (!now) return tl::make_unexpected(now.error());
  const auto addresses =
      o_.master_addresses.empty() ? DropInAddresses(now->content) : o_.master_addresses;
  const std::string content = RenderDropIn(ExtraWritablePaths(c_), addresses);
  const size_t before = plan_.files.size();
  if (content.empty() && now->exists) {
    plan_.files.push_back(Step(FileStep::Kind::kRemove, kDropInPath, "", now->content));
  } else if (!content.empty()) {
    if (auto ok = WantDirectory(fs::path(kDropInPath).parent_path().string(), Owner{}, 0755, false);
        !ok)
      return ok;
    WantFile(kDropInPath, content, *now, false);
  }
  plan_.reload = plan_.files.size() != before;
  return {};
}

// The rule is the package's conffile: this tool rewrites that one file (root's, 0644, which
// polkitd reads as its own user) and never removes it, since dpkg would take a removed conffile
// for the operator's choice and never put it back. Back to the shipped group, users and prefix,
// it writes the shipped rendering again.
Result<void> Planner::PlanRule() {
  const PathState& now = rule_now_;
  std::string want;
  if (*rule_) {
    want = **rule_;
  } else {
    // Unless --admin-group asks for the rule: no file (no package here, or the operator
    // removed it) stays so, and a file that is no rendering (an operator's own rule) stays.
    if (!o_.admin_group && !now.exists) return {};
    if (!o_.admin_group && !RuleAdminGroup(now.content)) {
      plan_.notes.push_back(std::string(kPolkitRulePath) +
                            " is not a rendering of this tool: left as it is (--admin-group "
                            "writes the rule)");
      return {};
    }
    auto shipped = polkit::RenderPolkitRule(polkit::PolkitRuleParams{});
    if (!shipped) return tl::make_unexpected(shipped.error());
    want = *shipped;
  }
  if (auto ok =
          WantDirectory(fs::path(kPolkitRulePath).parent_path().string(), Owner{}, 0755, false);
      !ok)
    return ok;
  // SECURITY: root's and 0644 (WantFile's default): whoever may write the rule decides who
  // manages the units.
  WantFile(kPolkitRulePath, want, now, false);
  return {};
}

void Planner::WantFile(const std::string& path, const std::string& content, const PathState& now,
                       bool json, mode_t mode) {
  const bool same = now.exists && (json ? SameJson(now.content, content) : now.content == content);
  if (same) {
    if (!HasOwnership(now, Want(Protection::kPlain, mode)))
      plan_.files.push_back(Step(FileStep::Kind::kFix, path, "", "", mode));
    return;
  }
  plan_.files.push_back(Step(now.exists ? FileStep::Kind::kReplace : FileStep::Kind::kCreate, path,
                             content, now.content, mode));
}

}  // namespace plan_internal

std::string Beneath(const std::string& root, const std::string& path) {
  if (root == "/") return path;
  return root + path;
}

Result<Plan> BuildPlan(const EnrolOptions& options) {
  plan_internal::Planner planner(options);
  return planner.Build();
}

}  // namespace decnet::enrol
