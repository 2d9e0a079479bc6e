// The one owned file descriptor of the tree: every library that opens a descriptor holds it in
// a UniqueFd, so each descriptor is closed exactly once, on every path out of its scope.
#pragma once

#include <unistd.h>

#include <cerrno>

namespace decnet {

// Owns one file descriptor (negative: none) and closes it when it is destroyed or reset.
// Move-only: a move hands the descriptor on and leaves the source empty; copies are refused
// at compile time. Closing never changes errno, so a caller may read the errno of a failed
// call after the descriptor's owner has gone out of scope. A failed close(2) is not reported:
// nothing can be done with it, and the descriptor is released by the kernel either way.
class UniqueFd {
 public:
  // Holds nothing. Not explicit, so a struct with UniqueFd members can still be reset with `{}`.
  UniqueFd() = default;
  // Takes ownership of `fd`; a negative `fd` holds nothing.
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  // Takes `other`'s descriptor; `other` holds nothing afterwards.
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  // Closes the descriptor held (if any), then takes `other`'s; self-assignment does nothing.
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  // The descriptor, still owned; negative when there is none.
  int get() const { return fd_; }
  // True when a descriptor is held.
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing; returns the descriptor (negative when there was none).
  // Not inlined: where GCC 12 sees the -1 left in a moved-from member of an expected<>'s
  // storage, it misreads it as a pointer and -Wfree-nonheap-object fails the build.
  [[nodiscard, gnu::noinline]] int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any, and unless it is `fd` itself) and holds `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0 && fd_ != fd) {
      const int saved = errno;
      ::close(fd_);
      errno = saved;
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace decnet
