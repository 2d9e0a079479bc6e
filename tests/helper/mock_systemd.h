// A gmock of the systemd adapter, for unit tests of the handlers only. Every systemd
// interaction is also tested against a real systemd (tests/integration/).
#pragma once

#include <gmock/gmock.h>

#include "helper/systemd_manager.h"

namespace decnet::test {

class MockSystemd : public helper::SystemdManager {
 public:
  MOCK_METHOD(Result<void>, Reload, (), (override));
  MOCK_METHOD(Result<helper::JobOutcome>, RestartUnit, (const UnitName&, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(Result<helper::JobOutcome>, StopUnit, (const UnitName&, std::chrono::milliseconds),
              (override));
  MOCK_METHOD(Result<proto::UnitState>, GetUnitState, (const UnitName&), (override));
};

}  // namespace decnet::test
