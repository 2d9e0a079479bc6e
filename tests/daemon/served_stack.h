// The daemon's side of one host, assembled in the test process: the helper's real serve loop
// (ServedHelper, systemd mocked), the release store, the audit log, a health gate and the real
// UpdatePipeline over them, optionally the updater's own store for update-self; and, for tests
// that go through the network, the UpdaterApi and the mTLS HttpServer in front of it with
// certificates made at test time.
//
// ServedStack and ServedFront report failures through GoogleTest: call Open and Start inside
// ASSERT_NO_FATAL_FAILURE. Tests that never start a ServedFront need not link the API or the
// server (nothing of them is instantiated).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/api.h"
#include "daemon/audit_log.h"
#include "daemon/http_server.h"
#include "daemon/release_store.h"
#include "daemon/self_update.h"
#include "daemon/tls.h"
#include "daemon/update_pipeline.h"
#include "proto/helper_protocol.h"
#include "tests/daemon/served_helper.h"
#include "tests/daemon/test_pki.h"
#include "tests/helper/test_dirs.h"

namespace decnet::test {

// Passes every check: for tests about anything but the health gate.
class HealthyGate : public daemon::HealthGate {
 public:
  daemon::GateVerdict Check(const std::map<UnitName, uint32_t>&, const std::string&,
                            std::chrono::steady_clock::time_point) override {
    return {true, "{\"status\":\"ok\"}", "", ""};
  }
};

// Whether ServedStack::Open runs the release store's start-up recovery.
enum class Recover { kYes, kNo };
// Whether ServedStack::Open opens the updater's store and points update-self at it.
enum class SelfUpdate { kOff, kOn };

// The updater's own unit as its package installs it. It runs the helper as root by design, so
// InstallOperatorUnit does not hold it to the unit policy.
inline constexpr char kUpdaterUnit[] =
    "[Unit]\nDescription=DECNET release updater\n[Service]\nType=notify\n"
    "ExecStart=/usr/libexec/decnet-updater/decnet-update-helper\n";

// Lays out a host's release directories beneath `root`: ROOT/opt/decnet, and with
// SelfUpdate::kOn the updater's own at ROOT/opt/decnet-updater/updater. Creates them, sets
// them in `config` and points the helper's `decnet` link rule at ROOT/opt/decnet/current.
// Returns the install directory.
inline std::string LayOutHost(TestDirs& dirs, const std::string& root, daemon::DaemonConfig& config,
                              SelfUpdate self_update) {
  const std::string install = root + "/opt/decnet";
  std::filesystem::create_directories(install);
  config.install_dir = install;
  if (self_update == SelfUpdate::kOn) {
    config.updater_dir = root + "/opt/decnet-updater/updater";
    std::filesystem::create_directories(config.updater_dir);
  }
  dirs.policy().links = {{"decnet", install + "/current"}};
  return install;
}

// What the tests vary when they open a ServedStack.
struct StackOptions {
  std::string client = "test";  // the name the daemon's side says hello with
  Recover recover = Recover::kYes;
  SelfUpdate self_update = SelfUpdate::kOff;
};

// The helper, the stores, the audit log, `Gate` and the pipeline that borrows them all. Members
// are declared so that each is destroyed before what it borrows; Close() resets them in that
// order too.
template <class Gate>
class ServedStack {
 public:
  ServedStack() = default;
  ~ServedStack() { Close(); }
  ServedStack(const ServedStack&) = delete;
  ServedStack& operator=(const ServedStack&) = delete;

  // Starts the helper's serve loop, opens the release store at config.install_dir (and recovers
  // it unless told not to), the audit log dirs.root()/audit.jsonl, with SelfUpdate::kOn the
  // updater's store at config.updater_dir, and the pipeline over them. `dirs` and `config` must
  // outlive the stack (the pipeline reads them). A fatal failure leaves the rest unopened.
  void Open(TestDirs& dirs, const daemon::DaemonConfig& config, const StackOptions& options = {}) {
    helper.emplace(dirs, options.client);
    auto opened = daemon::ReleaseStore::Open(config.install_dir);
    ASSERT_TRUE(opened) << opened.error().message;
    store.emplace(std::move(*opened));
    if (options.recover == Recover::kYes) {
      ASSERT_TRUE(store->Recover());
    }
    auto log = daemon::AuditLog::Open(dirs.root() + "/audit.jsonl");
    ASSERT_TRUE(log);
    audit.emplace(std::move(*log));
    if (options.self_update == SelfUpdate::kOn) {
      auto updater = daemon::OpenUpdaterStore(config, *audit);
      ASSERT_TRUE(updater && updater->store);
      updater_store.emplace(std::move(*updater->store));
    }
    StartPipeline(dirs, config);
    if (options.self_update == SelfUpdate::kOn) EnableSelfUpdate();
  }

  // (Re)creates the pipeline over the open helper, store, gate and audit log, as a restarted
  // daemon does. The store must be open.
  void StartPipeline(TestDirs& dirs, const daemon::DaemonConfig& config) {
    pipeline.emplace(config, dirs.policy(), *store, helper->client(), gate, *audit);
  }

  // Points the pipeline's update-self at the open updater store, for this host's architecture
  // and the helper protocol of this build.
  void EnableSelfUpdate() {
    daemon::SelfUpdateTarget self;
    self.store = &*updater_store;
    self.helper_protocol = proto::kProtocolVersion;
    self.arch = daemon::HostArch();
    pipeline->SetSelfUpdate(self);
  }

  // Ends the pipeline, the helper's serve loop, then closes the stores and the audit log.
  // Whatever borrows the pipeline (a ServedFront) must be stopped first.
  void Close() {
    pipeline.reset();
    helper.reset();
    updater_store.reset();
    store.reset();
    audit.reset();
  }

  Gate gate;
  std::optional<daemon::AuditLog> audit;
  std::optional<daemon::ReleaseStore> store;
  std::optional<daemon::ReleaseStore> updater_store;
  std::optional<ServedHelper> helper;  // before what borrows its client
  std::optional<daemon::UpdatePipeline> pipeline;
};

// A CA, the updater's server certificate and DECNET's master's client certificate, written as
// PEM files beneath a temporary directory removed with it.
struct UpdaterPki {
  UpdaterPki()
      : server(ca.Issue(decnet::testing::CertSpec{{"updater"}, true})),
        server_pem(WritePem(dir, "server", server)),
        master(WritePem(dir, "master", ca.Issue(decnet::testing::CertSpec{{"decnet-master"}}))),
        ca_file(dir.Write("ca.crt", ca.ca().cert_pem)) {}

  // The server's TLS files: the CA that verifies clients, the server's certificate and key.
  daemon::TlsFiles ServerFiles() const { return {ca_file, server_pem.cert, server_pem.key}; }
  // curl's options to reach the updater as DECNET's master: trust the CA, present the master.
  std::string CurlAsMaster() const {
    return "--cacert " + ca_file + " --cert " + master.cert + " --key " + master.key;
  }

  decnet::testing::TestCa ca{"decnet-test-ca"};
  decnet::testing::TempDir dir;
  decnet::testing::Issued server;
  decnet::testing::PemPaths server_pem, master;
  std::string ca_file;
};

// The API's options as the tests run it: the spool beneath dirs.root()/daemon-state, version
// "test"; everything else at its default.
inline daemon::ApiOptions TestApiOptions(const TestDirs& dirs) {
  daemon::ApiOptions options;
  options.spool_dir = dirs.root() + "/daemon-state/spool";
  options.version = "test";
  return options;
}

// The UpdaterApi and the mTLS HttpServer in front of an Operations (a ServedStack's pipeline),
// on an ephemeral loopback port. Declare it after what it borrows: it stops the server before
// the API goes, and both before the pipeline.
class ServedFront {
 public:
  ServedFront() = default;
  ~ServedFront() { Stop(); }
  ServedFront(const ServedFront&) = delete;
  ServedFront& operator=(const ServedFront&) = delete;

  // Creates the API over `ops` with `options` (the spool's parent directory made first) and
  // `hook` on its upload steps when set, then starts the server with `pki`'s server certificate
  // on 127.0.0.1. A fatal failure leaves the rest unstarted.
  void Start(daemon::Operations& ops, const daemon::ApiOptions& options, const UpdaterPki& pki,
             daemon::UpdaterApi::UploadHook hook = nullptr) {
    std::filesystem::create_directories(std::filesystem::path(options.spool_dir).parent_path());
    auto created = daemon::UpdaterApi::Create(ops, options);
    ASSERT_TRUE(created) << created.error().message;
    api = std::move(*created);
    if (hook) api->SetUploadHook(std::move(hook));
    auto ctx = daemon::MakeServerTlsContext(pki.ServerFiles());
    ASSERT_TRUE(ctx) << ctx.error().message;
    auto server = daemon::HttpServer::Create(std::move(*ctx), daemon::ServerConfig{}, *api);
    ASSERT_TRUE(server) << server.error().message;
    http = std::move(*server);
    auto bound = http->Start("127.0.0.1", 0);
    ASSERT_TRUE(bound) << bound.error().message;
    port = *bound;
  }

  // Stops the server, then ends the API. Idempotent.
  void Stop() {
    if (http) http->Stop();
    http.reset();
    api.reset();
  }

  // https://127.0.0.1:PORT, the updater as its clients address it.
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(port); }

  std::unique_ptr<daemon::UpdaterApi> api;
  std::unique_ptr<daemon::HttpServer> http;
  std::uint16_t port = 0;
};

// Holds a pipeline's background pruner inside its first deletion ("deleting") until Release(),
// so a test can act while a prune is under way; counts the deletions that finished
// ("deleted"). Released at destruction too, so a failed test never leaves the pruner waiting.
class PruneLatch {
 public:
  explicit PruneLatch(daemon::UpdatePipeline& pipeline) : go_future_(go_.get_future().share()) {
    pipeline.SetPruneHook([this](std::string_view step) {
      if (step == "deleted") ++deleted_;
      if (step != "deleting" || deleting_++ != 0) return;
      entered_.set_value();
      go_future_.wait();
    });
  }
  ~PruneLatch() { Release(); }
  PruneLatch(const PruneLatch&) = delete;
  PruneLatch& operator=(const PruneLatch&) = delete;

  // Waits until the pruner is held inside its first deletion.
  void WaitHeld() { entered_.get_future().wait(); }
  // Lets the pruner go on. Idempotent.
  void Release() {
    if (!released_.exchange(true)) go_.set_value();
  }
  int deleted() const { return deleted_.load(); }

 private:
  std::promise<void> entered_, go_;
  std::shared_future<void> go_future_;
  std::atomic<int> deleting_{0}, deleted_{0};
  std::atomic<bool> released_{false};
};

}  // namespace decnet::test
