// Validation of the paths named by archive entries: a small pure validator, a list of early
// refusals, so that the extractor only ever hands the filesystem a plain relative path.
#pragma once

#include <string>
#include <string_view>

#include "daemon/extract.h"
#include "proto/result.h"

namespace decnet::daemon {

// A validated entry path: components separated by single '/', none empty, ".", or "..", no
// leading '/' or "./", no trailing '/'. Empty when the entry names the destination itself
// ("." or "./").
struct EntryPath {
  std::string relative;
  bool IsRoot() const { return relative.empty(); }
};

// Validates `raw` (an entry's path as stored in the archive). Accepts one leading "./" and one
// trailing '/'. Refuses, with kDenied and these rules: longer than limits.max_path_length or a
// component longer than limits.max_component_length ("archive-path-length"), a leading '/'
// ("archive-path-absolute"), a ".." component ("archive-path-dotdot"), an empty path, an empty
// or "." component, or a control character ("archive-path-invalid").
[[nodiscard]] Result<EntryPath> ParseEntryPath(std::string_view raw, const ExtractLimits& limits);

// `raw` made safe for a log line: printable ASCII kept, '\\' and '"' and every other byte as
// \xNN, cut at 200 bytes with "..." appended.
std::string EscapeEntryPath(std::string_view raw);

}  // namespace decnet::daemon
