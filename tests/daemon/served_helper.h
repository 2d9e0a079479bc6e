// The helper's real serve loop on one end of a SOCK_SEQPACKET pair, in a thread, with
// systemd mocked (by default every job is "done" and units are loaded and active), and the
// daemon's HelperClient on the other end with hello already said. The pipeline tests build
// the daemon's side on `client`. Every systemd interaction is also tested against a real
// systemd (tests/integration/).
//
// Declare it before whatever borrows the client (the pipeline), so that it is destroyed
// after it: the destructor closes the client, the serve loop ends on EOF and is joined.
#pragma once

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <optional>
#include <string>

#include "daemon/helper_client.h"
#include "helper/dirs.h"
#include "helper/serve.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::test {

class ServedHelper {
 public:
  ServedHelper(TestDirs& dirs, const std::string& client_name) {
    using ::testing::_;
    using ::testing::Return;
    auto opened = helper::OpenHelperDirs(dirs.policy());
    EXPECT_TRUE(opened) << opened.error().message;
    if (opened) helper_dirs_ = *opened;
    ON_CALL(systemd_, Reload()).WillByDefault(Return(Result<void>{}));
    ON_CALL(systemd_, RestartUnit(_, _)).WillByDefault(Return(helper::JobOutcome{"done"}));
    ON_CALL(systemd_, StopUnit(_, _)).WillByDefault(Return(helper::JobOutcome{"done"}));
    ON_CALL(systemd_, GetUnitState(_))
        .WillByDefault(Return(proto::UnitState{"loaded", "active", "running", 42, 0}));
    int pair[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    served_ = std::async(std::launch::async, [this, &dirs, fd = pair[1]] {
      helper::ServeOptions options;
      options.notify = false;
      const helper::ServeEnd end = helper::Serve(fd, dirs.policy(), helper_dirs_, systemd_, options);
      ::close(fd);
      return end;
    });
    client_.emplace(pair[0], std::chrono::seconds(10));
    EXPECT_TRUE(client_->Hello(client_name));
  }
  ~ServedHelper() {
    client_.reset();
    if (served_.valid()) served_.wait();
    for (int fd : {helper_dirs_.unit_dir, helper_dirs_.link_dir, helper_dirs_.state_dir}) {
      if (fd >= 0) ::close(fd);
    }
  }
  ServedHelper(const ServedHelper&) = delete;
  ServedHelper& operator=(const ServedHelper&) = delete;

  daemon::HelperClient& client() { return *client_; }
  ::testing::NiceMock<MockSystemd>& systemd() { return systemd_; }

 private:
  helper::HelperDirs helper_dirs_{-1, -1, -1};
  ::testing::NiceMock<MockSystemd> systemd_;
  std::future<helper::ServeEnd> served_;
  std::optional<daemon::HelperClient> client_;
};

}  // namespace decnet::test
