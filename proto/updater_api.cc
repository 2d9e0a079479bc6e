#include "proto/updater_api.h"

namespace decnet::api {

using nlohmann::json;

json ReleaseJson(const Release& r) {
  json j = {{"slot", r.slot},
            {"sha", r.sha ? json(*r.sha) : json(nullptr)},
            {"installed_at", r.installed_at ? json(*r.installed_at) : json(nullptr)},
            {"id", r.id},
            {"sha256", r.sha256},
            {"version", r.version},
            {"size", r.size},
            {"state", r.state},
            {"units", r.units ? json(*r.units) : json(nullptr)}};
  return j;
}

namespace {
json ReleaseList(const std::vector<Release>& releases) {
  json list = json::array();
  for (const auto& r : releases) list.push_back(ReleaseJson(r));
  return list;
}
}  // namespace

json HealthJson(const std::vector<Release>& releases, const std::string& version, bool helper_alive,
                const std::string& policy_digest, const ReleaseChecks& checks,
                const BuildIdentity& build, const std::optional<LastResult>& last_result) {
  auto or_null = [](const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); };
  auto empty_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  json last = nullptr;
  if (last_result)
    last = {{"op", last_result->op},
            {"result", last_result->result},
            {"rule", empty_null(last_result->rule)},
            {"version", empty_null(last_result->version)},
            {"at", last_result->at}};
  return {
      {"status", "ok"},
      {"role", "updater"},
      {"releases", ReleaseList(releases)},
      {"version", version},
      {"helper", {{"alive", helper_alive}, {"policy_digest", policy_digest}}},
      {"version_floor",
       {{"service", or_null(checks.service_floor)}, {"updater", or_null(checks.updater_floor)}}},
      {"require_signature", checks.require_signature},
      {"build",
       {{"version", build.version.empty() ? version : build.version}, {"id", or_null(build.id)}}},
      {"last_result", last}};
}

json ReleasesJson(const std::vector<Release>& releases) {
  return {{"releases", ReleaseList(releases)}};
}

json UpdatedJson(const Release& r, const std::string& probe) {
  return {{"status", "updated"}, {"release", ReleaseJson(r)}, {"probe", probe}};
}

json RolledBackJson(const Release& r, const std::string& probe) {
  return {{"status", "rolled_back"}, {"release", ReleaseJson(r)}, {"probe", probe}};
}

json SelfUpdateQueuedJson() { return {{"status", "self_update_queued"}, {"via", "systemd"}}; }

json DetailJson(const std::string& message) { return {{"detail", message}}; }

json FailureJson(const std::string& error, const std::string& stderr_text,
                 std::optional<bool> rolled_back, const std::string& rule) {
  json detail = {{"error", error}, {"stderr", stderr_text}};
  if (rolled_back) detail["rolled_back"] = *rolled_back;
  if (!rule.empty()) detail["rule"] = rule;
  // DECNET's dashboard reads "error" and "stderr" at the top (its rollback handler takes
  // `error or detail` as a string), its CLI reads detail.error: both get a non-empty string.
  const std::string shown = error.empty() ? (rule.empty() ? "failed" : rule) : error;
  return {{"error", shown}, {"stderr", stderr_text}, {"detail", detail}};
}

}  // namespace decnet::api
