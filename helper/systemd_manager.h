// The helper's only view of systemd: a small interface over org.freedesktop.systemd1, so
// handlers can be unit-tested with a mock and the real adapter (sdbus-c++) is tested
// against a real systemd. Every method catches the library's exceptions and returns errors
// as values (kFailed with systemd's message, kTimeout, kNotFound).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "policy/loaded_view.h"
#include "proto/helper_protocol.h"
#include "proto/result.h"
#include "proto/values.h"

namespace decnet::helper {

// The outcome of a job systemd ran for us.
struct JobOutcome {
  std::string result;  // JobRemoved's result: "done", "failed", "canceled", "timeout", ...
};

class SystemdManager {
 public:
  virtual ~SystemdManager() = default;
  // Manager.Reload(); waits for the reply.
  [[nodiscard]] virtual Result<void> Reload() = 0;
  // Manager.RestartUnit(name, "replace") and waits for its JobRemoved (kTimeout after
  // `timeout`).
  [[nodiscard]] virtual Result<JobOutcome> RestartUnit(const UnitName& name,
                                                       std::chrono::milliseconds timeout) = 0;
  // Manager.StopUnit(name, "replace") and waits for its JobRemoved. A unit systemd does not
  // know (NoSuchUnit) is kNotFound.
  [[nodiscard]] virtual Result<JobOutcome> StopUnit(const UnitName& name,
                                                    std::chrono::milliseconds timeout) = 0;
  // LoadState, ActiveState, SubState, and for services MainPID and NRestarts (0 otherwise).
  // Uses Manager.LoadUnit so an unknown name reports load_state "not-found".
  [[nodiscard]] virtual Result<proto::UnitState> GetUnitState(const UnitName& name) = 0;
  // What systemd loaded for `name` (Manager.LoadUnit, then Properties.GetAll on the Unit
  // interface and, for a loaded service, the Service interface): fragment, drop-ins, source,
  // transient, and the resolved settings that loaded_view.h judges. A property missing or of
  // an unexpected type fails the read (kFailed, "systemd-loaded-view"): a view that cannot be
  // read in full is never taken for a clean one.
  [[nodiscard]] virtual Result<LoadedView> GetLoadedView(const UnitName& name) = 0;
};

// The rule of a job wait cut short because the helper itself is being stopped (see
// ConnectSystemd's `stop_fd`).
inline constexpr char kHelperStoppingRule[] = "helper-stopping";

// Connects to the system bus (honouring DBUS_SYSTEM_BUS_ADDRESS) and registers the
// JobRemoved handler. It does not call Manager.Subscribe: that happens on the first job
// (RestartUnit or StopUnit), so the helper starts against a bus without systemd and fails
// only when a systemd call is made. Call before confinement: it opens the bus socket.
// `stop_fd` (-1: none) is polled beside the bus while a job is awaited: once it is readable
// (the helper's stop signal is pending, helper/startup.cc) the wait ends with kFailed, rule
// kHelperStoppingRule, without reading it. A restart of the helper's own unit ends that way,
// since its job cannot finish while the helper lives.
// Returns kFailed with the library's message when the bus cannot be reached.
[[nodiscard]] Result<std::unique_ptr<SystemdManager>> ConnectSystemd(int stop_fd = -1);

}  // namespace decnet::helper
