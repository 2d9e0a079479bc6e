// Users and groups are made with the distribution's own useradd/groupadd (the shadow files
// have locking rules of their own); systemd is reloaded with systemctl. Both run with a fixed
// PATH and environment.
#include "enrol/enrol.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <vector>

#include "enrol/fs_ops.h"

namespace decnet::enrol {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A line diff (longest common subsequence; configuration files are small).
std::string Diff(const std::string& before, const std::string& after) {
  const auto a = Lines(before), b = Lines(after);
  std::vector<std::vector<int>> lcs(a.size() + 1, std::vector<int>(b.size() + 1, 0));
  for (size_t i = a.size(); i-- > 0;)
    for (size_t j = b.size(); j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::string out;
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (i < a.size() && j < b.size() && a[i] == b[j]) {
      out += "      " + a[i++] + "\n";
      ++j;
    } else if (j < b.size() && (i == a.size() || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out += "    + " + b[j++] + "\n";
    } else {
      out += "    - " + a[i++] + "\n";
    }
  }
  return out;
}

std::string Indent(const std::string& text) {
  std::string out;
  for (const std::string& line : Lines(text)) out += "    " + line + "\n";
  return out;
}

std::string Mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

std::string Describe(const Owner& owner, mode_t mode) {
  return owner.user + ":" + owner.group + " " + Mode(mode);
}

std::string Describe(const FileStep& f, const std::string& daemon_user) {
  std::string out = Describe(f.owner, f.mode);
  if (f.protection == Protection::kDaemonKey) out += ", ACL user:" + daemon_user + ":r";
  return out;
}

Result<void> Run(const std::vector<std::string>& argv, const std::string& rule) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Fail(ErrorCode::kFailed, rule, "cannot fork");
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const char* envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", nullptr};
    ::execve(argv[0].c_str(), args.data(), const_cast<char* const*>(envp));
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string line;
    for (const std::string& a : argv) line += (line.empty() ? "" : " ") + a;
    return Fail(ErrorCode::kFailed, rule,
                line + " failed (status " + std::to_string(status) + "; its output is above)");
  }
  return {};
}

std::string FirstExisting(std::initializer_list<const char*> paths) {
  for (const char* p : paths)
    if (::access(p, X_OK) == 0) return p;
  return *paths.begin();
}

Result<Ownership> Resolve(const Owner& owner, mode_t mode, Protection protection,
                          const std::string& daemon_user) {
  const passwd* u = ::getpwnam(owner.user.c_str());
  const group* g = ::getgrnam(owner.group.c_str());
  if (u == nullptr || g == nullptr)
    return Fail(ErrorCode::kFailed, "enrol-account",
                "no account " + owner.user + ":" + owner.group);
  Ownership want{u->pw_uid, g->gr_gid, mode, {}};
  if (protection == Protection::kDaemonKey) {
    const passwd* d = ::getpwnam(daemon_user.c_str());
    if (d == nullptr) return Fail(ErrorCode::kFailed, "enrol-account", "no user " + daemon_user);
    want.acl = KeyAcl(d->pw_uid);
  }
  return want;
}

Result<void> ApplyAccount(const AccountStep& a) {
  if (a.kind == AccountStep::Kind::kGroup)
    return Run({FirstExisting({"/usr/sbin/groupadd", "/sbin/groupadd"}), "--system", a.name},
               "enrol-account");
  return Run({FirstExisting({"/usr/sbin/useradd", "/sbin/useradd"}), "--system", "--gid", a.group,
              "--home-dir", a.home, "--no-create-home", "--shell", "/usr/sbin/nologin", a.name},
             "enrol-account");
}

Result<void> ApplyDir(const DirStep& d, const std::string& root, const std::string& daemon_user) {
  if (d.kind == DirStep::Kind::kGrantSearch) {
    const passwd* u = ::getpwnam(daemon_user.c_str());
    if (u == nullptr) return Fail(ErrorCode::kFailed, "enrol-account", "no user " + daemon_user);
    return adopt::GrantUser(Beneath(root, d.path), u->pw_uid, 1);
  }
  auto want = Resolve(d.owner, d.mode, Protection::kPlain, daemon_user);
  if (!want) return tl::make_unexpected(want.error());
  return MakeDirectory(Beneath(root, d.path), *want);
}

Result<void> ApplyFile(const FileStep& f, const std::string& root, const std::string& daemon_user) {
  const std::string path = Beneath(root, f.path);
  if (f.kind == FileStep::Kind::kRemove) return RemoveFile(path);
  auto want = Resolve(f.owner, f.mode, f.protection, daemon_user);
  if (!want) return tl::make_unexpected(want.error());
  if (f.kind == FileStep::Kind::kFix) return SetOwnership(path, *want);
  return WriteFileAtomic(path, f.content, *want);
}

void PrintFacts(const Plan& plan, DryRun dry_run, FILE* out) {
  const Facts& f = plan.facts;
  std::fprintf(out, "\nfor the master:\n");
  std::fprintf(out, "  updater certificate: %s\n", f.updater_cert.c_str());
  std::fprintf(out, "  its SHA-256 fingerprint (inventory \"updater_cert_fingerprint\"): %s\n",
               f.updater_fingerprint     ? f.updater_fingerprint->c_str()
               : dry_run == DryRun::kYes ? "made by the real run"
                                         : "unknown");
  std::fprintf(out, "  the CA to trust for it (decnet-rollout --ca): %s\n", f.updater_ca.c_str());
  if (f.local_ca_key)
    std::fprintf(out,
                 "  the master's client certificate must be issued by that CA; its key is %s "
                 "(root only)\n",
                 f.local_ca_key->c_str());
  for (const std::string& pin : f.master_pins)
    std::fprintf(out, "  master pinned: %s\n", pin.c_str());
  if (f.master_pins.empty())
    std::fprintf(out, "  master: any certificate of that CA whose CN is \"%s\"\n",
                 f.master_cn.c_str());
  std::fprintf(out, "next: systemctl enable --now decnet-updater.service\n");
}

}  // namespace

void PrintPlan(const Plan& plan, DryRun dry_run, FILE* out) {
  const char* would = dry_run == DryRun::kYes ? "would " : "";
  for (const AccountStep& a : plan.accounts) {
    if (a.kind == AccountStep::Kind::kGroup)
      std::fprintf(out, "%screate system group %s\n", would, a.name.c_str());
    else
      std::fprintf(out, "%screate system user %s (group %s, home %s, no login)\n", would,
                   a.name.c_str(), a.group.c_str(), a.home.c_str());
  }
  for (const DirStep& d : plan.dirs) {
    if (d.kind == DirStep::Kind::kGrantSearch)
      std::fprintf(out, "%slet %s search %s (ACL user:%s:x)\n", would, plan.daemon_user.c_str(),
                   d.path.c_str(), plan.daemon_user.c_str());
    else
      std::fprintf(out, "%s%s directory %s (%s)\n", would,
                   d.kind == DirStep::Kind::kCreate ? "create" : "set owner and mode of",
                   d.path.c_str(), Describe(d.owner, d.mode).c_str());
  }
  for (const FileStep& f : plan.files) {
    const std::string why = f.why.empty() ? "" : " [" + f.why + "]";
    const std::string how = Describe(f, plan.daemon_user);
    switch (f.kind) {
      case FileStep::Kind::kRemove:
        std::fprintf(out, "%sremove %s%s\n", would, f.path.c_str(), why.c_str());
        break;
      case FileStep::Kind::kFix:
        std::fprintf(out, "%sset owner, mode and ACL of %s (%s)\n", would, f.path.c_str(),
                     how.c_str());
        break;
      case FileStep::Kind::kCreate:
      case FileStep::Kind::kReplace: {
        const bool replace = f.kind == FileStep::Kind::kReplace;
        std::fprintf(out, "%s%s %s (%s)%s", would, replace ? "replace" : "write", f.path.c_str(),
                     how.c_str(), why.c_str());
        // SECURITY: key material never reaches a terminal or a log.
        if (f.secret)
          std::fprintf(out, ": key material, not shown\n");
        else if (f.content.starts_with("-----BEGIN"))
          std::fprintf(out, ": certificate\n");
        else
          std::fprintf(out, ":\n%s",
                       (replace ? Diff(f.old_content, f.content) : Indent(f.content)).c_str());
        break;
      }
    }
  }
  if (plan.reload) std::fprintf(out, "%srun systemctl daemon-reload\n", would);
  for (const std::string& n : plan.notes) std::fprintf(out, "note: %s\n", n.c_str());
}

Result<void> ApplyPlan(const Plan& plan, const std::string& root) {
  for (const AccountStep& a : plan.accounts)
    if (auto ok = ApplyAccount(a); !ok) return ok;
  for (const DirStep& d : plan.dirs)
    if (auto ok = ApplyDir(d, root, plan.daemon_user); !ok) return ok;
  for (const FileStep& f : plan.files)
    if (auto ok = ApplyFile(f, root, plan.daemon_user); !ok) return ok;
  if (plan.reload)
    return Run({FirstExisting({"/usr/bin/systemctl", "/bin/systemctl"}), "daemon-reload"},
               "enrol-reload");
  return {};
}

int RunEnrol(const EnrolOptions& options, FILE* out, FILE* err) {
  auto refuse = [err](const Error& e) {
    std::fprintf(err, "refused: %s [%s]\n", e.message.c_str(), e.rule.c_str());
    return 1;
  };
  // SECURITY: it writes root's configuration and keys; only root may run it.
  if (::geteuid() != 0)
    return refuse({ErrorCode::kDenied, "enrol-root",
                   "decnet-updater-enrol writes root's configuration and keys: run it as root"});
  ::umask(022);
  auto plan = BuildPlan(options);
  if (!plan) return refuse(plan.error());
  if (plan->empty()) {
    std::fprintf(out, "nothing to change: this worker is already enrolled as asked\n");
  } else {
    PrintPlan(*plan, options.dry_run, out);
    if (options.dry_run == DryRun::kYes) {
      std::fprintf(out, "dry run: nothing was changed\n");
    } else {
      if (auto ok = ApplyPlan(*plan, options.root); !ok) return refuse(ok.error());
      std::fprintf(out, "done\n");
    }
  }
  PrintFacts(*plan, options.dry_run, out);
  return 0;
}

}  // namespace decnet::enrol
