#include "proto/framing.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <vector>

namespace decnet {

std::string_view FrameErrorRule(FrameError e) {
  switch (e) {
    case FrameError::kEof:
      return "frame-eof";
    case FrameError::kEmpty:
      return "frame-empty";
    case FrameError::kTooLarge:
      return "frame-too-large";
    case FrameError::kAncillary:
      return "frame-ancillary-data";
    case FrameError::kTimeout:
      return "frame-timeout";
    case FrameError::kIo:
      return "frame-io";
  }
  return "frame-unknown";
}

namespace {

// Waits until `fd` is readable (or hung up). Returns false on timeout.
tl::expected<bool, FrameError> WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return tl::make_unexpected(FrameError::kIo);
  }
}

}  // namespace

tl::expected<std::string, FrameError> RecvFrame(int fd, int timeout_ms) {
  if (timeout_ms >= 0) {
    auto ready = WaitReadable(fd, timeout_ms);
    if (!ready) return tl::make_unexpected(ready.error());
    if (!*ready) return tl::make_unexpected(FrameError::kTimeout);
  }
  // One byte more than the cap, so that MSG_TRUNC cannot be missed. Reused, so a frame
  // costs a copy of its own length, not a fresh 64 KiB buffer.
  thread_local std::vector<char> buf(kMaxFrame + 1);
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // SECURITY: no control buffer: a peer that passes descriptors or credentials sets
    // MSG_CTRUNC, and the kernel closes what it tried to pass.
    ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return tl::make_unexpected(FrameError::kEof);
      return tl::make_unexpected(FrameError::kIo);
    }
    if (msg.msg_flags & MSG_TRUNC || static_cast<size_t>(n) > kMaxFrame) {
      return tl::make_unexpected(FrameError::kTooLarge);
    }
    if (msg.msg_flags & MSG_CTRUNC) return tl::make_unexpected(FrameError::kAncillary);
    if (n == 0) {
      // A zero-length message and end-of-stream both read as 0; a peer that closed or shut
      // down its writing side also shows POLLHUP or POLLRDHUP, which tells them apart for
      // the log. Both end the session.
      pollfd p{fd, POLLIN | POLLRDHUP, 0};
      if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP))) {
        return tl::make_unexpected(FrameError::kEof);
      }
      return tl::make_unexpected(FrameError::kEmpty);
    }
    return std::string(buf.data(), static_cast<size_t>(n));
  }
}

tl::expected<void, FrameError> SendFrame(int fd, std::string_view frame) {
  if (frame.empty()) return tl::make_unexpected(FrameError::kEmpty);
  if (frame.size() > kMaxFrame) return tl::make_unexpected(FrameError::kTooLarge);
  for (;;) {
    ssize_t n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      // SOCK_SEQPACKET sends a message whole or not at all.
      return {};
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) return tl::make_unexpected(FrameError::kEof);
    return tl::make_unexpected(FrameError::kIo);
  }
}

}  // namespace decnet
