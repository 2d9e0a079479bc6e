// One owned file descriptor for the rollout's file work: closed when the owner goes away.
#pragma once

#include <unistd.h>

namespace decnet::fleet {

// Owns `fd` (negative: none) and closes it on destruction; neither copied nor moved.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  // The descriptor, still owned; negative when there is none.
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace decnet::fleet
