// A differential oracle for the unit policy that sees what systemd sets up as root.
//
// For every accepted fixture and every generated unit (unit_generator.h) that the policy's
// real decision accepts (CheckUnitName and CheckUnitContent exactly as the helper's
// write_unit calls them, with RootOnlyPathCheck over the units' root filesystem), the unit is
// loaded into a real systemd 252 (the testbed container) and what systemd loaded is read back
// over D-Bus with sd-bus, not with the helper's adapter. Invariants of "within policy" are
// then checked on that loaded view, with code of this file only: who the unit runs as, the
// exec flags, the directories systemd creates and chowns as root, how it stops, its limits,
// the files systemd opens as root for it, and which other units it acts on. A second test
// asks `systemd-analyze security --offline=true` whether any accepted unit runs as root.
// A third loads control units that each break one invariant, so every check is shown to fire.
//
// Units are loaded, never started. The policy judged is Policy::Defaults() with one
// root-owned output directory; file paths are judged in the units' root filesystem by mode
// bits (the oracle's files carry no ACLs). systemd 252's D-Bus API has no property for the
// path of a file stream or for PermissionsStartOnly: those come from its own dump
// (Manager.DumpUnitsMatchingPatterns).
//
// Short run (ctest): 500 generated units from a fixed seed.
// Long run, as one command (any seed; the oracle prints the seed and case of each finding):
//   DECNET_ORACLE_UNITS=5000 DECNET_ORACLE_SEED=$RANDOM BUILD/tests/unit_oracle_test
// Replay one generated unit: DECNET_ORACLE_SEED=S DECNET_ORACLE_CASE=I BUILD/tests/unit_oracle_test
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/unit_policy.h"
#include "tests/integration/testbed.h"
#include "tests/integration/unit_generator.h"
#include "tests/support/unit_test_support.h"

namespace decnet::test {
namespace {

namespace fs = std::filesystem;
using helper::Policy;

// ---------------------------------------------------------------------------------------
// The run: how many units, which stream.

struct OracleRun {
  uint64_t seed = 1;
  size_t units = 500;
  std::optional<size_t> only;  // replay of one case
};

OracleRun RunFromEnvironment() {
  OracleRun run;
  if (const char* s = std::getenv("DECNET_ORACLE_SEED")) run.seed = std::strtoull(s, nullptr, 10);
  if (const char* n = std::getenv("DECNET_ORACLE_UNITS")) run.units = std::strtoull(n, nullptr, 10);
  if (const char* c = std::getenv("DECNET_ORACLE_CASE")) run.only = std::strtoull(c, nullptr, 10);
  return run;
}

// ---------------------------------------------------------------------------------------
// The units' root filesystem: the container's (read-only, cached) root filesystem under an
// overlay in this process's own mount namespace, plus DECNET's directories with the files a
// hostile unit would reach for. The container gets the same directories bound in, so a path
// means the same to the policy, to this oracle and to systemd.

constexpr uid_t kUnitUid = 990;   // `decnet` in the testbed's root filesystem
constexpr gid_t kOtherGid = 991;  // a group the units are not in (the updater's, say)

class UnitRoot {
 public:
  // Sets the root up once per process. Fails with a message naming the step.
  static tl::expected<const UnitRoot*, std::string> Get() {
    static std::unique_ptr<UnitRoot> root;
    static std::string error;
    if (!root && error.empty()) {
      auto made = Make();
      if (made) {
        root = std::move(*made);
      } else {
        error = made.error();
      }
    }
    if (!root) return tl::make_unexpected(error);
    return root.get();
  }
  ~UnitRoot() {
    umount2(path_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  const std::string& path() const { return path_; }
  // systemd-nspawn arguments that bind the added directories into the container.
  std::vector<std::string> NspawnBinds() const {
    std::vector<std::string> out;
    for (const char* d : {"/etc/decnet", "/var/log/decnet-root", "/var/log/decnet"}) {
      out.push_back("--bind=" + path_ + d + ":" + d);
    }
    return out;
  }

 private:
  static tl::expected<std::unique_ptr<UnitRoot>, std::string> Make() {
    const std::string script = std::string(DECNET_SOURCE_DIR) + "/scripts/testbed/rootfs.sh";
    FILE* pipe = popen((script + " 2>/dev/null").c_str(), "r");
    if (pipe == nullptr) return tl::make_unexpected("cannot run " + script);
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
    if (pclose(pipe) != 0) return tl::make_unexpected(script + " failed: " + out);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const std::string lower = out.substr(out.rfind('\n') + 1);
    // A mount namespace of our own: the overlay vanishes with this process.
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
      return tl::make_unexpected(std::string("unshare/mount --make-rprivate: ") +
                                 std::strerror(errno));
    }
    char tmpl[] = "/tmp/decnet-oracle-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return tl::make_unexpected(std::string("mkdtemp failed"));
    std::unique_ptr<UnitRoot> r(new UnitRoot());
    r->base_ = tmpl;
    r->path_ = r->base_ + "/root";
    for (const char* d : {"/upper", "/work", "/root"}) fs::create_directory(r->base_ + d);
    const std::string options =
        "lowerdir=" + lower + ",upperdir=" + r->base_ + "/upper,workdir=" + r->base_ + "/work";
    if (mount("overlay", r->path_.c_str(), "overlay", 0, options.c_str()) != 0) {
      return tl::make_unexpected("mount overlay " + options + ": " + std::strerror(errno));
    }
    if (std::string why = r->Populate(); !why.empty()) return tl::make_unexpected(why);
    return r;
  }

  std::string Populate() const {
    auto dir = [&](const std::string& rel, mode_t mode, uid_t uid, gid_t gid) {
      fs::create_directories(path_ + rel);
      return chmod((path_ + rel).c_str(), mode) == 0 && chown((path_ + rel).c_str(), uid, gid) == 0;
    };
    auto file = [&](const std::string& rel, mode_t mode, uid_t uid, gid_t gid) {
      std::ofstream(path_ + rel) << "A=1\n";
      return chmod((path_ + rel).c_str(), mode) == 0 && chown((path_ + rel).c_str(), uid, gid) == 0;
    };
    auto link = [&](const std::string& target, const std::string& rel) {
      return symlink(target.c_str(), (path_ + rel).c_str()) == 0;
    };
    const bool ok =
        dir("/etc/decnet", 0755, 0, 0) && file("/etc/decnet/agent.env", 0644, 0, 0) &&
        file("/etc/decnet/secret.env", 0600, 0, 0) && link("/etc/shadow", "/etc/decnet/link.env") &&
        link("/etc", "/etc/decnet/linkdir") && dir("/etc/decnet/updater", 0750, 0, kOtherGid) &&
        file("/etc/decnet/updater/worker.key", 0640, 0, kOtherGid) &&
        dir("/var/log/decnet-root", 0755, 0, 0) &&
        link("/etc/shadow", "/var/log/decnet-root/link.log") &&
        link("/etc", "/var/log/decnet-root/linkdir") &&
        file("/var/log/decnet-root/existing.log", 0600, 0, 0) &&
        file("/var/log/decnet-root/forwarder.log", 0640, kUnitUid, kUnitUid) &&
        dir("/var/log/decnet", 0755, kUnitUid, kUnitUid);
    return ok ? "" : "populating the unit root failed: " + std::string(std::strerror(errno));
  }

  UnitRoot() = default;
  std::string base_;
  std::string path_;
};

// The policy the oracle judges: the built-in defaults, with paths checked in the unit root
// and one root-owned output directory (the defaults have none, so no file output could be
// accepted and the output checks would idle).
Policy OraclePolicy(const std::string& root) {
  Policy p = Policy::Defaults();
  p.unit_root = root;
  p.output_dirs = {"/var/log/decnet-root"};
  return p;
}

// The helper's real decision on write_unit (helper/handlers.cc HandleWriteUnit): the name
// check, then the content check with the root-only path check over the unit root.
std::vector<helper::UnitRefusal> Decide(const Policy& policy, const std::string& name,
                                        const std::string& content) {
  auto parsed = UnitName::Parse(name);
  if (!parsed) return {{0, parsed.error().rule, parsed.error().message}};
  if (auto ok = helper::CheckUnitName(policy, *parsed, helper::UnitUse::kWrite); !ok) {
    return {{0, ok.error().rule, ok.error().message}};
  }
  return helper::CheckUnitContent(policy, *parsed, content,
                                  helper::RootOnlyPathCheck(policy.unit_root));
}

// ---------------------------------------------------------------------------------------
// systemd over D-Bus, with sd-bus: any property value as a small tree.

struct Value {
  char type = 0;  // the D-Bus type of a basic value; 'a' or 'r' for containers
  std::string str;
  uint64_t u = 0;
  int64_t i = 0;
  bool b = false;
  std::vector<Value> items;
};

int ReadValue(sd_bus_message* m, Value& out);

int ReadContainer(sd_bus_message* m, char type, const char* contents, Value& out) {
  int r = sd_bus_message_enter_container(m, type, contents);
  if (r < 0) return r;
  if (type == 'v') {
    r = ReadValue(m, out);
  } else {
    out.type = type == 'a' ? 'a' : 'r';
    while ((r = sd_bus_message_at_end(m, false)) == 0) {
      Value item;
      if ((r = ReadValue(m, item)) < 0) return r;
      out.items.push_back(std::move(item));
    }
  }
  if (r < 0) return r;
  return sd_bus_message_exit_container(m);
}

int ReadValue(sd_bus_message* m, Value& out) {
  char type = 0;
  const char* contents = nullptr;
  int r = sd_bus_message_peek_type(m, &type, &contents);
  if (r <= 0) return r < 0 ? r : -EBADMSG;
  if (type == 'a' || type == 'r' || type == 'v' || type == 'e') {
    return ReadContainer(m, type, contents, out);
  }
  out.type = type;
  union {
    const char* s;
    uint8_t y;
    int b;
    int16_t n;
    uint16_t q;
    int32_t i;
    uint32_t u;
    int64_t x;
    uint64_t t;
    double d;
    int h;
  } v{};
  r = sd_bus_message_read_basic(m, type, &v);
  if (r < 0) return r;
  switch (type) {
    case 's':
    case 'o':
    case 'g':
      out.str = v.s;
      break;
    case 'y':
      out.u = v.y;
      break;
    case 'b':
      out.b = v.b != 0;
      break;
    case 'n':
      out.i = v.n;
      break;
    case 'q':
      out.u = v.q;
      break;
    case 'i':
      out.i = v.i;
      break;
    case 'u':
      out.u = v.u;
      break;
    case 'x':
      out.i = v.x;
      break;
    case 't':
      out.u = v.t;
      break;
    default:
      break;
  }
  return 0;
}

using Properties = std::map<std::string, Value>;

class Bus {
 public:
  static tl::expected<std::unique_ptr<Bus>, std::string> Connect(const std::string& address) {
    std::unique_ptr<Bus> bus(new Bus());
    int r = sd_bus_new(&bus->bus_);
    if (r >= 0) r = sd_bus_set_address(bus->bus_, address.c_str());
    if (r >= 0) r = sd_bus_set_bus_client(bus->bus_, 1);
    if (r >= 0) r = sd_bus_start(bus->bus_);
    if (r < 0) return tl::make_unexpected("connecting to " + address + ": " + std::strerror(-r));
    return bus;
  }
  ~Bus() { sd_bus_flush_close_unref(bus_); }

  tl::expected<void, std::string> Reload() {
    return Call(
        "Reload", [](sd_bus_message*) { return 0; }, [](sd_bus_message*) { return 0; });
  }
  tl::expected<std::string, std::string> LoadUnit(const std::string& name) {
    std::string path;
    auto ok = Call(
        "LoadUnit", [&](sd_bus_message* m) { return sd_bus_message_append(m, "s", name.c_str()); },
        [&](sd_bus_message* reply) {
          const char* p = nullptr;
          int r = sd_bus_message_read(reply, "o", &p);
          if (r >= 0) path = p;
          return r;
        });
    if (!ok) return tl::make_unexpected(ok.error());
    return path;
  }
  // Manager.DumpUnitsMatchingPatterns: systemd's own text dump of the named units.
  tl::expected<std::string, std::string> Dump(const std::vector<std::string>& patterns) {
    std::string text;
    auto ok = Call(
        "DumpUnitsMatchingPatterns",
        [&](sd_bus_message* m) {
          int r = sd_bus_message_open_container(m, 'a', "s");
          for (const auto& p : patterns) {
            if (r >= 0) r = sd_bus_message_append(m, "s", p.c_str());
          }
          return r < 0 ? r : sd_bus_message_close_container(m);
        },
        [&](sd_bus_message* reply) {
          const char* s = nullptr;
          int r = sd_bus_message_read(reply, "s", &s);
          if (r >= 0) text = s;
          return r;
        });
    if (!ok) return tl::make_unexpected(ok.error());
    return text;
  }
  tl::expected<Properties, std::string> GetAll(const std::string& path,
                                               const std::string& interface) {
    sd_bus_message* reply = nullptr;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = sd_bus_call_method(bus_, "org.freedesktop.systemd1", path.c_str(),
                               "org.freedesktop.DBus.Properties", "GetAll", &error, &reply, "s",
                               interface.c_str());
    Properties props;
    if (r >= 0) r = sd_bus_message_enter_container(reply, 'a', "{sv}");
    while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
      const char* name = nullptr;
      r = sd_bus_message_read(reply, "s", &name);
      Value v;
      if (r >= 0) r = ReadValue(reply, v);
      if (r >= 0) r = sd_bus_message_exit_container(reply);
      if (r >= 0) props[name] = std::move(v);
    }
    std::string message = r < 0 ? (error.message ? error.message : std::strerror(-r)) : "";
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    if (r < 0) return tl::make_unexpected("GetAll " + interface + " on " + path + ": " + message);
    return props;
  }

 private:
  Bus() = default;
  template <typename Append, typename Read>
  tl::expected<void, std::string> Call(const char* method, Append append, Read read) {
    sd_bus_message* m = nullptr;
    sd_bus_message* reply = nullptr;
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r = sd_bus_message_new_method_call(bus_, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", method);
    if (r >= 0) r = append(m);
    if (r >= 0) r = sd_bus_call(bus_, m, 120'000'000, &error, &reply);
    if (r >= 0) r = read(reply);
    std::string message = r < 0 ? (error.message ? error.message : std::strerror(-r)) : "";
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
    sd_bus_message_unref(m);
    if (r < 0) return tl::make_unexpected(std::string(method) + ": " + message);
    return {};
  }
  sd_bus* bus_ = nullptr;
};

// ---------------------------------------------------------------------------------------
// What systemd loaded for one unit.

struct LoadedView {
  std::string name;
  Properties unit;                          // org.freedesktop.systemd1.Unit
  Properties service;                       // org.freedesktop.systemd1.Service (services)
  std::map<std::string, std::string> dump;  // "StandardOutputFileToAppend" -> path, ...
  bool is_service() const { return name.ends_with(".service"); }
};

const Value kMissing{};

const Value& Prop(const Properties& p, const std::string& key) {
  auto it = p.find(key);
  return it == p.end() ? kMissing : it->second;
}

std::vector<std::string> Strings(const Value& v) {
  std::vector<std::string> out;
  for (const auto& item : v.items) out.push_back(item.str);
  return out;
}

// The "Standard*File*" and "PermissionsStartOnly" lines of systemd's dump, per unit: D-Bus in
// systemd 252 carries the kind of a file stream ("append") but not its path, and has no
// PermissionsStartOnly property.
std::map<std::string, std::map<std::string, std::string>> ParseDump(const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> out;
  std::string unit;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("-> Unit ")) {
      unit = line.substr(8);
      if (!unit.empty() && unit.back() == ':') unit.pop_back();
      continue;
    }
    const size_t colon = line.find(": ");
    if (unit.empty() || !line.starts_with("\t") || colon == std::string::npos) continue;
    const std::string key = line.substr(1, colon - 1);
    if ((key.starts_with("Standard") && key.find("File") != std::string::npos) ||
        key == "PermissionsStartOnly") {
      out[unit][key] = line.substr(colon + 2);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The invariants, independent of the policy's code: only the Policy's data is shared.

struct Finding {
  std::string invariant;  // stable id, e.g. "exec-flags"
  std::string property;   // the D-Bus property (or dump line) it concerns
  std::string detail;
};

struct Identity {
  uid_t uid = static_cast<uid_t>(-1);
  std::set<gid_t> gids;
};

// Names and ids from the unit root's /etc/passwd and /etc/group.
struct Accounts {
  std::map<std::string, std::pair<uid_t, gid_t>> users;
  std::map<std::string, gid_t> groups;
  std::map<std::string, std::set<std::string>> members;  // group -> users

  static Accounts Read(const std::string& root) {
    Accounts a;
    auto fields = [](const std::string& line) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ':');) f.push_back(x);
      return f;
    };
    std::ifstream passwd(root + "/etc/passwd");
    for (std::string line; std::getline(passwd, line);) {
      auto f = fields(line);
      if (f.size() >= 4) {
        a.users[f[0]] = {static_cast<uid_t>(std::stoul(f[2])),
                         static_cast<gid_t>(std::stoul(f[3]))};
      }
    }
    std::ifstream group(root + "/etc/group");
    for (std::string line; std::getline(group, line);) {
      auto f = fields(line);
      if (f.size() >= 3) {
        a.groups[f[0]] = static_cast<gid_t>(std::stoul(f[2]));
        if (f.size() >= 4) {
          std::stringstream ss(f[3]);
          for (std::string u; std::getline(ss, u, ',');) a.members[f[0]].insert(u);
        }
      }
    }
    return a;
  }

  // The unit's credentials as systemd would set them (user, primary group, Group=,
  // SupplementaryGroups=, and the user's memberships), or nullopt for an unknown user.
  std::optional<Identity> For(const std::string& user, const std::string& group,
                              const std::vector<std::string>& supplementary) const {
    auto u = users.find(user);
    if (u == users.end()) return std::nullopt;
    Identity id;
    id.uid = u->second.first;
    id.gids.insert(u->second.second);
    for (const auto& [g, users_in] : members) {
      if (users_in.count(user) > 0) id.gids.insert(groups.at(g));
    }
    std::vector<std::string> named = supplementary;
    if (!group.empty()) named.push_back(group);
    for (const auto& g : named) {
      if (auto it = groups.find(g); it != groups.end()) id.gids.insert(it->second);
    }
    return id;
  }
};

// Whether `who` may `bit` (4 read, 2 write, 1 search) the object, by mode bits (no ACLs are
// set in the unit root) and the kernel's order: owner bits, else group bits, else others'.
bool Permits(const struct stat& st, const Identity& who, unsigned bit) {
  if (st.st_uid == who.uid) return (st.st_mode & (bit << 6)) != 0;
  if (who.gids.count(st.st_gid) > 0) return (st.st_mode & (bit << 3)) != 0;
  return (st.st_mode & bit) != 0;
}

// Whether the unit's own user could open `path` in the unit root itself, and could not
// redirect it: no "." or ".." components, no symbolic link on the way, no directory the user
// could write (or owns), every directory searchable, and the file, when it exists, a regular
// file with one link that the user may read (or write). "" when so, else why not.
std::string UserCouldOpen(const std::string& root, const std::string& path, const Identity& who,
                          bool write) {
  if (!path.starts_with("/")) return "'" + path + "' is not absolute";
  std::string prefix;
  std::stringstream ss(path.substr(1));
  std::vector<std::string> parts;
  for (std::string p; std::getline(ss, p, '/');) parts.push_back(p);
  struct stat st {};
  if (lstat(root.c_str(), &st) != 0) return "cannot stat the unit root";
  for (size_t k = 0; k < parts.size(); ++k) {
    const bool last = k + 1 == parts.size();
    if (parts[k] == "." || parts[k] == "..") return "'" + path + "' has a '.' or '..' component";
    if (parts[k].empty()) continue;
    // The directory holding this component: searchable, and not the user's to change.
    if (!Permits(st, who, 1)) return (prefix.empty() ? "/" : prefix) + " is not searchable";
    if (st.st_uid == who.uid || Permits(st, who, 2)) {
      return (prefix.empty() ? "/" : prefix) + " is writable by the unit's user";
    }
    prefix += "/" + parts[k];
    if (lstat((root + prefix).c_str(), &st) != 0) return "";  // absent: nothing is opened
    if (S_ISLNK(st.st_mode)) return prefix + " is a symbolic link";
    if (!last && !S_ISDIR(st.st_mode)) return prefix + " is not a directory";
  }
  if (!S_ISREG(st.st_mode)) return path + " is not a regular file";
  if (st.st_nlink > 1) return path + " has more than one link";
  if (!Permits(st, who, write ? 2 : 4)) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return path + " (owner " + std::to_string(st.st_uid) + ", group " + std::to_string(st.st_gid) +
           ", mode " + mode + ") is not " + (write ? "writable" : "readable") +
           " by the unit's user";
  }
  return "";
}

bool Beneath(const std::string& path, const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    if (path.starts_with(d + "/")) return true;
  }
  return false;
}

const std::map<std::string, int>& CapabilityNumbers() {
  static const std::map<std::string, int> caps = {{"CAP_CHOWN", 0},
                                                  {"CAP_DAC_OVERRIDE", 1},
                                                  {"CAP_DAC_READ_SEARCH", 2},
                                                  {"CAP_FOWNER", 3},
                                                  {"CAP_FSETID", 4},
                                                  {"CAP_KILL", 5},
                                                  {"CAP_SETGID", 6},
                                                  {"CAP_SETUID", 7},
                                                  {"CAP_SETPCAP", 8},
                                                  {"CAP_LINUX_IMMUTABLE", 9},
                                                  {"CAP_NET_BIND_SERVICE", 10},
                                                  {"CAP_NET_BROADCAST", 11},
                                                  {"CAP_NET_ADMIN", 12},
                                                  {"CAP_NET_RAW", 13},
                                                  {"CAP_IPC_LOCK", 14},
                                                  {"CAP_IPC_OWNER", 15},
                                                  {"CAP_SYS_MODULE", 16},
                                                  {"CAP_SYS_RAWIO", 17},
                                                  {"CAP_SYS_CHROOT", 18},
                                                  {"CAP_SYS_PTRACE", 19},
                                                  {"CAP_SYS_PACCT", 20},
                                                  {"CAP_SYS_ADMIN", 21},
                                                  {"CAP_SYS_BOOT", 22},
                                                  {"CAP_SYS_NICE", 23},
                                                  {"CAP_SYS_RESOURCE", 24},
                                                  {"CAP_SYS_TIME", 25},
                                                  {"CAP_SYS_TTY_CONFIG", 26},
                                                  {"CAP_MKNOD", 27},
                                                  {"CAP_LEASE", 28},
                                                  {"CAP_AUDIT_WRITE", 29},
                                                  {"CAP_AUDIT_CONTROL", 30},
                                                  {"CAP_SETFCAP", 31},
                                                  {"CAP_MAC_OVERRIDE", 32},
                                                  {"CAP_MAC_ADMIN", 33},
                                                  {"CAP_SYSLOG", 34},
                                                  {"CAP_WAKE_ALARM", 35},
                                                  {"CAP_BLOCK_SUSPEND", 36},
                                                  {"CAP_AUDIT_READ", 37},
                                                  {"CAP_PERFMON", 38},
                                                  {"CAP_BPF", 39},
                                                  {"CAP_CHECKPOINT_RESTORE", 40}};
  return caps;
}

std::string CapabilityNames(uint64_t mask) {
  std::string out;
  for (const auto& [name, bit] : CapabilityNumbers()) {
    if ((mask >> bit) & 1) out += (out.empty() ? "" : " ") + name;
  }
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(mask));
  return std::string(hex) + (out.empty() ? "" : " (" + out + ")");
}

// What a unit of each kind gets from systemd without asking (DefaultDependencies=yes adds
// Before= and Conflicts= shutdown.target): read from reference units loaded alongside.
struct Implicit {
  std::map<std::string, std::set<std::string>> deps;  // property -> names
};

struct OracleContext {
  Policy policy;
  std::string root;
  Accounts accounts;
  std::map<std::pair<bool, bool>, Implicit> implicit;  // (service, DefaultDependencies)
};

constexpr uint64_t kInfinity = UINT64_MAX;

const std::vector<std::string> kDependencyProperties = {
    "Before", "Conflicts", "OnFailure", "OnSuccess", "Upholds", "PropagatesReloadTo"};
const std::vector<std::string> kExecProperties = {
    "ExecConditionEx", "ExecStartPreEx", "ExecStartEx",   "ExecStartPostEx",
    "ExecReloadEx",    "ExecStopEx",     "ExecStopPostEx"};

// Allow-listed by the policy's data: PREFIX[a-z0-9][a-z0-9-]*.service or an extra unit, and
// never the updater's own unit.
bool AllowListed(const Policy& p, const std::string& name) {
  if (name == p.self_unit) return false;
  if (p.extra_units.count(name) > 0) return true;
  if (!name.starts_with(p.unit_prefix) || !name.ends_with(".service")) return false;
  const std::string rest =
      name.substr(p.unit_prefix.size(), name.size() - p.unit_prefix.size() - 8);
  if (rest.empty() || rest.front() == '-') return false;
  return rest.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
}

std::vector<Finding> CheckLoadedView(const OracleContext& ctx, const LoadedView& v) {
  std::vector<Finding> f;
  auto add = [&f](std::string inv, std::string prop, std::string detail) {
    f.push_back({std::move(inv), std::move(prop), std::move(detail)});
  };
  const Policy& p = ctx.policy;
  // --- what was loaded
  const std::string load = Prop(v.unit, "LoadState").str;
  if (load != "loaded") {
    add("load-state", "LoadState", "systemd says '" + load + "' for a unit the policy accepts");
    return f;
  }
  const std::string fragment = Prop(v.unit, "FragmentPath").str;
  if (fragment != p.unit_dir + "/" + v.name) {
    add("fragment", "FragmentPath", "'" + fragment + "', not the file written");
  }
  for (const auto& d : Strings(Prop(v.unit, "DropInPaths"))) {
    add("drop-in", "DropInPaths", "systemd also loaded " + d);
  }
  if (const std::string source = Prop(v.unit, "SourcePath").str; !source.empty()) {
    add("fragment", "SourcePath", "'" + source + "'");
  }
  // --- acting on other units
  const bool default_deps = Prop(v.unit, "DefaultDependencies").b;
  const auto implicit = ctx.implicit.find({v.is_service(), default_deps});
  for (const auto& prop : kDependencyProperties) {
    for (const auto& other : Strings(Prop(v.unit, prop))) {
      const bool given = implicit != ctx.implicit.end() && implicit->second.deps.count(prop) > 0 &&
                         implicit->second.deps.at(prop).count(other) > 0;
      if (!given && !AllowListed(p, other)) {
        add("dependency", prop, other + " is not an allow-listed unit");
      }
    }
  }
  if (Prop(v.unit, "RefuseManualStop").b) {
    add("manual-stop", "RefuseManualStop", "the unit refuses a stop job");
  }
  if (Prop(v.unit, "StartLimitIntervalUSec").u == 0 || Prop(v.unit, "StartLimitBurst").u == 0) {
    add("start-limit", "StartLimitIntervalUSec/StartLimitBurst",
        std::to_string(Prop(v.unit, "StartLimitIntervalUSec").u) + " us / " +
            std::to_string(Prop(v.unit, "StartLimitBurst").u) + ": no restart rate limit");
  }
  if (!v.is_service()) return f;
  const Properties& s = v.service;

  // --- identity
  const std::string user = Prop(s, "User").str;
  const std::string group = Prop(s, "Group").str;
  const std::vector<std::string> supplementary = Strings(Prop(s, "SupplementaryGroups"));
  if (user.empty() || user == "root" || user == "0") {
    add("user", "User", "'" + user + "': the service runs as root");
  } else if (user == p.daemon_user) {
    add("user", "User", "'" + user + "' is the updater daemon's user");
  } else if (p.unit_users.count(user) == 0) {
    add("user", "User", "'" + user + "' is not in the policy's unit users");
  }
  if (Prop(s, "DynamicUser").b) add("user", "DynamicUser", "a user allocated by systemd");
  if (p.unit_groups.count(group) == 0 || group == p.daemon_group) {
    add("group", "Group", "'" + group + "' is not in the policy's unit groups");
  }
  helper::UnitAllowance allowance;
  if (auto it = p.allowances.find(v.name); it != p.allowances.end()) allowance = it->second;
  for (const auto& g : supplementary) {
    if (allowance.supplementary_groups.count(g) == 0 || g == "root" || g == "0") {
      add("group", "SupplementaryGroups", "'" + g + "' is not granted to " + v.name);
    }
  }
  const bool nnp = Prop(s, "NoNewPrivileges").b;
  if (!nnp && !allowance.may_drop_no_new_privileges) {
    add("no-new-privileges", "NoNewPrivileges", "false, and the allowance does not waive it");
  }
  uint64_t allowed_caps = 0;
  for (const auto& c : allowance.capabilities) {
    if (auto it = CapabilityNumbers().find(c); it != CapabilityNumbers().end()) {
      allowed_caps |= 1ULL << it->second;
    }
  }
  const uint64_t ambient = Prop(s, "AmbientCapabilities").u;
  if ((ambient & ~allowed_caps) != 0) {
    add("capabilities", "AmbientCapabilities", CapabilityNames(ambient & ~allowed_caps));
  }
  // With NoNewPrivileges the bounding set grants nothing (no set-uid or file capabilities can
  // raise a non-root user's set); without it, it must hold the allowance at most.
  const uint64_t bounding = Prop(s, "CapabilityBoundingSet").u;
  if (!nnp && (bounding & ~allowed_caps) != 0) {
    add("capabilities", "CapabilityBoundingSet",
        CapabilityNames(bounding & ~allowed_caps) + " without NoNewPrivileges");
  }
  // --- commands
  for (const auto& prop : kExecProperties) {
    for (const auto& command : Prop(s, prop).items) {
      if (command.items.size() < 3) continue;
      const std::string& path = command.items[0].str;
      for (const auto& flag : Strings(command.items[2])) {
        const bool bad = flag == "privileged" || flag == "no-setuid" ||
                         (flag == "ambient" && allowance.capabilities.empty());
        if (bad) add("exec-flags", prop, path + " carries the flag '" + flag + "'");
      }
    }
  }
  // --- set-up as root
  if (auto it = v.dump.find("PermissionsStartOnly"); it == v.dump.end() || it->second != "no") {
    add("root-setup", "PermissionsStartOnly",
        it == v.dump.end() ? "not in systemd's dump"
                           : "'" + it->second + "': commands run as root");
  }
  for (const char* prop : {"RootDirectory", "RootImage", "PAMName"}) {
    if (!Prop(s, prop).str.empty()) add("root-setup", prop, "'" + Prop(s, prop).str + "'");
  }
  for (const char* prop :
       {"LoadCredential", "LoadCredentialEncrypted", "SetCredential", "SetCredentialEncrypted"}) {
    if (!Prop(s, prop).items.empty()) {
      add("root-setup", prop, std::to_string(Prop(s, prop).items.size()) + " credential(s)");
    }
  }
  // --- directories systemd creates, chowns, chmods and removes as root
  std::string bare = p.unit_prefix;
  if (!bare.empty() && bare.back() == '-') bare.pop_back();
  const std::string state_name = fs::path(p.state_dir).filename().string();
  const std::vector<std::string> root_opened_dirs = [&] {
    std::vector<std::string> d = p.environment_dirs;
    d.insert(d.end(), p.output_dirs.begin(), p.output_dirs.end());
    return d;
  }();
  const std::vector<std::pair<std::string, std::string>> kinds = {{"State", "/var/lib"},
                                                                  {"Cache", "/var/cache"},
                                                                  {"Logs", "/var/log"},
                                                                  {"Runtime", "/run"},
                                                                  {"Configuration", "/etc"}};
  for (const auto& [kind, base] : kinds) {
    const std::string prop = kind + "Directory";
    for (const auto& entry : Strings(Prop(s, prop))) {
      if (entry.empty() || entry.find('/') != std::string::npos || entry == "." || entry == "..") {
        add("directory-name", prop, "'" + entry + "' is not one path component");
      } else if (entry != bare && !entry.starts_with(p.unit_prefix)) {
        add("directory-name", prop, "'" + entry + "' is not under the prefix " + p.unit_prefix);
      }
      if (entry.starts_with(p.daemon_user) || entry.starts_with(state_name)) {
        add("directory-reserved", prop, "'" + entry + "' names the updater's own directories");
      }
      const std::string full = base + "/" + entry;
      const bool open_mode = kind != "Configuration" || (Prop(s, prop + "Mode").u & 022) != 0;
      for (const auto& d : root_opened_dirs) {
        if (open_mode && (d == full || d.starts_with(full + "/"))) {
          add("directory-handover", prop,
              full + " would hand the root-opened directory " + d + " to the unit's user");
        }
      }
    }
    for (const auto& link : Prop(s, prop + "Symlink").items) {
      add("directory-name", prop + "Symlink",
          "a symlink " + (link.items.empty() ? "" : link.items[0].str) + " created as root");
    }
  }
  // --- stoppable and bounded
  const std::string kill_mode = Prop(s, "KillMode").str;
  if (kill_mode != "control-group" && kill_mode != "mixed") {
    add("kill-mode", "KillMode", "'" + kill_mode + "': processes may outlive a stop");
  }
  if (!Prop(s, "SendSIGKILL").b) add("kill-signal", "SendSIGKILL", "no SIGKILL after the timeout");
  if (Prop(s, "FinalKillSignal").i != 9) {
    add("kill-signal", "FinalKillSignal", "signal " + std::to_string(Prop(s, "FinalKillSignal").i));
  }
  const uint64_t bound_usec = static_cast<uint64_t>(p.restart_timeout_ms) * 1000;
  for (const char* prop : {"TimeoutStopUSec", "TimeoutAbortUSec"}) {
    const uint64_t t = Prop(s, prop).u;
    if (t == 0 || t == kInfinity || t > bound_usec) {
      add("stop-timeout", prop,
          (t == kInfinity ? std::string("infinity") : std::to_string(t) + " us") +
              ": a stop may outlast the helper's wait of " + std::to_string(p.restart_timeout_ms) +
              " ms");
    }
  }
  for (const char* prop : {"TasksMax", "LimitNPROC", "LimitNOFILE"}) {
    if (Prop(s, prop).u == kInfinity) add("limits", prop, "infinity");
  }
  // --- files systemd opens as root for the unit
  const auto who = ctx.accounts.For(user, group, supplementary);
  auto check_file = [&](const std::string& prop, const std::string& path,
                        const std::vector<std::string>& dirs, bool write) {
    if (!Beneath(path, dirs)) {
      add("root-opened-file", prop, path + " is outside the policy's directories");
    } else if (!who) {
      add("root-opened-file", prop, path + ": the unit's user '" + user + "' is unknown");
    } else if (std::string why = UserCouldOpen(ctx.root, path, *who, write); !why.empty()) {
      add("root-opened-file", prop, why);
    }
  };
  const std::string input = Prop(s, "StandardInput").str;
  if (input == "file") {
    auto it = v.dump.find("StandardInputFile");
    if (it == v.dump.end()) {
      add("std-stream", "StandardInput", "a file whose path systemd's dump does not show");
    } else {
      check_file("StandardInput", it->second, p.environment_dirs, false);
    }
  } else if (input != "null") {
    add("std-stream", "StandardInput", "'" + input + "'");
  }
  static const std::set<std::string> kOutputs = {
      "inherit", "null", "journal", "kmsg", "journal+console", "kmsg+console"};
  for (const std::string stream : {"StandardOutput", "StandardError"}) {
    const std::string kind = Prop(s, stream).str;
    if (kind == "file" || kind == "append" || kind == "truncate") {
      const std::string key = stream + (kind == "file"     ? "File"
                                        : kind == "append" ? "FileToAppend"
                                                           : "FileToTruncate");
      auto it = v.dump.find(key);
      if (it == v.dump.end()) {
        add("std-stream", stream, "a file whose path systemd's dump does not show");
      } else {
        check_file(stream, it->second, p.output_dirs, true);
      }
    } else if (kOutputs.count(kind) == 0) {
      add("std-stream", stream, "'" + kind + "'");
    }
  }
  for (const auto& env : Prop(s, "EnvironmentFiles").items) {
    if (!env.items.empty())
      check_file("EnvironmentFiles", env.items[0].str, p.environment_dirs, false);
  }
  // --- logging as someone else
  const int64_t facility = Prop(s, "SyslogFacility").i;
  if (facility == 4 || facility == 10) {
    add("syslog-facility", "SyslogFacility", facility == 4 ? "auth" : "authpriv");
  }
  return f;
}

// ---------------------------------------------------------------------------------------
// Loading a batch of units into the testbed's systemd.

struct Candidate {
  std::string label;  // "fixture decnet-agent.service", "generated 17", "control kill-mode"
  std::string name;
  std::string content;
  std::optional<GeneratedUnit> generated;
  std::vector<std::pair<std::string, std::string>> extra_files;  // relative path, content
};

// Reference units: what systemd adds to a unit of each kind without being asked.
struct Reference {
  std::string name;
  bool service;
  bool default_deps;
  std::string content;
};

const std::vector<Reference>& References() {
  static const std::vector<Reference> refs = {
      {"decnet-oracle-ref.service", true, true,
       "[Service]\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\nExecStart=/bin/true\n"},
      {"decnet-oracle-refnd.service", true, false,
       "[Unit]\nDefaultDependencies=no\n[Service]\nUser=decnet\nGroup=decnet\n"
       "NoNewPrivileges=yes\nExecStart=/bin/true\n"},
      {"decnet-oracle-ref.target", false, true, "[Unit]\nDescription=ref\n"},
      {"decnet-oracle-refnd.target", false, false, "[Unit]\nDefaultDependencies=no\n"}};
  return refs;
}

constexpr const char* kHolder = "decnet-oracle-hold.target";

class Loader {
 public:
  Loader(const Testbed& testbed, Bus& bus) : testbed_(testbed), bus_(bus) {}

  // Writes the units (and the references), reloads once, and reads every unit back. The
  // units are kept loaded for the dump by a target that wants them all, itself wanted by
  // multi-user.target (so a reload loads it).
  tl::expected<std::map<std::string, LoadedView>, std::string> Load(
      const std::vector<Candidate>& units, OracleContext& ctx) {
    const fs::path dir = testbed_.unit_dir();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir)) fs::remove_all(entry.path(), ec);
    std::vector<std::string> names;
    auto write = [&](const fs::path& rel, const std::string& content) {
      fs::create_directories((dir / rel).parent_path());
      std::ofstream(dir / rel, std::ios::binary | std::ios::trunc) << content;
    };
    for (const auto& r : References()) {
      write(r.name, r.content);
      names.push_back(r.name);
    }
    for (const auto& c : units) {
      write(c.name, c.content);
      for (const auto& [rel, content] : c.extra_files) write(rel, content);
      names.push_back(c.name);
    }
    std::string holder = "[Unit]\nDefaultDependencies=no\n";
    for (const auto& n : names) holder += "Wants=" + n + "\n";
    write(kHolder, holder);
    fs::create_directories(dir / "multi-user.target.wants");
    fs::create_symlink(ctx.policy.unit_dir + "/" + kHolder,
                       dir / "multi-user.target.wants" / kHolder, ec);
    if (auto ok = bus_.Reload(); !ok) return tl::make_unexpected(ok.error());

    auto dump = bus_.Dump(names);
    if (!dump) return tl::make_unexpected(dump.error());
    auto files = ParseDump(*dump);
    std::map<std::string, LoadedView> out;
    for (const auto& n : names) {
      auto path = bus_.LoadUnit(n);
      if (!path) return tl::make_unexpected(path.error());
      LoadedView v;
      v.name = n;
      auto unit = bus_.GetAll(*path, "org.freedesktop.systemd1.Unit");
      if (!unit) return tl::make_unexpected(unit.error());
      v.unit = std::move(*unit);
      if (v.is_service()) {
        auto service = bus_.GetAll(*path, "org.freedesktop.systemd1.Service");
        if (!service) return tl::make_unexpected(service.error());
        v.service = std::move(*service);
      }
      v.dump = files[n];
      out[n] = std::move(v);
    }
    // What systemd gives every unit of a kind: the references' dependencies.
    for (const auto& r : References()) {
      Implicit& imp = ctx.implicit[{r.service, r.default_deps}];
      for (const auto& prop : kDependencyProperties) {
        for (const auto& n : Strings(Prop(out[r.name].unit, prop))) imp.deps[prop].insert(n);
      }
    }
    return out;
  }

 private:
  const Testbed& testbed_;
  Bus& bus_;
};

// How many loaded views had each kind of root-side set-up, so the log shows what the
// accepted units exercised.
void CountCoverage(const LoadedView& v, std::map<std::string, int>& n) {
  if (!v.is_service()) return;
  const Properties& s = v.service;
  for (const char* kind : {"State", "Cache", "Logs", "Runtime", "Configuration"}) {
    if (!Prop(s, std::string(kind) + "Directory").items.empty()) ++n["directories"];
  }
  if (!Prop(s, "EnvironmentFiles").items.empty()) ++n["environment-files"];
  for (const char* stream : {"StandardInput", "StandardOutput", "StandardError"}) {
    const std::string kind = Prop(s, stream).str;
    if (kind == "file" || kind == "append" || kind == "truncate") ++n["file-streams"];
  }
  for (const auto& prop : kExecProperties) {
    for (const auto& command : Prop(s, prop).items) {
      if (command.items.size() >= 3 && !command.items[2].items.empty()) ++n["exec-flags"];
    }
  }
  if (Prop(s, "AmbientCapabilities").u != 0) ++n["ambient-capabilities"];
  if (!Strings(Prop(v.unit, "OnFailure")).empty()) ++n["on-failure"];
}

std::string Report(const Candidate& c, const std::vector<Finding>& findings, uint64_t seed) {
  std::ostringstream out;
  out << c.label << ": " << c.name;
  if (c.generated) {
    out << " (seed " << seed << ", case " << c.generated->index
        << "; replay with DECNET_ORACLE_SEED=" << seed
        << " DECNET_ORACLE_CASE=" << c.generated->index << ")\n  traits:";
    for (const auto& t : c.generated->traits) out << " [" << t << "]";
  }
  out << "\n";
  for (const auto& f : findings) {
    out << "  [" << f.invariant << "] " << f.property << ": " << f.detail << "\n";
  }
  out << "  --- unit text ---\n" << Printable(c.content) << "\n  --- end ---\n";
  return out.str();
}

// The fixtures and generated units, each with the policy's verdict.
struct Judged {
  std::vector<Candidate> accepted;
  std::map<std::string, int> refusal_rules;  // first rule of each refused unit
  std::vector<std::string> refused_sample;
  std::vector<std::string> refused_fixtures;
  size_t generated = 0;
  size_t generated_accepted = 0;
};

Judged JudgeAll(const Policy& policy, const OracleRun& run) {
  Judged j;
  auto judge = [&](Candidate c) {
    const auto refusals = Decide(policy, c.name, c.content);
    if (refusals.empty()) {
      if (c.generated) ++j.generated_accepted;
      j.accepted.push_back(std::move(c));
      return;
    }
    const auto& first = refusals.front();
    ++j.refusal_rules[first.rule];
    if (!c.generated) {
      j.refused_fixtures.push_back(c.name + " (" + first.rule + ": " + first.message + ")");
    } else if (j.refused_sample.size() < 12) {
      j.refused_sample.push_back("case " + std::to_string(c.generated->index) + " refused by " +
                                 first.rule + " (line " + std::to_string(first.line) + ")");
    }
  };
  if (!run.only) {
    for (auto& f : helper::testing_support::LoadUnitFixtures(false)) {
      judge({"fixture", f.unit_name, f.content, std::nullopt, {}});
    }
  }
  for (size_t i = run.only.value_or(0); i < (run.only ? *run.only + 1 : run.units); ++i) {
    GeneratedUnit g = GenerateUnit(run.seed, i);
    ++j.generated;
    judge({"generated", g.name, g.content, g, {}});
  }
  return j;
}

// Splits the accepted units into batches whose names are distinct: the fixtures first, then
// the generated units by generator round.
std::vector<std::vector<Candidate>> Batches(const std::vector<Candidate>& accepted) {
  std::map<size_t, std::vector<Candidate>> by_round;
  for (const auto& c : accepted) {
    const size_t key = c.generated ? 1 + c.generated->index / kGeneratorRound : 0;
    by_round[key].push_back(c);
  }
  std::vector<std::vector<Candidate>> out;
  for (auto& [key, units] : by_round) {
    // Several generator rounds share a batch only when their names differ.
    std::vector<std::vector<Candidate>> split;
    for (auto& c : units) {
      bool placed = false;
      for (auto& b : split) {
        const bool clash =
            std::any_of(b.begin(), b.end(), [&](const Candidate& x) { return x.name == c.name; });
        if (!clash) {
          b.push_back(c);
          placed = true;
          break;
        }
      }
      if (!placed) split.push_back({c});
    }
    for (auto& b : split) out.push_back(std::move(b));
  }
  return out;
}

class AUnitOracle : public TestbedTest {
 protected:
  Testbed::Options TestbedOptions() const override {
    Testbed::Options o;
    o.name_prefix = "pd-oracle";
    if (root_) o.extra_nspawn_args = root_->NspawnBinds();
    return o;
  }
  void SetUp() override {
    auto root = UnitRoot::Get();
    ASSERT_TRUE(root) << root.error();
    root_ = *root;
    TestbedTest::SetUp();
    if (HasFatalFailure()) return;
    auto bus = Bus::Connect(testbed().bus_address());
    ASSERT_TRUE(bus) << bus.error();
    bus_ = std::move(*bus);
    ctx_.policy = OraclePolicy(root_->path());
    ctx_.root = root_->path();
    ctx_.accounts = Accounts::Read(root_->path());
  }
  void TearDown() override {
    bus_.reset();
    TestbedTest::TearDown();
  }

  const UnitRoot* root_ = nullptr;
  std::unique_ptr<Bus> bus_;
  OracleContext ctx_;
};

// A service within policy that the controls below each break in one way.
std::string ControlBase(const std::string& service_extra, const std::string& unit_extra = "") {
  return "[Unit]\nStartLimitIntervalSec=10s\nStartLimitBurst=5\n" + unit_extra +
         "[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\n"
         "ExecStart=/bin/sleep 1000\nTimeoutStopSec=10s\nLimitNPROC=64\nLimitNOFILE=1024\n"
         "TasksMax=64\n" +
         service_extra;
}

// The oracle's own checks, each shown to fire on a real systemd's view of a unit that breaks
// it (loaded without asking the policy), and silent on one that breaks nothing.
TEST_F(AUnitOracle, NamesTheBrokenInvariantOfEachControlUnitThatSystemdLoads) {
  struct Control {
    std::string invariant;
    std::string service_extra;
    std::string unit_extra = "";
    std::vector<std::pair<std::string, std::string>> extra_files = {};
  };
  const std::vector<Control> controls = {
      {"", ""},
      {"",
       "StandardOutput=append:/var/log/decnet-root/new.log\nEnvironmentFile=/etc/decnet/agent.env\n"
       "StateDirectory=decnet-x\nLogsDirectory=decnet\n"},
      {"load-state", "ExecStartPre=|/bin/true\n"},
      {"drop-in", "", "", {{"NAME.d/x.conf", "[Service]\nExecStartPre=+/bin/true\n"}}},
      {"user", "User=root\n"},
      {"user", "User=\n"},
      {"user", "User=decnet-updater\n"},
      {"user", "DynamicUser=yes\n"},
      {"group", "Group=root\n"},
      {"group", "SupplementaryGroups=root\n"},
      {"no-new-privileges", "NoNewPrivileges=no\nCapabilityBoundingSet=\n"},
      {"capabilities", "AmbientCapabilities=CAP_SYS_ADMIN\n"},
      {"capabilities", "NoNewPrivileges=no\nCapabilityBoundingSet=CAP_SYS_ADMIN\n"},
      {"exec-flags", "ExecStartPre=+/bin/true\n"},
      {"exec-flags", "ExecStartPre=\"+/bin/true\"\n"},
      {"exec-flags", "ExecStopPost=\\x2b/bin/true\n"},
      {"exec-flags", "ExecStartPre=!/bin/true\n"},
      {"exec-flags", "ExecStartPre=!!/bin/true\n"},
      {"root-setup", "PermissionsStartOnly=yes\nExecStartPre=/bin/true\n"},
      {"root-setup", "RootDirectory=/tmp\n"},
      {"root-setup", "PAMName=login\n"},
      {"root-setup", "LoadCredential=a:/etc/shadow\n"},
      {"directory-name", "StateDirectory=decnet-a/b\n"},
      {"directory-name", "CacheDirectory=other\n"},
      {"directory-name", "LogsDirectory=decnet-a:decnet-b\n"},
      {"directory-reserved", "StateDirectory=decnet-updater\n"},
      {"directory-reserved", "RuntimeDirectory=decnet-update-helper-x\n"},
      {"directory-handover", "LogsDirectory=decnet-root\n"},
      {"kill-mode", "KillMode=none\n"},
      {"kill-mode", "KillMode=process\n"},
      {"kill-signal", "SendSIGKILL=no\n"},
      {"kill-signal", "FinalKillSignal=SIGCONT\n"},
      {"stop-timeout", "TimeoutStopSec=infinity\n"},
      {"stop-timeout", "TimeoutStopSec=1h\n"},
      {"stop-timeout", "TimeoutAbortSec=infinity\n"},
      {"manual-stop", "", "RefuseManualStop=yes\n"},
      {"start-limit", "", "StartLimitIntervalSec=0\n"},
      {"start-limit", "", "StartLimitBurst=0\n"},
      {"limits", "TasksMax=infinity\n"},
      {"limits", "LimitNPROC=infinity\n"},
      {"limits", "LimitNOFILE=infinity\n"},
      {"dependency", "", "Before=network.target\n"},
      {"dependency", "", "Conflicts=docker.service\n"},
      {"dependency", "", "OnFailure=reboot.target\n"},
      {"dependency", "", "OnSuccess=decnet-updater.service\n"},
      {"dependency", "", "Upholds=ssh.service\n"},
      {"dependency", "", "PropagatesReloadTo=dbus.service\n"},
      {"root-opened-file", "StandardOutput=append:/etc/shadow\n"},
      {"root-opened-file", "StandardError=truncate:/var/log/decnet-root/link.log\n"},
      {"root-opened-file", "StandardOutput=append:/var/log/decnet-root/existing.log\n"},
      {"root-opened-file", "StandardOutput=file:/var/log/decnet/x.log\n"},
      {"root-opened-file", "StandardInput=file:/etc/decnet/secret.env\n"},
      {"root-opened-file", "EnvironmentFile=/etc/decnet/updater/worker.key\n"},
      {"root-opened-file", "EnvironmentFile=-/etc/decnet/link.env\n"},
      {"root-opened-file", "EnvironmentFile=/etc/decnet/linkdir/shadow\n"},
      {"root-opened-file", "EnvironmentFile=/etc/shadow\n"},
      {"std-stream", "StandardInput=tty\n"},
      {"std-stream", "StandardOutput=socket\n"},
      {"syslog-facility", "SyslogFacility=authpriv\n"},
  };
  std::vector<Candidate> units;
  for (size_t k = 0; k < controls.size(); ++k) {
    const auto& c = controls[k];
    const std::string name = "decnet-ctl-" + std::to_string(k) + ".service";
    std::vector<std::pair<std::string, std::string>> extra;
    for (const auto& [rel, content] : c.extra_files) {
      extra.push_back({name + rel.substr(4), content});  // "NAME.d/x.conf"
    }
    units.push_back({"control " + (c.invariant.empty() ? std::string("clean") : c.invariant), name,
                     ControlBase(c.service_extra, c.unit_extra), std::nullopt, extra});
  }
  Loader loader(testbed(), *bus_);
  auto views = loader.Load(units, ctx_);
  ASSERT_TRUE(views) << views.error();
  for (size_t k = 0; k < controls.size(); ++k) {
    const auto findings = CheckLoadedView(ctx_, views->at(units[k].name));
    const std::string report = Report(units[k], findings, 0);
    if (controls[k].invariant.empty()) {
      EXPECT_TRUE(findings.empty()) << "a clean control was flagged:\n" << report;
    } else {
      const bool named = std::any_of(findings.begin(), findings.end(), [&](const Finding& f) {
        return f.invariant == controls[k].invariant;
      });
      EXPECT_TRUE(named) << "expected [" << controls[k].invariant << "]:\n" << report;
    }
  }
  for (const auto& r : References()) {
    const auto findings = CheckLoadedView(ctx_, views->at(r.name));
    EXPECT_TRUE(findings.empty()) << Report({"reference", r.name, r.content, std::nullopt, {}},
                                            findings, 0);
  }
}

TEST_F(AUnitOracle, FindsEveryUnitThePolicyAcceptsWithinPolicyOnceARealSystemdHasLoadedIt) {
  const OracleRun run = RunFromEnvironment();
  const Judged judged = JudgeAll(ctx_.policy, run);
  std::printf("oracle: seed %llu, %zu generated units, %zu accepted (%zu fixtures and generated)\n",
              static_cast<unsigned long long>(run.seed), judged.generated,
              judged.generated_accepted, judged.accepted.size());
  for (const auto& f : judged.refused_fixtures) std::printf("  fixture refused: %s\n", f.c_str());
  for (const auto& s : judged.refused_sample) std::printf("  sample: %s\n", s.c_str());
  for (const auto& [rule, n] : judged.refusal_rules) {
    std::printf("  refused by %-28s %d\n", rule.c_str(), n);
  }

  std::map<std::string, std::vector<std::string>> by_invariant;  // -> "name/case"
  std::map<std::string, int> coverage;
  size_t reported = 0;
  size_t violating = 0;
  Loader loader(testbed(), *bus_);
  for (const auto& batch : Batches(judged.accepted)) {
    auto views = loader.Load(batch, ctx_);
    ASSERT_TRUE(views) << views.error();
    for (const auto& c : batch) {
      const LoadedView& view = views->at(c.name);
      CountCoverage(view, coverage);
      const auto findings = CheckLoadedView(ctx_, view);
      if (findings.empty()) continue;
      ++violating;
      std::set<std::string> seen;
      for (const auto& f : findings) {
        if (seen.insert(f.invariant).second) {
          by_invariant[f.invariant].push_back(
              c.generated ? "case " + std::to_string(c.generated->index) : c.name);
        }
      }
      if (++reported <= 40) ADD_FAILURE() << Report(c, findings, run.seed);
    }
  }
  std::printf("oracle: loaded views seen:");
  for (const auto& [what, n] : coverage) std::printf(" %s %d;", what.c_str(), n);
  std::printf("\noracle: %zu of %zu accepted units load outside policy\n", violating,
              judged.accepted.size());
  for (const auto& [inv, where] : by_invariant) {
    std::string list;
    for (size_t k = 0; k < where.size() && k < 20; ++k) list += (k ? ", " : "") + where[k];
    std::printf("  [%s] %zu unit(s): %s%s\n", inv.c_str(), where.size(), list.c_str(),
                where.size() > 20 ? ", ..." : "");
  }
  EXPECT_EQ(violating, 0u) << "accepted units that systemd loads outside policy (first 40 above)";
  if (!run.only) {
    EXPECT_GE(judged.generated, run.units);
    // An oracle that sees no accepted unit proves nothing.
    EXPECT_GE(judged.generated_accepted * 10, judged.generated)
        << "fewer than one generated unit in ten is accepted: the generator no longer exercises "
           "the policy's accepting side";
  }
}

// ---------------------------------------------------------------------------------------
// systemd-analyze security: whether any unit the real decision accepts runs as root.

enum class Analyzed { kRoot, kNotRoot, kNoVerdict };

// Runs `systemd-analyze security --offline=true` on the files and reads, for each unit, the
// verdict of its User=/DynamicUser= line.
std::map<std::string, std::pair<Analyzed, std::string>> AnalyzeRunsAsRoot(
    const std::vector<std::string>& paths) {
  std::string cmd = "systemd-analyze security --offline=true --no-pager";
  for (const auto& p : paths) cmd += " '" + p + "'";
  cmd += " 2>&1";
  std::string output;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
    pclose(pipe);
  }
  std::map<std::string, std::pair<Analyzed, std::string>> out;
  std::istringstream in(output);
  std::string section;
  const std::string marker = "Overall exposure level for ";
  for (std::string line; std::getline(in, line);) {
    section += line + "\n";
    const size_t at = line.find(marker);
    if (at == std::string::npos) continue;
    std::string name = line.substr(at + marker.size());
    name = name.substr(0, name.find(':'));
    Analyzed v = Analyzed::kNoVerdict;
    if (section.find("Service runs as root user") != std::string::npos) {
      v = Analyzed::kRoot;
    } else if (section.find("Service runs under") != std::string::npos) {
      v = Analyzed::kNotRoot;
    }
    out[name] = {v, section};
    section.clear();
  }
  for (const auto& p : paths) {
    const std::string name = fs::path(p).filename().string();
    if (out.count(name) == 0) out[name] = {Analyzed::kNoVerdict, output};
  }
  return out;
}

TEST(AnAcceptedUnit, IsNeverRatedAsRunningAsRootBySystemdAnalyze) {
  auto root = UnitRoot::Get();
  ASSERT_TRUE(root) << root.error();
  const OracleRun run = RunFromEnvironment();
  const Judged judged = JudgeAll(OraclePolicy((*root)->path()), run);
  char tmpl[] = "/tmp/decnet-oracle-analyze-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path dir = tmpl;
  // The reader of systemd-analyze's answer, shown to tell root from not root.
  fs::create_directories(dir / "control");
  std::ofstream(dir / "control/decnet-root.service") << "[Service]\nExecStart=/bin/true\n";
  std::ofstream(dir / "control/decnet-user.service")
      << "[Service]\nUser=decnet\nExecStart=/bin/true\n";
  const auto controls = AnalyzeRunsAsRoot({(dir / "control/decnet-root.service").string(),
                                           (dir / "control/decnet-user.service").string()});
  EXPECT_EQ(controls.at("decnet-root.service").first, Analyzed::kRoot)
      << controls.at("decnet-root.service").second;
  EXPECT_EQ(controls.at("decnet-user.service").first, Analyzed::kNotRoot)
      << controls.at("decnet-user.service").second;
  size_t services = 0;
  size_t failures = 0;
  size_t batch_no = 0;
  for (const auto& batch : Batches(judged.accepted)) {
    const fs::path sub = dir / std::to_string(batch_no++);
    fs::create_directories(sub);
    std::vector<std::string> paths;
    for (const auto& c : batch) {
      if (!c.name.ends_with(".service")) continue;  // targets run nothing
      std::ofstream(sub / c.name, std::ios::binary) << c.content;
      paths.push_back((sub / c.name).string());
    }
    services += paths.size();
    const auto verdicts = AnalyzeRunsAsRoot(paths);
    for (const auto& c : batch) {
      if (!c.name.ends_with(".service")) continue;
      const auto& [verdict, output] = verdicts.at(c.name);
      if (verdict == Analyzed::kNotRoot) continue;
      ++failures;
      if (failures <= 20) {
        ADD_FAILURE() << Report(c,
                                {{"analyze-root", "User=/DynamicUser=",
                                  verdict == Analyzed::kRoot
                                      ? "systemd-analyze: the service runs as root"
                                      : "systemd-analyze gave no verdict"}},
                                run.seed)
                      << "--- systemd-analyze ---\n"
                      << output.substr(0, 4000);
      }
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::printf("analyze: %zu accepted services, %zu rated as root or unrated\n", services, failures);
  EXPECT_EQ(failures, 0u);
  if (!run.only) {
    EXPECT_GT(services, 0u);
  }
}

}  // namespace
}  // namespace decnet::test
