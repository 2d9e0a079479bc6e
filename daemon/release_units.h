// The unit files a release ships in etc/systemd/system/, read without following links and
// checked with the helper's own unit policy before anything is switched.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policy/policy.h"
#include "proto/result.h"
#include "proto/values.h"

namespace decnet::daemon {

inline constexpr char kReleaseUnitDir[] = "etc/systemd/system";

struct ReleaseUnit {
  UnitName name;
  std::string content;
};

// The units of the release rooted at `release_dir_fd`, sorted by name; nullopt when the
// release has no etc/systemd/system/ (it then leaves the installed units alone). Refuses
// (kDenied "release-unit-file") a symlink or non-regular entry, a name that is not a unit
// name, and a file over the helper's size cap.
[[nodiscard]] Result<std::optional<std::vector<ReleaseUnit>>> ReadReleaseUnits(int release_dir_fd);

// Runs each unit through the same policy the helper applies (name allow-list, never the
// updater's own unit, the unit policy). The first refusal comes back as kDenied with the
// policy's rule and "etc/systemd/system/NAME:LINE: message".
[[nodiscard]] Result<void> CheckReleaseUnits(const helper::Policy& policy,
                                             const std::vector<ReleaseUnit>& units);

}  // namespace decnet::daemon
