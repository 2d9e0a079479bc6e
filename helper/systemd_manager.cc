// The sdbus-c++ adapter behind SystemdManager: the only file that talks D-Bus.
//
// Why it looks the way it does:
// * The helper is single-threaded and confined by seccomp once it has connected, so no
//   sdbus-c++ event-loop thread is ever started. Signals are dispatched by this file's own
//   wait loop (processPendingRequest, then poll on the connection's fd) while a job is
//   awaited, and only then.
// * systemd sends JobRemoved only to subscribed clients. Subscribe is called lazily, on
//   the first job, not at connect time: the helper must be able to start against a bus on
//   which systemd is absent (tests use a plain dbus-daemon) and fail only when a systemd
//   call is actually made.
// * JobRemoved can be read off the socket before the reply that names the job (sd-bus
//   queues it while it waits for the reply), so finished jobs are remembered and matched
//   against the job path once it is known.
// * sdbus::Error (and anything else the library throws) is caught here and becomes a
//   decnet::Error; nothing thrown crosses this file's boundary.
#include "helper/systemd_manager.h"

#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace decnet::helper {
namespace {

constexpr char kDestination[] = "org.freedesktop.systemd1";
constexpr char kManagerPath[] = "/org/freedesktop/systemd1";
constexpr char kManagerInterface[] = "org.freedesktop.systemd1.Manager";
constexpr char kUnitInterface[] = "org.freedesktop.systemd1.Unit";
constexpr char kServiceInterface[] = "org.freedesktop.systemd1.Service";
constexpr char kNoSuchUnit[] = "org.freedesktop.systemd1.NoSuchUnit";
// Bound on calls that are not waits for a job (Reload, LoadUnit, property reads). Reload
// can take a while on a host with many units; systemd answers it when the reload is done.
constexpr std::chrono::seconds kCallTimeout{90};
// Jobs of other clients also end while we wait; keep the memory of them bounded.
constexpr size_t kMaxRememberedJobs = 1024;

using Clock = std::chrono::steady_clock;

Error ErrorFromBus(const sdbus::Error& e, std::string_view what) {
  const std::string& name = e.getName();
  if (name == kNoSuchUnit) {
    return Error{ErrorCode::kNotFound, "systemd-no-such-unit",
                 std::string(what) + ": " + e.getMessage()};
  }
  if (name == "org.freedesktop.DBus.Error.Timeout" ||
      name == "org.freedesktop.DBus.Error.TimedOut" ||
      name == "org.freedesktop.DBus.Error.NoReply") {
    return Error{ErrorCode::kTimeout, "systemd-call-timeout",
                 std::string(what) + ": " + name + ": " + e.getMessage()};
  }
  return Error{ErrorCode::kFailed, "systemd-call-failed",
               std::string(what) + ": " + name + ": " + e.getMessage()};
}

Error ErrorFromException(const std::exception& e, std::string_view what) {
  return Error{ErrorCode::kFailed, "systemd-call-failed", std::string(what) + ": " + e.what()};
}

uint64_t Usec(std::chrono::milliseconds d) {
  return static_cast<uint64_t>(std::max<int64_t>(d.count(), 1)) * 1000;
}

class DbusSystemdManager final : public SystemdManager {
 public:
  DbusSystemdManager(std::unique_ptr<sdbus::IConnection> connection,
                     std::unique_ptr<sdbus::IProxy> manager, int stop_fd)
      : connection_(std::move(connection)), manager_(std::move(manager)), stop_fd_(stop_fd) {}

  ~DbusSystemdManager() override {
    // The proxy refers to the connection: it must go first. Its destructor unregisters
    // the signal match; a failure there is of no interest any more.
    try {
      manager_.reset();
    } catch (...) {
    }
  }

  // Registers the JobRemoved handler. Only a match rule with the bus daemon: systemd itself
  // need not be present.
  Result<void> RegisterJobRemoved() {
    try {
      manager_->uponSignal("JobRemoved")
          .onInterface(kManagerInterface)
          .call([this](uint32_t /*id*/, const sdbus::ObjectPath& job, const std::string& /*unit*/,
                       const std::string& result) {
            if (finished_jobs_.size() >= kMaxRememberedJobs) finished_jobs_.clear();
            finished_jobs_[job] = result;
          });
      manager_->finishRegistration();
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, "registering for JobRemoved"));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, "registering for JobRemoved"));
    }
    return {};
  }

  Result<void> Reload() override {
    try {
      auto call = manager_->createMethodCall(kManagerInterface, "Reload");
      manager_->callMethod(call, Usec(kCallTimeout));
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, "Reload"));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, "Reload"));
    }
    return {};
  }

  Result<JobOutcome> RestartUnit(const UnitName& name, std::chrono::milliseconds timeout) override {
    return RunJob("RestartUnit", name, timeout);
  }

  Result<JobOutcome> StopUnit(const UnitName& name, std::chrono::milliseconds timeout) override {
    return RunJob("StopUnit", name, timeout);
  }

  // A proxy of the unit's object, through Manager.LoadUnit: unlike GetUnit it answers for a
  // unit that is not loaded (load state "not-found" when no file exists), which is what a
  // status query and the loaded-view check must see. Throws the library's errors; callers
  // catch them.
  std::unique_ptr<sdbus::IProxy> LoadUnitProxy(const UnitName& name) {
    auto call = manager_->createMethodCall(kManagerInterface, "LoadUnit");
    call << name.str();
    auto reply = manager_->callMethod(call, Usec(kCallTimeout));
    sdbus::ObjectPath path;
    reply >> path;
    return sdbus::createProxy(*connection_, kDestination, path);
  }

  Result<proto::UnitState> GetUnitState(const UnitName& name) override {
    const std::string what = "state of " + name.str();
    try {
      auto unit = LoadUnitProxy(name);
      proto::UnitState state;
      state.load_state = GetProperty<std::string>(*unit, kUnitInterface, "LoadState");
      state.active_state = GetProperty<std::string>(*unit, kUnitInterface, "ActiveState");
      state.sub_state = GetProperty<std::string>(*unit, kUnitInterface, "SubState");
      if (name.is_service() && state.load_state == "loaded") {
        state.main_pid = GetProperty<uint32_t>(*unit, kServiceInterface, "MainPID");
        state.n_restarts = GetProperty<uint32_t>(*unit, kServiceInterface, "NRestarts");
      }
      return state;
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, what));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, what));
    }
  }

  Result<LoadedView> GetLoadedView(const UnitName& name) override {
    const std::string what = "loaded view of " + name.str();
    try {
      auto unit = LoadUnitProxy(name);
      const Properties u = GetAll(*unit, kUnitInterface);
      LoadedView view;
      view.load_state = Take<std::string>(u, "LoadState");
      view.fragment_path = Take<std::string>(u, "FragmentPath");
      view.source_path = Take<std::string>(u, "SourcePath");
      view.drop_in_paths = Take<std::vector<std::string>>(u, "DropInPaths");
      view.transient = Take<bool>(u, "Transient");
      view.start_limit_interval_usec = Take<uint64_t>(u, "StartLimitIntervalUSec");
      view.is_service = name.is_service();
      if (!view.is_service || view.load_state != "loaded") return view;

      const Properties p = GetAll(*unit, kServiceInterface);
      view.user = Take<std::string>(p, "User");
      view.group = Take<std::string>(p, "Group");
      view.dynamic_user = Take<bool>(p, "DynamicUser");
      view.supplementary_groups = Take<std::vector<std::string>>(p, "SupplementaryGroups");
      for (const char* directive :
           {"ExecConditionEx", "ExecStartPreEx", "ExecStartEx", "ExecStartPostEx", "ExecReloadEx",
            "ExecStopEx", "ExecStopPostEx"}) {
        const std::string shown(directive, std::strlen(directive) - 2);  // without "Ex"
        for (const auto& command : Take<std::vector<ExecEx>>(p, directive)) {
          view.exec.push_back(LoadedExec{shown, command.get<0>(), command.get<2>()});
        }
      }
      for (const char* directive : {"StateDirectory", "CacheDirectory", "LogsDirectory",
                                    "RuntimeDirectory", "ConfigurationDirectory"}) {
        view.directories.emplace_back(directive, Take<std::vector<std::string>>(p, directive));
      }
      view.kill_mode = Take<std::string>(p, "KillMode");
      view.send_sigkill = Take<bool>(p, "SendSIGKILL");
      view.timeout_stop_usec = Take<uint64_t>(p, "TimeoutStopUSec");
      view.limit_nproc = Take<uint64_t>(p, "LimitNPROC");
      view.limit_nofile = Take<uint64_t>(p, "LimitNOFILE");
      view.tasks_max = Take<uint64_t>(p, "TasksMax");
      view.ambient_capabilities = Take<uint64_t>(p, "AmbientCapabilities");
      view.capability_bounding_set = Take<uint64_t>(p, "CapabilityBoundingSet");
      view.no_new_privileges = Take<bool>(p, "NoNewPrivileges");
      view.root_directory = Take<std::string>(p, "RootDirectory");
      view.root_image = Take<std::string>(p, "RootImage");
      view.pam_name = Take<std::string>(p, "PAMName");
      view.standard_input = Take<std::string>(p, "StandardInput");
      view.standard_output = Take<std::string>(p, "StandardOutput");
      view.standard_error = Take<std::string>(p, "StandardError");
      for (const auto& file :
           Take<std::vector<sdbus::Struct<std::string, bool>>>(p, "EnvironmentFiles")) {
        view.environment_files.push_back(file.get<0>());
      }
      for (const char* key : {"LoadCredential", "LoadCredentialEncrypted"}) {
        for (const auto& c : Take<std::vector<sdbus::Struct<std::string, std::string>>>(p, key))
          view.credentials.push_back(c.get<0>());
      }
      for (const char* key : {"SetCredential", "SetCredentialEncrypted"}) {
        for (const auto& c :
             Take<std::vector<sdbus::Struct<std::string, std::vector<uint8_t>>>>(p, key))
          view.credentials.push_back(c.get<0>());
      }
      return view;
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, what));
    } catch (const MissingProperty& e) {
      return Fail(ErrorCode::kFailed, "systemd-loaded-view", what + ": " + e.what());
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, what));
    }
  }

 private:
  // Exec*Ex: path, argv, flags, start/stop timestamps (realtime, monotonic), pid, code, status.
  using ExecEx = sdbus::Struct<std::string, std::vector<std::string>, std::vector<std::string>,
                               uint64_t, uint64_t, uint64_t, uint64_t, uint32_t, int32_t, int32_t>;
  using Properties = std::map<std::string, sdbus::Variant>;

  struct MissingProperty : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  Properties GetAll(sdbus::IProxy& proxy, const char* interface) {
    auto call = proxy.createMethodCall("org.freedesktop.DBus.Properties", "GetAll");
    call << std::string(interface);
    auto reply = proxy.callMethod(call, Usec(kCallTimeout));
    Properties all;
    reply >> all;
    return all;
  }

  // The property `key` of type T; a missing one or one of another type throws
  // MissingProperty (a view read in part is never judged).
  template <typename T>
  static T Take(const Properties& all, const char* key) {
    const auto it = all.find(key);
    if (it == all.end()) throw MissingProperty(std::string("no property ") + key);
    if (!it->second.containsValueOfType<T>()) {
      throw MissingProperty(std::string("property ") + key + " has type " +
                            it->second.peekValueType() + ", expected " +
                            sdbus::signature_of<T>::str());
    }
    return it->second.get<T>();
  }

  template <typename T>
  T GetProperty(sdbus::IProxy& proxy, const char* interface, const char* property) {
    auto call = proxy.createMethodCall("org.freedesktop.DBus.Properties", "Get");
    call << std::string(interface) << std::string(property);
    auto reply = proxy.callMethod(call, Usec(kCallTimeout));
    sdbus::Variant value;
    reply >> value;
    return value.get<T>();
  }

  Result<void> EnsureSubscribed() {
    if (subscribed_) return {};
    try {
      auto call = manager_->createMethodCall(kManagerInterface, "Subscribe");
      manager_->callMethod(call, Usec(kCallTimeout));
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, "Subscribe"));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, "Subscribe"));
    }
    subscribed_ = true;
    return {};
  }

  // Method(name, "replace"), then waits for the job it returns to be removed.
  Result<JobOutcome> RunJob(const char* method, const UnitName& name,
                            std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    const std::string what = std::string(method) + " " + name.str();
    if (auto subscribed = EnsureSubscribed(); !subscribed)
      return tl::make_unexpected(subscribed.error());

    // A JobRemoved seen before this call cannot be for the job it creates.
    finished_jobs_.clear();
    sdbus::ObjectPath job;
    try {
      auto call = manager_->createMethodCall(kManagerInterface, method);
      call << name.str() << std::string("replace");
      auto reply = manager_->callMethod(call, Usec(timeout));
      reply >> job;
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, what));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, what));
    }
    return WaitForJob(job, deadline, what);
  }

  // Dispatches incoming messages (and so the JobRemoved handler) until `job` has been
  // removed or `deadline` has passed. No thread: the caller's thread polls the bus fd.
  Result<JobOutcome> WaitForJob(const std::string& job, Clock::time_point deadline,
                                const std::string& what) {
    try {
      for (;;) {
        if (auto it = finished_jobs_.find(job); it != finished_jobs_.end()) {
          JobOutcome outcome{it->second};
          finished_jobs_.erase(it);
          return outcome;
        }
        if (connection_->processPendingRequest()) continue;  // more may be queued

        const auto now = Clock::now();
        if (now >= deadline) {
          return Fail(ErrorCode::kTimeout, "systemd-job-timeout",
                      what + ": job " + job + " did not finish in time");
        }
        auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        const auto poll_data = connection_->getEventLoopPollData();
        const int bus_timeout = poll_data.getPollTimeout();  // -1: none
        int wait_ms = static_cast<int>(std::min<int64_t>(remaining, INT32_MAX));
        if (bus_timeout >= 0) wait_ms = std::min(wait_ms, bus_timeout);
        pollfd pfds[2] = {{poll_data.fd, poll_data.events, 0}, {stop_fd_, POLLIN, 0}};
        const nfds_t n = stop_fd_ >= 0 ? 2 : 1;
        if (poll(pfds, n, wait_ms) < 0 && errno != EINTR) {
          return Fail(ErrorCode::kFailed, "systemd-bus-poll",
                      what + ": poll on the bus failed (errno " + std::to_string(errno) + ")");
        }
        // Being stopped, the helper must not sit out the job's timeout: systemd waits for it
        // (and then kills what is left of the unit). The signal stays pending for the caller.
        if (n == 2 && (pfds[1].revents & POLLIN) != 0) {
          return Fail(ErrorCode::kFailed, kHelperStoppingRule,
                      what + ": job " + job + " still running when the helper was stopped");
        }
      }
    } catch (const sdbus::Error& e) {
      return tl::make_unexpected(ErrorFromBus(e, what));
    } catch (const std::exception& e) {
      return tl::make_unexpected(ErrorFromException(e, what));
    }
  }

  std::unique_ptr<sdbus::IConnection> connection_;
  std::unique_ptr<sdbus::IProxy> manager_;
  int stop_fd_ = -1;  // borrowed; readable once the helper is asked to stop
  bool subscribed_ = false;
  std::map<std::string, std::string> finished_jobs_;  // job path -> JobRemoved result
};

}  // namespace

Result<std::unique_ptr<SystemdManager>> ConnectSystemd(int stop_fd) {
  std::unique_ptr<DbusSystemdManager> manager;
  try {
    // Honours DBUS_SYSTEM_BUS_ADDRESS (sd_bus_open_system); no event-loop thread.
    auto connection = sdbus::createSystemBusConnection();
    auto proxy = sdbus::createProxy(*connection, kDestination, kManagerPath);
    manager =
        std::make_unique<DbusSystemdManager>(std::move(connection), std::move(proxy), stop_fd);
  } catch (const sdbus::Error& e) {
    return Fail(ErrorCode::kFailed, "systemd-bus-connect",
                "connecting to the system bus: " + e.getName() + ": " + e.getMessage());
  } catch (const std::exception& e) {
    return Fail(ErrorCode::kFailed, "systemd-bus-connect",
                std::string("connecting to the system bus: ") + e.what());
  }
  if (auto registered = manager->RegisterJobRemoved(); !registered) {
    return tl::make_unexpected(registered.error());
  }
  return std::unique_ptr<SystemdManager>(std::move(manager));
}

}  // namespace decnet::helper
