// Internal to enrol/: the plan builder that enrol_plan.cc (configuration, accounts,
// directories, the drop-in and the rule) and enrol_plan_tls.cc (the TLS material) share. Not
// an interface of its own: BuildPlan() (enrol_plan.h) is.
#pragma once

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "enrol/enrol_configs.h"
#include "enrol/enrol_plan.h"
#include "enrol/fs_ops.h"
#include "enrol/tls_material.h"

namespace decnet::enrol::plan_internal {

// A refusal of the plan (kDenied).
tl::unexpected<Error> Refuse(const std::string& rule, const std::string& message);

// An operator's input file (--from, --ca-cert, --master-cert), read as given, never beneath
// --root. Refuses "enrol-tls-missing" for a path that is not a regular file, "enrol-symlink".
Result<std::string> ReadInput(const std::string& path);

// A file step; the fields a call does not name keep FileStep's defaults.
FileStep Step(FileStep::Kind kind, const std::string& path, std::string content = "",
              std::string old_content = "", mode_t mode = 0644,
              Protection protection = Protection::kPlain, bool secret = false,
              std::string why = "");

// One of the two TLS bundles: where it lies (daemon.json) and how a --from directory holds it.
struct BundleSpec {
  std::string what;           // "the updater's bundle"
  std::string ca, cert, key;  // host paths
  std::string from_subdir, from_cert, from_key;
  Purpose purpose;
};

// Builds one plan: each Plan* step adds what it finds to change, or refuses.
class Planner {
 public:
  explicit Planner(const EnrolOptions& o) : o_(o) {}

  // Runs every step in order; the plan, or the first refusal (the rules of enrol_plan.h).
  Result<Plan> Build();

 private:
  std::string Host(const std::string& path) const { return Beneath(o_.root, path); }

  Result<PathState> Look(const std::string& path, bool content = false) const {
    return Inspect(Host(path), content);
  }

  // ---- configuration
  Result<void> PlanConfigs();

  static std::string HelperPath() { return std::string(kConfigDir) + "/helper.json"; }
  static std::string DaemonPath() { return std::string(kConfigDir) + "/daemon.json"; }

  // ---- users and groups
  Result<void> NeedGroup(const std::string& name);

  Result<void> NeedUser(const std::string& name, const std::string& group, const std::string& home);

  Result<void> PlanAccounts();

  Result<void> CheckAccounts();

  // ---- directories
  std::optional<std::pair<uid_t, gid_t>> Ids(const Owner& owner) const {
    const passwd* u = ::getpwnam(owner.user.c_str());
    const group* g = ::getgrnam(owner.group.c_str());
    if (u == nullptr || g == nullptr) return std::nullopt;
    return std::pair{u->pw_uid, g->gr_gid};
  }

  Result<void> WantDirectory(const std::string& path, const Owner& owner, mode_t mode, bool manage);

  Result<void> CheckDaemonDir(const std::string& path) const;

  Result<void> CheckOverlaps(const std::vector<std::string>& daemon_dirs) const;

  std::vector<std::string> TlsFiles() const {
    const auto& d = c_.daemon;
    return {d.tls_ca, d.tls_cert, d.tls_key, d.probe.ca, d.probe.cert, d.probe.key};
  }

  Result<void> PlanDirectories();

  // A directory on the way to the TLS files: root's, writable by nobody else, and searchable
  // by the daemon (by an ACL entry when others may not search it).
  Result<void> WantKeyDirectory(const std::string& path);

  bool DaemonMaySearch(const PathState& state) const;

  // ---- TLS material
  Result<void> PlanTls();
  Result<void> PlanBundle(const BundleSpec& spec, Bundle* final_bundle);
  Result<CertAndKey> SigningCa(const BundleSpec& spec, const std::optional<std::string>& in_place);
  void WriteBundle(const BundleSpec& spec, const Bundle& b, const std::vector<PathState>& now,
                   const std::string& why);
  void FixKept(const BundleSpec& spec, const std::vector<PathState>& now);
  Ownership Want(Protection protection, mode_t mode) const;

  // ---- the other files
  void WantFile(const std::string& path, const std::string& content, const PathState& now,
                bool json, mode_t mode = 0644);
  Result<void> PlanConfigFiles() {
    WantFile(HelperPath(), c_.helper_json, helper_now_, true);
    WantFile(DaemonPath(), c_.daemon_json, daemon_now_, true);
    return {};
  }

  Result<void> PlanDropIn();

  Result<void> PlanRule();

  const EnrolOptions& o_;
  Plan plan_;
  Configs c_;
  PathState helper_now_, daemon_now_;
  std::vector<std::string> pins_;
  std::string master_pem_;
  std::set<std::string> planned_accounts_, planned_dirs_, granted_;
  std::optional<uid_t> daemon_uid_;
  Result<std::optional<std::string>> rule_;
  PathState rule_now_;  // the rule file as the plan found it
  std::optional<CertAndKey> ca_;
};

}  // namespace decnet::enrol::plan_internal
