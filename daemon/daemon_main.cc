// Start-up order matters: recovery before listening, listening before `hello` (the helper
// then reports the unit ready, and decnet.target starts from a consistent release), units
// reconciled only after `hello` (the helper answers nothing else before it).
#include "daemon/daemon_main.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <tuple>

#include "daemon/api.h"
#include "daemon/audit_log.h"
#include "daemon/config.h"
#include "daemon/health_gate.h"
#include "daemon/helper_client.h"
#include "daemon/http_server.h"
#include "daemon/install_confine.h"
#include "daemon/release_guard.h"
#include "daemon/release_import.h"
#include "daemon/release_store.h"
#include "daemon/self_update.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "daemon/version_floor.h"
#include "policy/policy.h"
#include "proto/sha256.h"

namespace decnet::daemon {
namespace {

constexpr char kClientName[] = "decnet-updaterd " DECNET_VERSION;
// Room for the form around the tarball: text fields (1 KiB) and part headers (8 KiB each).
constexpr uint64_t kFormOverhead = 1 << 20;

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Everything the daemon holds, destroyed in reverse: the server stops before the API, the
// API's worker finishes before the pipeline goes.
struct Daemon {
  DaemonConfig config;
  helper::Policy policy;
  std::string policy_digest;
  std::optional<AuditLog> audit;
  std::optional<ReleaseStore> store;
  std::optional<ReleaseStore> updater_store;  // update-self; nullopt: unavailable
  std::string updater_unavailable;
  RecoveryReport recovery;
  std::optional<VersionFloor> floor;    // the never-older floor, in state_dir
  std::unique_ptr<ReleaseGuard> guard;  // borrows config and floor
  std::unique_ptr<HelperClient> helper;
  std::unique_ptr<HealthGate> gate;
  std::unique_ptr<UpdatePipeline> pipeline;
  std::unique_ptr<UpdaterApi> api;
  std::unique_ptr<HttpServer> server;
};

std::string Describe(const Error& e) { return e.message + " [" + e.rule + "]"; }

Result<void> LoadSettings(const DaemonArgs& args, Daemon& d) {
  auto config = LoadDaemonConfig(args.config_path);
  if (!config) return tl::make_unexpected(config.error());  // its message names file and key
  d.config = std::move(*config);
  auto policy = helper::LoadPolicyFile(d.config.helper_policy);
  if (!policy)
    return Fail(policy.error().code, policy.error().rule,
                d.config.helper_policy + ": " + policy.error().message);
  d.policy = std::move(*policy);
  d.policy_digest = helper::PolicyDigest(d.policy);
  return {};
}

void LogRecovery(const RecoveryReport& r) {
  if (r.reverted)
    spdlog::warn("recovery: reverted an interrupted {} of release {}",
                 r.reverted->op == PendingOp::kActivate ? "activation" : "rollback",
                 r.reverted->id.str());
  for (const std::string& removed : r.removed)
    spdlog::info("recovery: removed incomplete release directory {}", removed);
  for (const ReleaseId& dropped : r.dropped)
    spdlog::info("recovery: dropped the record of missing release {}", dropped.str());
  if (r.current_repointed) spdlog::info("recovery: re-pointed current at the active release");
}

Result<void> OpenStorage(Daemon& d) {
  auto audit = AuditLog::Open(d.config.state_dir + "/audit.jsonl");
  if (!audit) return tl::make_unexpected(audit.error());
  d.audit.emplace(std::move(*audit));
  // SECURITY: a floor that cannot be read stops start-up; starting without it would let an
  // older release back in.
  auto floor = VersionFloor::Open(d.config.state_dir);
  if (!floor) return tl::make_unexpected(floor.error());
  d.floor.emplace(std::move(*floor));
  d.guard = std::make_unique<ReleaseGuard>(d.config, *d.floor);
  auto store =
      ReleaseStore::Open(d.config.install_dir, static_cast<size_t>(d.config.keep_releases));
  if (!store) return tl::make_unexpected(store.error());
  d.store.emplace(std::move(*store));
  auto recovery = d.store->Recover();
  if (!recovery) return tl::make_unexpected(recovery.error());
  d.recovery = std::move(*recovery);
  LogRecovery(d.recovery);
  auto updater = OpenUpdaterStore(d.config, *d.audit);
  if (!updater) return tl::make_unexpected(updater.error());
  if (!updater->note.empty()) spdlog::warn("{}", updater->note);
  d.updater_store = std::move(updater->store);
  if (!d.updater_store) d.updater_unavailable = updater->note;
  return {};
}

Result<std::uint16_t> StartServing(Daemon& d, const DaemonTestSeams& seams) {
  auto helper_timeout =
      std::chrono::milliseconds(d.policy.restart_timeout_ms) + std::chrono::seconds(15);
  d.helper = std::make_unique<HelperClient>(kHelperPairFd, helper_timeout);
  d.gate = MakeHealthGate(d.config, *d.helper);
  if (seams.wrap_gate) d.gate = seams.wrap_gate(std::move(d.gate));
  d.pipeline =
      std::make_unique<UpdatePipeline>(d.config, d.policy, *d.store, *d.helper, *d.gate, *d.audit);
  SelfUpdateTarget self;
  self.store = d.updater_store ? &*d.updater_store : nullptr;
  if (!d.updater_store) self.unavailable_why = d.updater_unavailable;
  // hello accepts exactly the protocol this daemon speaks, so that is the helper's.
  self.helper_protocol = proto::kProtocolVersion;
  self.arch = HostArch();
  d.pipeline->SetSelfUpdate(std::move(self));
  d.pipeline->SetReleaseGuard(d.guard.get());
  ApiOptions options;
  options.spool_dir = d.config.state_dir + "/spool";
  options.max_upload_bytes = d.config.max_upload_bytes;
  options.update_deadline = std::chrono::milliseconds(d.config.update_deadline_ms);
  options.version = DECNET_VERSION;
  // Read once: this process runs one build for its whole life, whatever update-self installs.
  options.build = FindRunningBuild(OwnExecutable(), d.updater_store ? &*d.updater_store : nullptr,
                                   DECNET_VERSION);
  options.policy_digest = d.policy_digest;
  // An atomic read: never waits behind a helper call in progress.
  options.helper_alive = [helper = d.helper.get()] { return helper->healthy(); };
  options.audit = &*d.audit;
  options.guard = d.guard.get();
  auto api = UpdaterApi::Create(*d.pipeline, std::move(options));
  if (!api) return tl::make_unexpected(api.error());
  d.api = std::move(*api);
  if (seams.serving) seams.serving(*d.pipeline, *d.api);

  auto tls = MakeServerTlsContext(TlsFiles{d.config.tls_ca, d.config.tls_cert, d.config.tls_key});
  if (!tls) return tl::make_unexpected(tls.error());
  ServerConfig server;
  server.limits.max_connections = static_cast<std::size_t>(d.config.max_connections);
  server.limits.max_pending = static_cast<std::size_t>(d.config.max_pending_connections);
  server.limits.max_pending_per_source = static_cast<std::size_t>(d.config.max_pending_per_source);
  server.limits.body_bytes = d.config.max_upload_bytes + kFormOverhead;
  server.master_pins = d.config.master_pins;
  server.fallback_cn = d.config.master_cn;
  server.io_threads = static_cast<unsigned>(d.config.io_threads);
  auto created = HttpServer::Create(std::move(*tls), std::move(server), *d.api);
  if (!created) return tl::make_unexpected(created.error());
  d.server = std::move(*created);
  return d.server->Start(d.config.listen_address, d.config.port);
}

// Says hello; a helper whose policy differs from the one we validate units with is not
// fatal (the helper re-checks everything), but it is loud and audited.
Result<void> Greet(Daemon& d) {
  auto hello = d.helper->Hello(kClientName);
  if (!hello) return tl::make_unexpected(hello.error());
  spdlog::info("helper {} (protocol {}) ready", hello->helper_version, hello->version);
  if (hello->policy_digest == d.policy_digest) return {};
  spdlog::error(
      "POLICY MISMATCH: the helper enforces policy {} but this daemon read {} from {}; "
      "units this daemon accepts may be refused by the helper",
      hello->policy_digest, d.policy_digest, d.config.helper_policy);
  AuditEntry entry;
  entry.op = "hello";
  entry.result = "policy-mismatch";
  entry.rule = "policy-digest-mismatch";
  entry.error = "helper " + hello->policy_digest + ", daemon " + d.policy_digest;
  if (auto appended = d.audit->Append(entry); !appended)
    spdlog::error("audit: {}", Describe(appended.error()));
  return {};
}

enum class StopReason { kSignal, kHelperGone };

// Blocks until SIGTERM/SIGINT or until the helper's end of the pair closes. `pair_fd` is a
// private dup of fd 3, polled for hang-up only, so the HelperClient's reads are undisturbed.
Result<StopReason> WaitForStop(int signal_fd, int pair_fd) {
  for (;;) {
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {pair_fd, POLLRDHUP, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Fail(ErrorCode::kFailed, "daemon-poll", Errno("poll"));
    }
    // The signal first: systemd's stop reaches the helper too, which then closes the pair.
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == sizeof info)
        spdlog::info("signal {} received", strsignal(static_cast<int>(info.ssi_signo)));
      return StopReason::kSignal;
    }
    if (fds[1].revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL)) return StopReason::kHelperGone;
  }
}

// Blocks SIGTERM/SIGINT (before any thread exists, so every thread inherits the mask) and
// returns a signalfd for them; SIGPIPE is ignored (a peer gone mid-write is an error value).
Result<int> TakeSignals() {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  if (::pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0)
    return Fail(ErrorCode::kFailed, "daemon-signals", "pthread_sigmask failed");
  int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (fd < 0) return Fail(ErrorCode::kFailed, "daemon-signals", Errno("signalfd"));
  return fd;
}

void SetUpLogging() {
  auto logger = spdlog::stderr_logger_mt("decnet-updaterd");
  logger->set_pattern("[%l] %v");  // journald stamps time and unit itself
  spdlog::set_default_logger(logger);
}

int Serve(Daemon& d, int signal_fd, const DaemonTestSeams& seams) {
  int pair_watch = ::fcntl(kHelperPairFd, F_DUPFD_CLOEXEC, 10);
  if (pair_watch < 0) {
    spdlog::critical("{}", Errno("dup fd 3"));
    return 1;
  }
  auto port = StartServing(d, seams);
  if (!port) {
    spdlog::critical("cannot serve: {}", Describe(port.error()));
    return 1;
  }
  spdlog::info("listening on {}:{}", d.config.listen_address, *port);
  if (auto greeted = Greet(d); !greeted) {
    spdlog::critical("hello to the helper failed: {}", Describe(greeted.error()));
    return 1;
  }
  const bool reverted = d.recovery.reverted.has_value();
  if (!d.pipeline->Reconcile(reverted ? "start-up recovery reverted an interrupted update"
                                      : "start-up check of units and links",
                             reverted))
    spdlog::error("could not make units and links match the active release (see the audit log)");

  auto why = WaitForStop(signal_fd, pair_watch);
  ::close(pair_watch);
  if (!why) spdlog::critical("{}", Describe(why.error()));
  bool helper_gone = !why || *why == StopReason::kHelperGone;
  if (helper_gone) spdlog::warn("the helper closed its end of the pair; exiting");
  if (d.api->restarting()) {
    // update-self's own restart: the build was committed, audited and answered before it was
    // asked for, so nothing is cut short; the worker only awaits the helper's word on a job
    // that ends with this process. systemd starts the new build once the unit is down.
    spdlog::info("stopping for the restart update-self asked for; the new build starts next");
    std::_Exit(0);
  }
  if (d.api->busy()) {
    // Waiting could take the whole deadline; the journal makes an abrupt end safe: start-up
    // recovery reverts whatever was not committed. Asked to stop, this is no failure of the
    // build: the status says so only when the helper went away (the helper reads a non-zero
    // status soon after hello as a self-updated build that cannot run).
    spdlog::warn("an operation is running; exiting now, start-up recovery will revert it");
    std::_Exit(helper_gone ? 1 : 0);
  }
  d.server->Stop();
  return helper_gone ? 1 : 0;
}

}  // namespace

Result<DaemonArgs> ParseDaemonArgs(int argc, const char* const* argv) {
  DaemonArgs args;
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    args.version_only = true;
    return args;
  }
  constexpr char kUsage[] =
      " (usage: decnet-updaterd [--config PATH] [--install-build TARBALL] | --version)";
  bool seen_config = false, seen_install = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    bool* seen = nullptr;
    std::string* target = nullptr;
    for (auto [name, flag, field] :
         {std::tuple{std::string_view("--config"), &seen_config, &args.config_path},
          std::tuple{std::string_view("--install-build"), &seen_install, &args.install_build}}) {
      if (arg == name && i + 1 < argc) {
        value = argv[++i];
      } else if (arg.starts_with(std::string(name) + "=")) {
        value = arg.substr(name.size() + 1);
      } else {
        continue;
      }
      seen = flag;
      target = field;
      break;
    }
    if (target == nullptr)
      return Fail(ErrorCode::kMalformed, "daemon-args",
                  "unknown argument '" + std::string(arg) + "'" + kUsage);
    if (value.empty() || *seen)
      return Fail(ErrorCode::kMalformed, "daemon-args",
                  "each option takes one non-empty value, once" + std::string(kUsage));
    *target = std::string(value);
    *seen = true;
  }
  return args;
}

Result<void> CheckNotRoot() {
  uid_t ruid, euid, suid;
  gid_t rgid, egid, sgid;
  if (::getresuid(&ruid, &euid, &suid) != 0 || ::getresgid(&rgid, &egid, &sgid) != 0)
    return Fail(ErrorCode::kFailed, "daemon-root", Errno("getresuid"));
  if (ruid == 0 || euid == 0 || suid == 0 || rgid == 0 || egid == 0 || sgid == 0)
    return Fail(ErrorCode::kDenied, "daemon-root",
                "decnet-updaterd refuses to run as root (uid 0 or gid 0): it parses network "
                "input; decnet-update-helper starts it as the decnet-updater user");
  return {};
}

Result<void> CheckHelperPair(int fd) {
  struct stat st {};
  int type = 0;
  socklen_t len = sizeof type;
  bool ok = ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
            ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
  if (!ok)
    return Fail(ErrorCode::kDenied, "daemon-no-helper",
                "fd " + std::to_string(fd) +
                    " is not a SOCK_SEQPACKET socket: decnet-updaterd "
                    "must be started by decnet-update-helper");
  // SECURITY: the install command and any other child must never inherit the channel to root.
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return Fail(ErrorCode::kFailed, "daemon-no-helper", Errno("fcntl fd 3"));
  return {};
}

namespace {

// `--install-build`: the first build of a host goes into the store the way update-self puts
// every later one there, with the same checks.
int InstallBuild(const DaemonArgs& args) {
  auto fail = [](const Error& e) {
    spdlog::critical("{}", Describe(e));
    return 1;
  };
  if (auto ok = CheckNotRoot(); !ok) return fail(ok.error());
  auto config = LoadDaemonConfig(args.config_path);
  if (!config) return fail(config.error());
  const int fd = ::open(args.install_build.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) ::close(fd);
    return fail(Error{ErrorCode::kNotFound, "install-build-tarball",
                      args.install_build + " is not a readable regular file"});
  }
  Sha256 hash;
  std::string buf(1 << 16, '\0');
  for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;)
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  ::lseek(fd, 0, SEEK_SET);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string digest;
  for (uint8_t b : hash.Finish()) {
    digest += kHex[b >> 4];
    digest += kHex[b & 15];
  }
  auto store = ReleaseStore::Open(config->updater_dir, static_cast<size_t>(config->keep_releases));
  Result<RecoveryReport> recovered =
      store ? store->Recover() : Result<RecoveryReport>(tl::make_unexpected(store.error()));
  if (!recovered) {
    ::close(fd);
    return fail(recovered.error());
  }
  UpdaterBuildChecks checks{static_cast<uint64_t>(proto::kProtocolVersion), HostArch(),
                            std::chrono::seconds(10), nullptr};
  auto installed = InstallUpdaterBuild(
      *store, VerifiedTarball{fd, static_cast<uint64_t>(st.st_size), digest, std::nullopt, {}},
      checks);
  ::close(fd);
  if (!installed) return fail(installed.error());
  std::printf("installed build %s (version %s): %s/current -> releases/%s\n",
              installed->id.str().c_str(), installed->version.c_str(), config->updater_dir.c_str(),
              installed->id.str().c_str());
  return 0;
}

}  // namespace

int RunDaemon(int argc, const char* const* argv, const DaemonTestSeams& seams) {
  SetUpLogging();
  auto args = ParseDaemonArgs(argc, argv);
  if (args && args->version_only) {
    // Needs nothing else: update-self runs a new build's --version to prove it runs here.
    std::printf("decnet-updaterd %s\n", DECNET_VERSION);
    return 0;
  }
  if (args && !args->install_build.empty()) return InstallBuild(*args);
  if (IsImportReleaseInvocation(argc, argv)) {  // adoption of a host (daemon/release_import.h)
    if (auto ok = CheckNotRoot(); !ok) {
      spdlog::critical("{}", Describe(ok.error()));
      return 1;
    }
    return RunImportRelease(argc, argv);
  }
  // SECURITY: an install command runs release code as this same user: non-dumpable, the
  // daemon cannot be traced nor its memory and keys read through /proc by it.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) spdlog::warn("{}", Errno("PR_SET_DUMPABLE"));
  spdlog::info("{}", DescribeInstallConfinement());
  Result<void> ready = args ? CheckNotRoot() : tl::make_unexpected(args.error());
  if (ready) ready = CheckHelperPair(kHelperPairFd);
  Daemon d;
  if (ready) ready = LoadSettings(*args, d);
  if (ready) ready = OpenStorage(d);
  auto signal_fd = ready ? TakeSignals() : tl::make_unexpected(ready.error());
  if (!signal_fd) {
    spdlog::critical("{}", Describe(signal_fd.error()));
    return 1;
  }
  int code = Serve(d, *signal_fd, seams);
  ::close(*signal_fd);
  return code;
}

}  // namespace decnet::daemon
