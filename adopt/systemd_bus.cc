#include "adopt/systemd_bus.h"

#include <systemd/sd-bus.h>

#include <cstring>
#include <thread>

namespace decnet::adopt {
namespace {

constexpr char kDest[] = "org.freedesktop.systemd1";
constexpr char kPath[] = "/org/freedesktop/systemd1";
constexpr char kManager[] = "org.freedesktop.systemd1.Manager";
constexpr char kUnit[] = "org.freedesktop.systemd1.Unit";

// Owns one sd-bus error and one reply for the length of a call.
struct Call {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  ~Call() {
    sd_bus_error_free(&error);
    sd_bus_message_unref(reply);
  }
  tl::unexpected<Error> Failed(const std::string& what, int r) const {
    return Fail(ErrorCode::kFailed, "adopt-bus",
                what + ": " + (error.message ? error.message : std::strerror(-r)));
  }
};

}  // namespace

Result<SystemdBus> SystemdBus::Connect() {
  sd_bus* bus = nullptr;
  const int r = sd_bus_open_system(&bus);
  if (r < 0)
    return Fail(ErrorCode::kFailed, "adopt-bus",
                std::string("cannot reach the system bus: ") + std::strerror(-r));
  return SystemdBus(bus);
}

SystemdBus::SystemdBus(SystemdBus&& other) noexcept : bus_(other.bus_) { other.bus_ = nullptr; }
SystemdBus::~SystemdBus() { sd_bus_flush_close_unref(bus_); }

Result<void> SystemdBus::Reload() {
  Call c;
  const int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "Reload", &c.error, &c.reply, "");
  if (r < 0) return c.Failed("daemon-reload", r);
  return {};
}

Result<std::string> SystemdBus::UnitPath(const std::string& unit) {
  Call c;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "LoadUnit", &c.error, &c.reply, "s",
                             unit.c_str());
  if (r < 0) return c.Failed("load " + unit, r);
  const char* path = nullptr;
  r = sd_bus_message_read(c.reply, "o", &path);
  if (r < 0) return c.Failed("load " + unit, r);
  return std::string(path);
}

Result<std::string> SystemdBus::UnitString(const std::string& unit, const char* property) {
  auto path = UnitPath(unit);
  if (!path) return path;
  Call c;
  char* value = nullptr;
  const int r =
      sd_bus_get_property_string(bus_, kDest, path->c_str(), kUnit, property, &c.error, &value);
  if (r < 0) return c.Failed(std::string("read ") + property + " of " + unit, r);
  std::string out(value);
  free(value);
  return out;
}

Result<std::string> SystemdBus::ActiveState(const std::string& unit) {
  return UnitString(unit, "ActiveState");
}
Result<std::string> SystemdBus::FragmentPath(const std::string& unit) {
  return UnitString(unit, "FragmentPath");
}

Result<std::string> SystemdBus::UnitFileState(const std::string& unit) {
  Call c;
  int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "GetUnitFileState", &c.error, &c.reply,
                             "s", unit.c_str());
  if (r < 0) {
    if (sd_bus_error_has_name(&c.error, "org.freedesktop.DBus.Error.FileNotFound") ||
        sd_bus_error_has_name(&c.error, "org.freedesktop.systemd1.NoSuchUnit"))
      return std::string();
    return c.Failed("unit file state of " + unit, r);
  }
  const char* state = nullptr;
  r = sd_bus_message_read(c.reply, "s", &state);
  if (r < 0) return c.Failed("unit file state of " + unit, r);
  return std::string(state);
}

Result<void> SystemdBus::Stop(const std::string& unit, std::chrono::seconds timeout) {
  {
    Call c;
    const int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "StopUnit", &c.error, &c.reply,
                                     "ss", unit.c_str(), "replace");
    if (r < 0) {
      if (sd_bus_error_has_name(&c.error, "org.freedesktop.systemd1.NoSuchUnit")) return {};
      return c.Failed("stop " + unit, r);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto state = ActiveState(unit);
    if (!state) return tl::make_unexpected(state.error());
    if (*state == "inactive" || *state == "failed") return {};
    if (std::chrono::steady_clock::now() >= deadline)
      return Fail(ErrorCode::kTimeout, "adopt-stop-timeout", unit + " is still " + *state);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<void> SystemdBus::Restart(const std::string& unit, std::chrono::seconds timeout) {
  {
    Call c;
    const int r = sd_bus_call_method(bus_, kDest, kPath, kManager, "RestartUnit", &c.error,
                                     &c.reply, "ss", unit.c_str(), "replace");
    if (r < 0) return c.Failed("restart " + unit, r);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (;;) {
    auto state = ActiveState(unit);
    if (!state) return tl::make_unexpected(state.error());
    if (*state == "active") return {};
    if (*state == "failed" || *state == "inactive")
      return Fail(ErrorCode::kFailed, "adopt-start-failed",
                  unit + " is " + *state + " after its start");
    if (std::chrono::steady_clock::now() >= deadline)
      return Fail(ErrorCode::kTimeout, "adopt-start-timeout", unit + " is still " + *state);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<void> SystemdBus::Enable(const std::string& unit) {
  Call c;
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &m, kDest, kPath, kManager, "EnableUnitFiles");
  if (r >= 0)
    r = sd_bus_message_append_strv(
        m, const_cast<char**>(std::array<const char*, 2>{unit.c_str(), nullptr}.data()));
  if (r >= 0) r = sd_bus_message_append(m, "bb", 0, 1);
  if (r >= 0) r = sd_bus_call(bus_, m, 0, &c.error, &c.reply);
  sd_bus_message_unref(m);
  if (r < 0) return c.Failed("enable " + unit, r);
  return {};
}

Result<void> SystemdBus::Disable(const std::string& unit) {
  Call c;
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus_, &m, kDest, kPath, kManager, "DisableUnitFiles");
  if (r >= 0)
    r = sd_bus_message_append_strv(
        m, const_cast<char**>(std::array<const char*, 2>{unit.c_str(), nullptr}.data()));
  if (r >= 0) r = sd_bus_message_append(m, "b", 0);
  if (r >= 0) r = sd_bus_call(bus_, m, 0, &c.error, &c.reply);
  sd_bus_message_unref(m);
  if (r < 0) return c.Failed("disable " + unit, r);
  return {};
}

}  // namespace decnet::adopt
