// Framing of the helper protocol over a SOCK_SEQPACKET socketpair: one message is one frame,
// at most kMaxFrame bytes. Anything else (larger, truncated, empty, carrying ancillary data)
// is a protocol violation, which the caller treats as fatal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace decnet {

inline constexpr size_t kMaxFrame = 64 * 1024;

enum class FrameError {
  kEof,        // the peer closed its end
  kEmpty,      // a zero-length message
  kTooLarge,   // the message was longer than kMaxFrame (MSG_TRUNC)
  kAncillary,  // the peer tried to pass descriptors or credentials (MSG_CTRUNC)
  kTimeout,    // nothing arrived within the timeout
  kIo,         // any other socket error (errno in the message of the caller's log)
};

// Stable name of a FrameError, used as the rule in logs ("frame-too-large", ...).
std::string_view FrameErrorRule(FrameError e);

// Receives one frame. `timeout_ms` < 0 waits forever. Retries EINTR.
[[nodiscard]] tl::expected<std::string, FrameError> RecvFrame(int fd, int timeout_ms = -1);

// Sends one frame. Refuses (kTooLarge) a frame over kMaxFrame or (kEmpty) an empty one
// without sending anything; kEof when the peer is gone (EPIPE, no SIGPIPE raised).
[[nodiscard]] tl::expected<void, FrameError> SendFrame(int fd, std::string_view frame);

}  // namespace decnet
