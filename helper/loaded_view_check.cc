#include "helper/loaded_view_check.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "helper/fs_ops.h"
#include "proto/helper_protocol.h"
#include "proto/sha256.h"

namespace decnet::helper {
namespace {

// What the helper knows of UNIT_DIR/NAME, through its directory descriptor only.
FragmentFacts FactsOf(int unit_dir, const UnitRecord* units, const UnitName& name) {
  FragmentFacts facts;
  struct stat st {};
  if (::fstatat(unit_dir, name.str().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return facts;
  facts.exists = true;
  facts.regular = S_ISREG(st.st_mode);
  facts.uid = st.st_uid;
  facts.mode = st.st_mode;
  facts.nlink = st.st_nlink;
  facts.recorded = units != nullptr && units->Knows(name.str());
  if (facts.recorded && facts.regular) {
    auto content = ReadFileBeneath(unit_dir, name.str(), 4 * proto::kMaxUnitContent);
    // SECURITY: a file that cannot be read (gone, grown, swapped) never matches the record.
    facts.matches_record = content && *content && units->Owns(name.str(), Sha256Hex(**content));
  }
  return facts;
}

}  // namespace

Result<LoadedViewVerdict> CheckLoadedView(const Policy& policy, int unit_dir,
                                          const UnitRecord* units, SystemdManager& systemd,
                                          const UnitName& name) {
  auto view = systemd.GetLoadedView(name);
  if (!view) return tl::make_unexpected(view.error());
  LoadedViewVerdict verdict{std::move(*view), {}};
  const FragmentFacts facts = FactsOf(unit_dir, units, name);
  verdict.refusals =
      JudgeLoadedView(policy, name, verdict.view, facts, RootOwnedFileCheck(policy.unit_root));
  return verdict;
}

Error LoadedViewError(const UnitName& name, const std::vector<LoadedViewRefusal>& refusals) {
  if (refusals.empty()) {
    return Error{ErrorCode::kDenied, "unit-loaded-view", name.str() + ": no refusal"};
  }
  std::string message = refusals.front().message;
  if (refusals.size() > 1) {
    message += " (and " + std::to_string(refusals.size() - 1) + " more: ";
    for (size_t i = 1; i < refusals.size(); ++i) {
      message += (i > 1 ? ", " : "") + refusals[i].rule;
    }
    message += ")";
  }
  return Error{ErrorCode::kDenied, refusals.front().rule, message};
}

}  // namespace decnet::helper
