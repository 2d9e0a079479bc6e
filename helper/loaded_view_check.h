// The helper's side of the loaded-view check (policy/loaded_view.h): reads what systemd
// loaded for a unit over D-Bus, gathers what the helper knows of its own file through the
// unit directory's descriptor, and judges both. Used before every restart_unit, after every
// daemon_reload, at start-up for the updater's own unit, and by `helperctl status`.
#pragma once

#include <string>
#include <vector>

#include "helper/record.h"
#include "helper/systemd_manager.h"
#include "policy/loaded_view.h"
#include "policy/policy.h"

namespace decnet::helper {

// The start-up check's record of the updater's own unit, in the state directory:
// {"unit","checked_at","readable","error"|("load_state","fragment",
//  "drop_ins":[{"path","foreign","why"}],"refusals":[{"rule","message"}])}.
inline constexpr char kSelfUnitViewFile[] = "self-unit-view.json";

struct LoadedViewVerdict {
  LoadedView view;
  std::vector<LoadedViewRefusal> refusals;  // empty: the view is what the policy approved
};

// Reads and judges the loaded view of `name`. `unit_dir` is the helper's unit directory
// descriptor; `units` its record (nullptr when none is loaded, as at start-up: no unit is then
// taken for the helper's). Drop-ins and the updater's own fragment are checked with
// RootOwnedFileCheck(policy.unit_root). Errors: the adapter's (the view could not be read).
[[nodiscard]] Result<LoadedViewVerdict> CheckLoadedView(const Policy& policy, int unit_dir,
                                                        const UnitRecord* units,
                                                        SystemdManager& systemd,
                                                        const UnitName& name);

// The reply for a refused view: kDenied with the first refusal's rule; the message names the
// unit, what systemd loaded and how many other refusals there were.
Error LoadedViewError(const UnitName& name, const std::vector<LoadedViewRefusal>& refusals);

}  // namespace decnet::helper
