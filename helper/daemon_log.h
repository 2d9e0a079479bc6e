// The daemon's own output streams. The daemon never inherits the helper's stdout or stderr:
// sharing them would let it write lines the journal attributes to the helper, or set the
// shared file description non-blocking so the helper's own lines are dropped.
//  * Under systemd with the journal (the helper's stderr is the stream JOURNAL_STREAM names),
//    the daemon gets a journal stream of its own, identifier "decnet-updaterd", opened before
//    the fork: its lines are its own in the journal.
//  * Otherwise (a terminal, a file, a test), the daemon writes into two pipes the helper
//    does not share with it; the helper relays each line to its own stdout or stderr as
//    "decnet-updaterd: LINE" with every control or non-ASCII byte escaped, so no relayed
//    line can pass for one of the helper's.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "helper/fs_ops.h"
#include "proto/result.h"

namespace decnet::helper {

// The journal identifier, and the prefix of every relayed line.
inline constexpr std::string_view kDaemonLogIdentifier = "decnet-updaterd";

// Relays complete lines from a pipe to `out_fd`, prefixed and escaped; holds at most 4 KiB
// of an unfinished line (a longer line is cut and relayed in pieces).
class LineRelay {
 public:
  LineRelay(UniqueFd pipe_read_end, int out_fd) : in_(std::move(pipe_read_end)), out_fd_(out_fd) {}
  int fd() const { return in_.get(); }
  // Reads what is available now (the read end is non-blocking) and relays complete lines.
  // Returns false once the daemon closed its end.
  bool Pump();
  // Pump, then relays an unfinished last line.
  void Flush();

 private:
  void Emit(std::string_view line);
  UniqueFd in_;
  int out_fd_;
  std::string partial_;
  bool open_ = true;
};

struct DaemonOutput {
  UniqueFd daemon_stdout;         // becomes the daemon's fd 1
  UniqueFd daemon_stderr;         // becomes the daemon's fd 2
  std::vector<LineRelay> relays;  // empty with the journal; stdout's then stderr's otherwise
  std::string journal_stream;     // "DEV:INO" of the daemon's journal stream, "" for pipes
};

// True when `journal_stream` (the helper's $JOURNAL_STREAM, or null) names the file behind
// the helper's stderr, i.e. the journal is reading it.
bool StderrIsJournal(const char* journal_stream);

// Opens the daemon's streams (see above): a journal stream when `use_journal`, pipes relayed
// to the helper's stdout and stderr otherwise. kFailed ("daemon-log") when neither can be
// made; a journal that cannot be reached falls back to the pipes.
[[nodiscard]] Result<DaemonOutput> OpenDaemonOutput(bool use_journal);

// `env` with JOURNAL_STREAM replaced by the daemon's own stream, or removed for pipes.
void SetDaemonJournalStream(std::vector<std::string>& env, const DaemonOutput& output);

}  // namespace decnet::helper
