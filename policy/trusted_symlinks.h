// Symlinks only root could have made: where systemd names a unit file through a directory
// that is a symlink (on a merged-/usr system /lib -> usr/lib, so systemd 252 reports a unit
// installed in /usr/lib/systemd/system as /lib/systemd/system/NAME), the path is judged by
// what it resolves to, provided that every link on the way is root's, in directories only
// root can change.
#pragma once

#include <string>
#include <string_view>

#include "proto/result.h"

namespace decnet::helper {

// Resolves the symlinks among the DIRECTORY components of the absolute `path`, beneath the
// directory `root` (the unit root, "/" on a host; an absolute link target is taken beneath
// it, and ".." never climbs above it). The final component is never followed: it is returned
// as named. Every directory passed through (root included) must be owned by root and not
// writable by group or others, and every symlink followed must be owned by root: a link, or
// a directory holding one, that anyone else could create or change is refused rather than
// followed. Also refused: a component that does not exist (a dangling link), one that is not
// a directory where a directory is needed, more than kMaxTrustedSymlinks links (a loop), a
// path that is not absolute. Returns the resolved absolute path (as systemd would name it
// beneath `root`, with no symlink left but perhaps the last component), or kDenied with rule
// "unit-root-opened-path" and a sentence naming the component.
[[nodiscard]] Result<std::string> ResolveTrustedSymlinks(const std::string& root,
                                                         std::string_view path);

// The most symlinks ResolveTrustedSymlinks follows for one path.
inline constexpr int kMaxTrustedSymlinks = 16;

}  // namespace decnet::helper
