// /etc/passwd and /etc/group read the way the files NSS module reads them for a name lookup
// (first entry of a name wins; membership from every entry), but strictly: a malformed line
// anywhere refuses the whole lookup, since a file the policy cannot read exactly is one it
// cannot judge.
#include "policy/unit_identity.h"

#include <algorithm>
#include <cstdint>

namespace decnet::helper {
namespace {

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t at = s.find(sep, start);
    out.push_back(
        s.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::optional<uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n >= 4294967295ULL) return std::nullopt;  // (uid_t)-1 is "no id"
  return static_cast<uint32_t>(n);
}

bool IsCleanField(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

struct Entry {
  std::string_view name;
  uint32_t id = 0;
  std::vector<std::string_view> members;  // group entries only
};

// Parses account-file text into entries of `fields` fields; nullopt on any malformed line.
std::optional<std::vector<Entry>> ParseEntries(std::string_view text, size_t fields,
                                               std::string_view file, std::string& why) {
  if (text.size() > kMaxAccountFile) {
    why = std::string(file) + " is too large";
    return std::nullopt;
  }
  std::vector<Entry> out;
  int line_no = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    if (line.empty()) continue;
    const auto parts = Split(line, ':');
    const size_t id_field = 2;
    std::optional<uint32_t> id;
    if (parts.size() == fields) id = ParseId(parts[id_field]);
    if (parts.size() != fields || parts[0].empty() || !id || !IsCleanField(line)) {
      why = std::string(file) + " line " + std::to_string(line_no) + " is malformed";
      return std::nullopt;
    }
    Entry e{parts[0], *id, {}};
    if (fields == 4 && !parts[3].empty()) e.members = Split(parts[3], ',');
    out.push_back(std::move(e));
  }
  return out;
}

const Entry* Find(const std::vector<Entry>& entries, std::string_view name) {
  for (const Entry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

}  // namespace

bool UnitCredentials::InGroup(gid_t gid) const {
  return std::find(gids.begin(), gids.end(), gid) != gids.end();
}

std::optional<UnitCredentials> ResolveUnitCredentials(
    std::string_view passwd_text, std::string_view group_text, const std::string& user,
    const std::string& group, const std::vector<std::string>& supplementary, std::string& why) {
  if (user.empty() || group.empty()) {
    why = "the unit has no User= and Group= in force";
    return std::nullopt;
  }
  auto users = ParseEntries(passwd_text, 7, "/etc/passwd", why);
  if (!users) return std::nullopt;
  auto groups = ParseEntries(group_text, 4, "/etc/group", why);
  if (!groups) return std::nullopt;
  const Entry* u = Find(*users, user);
  if (u == nullptr) {
    why = "user '" + user + "' is not in the unit root's /etc/passwd";
    return std::nullopt;
  }
  UnitCredentials creds;
  creds.uid = u->id;
  std::vector<std::string> wanted = {group};
  wanted.insert(wanted.end(), supplementary.begin(), supplementary.end());
  for (const std::string& name : wanted) {
    const Entry* g = Find(*groups, name);
    if (g == nullptr) {
      why = "group '" + name + "' is not in the unit root's /etc/group";
      return std::nullopt;
    }
    creds.gids.push_back(g->id);
  }
  for (const Entry& g : *groups) {
    if (std::find(g.members.begin(), g.members.end(), user) != g.members.end())
      creds.gids.push_back(g.id);
  }
  return creds;
}

}  // namespace decnet::helper
