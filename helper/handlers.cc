#include "helper/handlers.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "helper/fs_ops.h"
#include "helper/link_target.h"
#include "helper/loaded_view_check.h"
#include "policy/unit_policy.h"
#include "proto/sha256.h"

namespace decnet::helper {
namespace {

using proto::ReplyBody;

std::chrono::milliseconds RestartTimeout(const Session& s) {
  return std::chrono::milliseconds(s.policy.restart_timeout_ms);
}

// SECURITY: the helper never overwrites or removes a unit file it did not write (nor a mask
// or symlink), unless the operator's policy lists the name as adoptable: a compromised
// daemon cannot replace ssh.service-like files that merely match the name pattern.
Result<std::optional<std::string>> ExistingOwnedUnit(Session& s, const UnitName& name) {
  const std::string& n = name.str();
  bool adoptable = s.policy.adoptable_units.contains(n);
  auto kind = InspectEntry(s.dirs.unit_dir, n);
  if (!kind) return tl::make_unexpected(kind.error());
  switch (*kind) {
    case EntryKind::kMissing:
      return std::optional<std::string>();
    case EntryKind::kSymlink:
      if (adoptable) return std::optional<std::string>();
      return Fail(
          ErrorCode::kDenied, "unit-file-symlink",
          n + " is a symlink or mask in the unit directory; the helper does not replace it");
    case EntryKind::kOther:
      return Fail(ErrorCode::kDenied, "unit-file-not-regular", n + " is not a regular file");
    case EntryKind::kRegular:
      break;
  }
  auto content = ReadFileBeneath(s.dirs.unit_dir, n, 4 * proto::kMaxUnitContent);
  if (!content) return tl::make_unexpected(content.error());
  if (!adoptable) {
    if (!s.units.Knows(n)) {
      return Fail(ErrorCode::kDenied, "unit-not-ours",
                  n + " exists and was not written by the helper");
    }
    if (!s.units.Owns(n, Sha256Hex(**content))) {
      return Fail(ErrorCode::kDenied, "unit-changed-outside",
                  n + " was changed since the helper wrote it");
    }
  }
  return content;
}

Result<proto::UnitState> StateOf(Session& s, const UnitName& name) {
  return s.systemd.GetUnitState(name);
}

// Where a link may point: its rule from the allow-list, or a denial.
Result<const LinkRule*> LinkRuleFor(const Policy& policy, const LinkName& name) {
  for (const auto& rule : policy.links) {
    if (rule.name == name.str()) return &rule;
  }
  return Fail(ErrorCode::kDenied, "link-name-allowlist",
              "link " + name.str() + " is not in the link allow-list");
}

}  // namespace

Result<ReplyBody> HandleHello(Session& s, const proto::HelloRequest& r) {
  if (r.min_version > proto::kProtocolVersion || r.max_version < proto::kProtocolVersion) {
    return Fail(ErrorCode::kDenied, "protocol-version",
                "the helper speaks protocol " + std::to_string(proto::kProtocolVersion) +
                    ", the client " + std::to_string(r.min_version) + ".." +
                    std::to_string(r.max_version));
  }
  return proto::HelloReply{proto::kProtocolVersion, DECNET_VERSION, s.policy_digest};
}

Result<ReplyBody> HandleWriteUnit(Session& s, const proto::WriteUnitRequest& r) {
  if (auto ok = CheckUnitName(s.policy, r.name, UnitUse::kWrite); !ok) {
    return tl::make_unexpected(ok.error());
  }
  // SECURITY: the content is re-validated here whatever the daemon checked: the root
  // boundary is this policy, not the release's signature.
  auto refusals =
      CheckUnitContent(s.policy, r.name, r.content, RootOnlyPathCheck(s.policy.unit_root));
  if (!refusals.empty()) {
    const auto& first = refusals.front();
    std::string where = first.line > 0 ? "line " + std::to_string(first.line) + ": " : "";
    return Fail(ErrorCode::kDenied, first.rule, where + first.message);
  }
  auto existing = ExistingOwnedUnit(s, r.name);
  if (!existing) return tl::make_unexpected(existing.error());
  // SECURITY: root writes a bounded number of unit files: they eat the filesystem's root
  // reserve and every reload loads them all.
  if (!s.units.Knows(r.name.str()) && s.units.Count() >= static_cast<size_t>(s.policy.max_units)) {
    return Fail(ErrorCode::kDenied, "unit-count-cap",
                "the helper already keeps " + std::to_string(s.units.Count()) +
                    " unit files, the policy's max_units");
  }
  if (*existing && **existing == r.content) {
    // Unchanged content still becomes the helper's record (an adopted file, say).
    if (auto rec = s.units.CommitWrite(r.name.str(), Sha256Hex(r.content)); !rec) {
      return tl::make_unexpected(rec.error());
    }
    return proto::WriteUnitReply{false};
  }
  std::string digest = Sha256Hex(r.content);
  if (auto rec = s.units.BeginWrite(r.name.str(), digest); !rec) {
    return tl::make_unexpected(rec.error());
  }
  if (auto w = AtomicWriteFile(s.dirs.unit_dir, r.name.str(), r.content, 0644); !w) {
    return tl::make_unexpected(w.error());
  }
  if (auto rec = s.units.CommitWrite(r.name.str(), digest); !rec) {
    return tl::make_unexpected(rec.error());
  }
  return proto::WriteUnitReply{true};
}

Result<ReplyBody> HandleRemoveUnit(Session& s, const proto::RemoveUnitRequest& r) {
  if (auto ok = CheckUnitName(s.policy, r.name, UnitUse::kWrite); !ok) {
    return tl::make_unexpected(ok.error());
  }
  auto kind = InspectEntry(s.dirs.unit_dir, r.name.str());
  if (!kind) return tl::make_unexpected(kind.error());
  if (*kind == EntryKind::kMissing) return proto::RemoveUnitReply{false};
  auto existing = ExistingOwnedUnit(s, r.name);
  if (!existing) return tl::make_unexpected(existing.error());
  // Stop first, so no process outlives the file that describes it.
  auto stopped = s.systemd.StopUnit(r.name, RestartTimeout(s));
  if (!stopped && stopped.error().code != ErrorCode::kNotFound) {
    return tl::make_unexpected(stopped.error());
  }
  if (stopped && stopped->result != "done") {
    return Fail(ErrorCode::kFailed, "unit-stop-failed",
                "stopping " + r.name.str() + " ended with job result " + stopped->result);
  }
  auto removed = RemoveEntry(s.dirs.unit_dir, r.name.str());
  if (!removed) return tl::make_unexpected(removed.error());
  if (auto rec = s.units.Forget(r.name.str()); !rec) return tl::make_unexpected(rec.error());
  return proto::RemoveUnitReply{*removed};
}

Result<ReplyBody> HandleDaemonReload(Session& s, const proto::DaemonReloadRequest&) {
  if (auto ok = s.systemd.Reload(); !ok) return tl::make_unexpected(ok.error());
  // SECURITY: after the reload, what systemd now holds for every unit the helper wrote and for
  // the updater's own unit must still be what the policy approved. The reload has happened
  // and cannot be undone: a refused view is reported as a denial naming every refused unit
  // (the daemon fails its update), and a restart of such a unit is refused on its own check.
  std::vector<std::string> names = s.units.Names();
  names.push_back(s.policy.self_unit);
  std::string refused;
  std::string first_rule;
  for (const std::string& n : names) {
    auto name = UnitName::Parse(n);
    if (!name) continue;
    auto verdict = CheckLoadedView(s.policy, s.dirs.unit_dir, &s.units, s.systemd, *name);
    if (!verdict) return tl::make_unexpected(verdict.error());
    if (verdict->refusals.empty() || NothingLoaded(verdict->view)) continue;
    const Error e = LoadedViewError(*name, verdict->refusals);
    if (first_rule.empty()) first_rule = e.rule;
    refused += (refused.empty() ? "" : "; ") + n + ": [" + e.rule + "] " + e.message;
  }
  if (!refused.empty()) {
    return Fail(ErrorCode::kDenied, first_rule,
                "reloaded, but systemd's loaded view is refused: " + refused);
  }
  return proto::DaemonReloadReply{};
}

Result<ReplyBody> HandleRestartUnit(Session& s, const proto::RestartUnitRequest& r) {
  // SECURITY: the allow-list is checked before anything reaches D-Bus.
  if (auto ok = CheckUnitName(s.policy, r.name, UnitUse::kRestart); !ok) {
    return tl::make_unexpected(ok.error());
  }
  // SECURITY: restart only what systemd loaded as the policy approved it: the helper's own
  // file (or the operator's, for the updater's unit), operator drop-ins only, and effective
  // settings inside the policy. Nothing is restarted otherwise.
  auto verdict = CheckLoadedView(s.policy, s.dirs.unit_dir, &s.units, s.systemd, r.name);
  if (!verdict) return tl::make_unexpected(verdict.error());
  if (!verdict->refusals.empty()) {
    return tl::make_unexpected(LoadedViewError(r.name, verdict->refusals));
  }
  auto job = s.systemd.RestartUnit(r.name, RestartTimeout(s));
  // The restart of the updater's own unit (update-self) stops this helper before its job can
  // finish: being stopped is that restart under way, and the daemon is told so.
  // SECURITY: only for the updater's own unit, already allowed and checked above; any other
  // unit's job cut short stays an error, so no unfinished restart of the suite reads as done.
  if (!job && job.error().rule == kHelperStoppingRule && r.name.str() == s.policy.self_unit) {
    proto::UnitState stopping;
    stopping.load_state = "loaded";
    stopping.active_state = "deactivating";
    return proto::RestartUnitReply{"stopping", stopping};
  }
  if (!job) return tl::make_unexpected(job.error());
  auto state = StateOf(s, r.name);
  if (!state) return tl::make_unexpected(state.error());
  return proto::RestartUnitReply{job->result, *state};
}

Result<ReplyBody> HandleUnitStatus(Session& s, const proto::UnitStatusRequest& r) {
  if (auto ok = CheckUnitName(s.policy, r.name, UnitUse::kRestart); !ok) {
    return tl::make_unexpected(ok.error());
  }
  auto state = StateOf(s, r.name);
  if (!state) return tl::make_unexpected(state.error());
  return proto::UnitStatusReply{*state};
}

Result<ReplyBody> HandleRepointLink(Session& s, const proto::RepointLinkRequest& r) {
  auto rule = LinkRuleFor(s.policy, r.name);
  if (!rule) return tl::make_unexpected(rule.error());
  auto prefix = AbsPath::Parse((*rule)->target_prefix);
  // SECURITY: the target must lie beneath the operator's prefix, component-wise.
  if (!prefix || !r.target.IsBeneath(*prefix)) {
    return Fail(ErrorCode::kDenied, "link-target-prefix",
                r.target.str() + " is not beneath " + (*rule)->target_prefix);
  }
  // SECURITY: the target is resolved beneath a descriptor of the prefix, never through the
  // daemon's symlinks: no existence oracle for root-only paths.
  if (auto found = ResolveLinkTarget(*prefix, r.target); !found) {
    return tl::make_unexpected(found.error());
  }
  auto current = ReadSymlink(s.dirs.link_dir, r.name.str());
  if (!current) return tl::make_unexpected(current.error());
  if (*current && **current == r.target.str()) return proto::RepointLinkReply{false};
  if (auto ok = AtomicSymlink(s.dirs.link_dir, r.name.str(), r.target.str()); !ok) {
    return tl::make_unexpected(ok.error());
  }
  return proto::RepointLinkReply{true};
}

}  // namespace decnet::helper
