// A gmock of the systemd adapter, for unit tests of the handlers only. Every systemd
// interaction is also tested against a real systemd (tests/integration/).
#pragma once

#include <gmock/gmock.h>

#include <filesystem>

#include "helper/systemd_manager.h"
#include "tests/support/loaded_view_support.h"

namespace decnet::test {

class MockSystemd : public helper::SystemdManager {
 public:
  MOCK_METHOD(Result<void>, Reload, (), (override));
  MOCK_METHOD(Result<helper::JobOutcome>, RestartUnit, (const UnitName&, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(Result<helper::JobOutcome>, StopUnit, (const UnitName&, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(Result<proto::UnitState>, GetUnitState, (const UnitName&), (override));
  MOCK_METHOD(Result<helper::LoadedView>, GetLoadedView, (const UnitName&), (override));
};

// A view the loaded-view check accepts for `name` under `policy` when UNIT_DIR/NAME is the
// helper's recorded file (or a root-owned operator file): the fragment there, no drop-in, the
// policy's first unit user and group, bounded and rate-limited. Tests alter one field of it.
inline helper::LoadedView CleanLoadedView(const helper::Policy& policy, const UnitName& name) {
  std::string fragment = helper::SystemdUnitDir(policy) + "/" + name.str();
  if (!name.is_service()) return helper::testing_support::LoadedFragmentView(std::move(fragment));
  return helper::testing_support::BoundedServiceView(
      std::move(fragment), policy.unit_users.empty() ? "" : *policy.unit_users.begin(),
      policy.unit_groups.empty() ? "" : *policy.unit_groups.begin());
}

// Makes `mock` answer GetLoadedView as systemd would for files a test put in place: a unit
// with no file at UNIT_DIR/NAME is "not-found" with nothing loaded, any other gets
// CleanLoadedView(policy, name), unless a test says otherwise (the policy must outlive the
// mock's use).
template <typename Mock>
void AnswerCleanLoadedViews(Mock& mock, const helper::Policy& policy) {
  ON_CALL(mock, GetLoadedView(::testing::_))
      .WillByDefault([&policy](const UnitName& name) -> Result<helper::LoadedView> {
        if (!std::filesystem::exists(policy.unit_dir + "/" + name.str())) {
          helper::LoadedView absent;
          absent.load_state = "not-found";
          return absent;
        }
        return CleanLoadedView(policy, name);
      });
}

}  // namespace decnet::test
