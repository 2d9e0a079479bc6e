// The updater's HTTP API (DECNET's updater contract): the JSON shapes of every answer. DECNET's
// master reads these; our additions are extra fields and endpoints, never changed ones.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace decnet::api {

// A release as /health, /releases, /update and /rollback show it. DECNET's fields are
// `slot` ("active" | "prev"), `sha` (string or null) and `installed_at` (ISO-8601 or null);
// the rest are ours.
struct Release {
  std::string slot;  // "active", "prev", or "kept" for older releases we keep
  std::optional<std::string> sha;
  std::optional<std::string> installed_at;
  std::string id;
  std::string sha256;
  std::string version;
  uint64_t size = 0;
  std::string state;  // "ready" | "failed"
  // The unit files the release ships in etc/systemd/system/, sorted; nullopt (JSON null) when
  // it ships no such directory (it then leaves the installed units alone) or they could not
  // be read.
  std::optional<std::vector<std::string>> units;
};
nlohmann::json ReleaseJson(const Release& r);

// Our release checks as /health shows them: the never-older floor of each kind (nullopt:
// none yet) and whether unsigned releases are refused.
struct ReleaseChecks {
  std::optional<std::string> service_floor;
  std::optional<std::string> updater_floor;
  bool require_signature = false;
};

// The build of the updater that answers: its release version (its manifest's when it runs
// from its own store, else the version it was compiled as) and its release id in that store
// (nullopt when it does not run from there). Two builds of one compiled version differ here.
struct BuildIdentity {
  std::string version;
  std::optional<std::string> id;
};

// The last operation the updater's audit log recorded: its op ("update", "update-self",
// "rollback"), its result ("updated", "rolled_back", "refused", "failed", ...), the rule and
// the release version when there were any (empty: none), and when it was recorded (ISO 8601).
struct LastResult {
  std::string op;
  std::string result;
  std::string rule;
  std::string version;
  std::string at;
};

// 200 of GET /health: {"status":"ok","role":"updater","releases":[...]} plus our
// "version" (the compiled version), "helper" ({"alive":bool,"policy_digest":str}),
// "version_floor" ({"service":str|null,"updater":str|null}), "require_signature" (bool),
// "build" ({"version":str,"id":str|null}; the version falls back to `version` when empty) and
// "last_result" (null, or {"op","result","rule":str|null,"version":str|null,"at"}).
nlohmann::json HealthJson(const std::vector<Release>& releases, const std::string& version,
                          bool helper_alive, const std::string& policy_digest,
                          const ReleaseChecks& checks = {}, const BuildIdentity& build = {},
                          const std::optional<LastResult>& last_result = std::nullopt);
// 200 of GET /releases.
nlohmann::json ReleasesJson(const std::vector<Release>& releases);
// 200 of POST /update: {"status":"updated","release":R,"probe":"<agent health body>"}.
nlohmann::json UpdatedJson(const Release& r, const std::string& probe);
// 200 of POST /rollback: {"status":"rolled_back","release":R,"probe":str}.
nlohmann::json RolledBackJson(const Release& r, const std::string& probe);
// 200 of POST /update-self: {"status":"self_update_queued","via":"systemd"}.
nlohmann::json SelfUpdateQueuedJson();
// {"detail":"<message>"} (400 sha256 required, 403, 404, 422).
nlohmann::json DetailJson(const std::string& message);
// {"detail":{"error":e,"stderr":s}} plus "rolled_back" when given (409, 500) and our "rule",
// with "error" (never empty: the rule, or "failed", when e is) and "stderr" also at the top,
// where DECNET's dashboard reads them.
nlohmann::json FailureJson(const std::string& error, const std::string& stderr_text,
                           std::optional<bool> rolled_back, const std::string& rule);

// DECNET's exact texts.
inline constexpr char kMasterRequired[] = "master certificate required";
inline constexpr char kSha256Required[] = "sha256 of the tarball is required";

}  // namespace decnet::api
