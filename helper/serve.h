// The helper's serve loop: reads one frame at a time from the daemon's pair, dispatches it
// through the request table (dispatch.h), replies, and ends on EOF or the first protocol
// violation.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "helper/daemon_log.h"
#include "helper/dirs.h"
#include "helper/record.h"
#include "helper/systemd_manager.h"
#include "policy/policy.h"

namespace decnet::helper {

struct ServeOptions {
  bool notify = true;                        // send READY=1 / STATUS= to $NOTIFY_SOCKET (sd_notify)
  std::function<void()> on_hello = nullptr;  // called once the daemon's hello was answered
  RecordLimits record_limits = {};           // sizes of the request and change records
  // The daemon's output pipes (helper/daemon_log.h), relayed while serving; may be null.
  std::vector<LineRelay>* relays = nullptr;
  // Readable once the helper is asked to stop (a signalfd of SIGTERM/SIGINT); -1: none. Polled
  // beside the pair, never read here.
  int stop_fd = -1;
};

// Why serving ended.
enum class ServeEnd {
  kPeerClosed,         // the daemon closed its end (normal shutdown)
  kProtocolViolation,  // logged with its rule; the caller exits non-zero
  kHelloTimeout,       // no hello within policy.hello_timeout_ms
  kStopped,            // stop_fd became readable: systemd is stopping the unit
};

// Serves until the pair closes, the daemon violates the protocol or the helper is asked to
// stop (between requests; a job awaited for a request ends early, see ConnectSystemd). Logs every
// request once (helper/log.h) and appends it to the records in the state directory
// (helper/record.h); refuses state-changing requests once the change record is full.
ServeEnd Serve(int fd, const Policy& policy, const HelperDirs& dirs, SystemdManager& systemd,
               const ServeOptions& options);

}  // namespace decnet::helper
