// POSIX access ACLs on the TLS files DECNET keeps under /etc/decnet, so that the updater's
// daemon may read its own key and the agent's client bundle while the files stay where they
// are, owned as DECNET made them. Written as the kernel's system.posix_acl_access attribute
// (no libacl needed); entries are kept sorted as the kernel requires.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/result.h"

namespace decnet::adopt {

inline constexpr uint16_t kAclUserObj = 0x01, kAclUser = 0x02, kAclGroupObj = 0x04,
                          kAclGroup = 0x08, kAclMask = 0x10, kAclOther = 0x20;
inline constexpr uint32_t kAclUndefinedId = 0xffffffffu;

struct AclEntry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx as 4|2|1
  uint32_t id = kAclUndefinedId;
  auto operator<=>(const AclEntry&) const = default;
};

// What a file looked like before: its mode and its ACL attribute (nullopt: none).
struct AclSnapshot {
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::optional<std::string> xattr;
};

// The attribute's bytes <-> entries. Parse refuses (kMalformed "acl-format") a wrong version
// or length.
std::string EncodeAcl(const std::vector<AclEntry>& entries);
[[nodiscard]] Result<std::vector<AclEntry>> ParseAcl(std::string_view bytes);

// The entries in force on the file at `path` (from its mode when it has no ACL). Refuses a
// symlink (kDenied "acl-symlink"); other failures kFailed "acl-io".
[[nodiscard]] Result<std::vector<AclEntry>> ReadAcl(const std::string& path);
[[nodiscard]] Result<AclSnapshot> Snapshot(const std::string& path);

// Gives `uid` exactly `perm` on `path` (a named-user entry, replaced if present), the mask
// recomputed as the union of the group class, as setfacl -m u:UID:PERM does. Owner, group and
// the owner's and others' bits are left as they are. Idempotent. Fails as ReadAcl.
[[nodiscard]] Result<void> GrantUser(const std::string& path, uid_t uid, uint16_t perm);

// Puts back what Snapshot() saw: the ACL attribute (or its absence) and the mode.
[[nodiscard]] Result<void> Restore(const std::string& path, const AclSnapshot& snapshot);

}  // namespace decnet::adopt
