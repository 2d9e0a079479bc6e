// Shared by the tests of the loaded-view check (the pure judgement and the helper's handlers):
// views systemd could report that the check accepts. Tests alter one field of them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "policy/loaded_view.h"

namespace decnet::helper::testing_support {

// A unit other than a service loaded from `fragment_path` alone: nothing but its fragment and
// a start rate limit.
inline LoadedView LoadedFragmentView(std::string fragment_path) {
  LoadedView v;
  v.load_state = "loaded";
  v.fragment_path = std::move(fragment_path);
  v.start_limit_interval_usec = 10'000'000;
  v.is_service = false;
  return v;
}

// A service loaded from `fragment_path` alone, run as `user`:`group` with ExecStart=/bin/sleep,
// and bounded as systemd bounds it by default: the whole control group killed on stop (SIGKILL
// after 90 s), a start rate limit, process, file and task limits, no new privileges, stdin
// from /dev/null and output to the journal.
inline LoadedView BoundedServiceView(std::string fragment_path, std::string user,
                                     std::string group) {
  LoadedView v = LoadedFragmentView(std::move(fragment_path));
  v.is_service = true;
  v.user = std::move(user);
  v.group = std::move(group);
  v.exec = {{"ExecStart", "/bin/sleep", {}}};
  v.kill_mode = "control-group";
  v.send_sigkill = true;
  v.timeout_stop_usec = 90'000'000;
  v.limit_nproc = 4096;
  v.limit_nofile = 1024;
  v.tasks_max = 512;
  v.capability_bounding_set = ~uint64_t{0};
  v.no_new_privileges = true;
  v.standard_input = "null";
  v.standard_output = "journal";
  v.standard_error = "inherit";
  return v;
}

}  // namespace decnet::helper::testing_support
