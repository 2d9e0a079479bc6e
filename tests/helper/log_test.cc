// The helper's one logger (helper/log.cc) and the relay of the daemon's own output
// (helper/daemon_log.cc): nothing the daemon sends reaches a line of the helper's unescaped.
#include "helper/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "helper/daemon_log.h"

namespace decnet::helper {
namespace {

std::string Drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

struct EscapeCase {
  std::string in;
  std::string out;
};

TEST(EscapeForLog, EscapesEveryByteThatCouldForgeALineOrSteerATerminal) {
  const std::vector<EscapeCase> cases = {
      {"plain text", "plain text"},
      {"tab\tkept", "tab\tkept"},
      {"a\nFORGED", "a\\x0aFORGED"},
      {"a\rb", "a\\x0db"},
      {std::string("nul\0x", 5), "nul\\x00x"},
      {"\x1b[2J", "\\x1b[2J"},
      {"del\x7f", "del\\x7f"},
      {"caf\xc3\xa9", "caf\\xc3\\xa9"},
      {"\x85next-line", "\\x85next-line"},
  };
  for (const auto& c : cases) EXPECT_EQ(EscapeForLog(c.in), c.out) << c.in;
  EXPECT_EQ(EscapeForLog(std::string(10, 'x'), 4), "xxxx...");
}

TEST(LogLine, WritesOneEscapedLineWithTheHelpersPrefix) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK), 0);
  const int previous = SetLogFd(p[1]);
  LogLine("unknown key \"x\nFORGED line\"");
  SetLogFd(previous);
  ::close(p[1]);
  EXPECT_EQ(Drain(p[0]), "decnet-update-helper: unknown key \"x\\x0aFORGED line\"\n");
  ::close(p[0]);
}

TEST(LineRelay, PrefixesAndEscapesEveryLineTheDaemonWrites) {
  int daemon[2], out[2];
  ASSERT_EQ(::pipe2(daemon, O_NONBLOCK), 0);
  ASSERT_EQ(::pipe2(out, O_NONBLOCK), 0);
  LineRelay relay(UniqueFd(daemon[0]), out[1]);
  const std::string forged =
      "decnet-update-helper: confined\rdecnet-update-helper: FORGED\n"
      "second\x1b[31m\npartial";
  ASSERT_EQ(::write(daemon[1], forged.data(), forged.size()), static_cast<ssize_t>(forged.size()));
  EXPECT_TRUE(relay.Pump());
  EXPECT_EQ(Drain(out[0]),
            "decnet-updaterd: decnet-update-helper: confined\\x0ddecnet-update-helper: FORGED\n"
            "decnet-updaterd: second\\x1b[31m\n");
  ::close(daemon[1]);
  relay.Flush();
  EXPECT_FALSE(relay.Pump());
  EXPECT_EQ(Drain(out[0]), "decnet-updaterd: partial\n");
  ::close(out[0]);
  ::close(out[1]);
}

TEST(LineRelay, CutsAnEndlessLineIntoBoundedPieces) {
  int daemon[2], out[2];
  ASSERT_EQ(::pipe2(daemon, O_NONBLOCK), 0);
  ASSERT_EQ(::pipe2(out, O_NONBLOCK), 0);
  ::fcntl(out[0], F_SETPIPE_SZ, 1 << 20);
  LineRelay relay(UniqueFd(daemon[0]), out[1]);
  const std::string endless(10'000, 'x');
  ASSERT_EQ(::write(daemon[1], endless.data(), endless.size()), 10'000);
  relay.Pump();
  const std::string relayed = Drain(out[0]);
  EXPECT_EQ(std::count(relayed.begin(), relayed.end(), '\n'), 2) << "two full pieces of 4 KiB";
  ::close(daemon[1]);
  ::close(out[0]);
  ::close(out[1]);
}

TEST(DaemonOutput, GivesTheDaemonPipesOfItsOwnWhenStderrIsNotTheJournal) {
  auto output = OpenDaemonOutput(false);
  ASSERT_TRUE(output) << output.error().message;
  ASSERT_EQ(output->relays.size(), 2u);
  EXPECT_TRUE(output->journal_stream.empty());
  for (int fd : {output->daemon_stdout.get(), output->daemon_stderr.get()}) {
    struct stat daemon_end {
    }, helper_out{};
    ASSERT_EQ(::fstat(fd, &daemon_end), 0);
    ASSERT_EQ(::fstat(STDERR_FILENO, &helper_out), 0);
    EXPECT_TRUE(S_ISFIFO(daemon_end.st_mode));
    EXPECT_FALSE(daemon_end.st_dev == helper_out.st_dev && daemon_end.st_ino == helper_out.st_ino);
    // The daemon making its end non-blocking leaves the helper's descriptors as they were.
    ASSERT_EQ(::fcntl(fd, F_SETFL, O_NONBLOCK), 0);
  }
  EXPECT_EQ(::fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_EQ(::fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
}

TEST(DaemonOutput, ReadsTheJournalOnlyFromAStreamThatIsTheHelpersStderr) {
  EXPECT_FALSE(StderrIsJournal(nullptr));
  EXPECT_FALSE(StderrIsJournal("1:2"));
  struct stat st {};
  ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
  EXPECT_TRUE(
      StderrIsJournal((std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)).c_str()));
}

TEST(DaemonOutput, NeverPassesTheHelpersJournalStreamToTheDaemon) {
  std::vector<std::string> env = {"PATH=/bin", "JOURNAL_STREAM=8:99"};
  DaemonOutput pipes;
  SetDaemonJournalStream(env, pipes);
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin"}));
  DaemonOutput journal;
  journal.journal_stream = "8:123";
  env.push_back("JOURNAL_STREAM=8:99");
  SetDaemonJournalStream(env, journal);
  EXPECT_EQ(env, (std::vector<std::string>{"PATH=/bin", "JOURNAL_STREAM=8:123"}));
}

}  // namespace
}  // namespace decnet::helper
