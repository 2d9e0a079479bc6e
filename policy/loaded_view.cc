// The loaded-view check (loaded_view.h). The rules follow one principle: the helper restarts
// a unit only when what systemd will apply as root for it is what the policy approved. The
// fragment must be the helper's own file (or, for a file the helper did not write, root's
// alone), every drop-in an operator's own, and the effective settings, whatever file they
// came from, inside the policy.
#include "policy/loaded_view.h"

#include <linux/capability.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "policy/trusted_symlinks.h"
#include "policy/unit_policy.h"

namespace decnet::helper {
namespace {

struct CapName {
  const char* name;
  int bit;
};

constexpr CapName kCaps[] = {
    {"CAP_CHOWN", CAP_CHOWN},
    {"CAP_DAC_OVERRIDE", CAP_DAC_OVERRIDE},
    {"CAP_DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
    {"CAP_FOWNER", CAP_FOWNER},
    {"CAP_FSETID", CAP_FSETID},
    {"CAP_KILL", CAP_KILL},
    {"CAP_SETGID", CAP_SETGID},
    {"CAP_SETUID", CAP_SETUID},
    {"CAP_SETPCAP", CAP_SETPCAP},
    {"CAP_LINUX_IMMUTABLE", CAP_LINUX_IMMUTABLE},
    {"CAP_NET_BIND_SERVICE", CAP_NET_BIND_SERVICE},
    {"CAP_NET_BROADCAST", CAP_NET_BROADCAST},
    {"CAP_NET_ADMIN", CAP_NET_ADMIN},
    {"CAP_NET_RAW", CAP_NET_RAW},
    {"CAP_IPC_LOCK", CAP_IPC_LOCK},
    {"CAP_IPC_OWNER", CAP_IPC_OWNER},
    {"CAP_SYS_MODULE", CAP_SYS_MODULE},
    {"CAP_SYS_RAWIO", CAP_SYS_RAWIO},
    {"CAP_SYS_CHROOT", CAP_SYS_CHROOT},
    {"CAP_SYS_PTRACE", CAP_SYS_PTRACE},
    {"CAP_SYS_PACCT", CAP_SYS_PACCT},
    {"CAP_SYS_ADMIN", CAP_SYS_ADMIN},
    {"CAP_SYS_BOOT", CAP_SYS_BOOT},
    {"CAP_SYS_NICE", CAP_SYS_NICE},
    {"CAP_SYS_RESOURCE", CAP_SYS_RESOURCE},
    {"CAP_SYS_TIME", CAP_SYS_TIME},
    {"CAP_SYS_TTY_CONFIG", CAP_SYS_TTY_CONFIG},
    {"CAP_MKNOD", CAP_MKNOD},
    {"CAP_LEASE", CAP_LEASE},
    {"CAP_AUDIT_WRITE", CAP_AUDIT_WRITE},
    {"CAP_AUDIT_CONTROL", CAP_AUDIT_CONTROL},
    {"CAP_SETFCAP", CAP_SETFCAP},
    {"CAP_MAC_OVERRIDE", CAP_MAC_OVERRIDE},
    {"CAP_MAC_ADMIN", CAP_MAC_ADMIN},
    {"CAP_SYSLOG", CAP_SYSLOG},
    {"CAP_WAKE_ALARM", CAP_WAKE_ALARM},
    {"CAP_BLOCK_SUSPEND", CAP_BLOCK_SUSPEND},
    {"CAP_AUDIT_READ", CAP_AUDIT_READ},
    {"CAP_PERFMON", CAP_PERFMON},
    {"CAP_BPF", CAP_BPF},
    {"CAP_CHECKPOINT_RESTORE", CAP_CHECKPOINT_RESTORE},
};

// Where the updater's own unit may be installed (never a runtime or generated directory).
const std::vector<std::string>& SelfFragmentDirs() {
  static const std::vector<std::string> dirs = {"/etc/systemd/system",
                                                "/usr/local/lib/systemd/system",
                                                "/usr/lib/systemd/system", "/lib/systemd/system"};
  return dirs;
}

std::string StripTrailingSlashes(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// "/a/b/c" -> "/a/b"; "" when there is no slash.
std::string Parent(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return "";
  return std::string(path.substr(0, slash == 0 ? 1 : slash));
}

// True when `path` is a file directly in one of SelfFragmentDirs().
bool InSelfFragmentDir(std::string_view path) {
  const std::string parent = Parent(path);
  for (const auto& dir : SelfFragmentDirs()) {
    if (parent == dir) return true;
  }
  return false;
}

// Why `path` is not where an operator keeps drop-ins (DIR/UNIT.d/FILE, DIR one of
// OperatorDropInDirs()); "" when it is.
std::string DropInPlaceProblem(std::string_view path) {
  const std::string dropin_dir = Parent(path);
  const std::string search_dir = Parent(dropin_dir);
  bool known = false;
  for (const auto& dir : OperatorDropInDirs()) known = known || search_dir == dir;
  if (!known || dropin_dir.size() < 3 || dropin_dir.substr(dropin_dir.size() - 2) != ".d")
    return "not in a directory where operators keep drop-ins";
  return "";
}

bool IsBeneath(std::string_view path, std::string_view dir) {
  if (dir == "/") return !path.empty() && path.front() == '/';
  return path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/';
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string Usec(uint64_t usec) {
  return usec == kLoadedInfinity ? "infinity" : std::to_string(usec) + " us";
}

std::string Limit(uint64_t v) { return v == kLoadedInfinity ? "infinity" : std::to_string(v); }

std::string Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// The names a *Directory= entry must not take: the helper's and the daemon's own.
std::vector<std::string> ReservedDirectoryNames(const Policy& policy) {
  std::vector<std::string> names = {"decnet-updater", "decnet-update-helper"};
  const std::string state = Basename(StripTrailingSlashes(policy.state_dir));
  if (!state.empty()) names.push_back(state);
  if (!policy.daemon_user.empty()) names.push_back(policy.daemon_user);
  return names;
}

class Judge {
 public:
  Judge(const Policy& policy, const UnitName& name, const LoadedView& view,
        const FragmentFacts& facts, const OperatorFileCheck& file_check)
      : policy_(policy), name_(name), view_(view), facts_(facts), file_check_(file_check) {}

  std::vector<LoadedViewRefusal> Run() {
    const std::string& n = name_.str();
    // SECURITY: nothing but a fully loaded unit is restarted; "not-found" could be loaded
    // afresh, from whatever is on disk then, by the restart itself.
    if (view_.load_state != "loaded") {
      Refuse("unit-loaded-state",
             "systemd's load state of " + n + " is '" + view_.load_state + "', not 'loaded'");
      return std::move(out_);
    }
    if (view_.transient) {
      Refuse("unit-loaded-transient", "systemd holds " + n + " as a transient unit");
    }
    if (!view_.source_path.empty()) {
      Refuse("unit-loaded-source", "systemd generated " + n + " from " + view_.source_path);
    }
    if (n == policy_.self_unit) {
      SelfFragment();
    } else {
      Fragment();
    }
    DropIns();
    // The updater's own unit runs the helper as root by design: its settings are the
    // operator's, and what matters is that only the operator's files make them.
    if (n != policy_.self_unit && view_.is_service) Service();
    return std::move(out_);
  }

 private:
  void Refuse(std::string rule, std::string message) {
    out_.push_back({std::move(rule), std::move(message)});
  }

  // The fragment of a unit the helper may write: exactly the helper's file.
  void Fragment() {
    const std::string& n = name_.str();
    const std::string expected = SystemdUnitDir(policy_) + "/" + n;
    if (view_.fragment_path != expected) {
      Refuse("unit-loaded-fragment",
             "systemd loaded " + n + " from '" + view_.fragment_path + "', not from " + expected);
      return;
    }
    if (!facts_.exists || !facts_.regular) {
      Refuse("unit-loaded-fragment", "systemd loaded " + n + " from " + expected +
                                         ", which is no longer a regular file there");
      return;
    }
    if (facts_.recorded) {
      // SECURITY: the content must be what the helper wrote (and so what its policy
      // approved); a file changed since is not trusted, whoever changed it.
      if (!facts_.matches_record) {
        Refuse("unit-loaded-fragment-changed",
               expected + ", loaded by systemd, was changed since the helper wrote it");
      }
      return;
    }
    OperatorFragment(expected);
  }

  // A file in the unit directory the helper did not write: root's alone, so an operator's.
  void OperatorFragment(const std::string& path) {
    if (!facts_.exists || !facts_.regular || facts_.uid != 0 || facts_.nlink != 1 ||
        (facts_.mode & (S_IWGRP | S_IWOTH)) != 0) {
      Refuse("unit-loaded-fragment-owner",
             path +
                 ", loaded by systemd and not written by the helper, is not a root-owned "
                 "regular file with one link that only root can write");
    }
  }

  void SelfFragment() {
    const std::string& n = name_.str();
    const std::string in_unit_dir = SystemdUnitDir(policy_) + "/" + n;
    if (view_.fragment_path == in_unit_dir) {
      OperatorFragment(in_unit_dir);
      return;
    }
    const bool in_system_dir = InSelfFragmentDir(view_.fragment_path);
    if (!in_system_dir) {
      Refuse("unit-loaded-fragment", "systemd loaded the updater's own unit " + n + " from '" +
                                         view_.fragment_path +
                                         "', outside the system unit directories");
      return;
    }
    const OperatorFile file = file_check_(view_.fragment_path);
    if (!file.why.empty()) {
      Refuse("unit-loaded-fragment-owner", "the updater's own unit " + n + " was loaded from " +
                                               view_.fragment_path + ": " + file.why);
      return;
    }
    // SECURITY: a root-made symlink on the way (merged /usr) is followed only to judge what it
    // leads to: the file itself must also lie in a system unit directory.
    if (!InSelfFragmentDir(file.resolved)) {
      Refuse("unit-loaded-fragment", "systemd loaded the updater's own unit " + n + " from " +
                                         view_.fragment_path + ", which resolves to '" +
                                         file.resolved + "', outside the system unit directories");
    }
  }

  void DropIns() {
    for (const auto& [path, why] : JudgeDropIns(view_, file_check_)) {
      if (why.empty()) continue;
      Refuse("unit-loaded-dropin",
             "systemd loaded drop-in " + path + " for " + name_.str() + ": " + why);
    }
  }

  void Service() {
    User();
    Exec();
    Capabilities();
    Directories();
    Bounds();
    RootSettings();
    Files();
  }

  void User() {
    const std::string& n = name_.str();
    const std::string& u = view_.user;
    // SECURITY: the user systemd resolved, whatever file set it.
    if (u.empty() || u == "root" || u == "0" || u == policy_.daemon_user ||
        !policy_.unit_users.contains(u)) {
      Refuse("unit-loaded-user", "systemd runs " + n + " as user '" +
                                     (u.empty() ? "root (no User=)" : u) +
                                     "', not one of the policy's unit users");
    }
    const std::string& g = view_.group;
    if (g.empty() || g == "root" || g == "0" || g == policy_.daemon_group ||
        !policy_.unit_groups.contains(g)) {
      Refuse("unit-loaded-group", "systemd runs " + n + " with group '" +
                                      (g.empty() ? "(none: the user's primary group)" : g) +
                                      "', not one of the policy's unit groups");
    }
    if (view_.dynamic_user) {
      Refuse("unit-loaded-dynamic-user", "systemd runs " + n + " with DynamicUser=yes");
    }
    const auto allowance = policy_.allowances.find(n);
    for (const auto& sg : view_.supplementary_groups) {
      const bool allowed = allowance != policy_.allowances.end() &&
                           allowance->second.supplementary_groups.contains(sg) && sg != "root" &&
                           sg != "0" && sg != policy_.daemon_group;
      if (!allowed) {
        Refuse("unit-loaded-supplementary-groups",
               "systemd gives " + n + " supplementary group '" + sg + "', beyond its allowance");
      }
    }
  }

  void Exec() {
    // "!!" is refused too: it is "!" (skip the user change, run as root) on a kernel without
    // ambient capabilities, and no allowance needs it where ambient capabilities exist.
    static const std::set<std::string> kHarmless = {"ignore-failure", "no-env-expand"};
    for (const auto& e : view_.exec) {
      for (const auto& flag : e.flags) {
        if (kHarmless.contains(flag)) continue;
        Refuse("unit-loaded-exec-flags", "systemd runs " + e.directive + "=" + e.path + " of " +
                                             name_.str() + " with flag '" + flag +
                                             "' (as root or without the unit's user)");
      }
    }
  }

  void Capabilities() {
    const std::string& n = name_.str();
    const auto it = policy_.allowances.find(n);
    const UnitAllowance none;
    const UnitAllowance& allowance = it == policy_.allowances.end() ? none : it->second;
    const uint64_t allowed = CapabilityMask(allowance.capabilities);
    if (const uint64_t extra = view_.ambient_capabilities & ~allowed; extra != 0) {
      Refuse("unit-loaded-capabilities", "systemd gives " + n + " ambient capabilities " +
                                             Join(CapabilityNames(extra)) +
                                             " beyond its allowance");
    }
    if (!view_.no_new_privileges) {
      if (!allowance.may_drop_no_new_privileges) {
        Refuse("unit-loaded-no-new-privileges",
               "systemd runs " + n + " without NoNewPrivileges=yes");
      } else if (const uint64_t extra = view_.capability_bounding_set & ~allowed; extra != 0) {
        // Without NoNewPrivileges a set-id or file-capability binary gains up to the bounding
        // set, so the bounding set is what the unit can reach.
        Refuse("unit-loaded-capabilities",
               "systemd runs " + n + " without NoNewPrivileges and with bounding set " +
                   Join(CapabilityNames(extra)) + " beyond its allowance");
      }
    }
  }

  void Directories() {
    const std::vector<std::string> reserved = ReservedDirectoryNames(policy_);
    for (const auto& [directive, names] : view_.directories) {
      for (const auto& d : names) {
        std::string why;
        if (d.empty() || d == "." || d == ".." || d.find('/') != std::string::npos) {
          why = "is not one path component";
        }
        for (const auto& r : reserved) {
          if (why.empty() && StartsWith(d, r)) why = "begins with the updater's own '" + r + "'";
        }
        if (!why.empty()) {
          Refuse("unit-loaded-directory", "systemd creates " + directive + " '" + d + "' for " +
                                              name_.str() + ", which " + why);
        }
      }
    }
  }

  void Bounds() {
    const std::string& n = name_.str();
    if (view_.kill_mode != "control-group" && view_.kill_mode != "mixed") {
      Refuse("unit-loaded-kill-mode", "systemd stops " + n + " with KillMode=" + view_.kill_mode +
                                          ": processes may outlive the stop");
    }
    if (!view_.send_sigkill) {
      Refuse("unit-loaded-kill-mode", "systemd stops " + n + " with SendSIGKILL=no");
    }
    if (view_.timeout_stop_usec == kLoadedInfinity || view_.timeout_stop_usec == 0) {
      Refuse("unit-loaded-stop-timeout",
             "systemd waits " + Usec(view_.timeout_stop_usec) + " for " + n + " to stop");
    }
    const std::pair<const char*, uint64_t> limits[] = {{"LimitNPROC", view_.limit_nproc},
                                                       {"LimitNOFILE", view_.limit_nofile},
                                                       {"TasksMax", view_.tasks_max}};
    for (const auto& [key, value] : limits) {
      if (value == kLoadedInfinity) {
        Refuse("unit-loaded-limit",
               "systemd applies " + std::string(key) + "=" + Limit(value) + " to " + n);
      }
    }
    if (view_.start_limit_interval_usec == 0 ||
        view_.start_limit_interval_usec == kLoadedInfinity) {
      Refuse("unit-loaded-start-limit",
             "systemd applies StartLimitIntervalSec=" + Usec(view_.start_limit_interval_usec) +
                 " to " + n + ": its restarts are not rate-limited");
    }
  }

  void RootSettings() {
    const std::pair<const char*, const std::string*> settings[] = {
        {"RootDirectory", &view_.root_directory},
        {"RootImage", &view_.root_image},
        {"PAMName", &view_.pam_name}};
    for (const auto& [key, value] : settings) {
      if (!value->empty()) {
        Refuse("unit-loaded-root-settings",
               "systemd applies " + std::string(key) + "=" + *value + " to " + name_.str());
      }
    }
    if (!view_.credentials.empty()) {
      Refuse("unit-loaded-credentials",
             "systemd loads credentials " + Join(view_.credentials) + " for " + name_.str());
    }
  }

  void Files() {
    const std::string& n = name_.str();
    for (const auto& f : view_.environment_files) {
      bool beneath = false;
      for (const auto& dir : policy_.environment_dirs) {
        beneath = beneath || IsBeneath(f, StripTrailingSlashes(dir));
      }
      if (!beneath) {
        Refuse("unit-loaded-environment-file",
               "systemd reads EnvironmentFile " + f + " as root for " + n +
                   ", outside the policy's environment directories");
      }
    }
    static const std::set<std::string> kInputs = {"null", "file"};
    static const std::set<std::string> kOutputs = {"inherit", "null",   "journal", "kmsg",
                                                   "file",    "append", "truncate"};
    static const std::set<std::string> kFiles = {"file", "append", "truncate"};
    const std::pair<const char*, const std::string*> streams[] = {
        {"StandardInput", &view_.standard_input},
        {"StandardOutput", &view_.standard_output},
        {"StandardError", &view_.standard_error}};
    for (const auto& [key, value] : streams) {
      const bool input = std::string_view(key) == "StandardInput";
      if (!(input ? kInputs : kOutputs).contains(*value)) {
        Refuse("unit-loaded-stdio",
               "systemd connects " + std::string(key) + " of " + n + " to '" + *value + "'");
      } else if (kFiles.contains(*value) && (!view_.drop_in_paths.empty() || !facts_.recorded)) {
        // systemd 252 does not publish the path of a file stream over D-Bus: it is known to
        // be checked only when the helper's own recorded file is all systemd loaded.
        Refuse("unit-loaded-stdio-file",
               "systemd opens a file as root for " + std::string(key) + " of " + n +
                   " whose path only the helper's own file, alone, would vouch for");
      }
    }
  }

  const Policy& policy_;
  const UnitName& name_;
  const LoadedView& view_;
  const FragmentFacts& facts_;
  const OperatorFileCheck& file_check_;
  std::vector<LoadedViewRefusal> out_;
};

// The file at `abs_path` (no symlink expected on it) judged as a file root reads for itself:
// every directory root's alone, no symlink, an existing regular file with one link owned by
// root that only root can write. "" when it is.
std::string JudgeRootOwned(const PathChainCheck& walk, const std::string& root,
                           std::string_view abs_path) {
  OpenedFile file;
  file.path = std::string(abs_path);
  file.access = OpenFor::kRead;
  file.user = "root";
  file.group = "root";
  if (auto refusal = walk(file)) return refusal->message;
  const std::string on_host = (root == "/" ? "" : root) + std::string(abs_path);
  struct stat st {};
  if (::lstat(on_host.c_str(), &st) != 0) {
    return std::string(abs_path) + ": " + std::strerror(errno);
  }
  // SECURITY: the walk proved every directory root's alone, so this lstat sees the file it
  // judged; the walk allows a file owned by the reader, here root, and says nothing of
  // group or other write bits, which would let another user rewrite it.
  if (!S_ISREG(st.st_mode) || st.st_uid != 0 || st.st_nlink != 1) {
    return std::string(abs_path) + " is not a root-owned regular file with one link";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return std::string(abs_path) + " is writable by group or others";
  }
  return "";
}

}  // namespace

OperatorFileCheck RootOwnedFileCheck(std::string unit_root) {
  PathChainCheck walk = RootOnlyPathCheck(unit_root);
  return [walk = std::move(walk), root = StripTrailingSlashes(std::move(unit_root))](
             std::string_view named) -> OperatorFile {
    OperatorFile out{std::string(named), ""};
    // SECURITY: only root's directory symlinks, in directories root's alone, are followed
    // (merged /usr: /lib -> usr/lib); any other link on the path refuses the file.
    auto resolved = ResolveTrustedSymlinks(root.empty() ? "/" : root, named);
    if (!resolved) {
      out.why = resolved.error().message;
      return out;
    }
    out.resolved = *resolved;
    out.why = JudgeRootOwned(walk, root, out.resolved);
    return out;
  };
}

std::string SystemdUnitDir(const Policy& policy) {
  const std::string dir = StripTrailingSlashes(policy.unit_dir);
  const std::string root = StripTrailingSlashes(policy.unit_root);
  if (root == "/" || root.empty()) return dir;
  if (IsBeneath(dir, root)) return dir.substr(root.size());
  return "/etc/systemd/system";
}

const std::vector<std::string>& OperatorDropInDirs() {
  static const std::vector<std::string> dirs = {
      "/etc/systemd/system.control", "/run/systemd/system.control",   "/etc/systemd/system",
      "/run/systemd/system",         "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
      "/lib/systemd/system"};
  return dirs;
}

std::vector<std::pair<std::string, std::string>> JudgeDropIns(const LoadedView& view,
                                                              const OperatorFileCheck& file_check) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& path : view.drop_in_paths) {
    // DIR/UNIT.d/FILE.conf: DIR is a search directory, UNIT.d the drop-in directory.
    std::string why = DropInPlaceProblem(path);
    if (why.empty()) {
      // SECURITY: an operator's drop-in is root's alone, on a path only root can change; one
      // made through a unit's (or the daemon's) files is not.
      const OperatorFile file = file_check(path);
      why = file.why;
      // SECURITY: where root's directory symlinks lead must be an operator's place too.
      if (why.empty() && !DropInPlaceProblem(file.resolved).empty())
        why = "resolves to " + file.resolved + ", not in a directory where operators keep drop-ins";
    }
    out.emplace_back(path, why);
  }
  return out;
}

std::vector<LoadedViewRefusal> JudgeLoadedView(const Policy& policy, const UnitName& name,
                                               const LoadedView& view, const FragmentFacts& facts,
                                               const OperatorFileCheck& file_check) {
  return Judge(policy, name, view, facts, file_check).Run();
}

bool NothingLoaded(const LoadedView& view) {
  return view.load_state == "not-found" && view.fragment_path.empty() && view.source_path.empty() &&
         view.drop_in_paths.empty() && !view.transient;
}

uint64_t CapabilityMask(const std::set<std::string>& names) {
  uint64_t mask = 0;
  for (const auto& c : kCaps) {
    if (names.contains(c.name)) mask |= uint64_t{1} << c.bit;
  }
  return mask;
}

std::vector<std::string> CapabilityNames(uint64_t mask) {
  std::vector<std::string> out;
  for (int bit = 0; bit < 64; ++bit) {
    if ((mask & (uint64_t{1} << bit)) == 0) continue;
    std::string name = "cap_" + std::to_string(bit);
    for (const auto& c : kCaps) {
      if (c.bit == bit) name = c.name;
    }
    out.push_back(name);
  }
  return out;
}

}  // namespace decnet::helper
