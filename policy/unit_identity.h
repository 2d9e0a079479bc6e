// The credentials a unit runs with, read from the unit root's own /etc/passwd and
// /etc/group text rather than through NSS (the confined helper may not load NSS modules, and
// what counts is the file systemd's unit will see). Pure parsing; root_path_check.cc reads
// the files.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace decnet::helper {

// uid and every group the unit's processes hold.
struct UnitCredentials {
  uid_t uid = 0;
  std::vector<gid_t> gids;  // Group=, the user's /etc/group memberships, SupplementaryGroups=

  bool InGroup(gid_t gid) const;
};

// Files larger than this are refused rather than read.
inline constexpr size_t kMaxAccountFile = 4 * 1024 * 1024;

// Resolves the credentials systemd gives a unit with User=`user`, Group=`group` and
// SupplementaryGroups=`supplementary`: the uid of `user` in `passwd_text`; the gid of
// `group`; every group of `group_text` whose member list names `user` (systemd calls
// initgroups for User=); the gids of `supplementary`. The passwd entry's own primary gid is
// not a credential when Group= is set, and Group= is always set for an accepted unit.
// Strict: every non-empty line must be well formed (7 fields in passwd, 4 in group, decimal
// ids below 4294967295), or nothing is resolved. Returns nullopt and sets `why` when the
// text is malformed, a name is not found, or `user`/`group` is empty.
std::optional<UnitCredentials> ResolveUnitCredentials(
    std::string_view passwd_text, std::string_view group_text, const std::string& user,
    const std::string& group, const std::vector<std::string>& supplementary, std::string& why);

}  // namespace decnet::helper
