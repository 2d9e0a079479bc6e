#include "proto/framing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace decnet {
namespace {

class AFramedPair : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fd_), 0);
  }
  void TearDown() override {
    for (int fd : fd_)
      if (fd >= 0) close(fd);
  }
  int fd_[2] = {-1, -1};
};

TEST_F(AFramedPair, CarriesOneMessagePerFrame) {
  ASSERT_TRUE(SendFrame(fd_[0], "first"));
  ASSERT_TRUE(SendFrame(fd_[0], "second"));
  EXPECT_EQ(*RecvFrame(fd_[1]), "first");
  EXPECT_EQ(*RecvFrame(fd_[1]), "second");
}

TEST_F(AFramedPair, CarriesAFrameOfExactlyTheCap) {
  std::string big(kMaxFrame, 'x');
  ASSERT_TRUE(SendFrame(fd_[0], big));
  EXPECT_EQ(RecvFrame(fd_[1])->size(), kMaxFrame);
}

TEST_F(AFramedPair, RefusesToSendOversizeOrEmptyFrames) {
  EXPECT_EQ(SendFrame(fd_[0], std::string(kMaxFrame + 1, 'x')).error(), FrameError::kTooLarge);
  EXPECT_EQ(SendFrame(fd_[0], "").error(), FrameError::kEmpty);
}

TEST_F(AFramedPair, ReportsAnOversizeFrameAsTruncated) {
  int size = 256 * 1024;
  setsockopt(fd_[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  std::string big(kMaxFrame + 10, 'x');
  ASSERT_EQ(send(fd_[0], big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kTooLarge);
}

TEST_F(AFramedPair, ReportsAnEmptyMessage) {
  ASSERT_EQ(send(fd_[0], "", 0, 0), 0);
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kEmpty);
}

TEST_F(AFramedPair, ReportsEndOfStreamWhenThePeerCloses) {
  close(fd_[0]);
  fd_[0] = -1;
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kEof);
}

TEST_F(AFramedPair, ReportsEndOfStreamMidExchangeAfterEarlierFrames) {
  ASSERT_TRUE(SendFrame(fd_[0], "one"));
  close(fd_[0]);
  fd_[0] = -1;
  EXPECT_EQ(*RecvFrame(fd_[1]), "one");
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kEof);
}

TEST_F(AFramedPair, ReportsEndOfStreamWhenThePeerShutsDownWriting) {
  ASSERT_EQ(shutdown(fd_[0], SHUT_WR), 0);
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kEof);
}

TEST_F(AFramedPair, TimesOutWhenNothingArrives) {
  EXPECT_EQ(RecvFrame(fd_[1], 50).error(), FrameError::kTimeout);
}

TEST_F(AFramedPair, RefusesAFramePassingADescriptor) {
  int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(passed, 0);
  char data[] = "x";
  iovec iov{data, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &passed, sizeof(int));
  ASSERT_EQ(sendmsg(fd_[0], &msg, 0), 1);
  close(passed);
  EXPECT_EQ(RecvFrame(fd_[1]).error(), FrameError::kAncillary);
}

TEST_F(AFramedPair, ReportsEndOfStreamOnSendWhenThePeerIsGone) {
  close(fd_[1]);
  fd_[1] = -1;
  EXPECT_EQ(SendFrame(fd_[0], "x").error(), FrameError::kEof);
}

}  // namespace
}  // namespace decnet
