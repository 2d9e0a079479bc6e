// push, status and rollback: the command lines, the inventory, signals, and the report.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "fleet/commands.h"
#include "fleet/host_ops.h"
#include "fleet/inventory.h"
#include "fleet/report.h"
#include "fleet/rollout_plan.h"

namespace decnet::fleet {

namespace {

using nlohmann::json;

std::atomic<bool> g_stop{false};

extern "C" void OnStopSignal(int) { g_stop.store(true); }

// SIGINT and SIGTERM only set the stop flag while a plan runs (hosts in flight finish);
// SIGPIPE is ignored so a worker that hangs up mid-upload is an error, not a death.
class SignalScope {
 public:
  SignalScope() {
    g_stop.store(false);
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGPIPE, &old_pipe_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{}, old_pipe_{};
};

enum class Command { kPush, kStatus, kRollback };

struct Options {
  std::string inventory, decnet_hosts, pins;
  std::uint16_t updater_port = kDecnetUpdaterPort;
  std::vector<std::string> hosts;
  bool all = false;
  TlsFiles tls;
  std::size_t batch = 5, max_parallel = 5;
  std::optional<std::string> canary;
  std::string include_self;
  bool allow_downgrade = false, dry_run = false;
  std::string json_out;
  long timeout_s = 180, self_timeout_s = 60;
  std::string tarball;
};

constexpr char kPushUsage[] =
    "usage: decnet-rollout push (--inventory FILE | --decnet-hosts FILE|URL [--pins FILE]\n"
    "                            [--updater-port N]) (--host NAME ... | --all)\n"
    "         --cert MASTER.crt --key MASTER.key [--ca CA.crt]\n"
    "         [--batch N] [--max-parallel N] [--canary NAME] [--include-self SELF.tgz]\n"
    "         [--self-timeout SECONDS] [--allow-downgrade] [--dry-run] [--json FILE|-]\n"
    "         [--timeout SECONDS] FILE.tgz\n"
    "A canary host first, then batches; halts at the first failure. Exit 0 all updated,\n"
    "1 any failure, 2 usage.\n";
constexpr char kStatusUsage[] =
    "usage: decnet-rollout status (--inventory FILE | --decnet-hosts FILE|URL [--pins FILE]\n"
    "                              [--updater-port N]) [--host NAME ... | --all]\n"
    "         --cert MASTER.crt --key MASTER.key [--ca CA.crt] [--max-parallel N]\n"
    "         [--json FILE|-] [--timeout SECONDS]\n"
    "Exit 0 every host answered, 1 any did not, 2 usage.\n";
constexpr char kRollbackUsage[] =
    "usage: decnet-rollout rollback (--inventory FILE | --decnet-hosts FILE|URL [--pins FILE]\n"
    "                                [--updater-port N]) (--host NAME ... | --all)\n"
    "         --cert MASTER.crt --key MASTER.key [--ca CA.crt] [--batch N] [--max-parallel N]\n"
    "         [--canary NAME] [--json FILE|-] [--timeout SECONDS]\n"
    "Halts at the first failure. Exit 0 all rolled back, 1 any failure, 2 usage.\n";

const char* UsageOf(Command c) {
  return c == Command::kPush ? kPushUsage : c == Command::kStatus ? kStatusUsage : kRollbackUsage;
}

int UsageError(Command c, const std::string& message) {
  std::fprintf(stderr, "decnet-rollout: %s\n%s", message.c_str(), UsageOf(c));
  return 2;
}

bool ParseCount(std::string_view text, long max, long* out) {
  if (text.empty() || text.size() > 6) return false;
  long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > max) return false;
  *out = v;
  return true;
}

// Parses the arguments of `c`; returns 0 to go on, else the exit code (help: 0 via *done).
int ParseArgs(Command c, Args args, Options& o, bool* help) {
  const bool push = c == Command::kPush, rollback = c == Command::kRollback;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= args.size()) return false;
      out = std::string(args[++i]);
      return true;
    };
    auto count = [&](long max, long* out) -> bool {
      return i + 1 < args.size() && ParseCount(args[++i], max, out);
    };
    long n = 0;
    std::string v;
    if (a == "--help" || a == "-h") {
      *help = true;
      return 0;
    } else if (a == "--inventory") {
      if (!value(o.inventory)) return UsageError(c, "--inventory needs a FILE");
    } else if (a == "--decnet-hosts") {
      if (!value(o.decnet_hosts)) return UsageError(c, "--decnet-hosts needs a FILE or URL");
    } else if (a == "--pins") {
      if (!value(o.pins)) return UsageError(c, "--pins needs a FILE");
    } else if (a == "--updater-port") {
      if (!count(65535, &n)) return UsageError(c, "--updater-port needs 1..65535");
      o.updater_port = static_cast<std::uint16_t>(n);
    } else if (a == "--host") {
      if (!value(v)) return UsageError(c, "--host needs a NAME");
      o.hosts.push_back(v);
    } else if (a == "--all") {
      o.all = true;
    } else if (a == "--cert") {
      if (!value(o.tls.cert)) return UsageError(c, "--cert needs a FILE");
    } else if (a == "--key") {
      if (!value(o.tls.key)) return UsageError(c, "--key needs a FILE");
    } else if (a == "--ca") {
      if (!value(o.tls.ca)) return UsageError(c, "--ca needs a FILE");
    } else if (a == "--json") {
      if (!value(o.json_out)) return UsageError(c, "--json needs a FILE or -");
    } else if (a == "--timeout") {
      if (!count(86400, &o.timeout_s)) return UsageError(c, "--timeout needs 1..86400 seconds");
    } else if (a == "--max-parallel") {
      if (!count(256, &n)) return UsageError(c, "--max-parallel needs 1..256");
      o.max_parallel = static_cast<std::size_t>(n);
    } else if ((push || rollback) && a == "--batch") {
      if (!count(100000, &n)) return UsageError(c, "--batch needs 1..100000");
      o.batch = static_cast<std::size_t>(n);
    } else if ((push || rollback) && a == "--canary") {
      if (!value(v)) return UsageError(c, "--canary needs a NAME");
      o.canary = v;
    } else if (push && a == "--include-self") {
      if (!value(o.include_self)) return UsageError(c, "--include-self needs SELF.tgz");
    } else if (push && a == "--self-timeout") {
      if (!count(3600, &o.self_timeout_s)) return UsageError(c, "--self-timeout needs 1..3600");
    } else if (push && a == "--allow-downgrade") {
      o.allow_downgrade = true;
    } else if (push && a == "--dry-run") {
      o.dry_run = true;
    } else if (push && !a.empty() && a[0] != '-' && o.tarball.empty()) {
      o.tarball = std::string(a);
    } else {
      return UsageError(c, "unexpected argument '" + Printable(a, 64) + "'");
    }
  }
  if (o.inventory.empty() == o.decnet_hosts.empty())
    return UsageError(c, "give exactly one of --inventory and --decnet-hosts");
  if (!o.pins.empty() && o.decnet_hosts.empty())
    return UsageError(c, "--pins goes with --decnet-hosts");
  if (c != Command::kStatus && o.hosts.empty() == !o.all)
    return UsageError(c, "give --host NAME (repeatable) or --all");
  if (c == Command::kStatus && !o.hosts.empty() && o.all)
    return UsageError(c, "--host and --all exclude each other");
  if (o.tls.cert.empty() || o.tls.key.empty())
    return UsageError(c, "--cert and --key are required");
  if (push && o.tarball.empty()) return UsageError(c, "name the release FILE.tgz");
  if (push && o.dry_run && !o.include_self.empty())
    return UsageError(c, "--dry-run does not take --include-self");
  return 0;
}

Result<std::string> ReadFile(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(ErrorCode::kNotFound, "inventory-file", "cannot read " + path);
  std::string out(max + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  if (out.size() > max)
    return Fail(ErrorCode::kMalformed, "inventory-file", path + " is too large");
  return out;
}

// DECNET's host list from a file or from its controller: http://HOST[:PORT][/PATH] (PATH
// defaults to /swarm/hosts), or https:// with the master's certificate, the chain verified
// (--ca, else the system's store) and the name checked.
Result<std::string> FetchDecnetHosts(const std::string& where, const ClientTls& tls,
                                     const Timeouts& timeouts) {
  const bool https = where.rfind("https://", 0) == 0;
  if (!https && where.rfind("http://", 0) != 0) return ReadFile(where, 16 << 20);
  std::string rest = where.substr(https ? 8 : 7);
  std::string path = "/swarm/hosts";
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    if (rest.size() > slash + 1) path = rest.substr(slash);
    rest.resize(slash);
  }
  std::string host = rest;
  std::uint16_t port = https ? 443 : 80;
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos && rest.find(']') == std::string::npos) {
    long p = 0;
    if (!ParseCount(rest.substr(colon + 1), 65535, &p))
      return Fail(ErrorCode::kMalformed, "inventory-url", "bad port in " + where);
    port = static_cast<std::uint16_t>(p);
    host = rest.substr(0, colon);
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  for (char ch : path)
    if (ch <= 0x20 || ch >= 0x7f)
      return Fail(ErrorCode::kMalformed, "inventory-url", "bad path in " + where);
  auto conn = https ? PinnedConnection::OpenVerified(tls, host, port, timeouts)
                    : PinnedConnection::OpenPlain(host, port, timeouts);
  if (!conn) return tl::make_unexpected(conn.error());
  auto answer = conn->Request("GET", path);
  if (!answer) return tl::make_unexpected(answer.error());
  if (answer->status != 200)
    return Fail(ErrorCode::kFailed, "inventory-url",
                where + " answered HTTP " + std::to_string(answer->status));
  return answer->body;
}

struct Loaded {
  std::vector<Target> targets;
  int exit = 0;
};

Loaded LoadTargets(Command c, const Options& o, const ClientTls& tls, const Timeouts& timeouts) {
  Loaded out;
  std::vector<Target> inventory;
  std::map<std::string, std::string, std::less<>> aliases;
  auto refuse = [&](const Error& e) {
    std::fprintf(stderr, "decnet-rollout: %s (%s)\n", Printable(e.message, 300).c_str(),
                 e.rule.c_str());
    out.exit = 1;
    return out;
  };
  if (!o.inventory.empty()) {
    auto text = ReadFile(o.inventory, 16 << 20);
    if (!text) return refuse(text.error());
    auto parsed = ParseInventory(*text);
    if (!parsed) return refuse(parsed.error());
    inventory = std::move(*parsed);
  } else {
    Pins pins;
    if (!o.pins.empty()) {
      auto text = ReadFile(o.pins, 1 << 20);
      if (!text) return refuse(text.error());
      auto parsed = ParsePins(*text);
      if (!parsed) return refuse(parsed.error());
      pins = std::move(*parsed);
    }
    auto text = FetchDecnetHosts(o.decnet_hosts, tls, timeouts);
    if (!text) return refuse(text.error());
    auto parsed = ParseDecnetHosts(*text, pins, o.updater_port);
    if (!parsed) return refuse(parsed.error());
    inventory = std::move(parsed->targets);
    aliases = std::move(parsed->aliases);
  }
  const bool all = o.all || (c == Command::kStatus && o.hosts.empty());
  auto selected = SelectTargets(inventory, o.hosts, all, aliases);
  if (!selected) {
    out.exit = UsageError(c, selected.error().message);
    return out;
  }
  out.targets = std::move(*selected);
  if (o.canary) {
    std::string canary = *o.canary;
    if (auto a = aliases.find(canary); a != aliases.end()) canary = a->second;
    const bool found = std::any_of(out.targets.begin(), out.targets.end(),
                                   [&](const Target& t) { return t.name == canary; });
    if (!found)
      out.exit = UsageError(
          c, "the canary '" + Printable(canary, 64) + "' is not among the selected hosts");
  }
  return out;
}

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

int Run(Command c, Args args) {
  Options o;
  bool help = false;
  if (int rc = ParseArgs(c, args, o, &help); rc != 0 || help) {
    if (help) std::fputs(UsageOf(c), stdout);
    return rc;
  }
  SignalScope signals;
  const std::int64_t started = Now();
  Timeouts timeouts;
  timeouts.response = std::chrono::seconds(o.timeout_s);
  timeouts.io = std::min(timeouts.io, std::chrono::milliseconds(o.timeout_s * 1000));

  auto tls = ClientTls::Load(o.tls);
  if (!tls) {
    std::fprintf(stderr, "decnet-rollout: %s (%s)\n", tls.error().message.c_str(),
                 tls.error().rule.c_str());
    return 1;
  }
  Loaded loaded = LoadTargets(c, o, *tls, timeouts);
  if (loaded.exit != 0) return loaded.exit;

  std::optional<ReleaseFile> release, self_release;
  auto load = [&](const std::string& path, std::optional<ReleaseFile>& into) {
    auto r = LoadReleaseFile(path);
    if (!r) {
      std::fprintf(stderr, "decnet-rollout: %s: %s (%s)\n", path.c_str(),
                   Printable(r.error().message, 300).c_str(), r.error().rule.c_str());
      return false;
    }
    into = std::move(*r);
    return true;
  };
  if (c == Command::kPush && !load(o.tarball, release)) return 1;
  if (!o.include_self.empty()) {
    if (!load(o.include_self, self_release)) return 1;
    if (self_release->version.empty() || self_release->kind != "updater") {
      std::fprintf(stderr,
                   "decnet-rollout: %s is not an updater build with a version (its descriptor "
                   "or .decnet-release.json must say kind \"updater\")\n",
                   o.include_self.c_str());
      return 1;
    }
  }

  PushSettings settings;
  settings.tls = &*tls;
  settings.timeouts = timeouts;
  settings.release = release ? &*release : nullptr;
  settings.self_release = self_release ? &*self_release : nullptr;
  settings.allow_downgrade = o.allow_downgrade;
  settings.self_timeout = std::chrono::seconds(o.self_timeout_s);

  PlanOptions plan;
  plan.batch = o.batch;
  plan.max_parallel = o.max_parallel;
  plan.canary = o.canary;
  HostRunner runner;
  std::string command;
  switch (c) {
    case Command::kPush:
      if (o.dry_run) {
        command = "dry-run";
        runner = [&](const Target& t, ProgressSink& p) { return DryRunHost(t, settings, p); };
        plan.use_canary = false;
        plan.halt_on_failure = false;
      } else {
        command = "push";
        runner = [&](const Target& t, ProgressSink& p) { return UpdateHost(t, settings, p); };
      }
      break;
    case Command::kStatus:
      command = "status";
      runner = [&](const Target& t, ProgressSink& p) { return StatusHost(t, settings, p); };
      plan.use_canary = false;
      plan.halt_on_failure = false;
      break;
    case Command::kRollback:
      command = "rollback";
      runner = [&](const Target& t, ProgressSink& p) { return RollbackHost(t, settings, p); };
      break;
  }

  std::vector<std::string> names;
  for (const auto& t : loaded.targets) names.push_back(t.name);
  ConsoleProgress progress(stderr, ::isatty(STDERR_FILENO) == 1, names);
  PlanReport report = RunPlan(loaded.targets, plan, runner, progress, g_stop);
  progress.Close();
  if (g_stop.load()) report.interrupted = true;

  std::FILE* table_out = o.json_out == "-" ? stderr : stdout;
  if (c == Command::kStatus)
    PrintStatusTable(table_out, report.hosts);
  else
    PrintTable(table_out, report.hosts);
  if (report.halted_by)
    std::fprintf(table_out, "halted at %s\n", Printable(*report.halted_by, 64).c_str());
  if (report.interrupted) std::fprintf(table_out, "interrupted: hosts not started were skipped\n");

  if (!o.json_out.empty()) {
    ReportHeader header;
    header.command = command;
    header.started = started;
    header.finished = Now();
    if (release) header.release = ReleaseFileJson(*release);
    if (self_release) header.self_release = ReleaseFileJson(*self_release);
    header.options = {{"batch", o.batch},
                      {"max_parallel", o.max_parallel},
                      {"canary", plan.use_canary && !loaded.targets.empty()
                                     ? json(o.canary.value_or(loaded.targets.front().name))
                                     : json(nullptr)},
                      {"allow_downgrade", o.allow_downgrade},
                      {"include_self", !o.include_self.empty()},
                      {"timeout_s", o.timeout_s}};
    if (!WriteReport(o.json_out, ReportJson(header, report))) {
      std::fprintf(stderr, "decnet-rollout: cannot write the report to %s\n", o.json_out.c_str());
      return 1;
    }
  }
  const bool all_ok = std::all_of(report.hosts.begin(), report.hosts.end(),
                                  [](const auto& h) { return h.result == HostResult::kOk; });
  return all_ok && !report.interrupted ? 0 : 1;
}

}  // namespace

int RunPush(Args args) { return Run(Command::kPush, args); }
int RunStatus(Args args) { return Run(Command::kStatus, args); }
int RunRollback(Args args) { return Run(Command::kRollback, args); }

}  // namespace decnet::fleet
