#include "proto/unique_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace decnet {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

// A pipe's two ends, as plain numbers: the tests hand them to UniqueFds and check what the
// kernel still holds. Whatever a test leaves open is closed here.
struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds)
      if (IsOpen(fd)) ::close(fd);
  }
  int fds[2] = {-1, -1};
};

TEST(AnOwnedDescriptor, HoldsNothingByDefault) {
  UniqueFd fd;
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(fd.get(), -1);
}

TEST(AnOwnedDescriptor, ClosesItsDescriptorWhenItGoesOutOfScope) {
  Pipe p;
  {
    UniqueFd fd(p.fds[0]);
    EXPECT_TRUE(fd.valid());
    EXPECT_TRUE(IsOpen(p.fds[0]));
  }
  EXPECT_FALSE(IsOpen(p.fds[0]));
  EXPECT_TRUE(IsOpen(p.fds[1])) << "only its own descriptor is closed";
}

TEST(AnOwnedDescriptor, LeavesErrnoAsItWasWhenItCloses) {
  Pipe p;
  {
    UniqueFd fd(p.fds[0]);
    errno = ENOENT;
  }
  EXPECT_EQ(errno, ENOENT);  // read first: the fcntl below sets it
  EXPECT_FALSE(IsOpen(p.fds[0]));
}

TEST(AnOwnedDescriptor, LeavesErrnoAsItWasEvenWhenTheCloseFails) {
  // A number that names no open descriptor: close(2) fails with EBADF.
  Pipe p;
  const int stale = p.fds[0];
  ASSERT_EQ(::close(stale), 0);
  {
    UniqueFd fd(stale);
    errno = ENOENT;
  }
  EXPECT_EQ(errno, ENOENT);
  UniqueFd held(stale);
  errno = EEXIST;
  held.reset();
  EXPECT_EQ(errno, EEXIST);
}

TEST(AnOwnedDescriptor, HandsItsDescriptorOnWhenMovedAndLeavesTheSourceEmpty) {
  Pipe p;
  {
    UniqueFd a(p.fds[0]);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), p.fds[0]);
    EXPECT_TRUE(IsOpen(p.fds[0]));
  }
  EXPECT_FALSE(IsOpen(p.fds[0])) << "closed once, by its last owner";
}

TEST(AnOwnedDescriptor, ClosesItsOwnDescriptorBeforeTakingAMovedOne) {
  Pipe p;
  UniqueFd a(p.fds[0]);
  UniqueFd b(p.fds[1]);
  a = std::move(b);
  EXPECT_FALSE(IsOpen(p.fds[0])) << "the descriptor it held is closed at once";
  EXPECT_EQ(a.get(), p.fds[1]);
  EXPECT_FALSE(b.valid());
  EXPECT_TRUE(IsOpen(p.fds[1]));
}

TEST(AnOwnedDescriptor, KeepsItsDescriptorWhenMovedOntoItself) {
  Pipe p;
  UniqueFd a(p.fds[0]);
  UniqueFd& same = a;
  a = std::move(same);
  EXPECT_EQ(a.get(), p.fds[0]);
  EXPECT_TRUE(IsOpen(p.fds[0]));
}

TEST(AnOwnedDescriptor, GivesItsDescriptorUpWithoutClosingItOnRelease) {
  Pipe p;
  int released = -1;
  {
    UniqueFd fd(p.fds[0]);
    released = fd.release();
    EXPECT_FALSE(fd.valid());
  }
  EXPECT_EQ(released, p.fds[0]);
  EXPECT_TRUE(IsOpen(p.fds[0])) << "a released descriptor is the caller's to close";
  EXPECT_EQ(UniqueFd().release(), -1);
}

TEST(AnOwnedDescriptor, ClosesTheOldDescriptorAndHoldsTheNewOneOnReset) {
  Pipe p;
  UniqueFd fd(p.fds[0]);
  fd.reset(p.fds[1]);
  EXPECT_FALSE(IsOpen(p.fds[0]));
  EXPECT_EQ(fd.get(), p.fds[1]);
  fd.reset();
  EXPECT_FALSE(IsOpen(p.fds[1]));
  EXPECT_FALSE(fd.valid());
}

TEST(AnOwnedDescriptor, KeepsItsDescriptorOpenWhenResetToTheSameOne) {
  Pipe p;
  UniqueFd fd(p.fds[0]);
  fd.reset(p.fds[0]);
  EXPECT_EQ(fd.get(), p.fds[0]);
  EXPECT_TRUE(IsOpen(p.fds[0]));
}

}  // namespace
}  // namespace decnet
