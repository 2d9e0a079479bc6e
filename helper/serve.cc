#include "helper/serve.h"

#include <poll.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "helper/dispatch.h"
#include "helper/log.h"
#include "proto/framing.h"

namespace decnet::helper {
namespace {

// Counters published as STATUS= and kept for the log.
struct Counters {
  uint64_t served = 0;
  uint64_t refused = 0;
};

void Notify(const ServeOptions& options, const std::string& state) {
  if (options.notify) ::sd_notify(0, state.c_str());
}

std::string StatusLine(const Counters& c, Phase phase) {
  return "STATUS=" + std::string(PhaseName(phase)) + "; served " + std::to_string(c.served) +
         ", refused " + std::to_string(c.refused);
}

// Records and logs one answered request. Every string in the line may come from the daemon;
// LogLine escapes them all.
void Account(RequestRecord& record, Counters& counters, const Dispatched& d) {
  RequestEntry e;
  e.id = d.request.id;
  e.type = std::string(proto::RequestTypeName(d.request.type));
  e.subject = d.request.body ? SubjectOf(*d.request.body) : "";
  if (d.reply) {
    ++counters.served;
    e.result = "ok";
    if (const auto* restart = std::get_if<proto::RestartUnitReply>(&*d.reply)) {
      e.detail = "job " + restart->job_result + ", " + restart->unit.active_state;
    } else if (const auto* w = std::get_if<proto::WriteUnitReply>(&*d.reply)) {
      e.detail = w->changed ? "changed" : "unchanged";
    }
  } else {
    ++counters.refused;
    e.result = std::string(ErrorCodeName(d.reply.error().code));
    e.rule = d.reply.error().rule;
    e.detail = d.reply.error().message;
  }
  LogLine("id=" + std::to_string(e.id) + " " + e.type + (e.subject.empty() ? "" : " " + e.subject) +
          ": " + e.result + (e.rule.empty() ? "" : " [" + e.rule + "]") +
          (e.detail.empty() ? "" : " " + e.detail));
  if (auto ok = record.Append(e, d.effect); !ok)
    LogLine("cannot append to the request record: " + ok.error().message);
}

ServeEnd EndWithViolation(RequestRecord& record, const std::string& rule,
                          const std::string& message) {
  LogLine("protocol violation [" + rule + "]: " + message + "; ending the session");
  RequestEntry e{0, "-", "", "violation", rule, message};
  (void)record.Append(e);
  return ServeEnd::kProtocolViolation;
}

enum class Awaited { kPair, kTimeout, kStop };

// Waits for the pair to become readable (or hang up), relaying the daemon's output while it
// waits. kTimeout when `timeout_ms` (-1: none) passed first, kStop when `stop_fd` (-1: none)
// became readable first.
Awaited AwaitPair(int fd, int timeout_ms, std::vector<LineRelay>* relays, int stop_fd) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    // The stop is looked at first: a daemon that keeps sending cannot hold the helper up.
    if (stop_fd >= 0) {
      pollfd stop{stop_fd, POLLIN, 0};
      if (::poll(&stop, 1, 0) > 0) return Awaited::kStop;
    }
    std::vector<pollfd> fds = {{fd, POLLIN, 0}};
    if (stop_fd >= 0) fds.push_back({stop_fd, POLLIN, 0});
    const size_t first_relay = fds.size();
    for (LineRelay& r : *relays) fds.push_back({r.fd(), POLLIN, 0});
    int wait = -1;
    if (timeout_ms >= 0) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      wait = left > 0 ? static_cast<int>(left) : 0;
    }
    const int n = ::poll(fds.data(), fds.size(), wait);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Awaited::kTimeout;
    for (size_t i = first_relay; i < fds.size(); ++i) {
      if (fds[i].revents != 0) (*relays)[i - first_relay].Pump();
    }
    // A relay whose writer closed stays readable (EOF): stop polling it.
    std::erase_if(*relays, [](LineRelay& r) { return !r.Pump(); });
    if (first_relay == 2 && fds[1].revents != 0) return Awaited::kStop;
    if (fds[0].revents != 0) return Awaited::kPair;
  }
}

}  // namespace

ServeEnd Serve(int fd, const Policy& policy, const HelperDirs& dirs, SystemdManager& systemd,
               const ServeOptions& options) {
  auto record = RequestRecord::Open(dirs.state_dir, options.record_limits);
  auto units = UnitRecord::Load(dirs.state_dir);
  if (!record || !units) {
    LogLine("cannot open the helper's records: " +
            (!record ? record.error().message : units.error().message));
    return ServeEnd::kProtocolViolation;
  }
  Session session{policy, dirs, systemd, *units, PolicyDigest(policy), Phase::kAwaitHello, {}};
  const AdmitChange admit = [&record] { return record->AdmitChange(); };
  std::vector<LineRelay> no_relays;
  std::vector<LineRelay>* relays = options.relays != nullptr ? options.relays : &no_relays;
  Counters counters;
  Notify(options, StatusLine(counters, session.phase));
  for (;;) {
    int timeout = session.phase == Phase::kAwaitHello ? policy.hello_timeout_ms : -1;
    if (!relays->empty() || options.stop_fd >= 0) {
      // The pair is ready (or the wait is over): RecvFrame need not wait again.
      if (AwaitPair(fd, timeout, relays, options.stop_fd) == Awaited::kStop) {
        LogLine("asked to stop: ending the session");
        return ServeEnd::kStopped;
      }
      timeout = 0;
    }
    auto frame = RecvFrame(fd, timeout);
    if (!frame) {
      if (frame.error() == FrameError::kEof) return ServeEnd::kPeerClosed;
      if (frame.error() == FrameError::kTimeout) {
        LogLine("the daemon did not say hello within " + std::to_string(policy.hello_timeout_ms) +
                " ms");
        return ServeEnd::kHelloTimeout;
      }
      return EndWithViolation(*record, std::string(FrameErrorRule(frame.error())), "bad frame");
    }
    auto dispatched = Dispatch(session, *frame, admit);
    if (!dispatched) {
      return EndWithViolation(*record, dispatched.error().rule, dispatched.error().message);
    }
    Account(*record, counters, *dispatched);
    if (!SendFrame(fd, proto::EncodeReply(dispatched->request.id, dispatched->reply))) {
      return ServeEnd::kPeerClosed;
    }
    if (dispatched->end_session) {
      return EndWithViolation(*record, "hello-refused", "the daemon's hello was refused");
    }
    if (dispatched->request.type == proto::RequestType::kHello) {
      if (options.on_hello) options.on_hello();
      Notify(options, "READY=1\n" + StatusLine(counters, session.phase));
    } else {
      Notify(options, StatusLine(counters, session.phase));
    }
  }
}

}  // namespace decnet::helper
