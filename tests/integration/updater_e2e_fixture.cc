// The end-to-end world: see updater_e2e_fixture.h. One WorkerHost (worker_host.h) does the
// work on the container this fixture boots; the fixture's hooks shape its configuration.
#include "tests/integration/updater_e2e_fixture.h"

#include <iostream>

#include "policy/policy.h"

namespace decnet::test {

AnUpdaterOnARealSystemd::AnUpdaterOnARealSystemd() {
  WorkerHost::Options o;
  o.name_prefix = "e2e";
  // Called at SetUp, when the derived fixture's overrides are in force.
  o.adjust_config = [this](nlohmann::json& config) { AdjustDaemonConfig(config); };
  o.adjust_policy = [this](helper::Policy& policy) { AdjustHelperPolicy(policy); };
  host_ = std::make_unique<WorkerHost>(std::move(o));
}

AnUpdaterOnARealSystemd::~AnUpdaterOnARealSystemd() { host_.reset(); }

Testbed::Options AnUpdaterOnARealSystemd::TestbedOptions() const { return host_->TestbedOptions(); }

void AnUpdaterOnARealSystemd::SetUp() {
  TestbedTest::SetUp();
  if (HasFatalFailure()) return;
  host_->UseTestbed(&testbed());
  host_->options().daemon_from_store = DaemonFromItsStore();
  host_->options().daemon_reads_another_policy = DaemonReadsAnotherPolicy();
  host_->Prepare();
  if (HasFatalFailure()) return;
  StartHelper();
}

void AnUpdaterOnARealSystemd::TearDown() {
  StopHelper();
  if (HasFailure()) std::cerr << "--- helper and daemon log ---\n" << Logs() << "--- end ---\n";
  TestbedTest::TearDown();
  host_->UseTestbed(nullptr);
}

void AnUpdaterOnARealSystemd::StartHelperWith(const std::vector<std::string>& extra_env) {
  host_->StartHelper(extra_env);
}

pid_t AnUpdaterOnARealSystemd::DaemonPid() const { return host_->DaemonPid(); }

std::optional<int> AnUpdaterOnARealSystemd::KillUnit(Kill how) { return host_->KillUnit(how); }

BuiltRelease AnUpdaterOnARealSystemd::BuildUpdaterBuild(const std::string& version, bool broken) {
  return host_->BuildUpdaterBuild(version, broken);
}

HttpReply AnUpdaterOnARealSystemd::PushSelf(const BuiltRelease& build) {
  return host_->PushSelf(build);
}

void AnUpdaterOnARealSystemd::RestartHelper() { host_->RestartHelper(); }

std::optional<int> AnUpdaterOnARealSystemd::StartHelperExpectingExit() {
  return host_->StartHelperExpectingExit();
}

nlohmann::json AnUpdaterOnARealSystemd::HelperctlStatus() const { return host_->HelperctlStatus(); }

std::string AnUpdaterOnARealSystemd::RunningDaemonBuild() const {
  return host_->RunningDaemonBuild();
}

BuiltRelease AnUpdaterOnARealSystemd::BuildRelease(const ReleaseSpec& spec) {
  return host_->BuildRelease(spec);
}

HttpReply AnUpdaterOnARealSystemd::PushWithDigest(const BuiltRelease& release,
                                                  const std::string& sha256, Caller caller) {
  return host_->PushWithDigest(release, sha256, caller);
}

HttpReply AnUpdaterOnARealSystemd::Push(const BuiltRelease& release, Caller caller) {
  return host_->Push(release, caller);
}

HttpReply AnUpdaterOnARealSystemd::Rollback(Caller caller) { return host_->Rollback(caller); }

HttpReply AnUpdaterOnARealSystemd::Get(const std::string& path, Caller caller) {
  return host_->Get(path, caller);
}

HttpReply AnUpdaterOnARealSystemd::AgentHealth() { return host_->AgentHealth(); }

BuiltRelease AnUpdaterOnARealSystemd::Install(const ReleaseSpec& spec) {
  return host_->Install(spec);
}

std::string AnUpdaterOnARealSystemd::Property(const std::string& unit, const char* iface,
                                              const char* property) {
  auto value = testbed().UnitProperty(unit, iface, property);
  EXPECT_TRUE(value) << unit << " " << property << ": " << (value ? "" : value.error());
  return value ? *value : "";
}

std::vector<nlohmann::json> AnUpdaterOnARealSystemd::AuditLog() const { return host_->AuditLog(); }

std::vector<nlohmann::json> AnUpdaterOnARealSystemd::HelperRecord() const {
  return host_->HelperRecord();
}

std::string AnUpdaterOnARealSystemd::CurrentRelease() const { return host_->CurrentRelease(); }

std::vector<std::string> AnUpdaterOnARealSystemd::StoredReleases() const {
  return host_->StoredReleases();
}

std::string AnUpdaterOnARealSystemd::Logs() const { return host_->Logs(); }

}  // namespace decnet::test
