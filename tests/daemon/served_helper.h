// The helper's real serve loop on one end of a SOCK_SEQPACKET pair, in a thread, with
// systemd mocked (by default every job is "done" and units are loaded and active), and the
// daemon's HelperClient on the other end with hello already said. The pipeline tests build
// the daemon's side on `client`. Every systemd interaction is also tested against a real
// systemd (tests/integration/).
//
// Declare it before whatever borrows the client (the pipeline), so that it is destroyed
// after it: the destructor closes the client, the serve loop ends on EOF and is joined.
//
// The mocked systemd loads only what is in the helper's unit directory (AnswerCleanLoadedViews):
// a unit without a file there is "not-found" and its restart is refused, as a real systemd
// would fail it. A DECNET master's push ships no unit files; on a worker DECNET's installer
// put them in place. Tests of such pushes install them with InstallOperatorUnit.
#pragma once

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <string>

#include "daemon/api_answers.h"  // pipeline tests read outcomes as DECNET's master would
#include "daemon/helper_client.h"
#include "helper/dirs.h"
#include "helper/serve.h"
#include "policy/unit_policy.h"
#include "tests/helper/mock_systemd.h"
#include "tests/helper/test_dirs.h"

namespace decnet::test {

// A unit of the suite as DECNET's installer writes it on a worker: hardened, run as the suite's
// user, inside the helper's unit policy.
inline std::string OperatorUnit(const std::string& description,
                                const std::string& exec_start = "/bin/sleep infinity") {
  return "[Unit]\nDescription=" + description +
         "\n[Service]\nType=exec\nUser=decnet\nGroup=decnet\nNoNewPrivileges=yes\n"
         "ProtectSystem=strict\nPrivateTmp=yes\nTimeoutStopSec=30\nExecStart=" +
         exec_start + "\n";
}

// Puts UNIT_DIR/NAME in place as an operator (DECNET's installer) does: a regular file with
// one link, owned by root, mode 0644, that the helper did not write. The helper restarts such
// a unit and never overwrites or removes it. A unit other than the updater's own must pass
// the unit policy (the updater's runs the helper as root by design). Fails (never replacing
// an existing file) when the name is not a unit name, the content is refused, or the file
// cannot be made root's (the tests run as root).
inline ::testing::AssertionResult InstallOperatorUnit(TestDirs& dirs, const std::string& name,
                                                      const std::string& content) {
  auto unit = UnitName::Parse(name);
  if (!unit) return ::testing::AssertionFailure() << name << " is not a unit name";
  const helper::Policy& policy = dirs.policy();
  if (name != policy.self_unit) {
    auto refusals = helper::CheckUnitContent(policy, *unit, content,
                                             helper::RootOnlyPathCheck(policy.unit_root));
    if (!refusals.empty()) {
      return ::testing::AssertionFailure()
             << name << " is refused by the unit policy: [" << refusals.front().rule << "] "
             << refusals.front().message;
    }
  }
  const std::string path = dirs.units() + "/" + name;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return ::testing::AssertionFailure() << path << ": " << std::strerror(errno);
  const bool written =
      ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
      ::fchown(fd, 0, 0) == 0 && ::fchmod(fd, 0644) == 0;
  const int saved = errno;
  ::close(fd);
  if (!written) return ::testing::AssertionFailure() << path << ": " << std::strerror(saved);
  return ::testing::AssertionSuccess();
}

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
    AnswerCleanLoadedViews(systemd_, dirs.policy());
    int pair[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    served_ = std::async(std::launch::async, [this, &dirs, fd = pair[1]] {
      helper::ServeOptions options;
      options.notify = false;
      const helper::ServeEnd end =
          helper::Serve(fd, dirs.policy(), helper_dirs_, systemd_, options);
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
