// What decnet-adopt asks of systemd, over the system bus (sd-bus; DBUS_SYSTEM_BUS_ADDRESS is
// honoured, which is how the tests reach a container's systemd). Job waits are bounded polls
// of the unit's ActiveState.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proto/result.h"

struct sd_bus;

namespace decnet::adopt {

class SystemdBus {
 public:
  // Connects; kFailed "adopt-bus" with sd-bus's message when the bus cannot be reached.
  [[nodiscard]] static Result<SystemdBus> Connect();
  SystemdBus(SystemdBus&&) noexcept;
  ~SystemdBus();

  [[nodiscard]] Result<void> Reload();
  // Stops the unit and waits until it is inactive or failed (kTimeout "adopt-stop-timeout").
  // A unit systemd does not know is already stopped.
  [[nodiscard]] Result<void> Stop(const std::string& unit, std::chrono::seconds timeout);
  // Restarts the unit and waits until it is active (kFailed "adopt-start-failed" when it ends
  // up failed or inactive, kTimeout "adopt-start-timeout").
  [[nodiscard]] Result<void> Restart(const std::string& unit, std::chrono::seconds timeout);
  [[nodiscard]] Result<void> Enable(const std::string& unit);
  [[nodiscard]] Result<void> Disable(const std::string& unit);
  // Unit.ActiveState, Unit.FragmentPath, and the unit file's enablement ("enabled",
  // "disabled", ...; "" when systemd has no file for it).
  [[nodiscard]] Result<std::string> ActiveState(const std::string& unit);
  [[nodiscard]] Result<std::string> FragmentPath(const std::string& unit);
  [[nodiscard]] Result<std::string> UnitFileState(const std::string& unit);

 private:
  explicit SystemdBus(sd_bus* bus) : bus_(bus) {}
  Result<std::string> UnitPath(const std::string& unit);
  Result<std::string> UnitString(const std::string& unit, const char* property);
  sd_bus* bus_ = nullptr;
};

}  // namespace decnet::adopt
