// Rebuilding from the parsed assignments, rather than editing lines, means the output holds
// exactly what systemd would have applied from DECNET's file, plus the changes listed.
#include "adopt/unit_rewrite.h"

#include <set>

#include "policy/unit_file.h"
#include "proto/values.h"

namespace decnet::adopt {
namespace {

bool Beneath(std::string_view path, const std::string& dir) {
  return path.starts_with(dir + "/") || path == dir;
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

}  // namespace

Result<RewrittenUnit> RewriteDecnetUnit(std::string_view name, std::string_view content,
                                        const RewriteOptions& options) {
  const auto sections = helper::SystemdSectionsFor(name);
  const helper::ParsedUnitFile parsed = helper::ReadUnitFile(content, sections);
  for (const auto& problem : parsed.problems)
    if (problem.fatal)
      return Fail(ErrorCode::kDenied, "adopt-unit-syntax",
                  std::string(name) + " line " + std::to_string(problem.line) + ": " +
                      problem.message + " [" + problem.rule + "]");
  RewrittenUnit out;
  const std::string old_env = options.install_dir + "/venv/bin/";
  const std::string new_env = options.install_dir + "/current/.venv/bin/";
  std::vector<std::pair<std::string, std::vector<std::string>>> body;  // section -> lines
  auto section_lines = [&](const std::string& section) -> std::vector<std::string>& {
    for (auto& [s, lines] : body)
      if (s == section) return lines;
    body.emplace_back(section, std::vector<std::string>{});
    return body.back().second;
  };
  for (const char* s : {"Unit", "Service", "Install"})
    if (sections.count(s)) section_lines(s);
  bool user_set = false, group_set = false, nnp_set = false;
  for (const auto& a : parsed.assignments) {
    auto& lines = section_lines(a.section);
    std::string value = a.value;
    if (a.section == "Service") {
      if (a.key == "User" || a.key == "Group") {
        bool& seen = a.key == "User" ? user_set : group_set;
        const std::string& want = a.key == "User" ? options.units_user : options.units_group;
        if (value != want)
          out.changes.push_back(a.key + "=" + value + " becomes " + a.key + "=" + want);
        if (!seen) lines.push_back(a.key + "=" + want);
        seen = true;
        continue;
      }
      if (a.key == "NoNewPrivileges") {
        if (value != "yes") out.changes.push_back("NoNewPrivileges=" + value + " becomes yes");
        if (!nnp_set) lines.push_back("NoNewPrivileges=yes");
        nnp_set = true;
        continue;
      }
      if (a.key.starts_with("Exec") && value.find(old_env) != std::string::npos) {
        value = ReplaceAll(value, old_env, new_env);
        out.changes.push_back(a.key + " runs the active release's own environment (" + new_env +
                              ") instead of the shared " + old_env);
      }
      if (a.key == "EnvironmentFile") {
        std::string_view path = value;
        if (path.starts_with("-")) path.remove_prefix(1);
        if (Beneath(path, options.install_dir)) {
          out.changes.push_back("EnvironmentFile=" + value +
                                " dropped: the updater's daemon writes that tree, and systemd "
                                "reads the file as root for the unit");
          continue;
        }
      }
      if ((a.key == "StandardOutput" || a.key == "StandardError") &&
          (value.starts_with("file:") || value.starts_with("append:") ||
           value.starts_with("truncate:"))) {
        out.changes.push_back(a.key + "=" + value + " dropped: the unit logs to the journal");
        continue;
      }
    }
    lines.push_back(a.key + "=" + value);
  }
  if (sections.count("Service")) {
    auto& service = section_lines("Service");
    std::vector<std::string> head;
    if (!user_set) {
      head.push_back("User=" + options.units_user);
      out.changes.push_back("User=" + options.units_user + " added");
    }
    if (!group_set) {
      head.push_back("Group=" + options.units_group);
      out.changes.push_back("Group=" + options.units_group + " added");
    }
    if (!nnp_set) {
      head.push_back("NoNewPrivileges=yes");
      out.changes.push_back("NoNewPrivileges=yes added");
    }
    service.insert(service.begin(), head.begin(), head.end());
  }
  out.content = "# " + std::string(name) +
                ": DECNET's unit, adopted by decnet-adopt and rewritten to the updater's unit "
                "policy.\n";
  for (const auto& [section, lines] : body) {
    if (lines.empty() && section != "Service") continue;
    out.content += "\n[" + section + "]\n";
    for (const auto& line : lines) out.content += line + "\n";
  }
  return out;
}

std::vector<std::string> PolicyRefusals(const helper::Policy& policy, std::string_view name,
                                        std::string_view content,
                                        const helper::PathChainCheck& path_check) {
  std::vector<std::string> out;
  auto unit = UnitName::Parse(name);
  if (!unit) return {"0: " + unit.error().rule + ": " + unit.error().message};
  if (auto ok = helper::CheckUnitName(policy, *unit, helper::UnitUse::kWrite); !ok)
    out.push_back("0: " + ok.error().rule + ": " + ok.error().message);
  for (const auto& r : helper::CheckUnitContent(policy, *unit, content, path_check))
    out.push_back(std::to_string(r.line) + ": " + r.rule + ": " + r.message);
  return out;
}

bool IsDecnetUpdaterUnit(std::string_view content) {
  const helper::ParsedUnitFile parsed =
      helper::ReadUnitFile(content, {"Unit", "Service", "Install"});
  for (const auto& a : helper::EffectiveAssignments(parsed, "Service", "ExecStart")) {
    const auto words = helper::SplitWords(a.value);
    if (words.size() >= 2 && words[0].ends_with("/decnet") && words[1] == "updater") return true;
  }
  return false;
}

}  // namespace decnet::adopt
