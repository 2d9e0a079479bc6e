#include "helper/serve.h"

#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>

#include "helper/dispatch.h"
#include "helper/record.h"
#include "proto/framing.h"

namespace decnet::helper {
namespace {

// Counters published as STATUS= and kept for the log.
struct Counters {
  uint64_t served = 0;
  uint64_t refused = 0;
};

// One write(2) per line: no stdio under the seccomp filter, and lines never interleave.
void Log(const std::string& line) {
  std::string out = "decnet-update-helper: " + line + "\n";
  std::string_view rest = out;
  while (!rest.empty()) {
    ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

void Notify(const ServeOptions& options, const std::string& state) {
  if (options.notify) ::sd_notify(0, state.c_str());
}

std::string StatusLine(const Counters& c, Phase phase) {
  return "STATUS=" + std::string(PhaseName(phase)) + "; served " + std::to_string(c.served) +
         ", refused " + std::to_string(c.refused);
}

// Records and logs one answered request.
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
  Log("id=" + std::to_string(e.id) + " " + e.type + (e.subject.empty() ? "" : " " + e.subject) +
      ": " + e.result + (e.rule.empty() ? "" : " [" + e.rule + "]") +
      (e.detail.empty() ? "" : " " + e.detail));
  if (auto ok = record.Append(e); !ok)
    Log("cannot append to the request record: " + ok.error().message);
}

ServeEnd EndWithViolation(RequestRecord& record, const std::string& rule,
                          const std::string& message) {
  Log("protocol violation [" + rule + "]: " + message + "; ending the session");
  RequestEntry e{0, "-", "", "violation", rule, message};
  (void)record.Append(e);
  return ServeEnd::kProtocolViolation;
}

}  // namespace

ServeEnd Serve(int fd, const Policy& policy, const HelperDirs& dirs, SystemdManager& systemd,
               const ServeOptions& options) {
  auto record = RequestRecord::Open(dirs.state_dir);
  auto units = UnitRecord::Load(dirs.state_dir);
  if (!record || !units) {
    Log("cannot open the helper's records: " +
        (!record ? record.error().message : units.error().message));
    return ServeEnd::kProtocolViolation;
  }
  Session session{policy, dirs, systemd, *units, PolicyDigest(policy), Phase::kAwaitHello, {}};
  Counters counters;
  Notify(options, StatusLine(counters, session.phase));
  for (;;) {
    int timeout = session.phase == Phase::kAwaitHello ? policy.hello_timeout_ms : -1;
    auto frame = RecvFrame(fd, timeout);
    if (!frame) {
      if (frame.error() == FrameError::kEof) return ServeEnd::kPeerClosed;
      if (frame.error() == FrameError::kTimeout) {
        Log("the daemon did not say hello within " + std::to_string(timeout) + " ms");
        return ServeEnd::kHelloTimeout;
      }
      return EndWithViolation(*record, std::string(FrameErrorRule(frame.error())), "bad frame");
    }
    auto dispatched = Dispatch(session, *frame);
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
