#include "fleet/host_ops.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <thread>

#include "fleet/report.h"
#include "proto/release_auth.h"
#include "proto/release_manifest.h"

namespace decnet::fleet {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

json ParseJson(const std::string& body) {
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::int64_t MsSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

HostOutcome Start(const Target& t) {
  HostOutcome o;
  o.name = t.name;
  o.address = t.address;
  o.port = t.port;
  return o;
}

// Runs `work` for `t` on an outcome that starts in the "connect" phase, then stamps how long
// the host took and tells `progress` it is done.
template <typename Work>
HostOutcome OnHost(const Target& t, ProgressSink& progress, Work&& work) {
  const auto t0 = Clock::now();
  HostOutcome o = Start(t);
  o.phase = "connect";
  progress.Phase(t.name, "connect");
  work(o);
  o.duration_ms = MsSince(t0);
  progress.Phase(t.name, "done");
  return o;
}

HostOutcome& FailWith(HostOutcome& o, FailureKind kind, std::string cause, std::string rule) {
  o.result = HostResult::kFailed;
  o.failure = kind;
  o.cause = std::move(cause);
  o.rule = std::move(rule);
  return o;
}

HostOutcome& FailTransport(HostOutcome& o, const Error& e) {
  return FailWith(o, ClassifyTransport(e), e.message, e.rule);
}

HostOutcome& FailAnswer(HostOutcome& o, const HttpResponse& r, FailureKind otherwise) {
  o.http_status = r.status;
  WorkerFailure f = ReadFailureBody(r.status, r.body);
  return FailWith(o, f.rolled_back ? FailureKind::kRolledBack : otherwise,
                  "HTTP " + std::to_string(r.status) + ": " + f.cause, f.rule);
}

// GET `path` on its own pinned connection.
Result<HttpResponse> Get(const Target& t, const PushSettings& s, std::string_view path) {
  auto c = PinnedConnection::Open(*s.tls, t, s.timeouts);
  if (!c) return tl::make_unexpected(c.error());
  return c->Request("GET", path);
}

// The release of `slot` in a {"releases":[...]} list, or null.
json Slot(const json& releases, std::string_view slot) {
  if (!releases.is_array()) return nullptr;
  for (const auto& r : releases)
    if (r.is_object() && r.value("slot", "") == slot) return r;
  return nullptr;
}

// The fields `keys` of the object `from`, each a string or null (anything else: null); null
// when `from` is not an object. What a worker shows is kept to the shape the report declares.
json StringFields(const json& from, std::initializer_list<const char*> keys) {
  if (!from.is_object()) return nullptr;
  json out = json::object();
  for (const char* key : keys) {
    auto it = from.find(key);
    out[key] = it != from.end() && it->is_string() ? *it : json(nullptr);
  }
  return out;
}

bool SameVersion(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  auto order = CompareVersions(a, b);
  return order && *order == std::strong_ordering::equal;
}

// Health and releases of one worker; fills `o` with a failure when either does not answer.
bool Query(const Target& t, const PushSettings& s, HostOutcome& o, json& health, json& releases) {
  auto h = Get(t, s, "/health");
  if (!h) return FailTransport(o, h.error()), false;
  if (h->status != 200) return FailAnswer(o, *h, FailureKind::kRefused), false;
  health = ParseJson(h->body);
  if (!health.is_object() || health.value("role", "") != "updater")
    return FailWith(o, FailureKind::kProtocol, "/health did not answer as an updater",
                    "http-protocol"),
           false;
  auto r = Get(t, s, "/releases");
  if (!r) return FailTransport(o, r.error()), false;
  if (r->status != 200) return FailAnswer(o, *r, FailureKind::kRefused), false;
  json list = ParseJson(r->body);
  releases = list.is_object() && list.contains("releases") ? list["releases"] : json(nullptr);
  if (!releases.is_array())
    return FailWith(o, FailureKind::kProtocol, "/releases did not list releases", "http-protocol"),
           false;
  return true;
}

// The build identity a /health body shows ({"build":{"version","id"}}), empty when absent.
struct ShownBuild {
  std::string version;
  std::string id;
};
ShownBuild BuildOf(const json& health) {
  ShownBuild b;
  if (!health.is_object() || !health.contains("build") || !health["build"].is_object()) return b;
  const json& build = health["build"];
  if (build.contains("version") && build["version"].is_string()) b.version = build["version"];
  if (build.contains("id") && build["id"].is_string()) b.id = build["id"];
  return b;
}

std::string Describe(const ShownBuild& b) {
  if (b.id.empty() && b.version.empty()) return "no build identity";
  return "build " + (b.id.empty() ? std::string("(not from its store)") : Printable(b.id, 32)) +
         " version '" + Printable(b.version, 64) + "'";
}

// The update-self of one host after its successful update (see UpdateHost).
void UpdateSelf(const Target& t, const PushSettings& s, ProgressSink& progress, HostOutcome& o) {
  const ReleaseFile& build = *s.self_release;
  auto self_fail = [&](FailureKind kind, std::string cause, std::string rule) {
    o.self = {{"result", "failed"}, {"cause", cause}};
    FailWith(o, kind, "update-self: " + cause, std::move(rule));
  };
  // The worker names a build by the first 16 hex digits of its tarball's digest.
  auto wanted = ReleaseId::FromSha256Hex(build.sha256);
  if (!wanted) return self_fail(FailureKind::kLocal, wanted.error().message, wanted.error().rule);
  progress.Phase(t.name, "self");
  auto conn = PinnedConnection::Open(*s.tls, t, s.timeouts);
  if (!conn)
    return self_fail(ClassifyTransport(conn.error()), conn.error().message, conn.error().rule);
  std::uint64_t sent = 0;
  const UploadForm form = MakeUploadForm(build, /*self=*/true, s.allow_downgrade);
  auto answer = conn->Upload(
      "/update-self", form,
      [&](std::uint64_t n, std::uint64_t total) { progress.Bytes(t.name, n, total); }, sent);
  o.bytes_sent += sent;
  const std::uint64_t whole = FrameUpload(form, "x")
                                  .map([](const MultipartFrame& f) { return f.content_length; })
                                  .value_or(0);
  if (!answer) {
    // SECURITY: only a drop after the whole build was handed over may mean a restart;
    // a drop before that is a failed upload, whatever /health says later.
    const bool drop =
        answer.error().rule == "connection-dropped" || answer.error().rule == "io-timeout";
    if (!drop || sent != whole)
      return self_fail(ClassifyTransport(answer.error()) == FailureKind::kPinMismatch
                           ? FailureKind::kPinMismatch
                           : FailureKind::kSelfFailed,
                       answer.error().message, answer.error().rule);
  } else if (answer->status != 200 ||
             ParseJson(answer->body).value("status", "") != "self_update_queued") {
    o.http_status = answer->status;
    WorkerFailure f = ReadFailureBody(answer->status, answer->body);
    return self_fail(FailureKind::kSelfFailed,
                     "HTTP " + std::to_string(answer->status) + ": " + f.cause, f.rule);
  }

  // SECURITY: success is the new build itself answering on the pinned connection: /health
  // names the running build by its release id (the build's digest), which no other build
  // shares, so neither the old build still answering nor one of the same version passes.
  progress.Phase(t.name, "self-wait");
  const auto deadline = Clock::now() + s.self_timeout;
  std::string last = "no answer";
  while (Clock::now() < deadline) {
    auto h = Get(t, s, "/health");
    if (!h && h.error().rule == "pin-mismatch")
      return self_fail(FailureKind::kPinMismatch, h.error().message, h.error().rule);
    if (!h) {
      last = h.error().message;
    } else if (h->status == 200) {
      const ShownBuild shown = BuildOf(ParseJson(h->body));
      last = "/health answers " + Describe(shown);
      const bool version_ok = build.version.empty() || SameVersion(shown.version, build.version);
      if (shown.id == wanted->str() && version_ok) {
        o.self = {{"result", "ok"}, {"version", shown.version}, {"id", shown.id}};
        return;
      }
    } else {
      last = "/health answers HTTP " + std::to_string(h->status);
    }
    std::this_thread::sleep_for(s.self_poll);
  }
  self_fail(FailureKind::kSelfFailed,
            "build " + wanted->str() + " did not answer /health within " +
                std::to_string(s.self_timeout.count() / 1000) + " s (last: " + last + ")",
            "self-timeout");
}

}  // namespace

FailureKind ClassifyTransport(const Error& e) {
  if (e.rule == "pin-mismatch") return FailureKind::kPinMismatch;
  if (e.rule == "connect-timeout" || e.rule == "io-timeout") return FailureKind::kTimeout;
  if (e.rule == "connect-failed" || e.rule == "tls-handshake" || e.rule == "connection-dropped")
    return FailureKind::kUnreachable;
  if (e.rule == "upload-file" || e.rule == "upload-field") return FailureKind::kLocal;
  return FailureKind::kProtocol;
}

WorkerFailure ReadFailureBody(int status, const std::string& body) {
  WorkerFailure f;
  json j = ParseJson(body);
  if (!j.is_object()) {
    f.cause = body.empty() ? "no body" : Printable(body, 200);
    return f;
  }
  const json detail = j.contains("detail") ? j["detail"] : json(nullptr);
  if (j.contains("error") && j["error"].is_string()) f.cause = j["error"];
  if (f.cause.empty() && detail.is_string()) f.cause = detail;
  if (f.cause.empty() && detail.is_object() && detail.contains("error") &&
      detail["error"].is_string())
    f.cause = detail["error"];
  if (detail.is_object() && detail.contains("rule") && detail["rule"].is_string())
    f.rule = detail["rule"];
  if (f.rule.empty() && j.contains("rule") && j["rule"].is_string()) f.rule = j["rule"];
  const json* rb = nullptr;
  if (detail.is_object() && detail.contains("rolled_back")) rb = &detail["rolled_back"];
  if (rb == nullptr && j.contains("rolled_back")) rb = &j["rolled_back"];
  f.rolled_back =
      (rb != nullptr && rb->is_boolean() && rb->get<bool>()) || (status == 409 && rb == nullptr);
  if (f.cause.empty()) f.cause = Printable(body, 200);
  f.cause = Printable(f.cause, 300);
  return f;
}

UploadForm MakeUploadForm(const ReleaseFile& release, bool self, bool allow_downgrade) {
  UploadForm form;
  if (self) form.fields.emplace_back("confirm_self", "true");
  form.fields.emplace_back("sha256", release.sha256);
  if (!release.commit.empty())
    form.fields.emplace_back("sha", release.commit);
  else if (release.descriptor && !release.version.empty())
    form.fields.emplace_back("sha", release.version);
  if (release.descriptor) form.fields.emplace_back("descriptor", *release.descriptor);
  for (const auto& line : release.signatures) form.fields.emplace_back("signature", line);
  if (allow_downgrade) form.fields.emplace_back("downgrade", "true");
  form.file_path = release.path;
  form.file_name = release.file_name;
  form.file_size = release.size;
  return form;
}

HostOutcome UpdateHost(const Target& t, const PushSettings& s, ProgressSink& progress) {
  return OnHost(t, progress, [&](HostOutcome& o) {
    auto conn = PinnedConnection::Open(*s.tls, t, s.timeouts);
    if (!conn) {
      FailTransport(o, conn.error());
      return;
    }
    o.phase = "upload";
    progress.Phase(t.name, "upload");
    const UploadForm form = MakeUploadForm(*s.release, /*self=*/false, s.allow_downgrade);
    std::uint64_t sent = 0;
    bool gate_shown = false;
    auto answer = conn->Upload(
        "/update", form,
        [&](std::uint64_t n, std::uint64_t total) {
          progress.Bytes(t.name, n, total);
          if (n == total && !gate_shown) {
            gate_shown = true;
            o.phase = "gate";
            progress.Phase(t.name, "gate");
          }
        },
        sent);
    o.bytes_sent = sent;
    if (!answer) {
      FailTransport(o, answer.error());
      return;
    }
    o.http_status = answer->status;
    if (answer->status != 200) {
      FailAnswer(o, *answer,
                 answer->status == 409 ? FailureKind::kRolledBack : FailureKind::kRefused);
      return;
    }
    json body = ParseJson(answer->body);
    if (!body.is_object() || body.value("status", "") != "updated") {
      FailWith(o, FailureKind::kProtocol, "200 without \"status\":\"updated\"", "http-protocol");
      return;
    }
    o.release = body.contains("release") ? body["release"] : json(nullptr);
    o.result = HostResult::kOk;
    if (s.self_release != nullptr) {
      o.phase = "self";
      UpdateSelf(t, s, progress, o);
    }
    if (o.result == HostResult::kOk) o.phase = "done";
  });
}

HostOutcome DryRunHost(const Target& t, const PushSettings& s, ProgressSink& progress) {
  return OnHost(t, progress, [&](HostOutcome& o) {
    json health, releases;
    if (!Query(t, s, o, health, releases)) return;
    const ReleaseFile& target = *s.release;
    const json active = Slot(releases, "active");
    o.release = active;
    std::vector<std::string> notes;
    const std::string active_sha = active.is_object() ? active.value("sha256", "") : "";
    const bool would_change = active_sha != target.sha256;
    if (!would_change) notes.push_back("the release is already active");
    json floor = health.value("version_floor", json(nullptr));
    std::string kind = target.kind.empty() ? "service" : target.kind;
    if (floor.is_object() && floor.contains(kind) && floor[kind].is_string() &&
        !target.version.empty()) {
      auto order = CompareVersions(target.version, floor[kind].get<std::string>());
      if (order && *order != std::strong_ordering::greater && !s.allow_downgrade)
        notes.push_back("would be refused: not newer than the version floor " +
                        floor[kind].get<std::string>());
    }
    if (health.value("require_signature", false) && target.signatures.empty())
      notes.push_back("would be refused: the worker requires a signature");
    // By name only: a unit kept under its name may still change its content, which
    // /releases does not show ("kept" says so much and no more).
    const bool ships = target.ships_unit_dir || !target.units.empty();
    json units = {{"ships", ships ? json(target.units) : json(nullptr)},
                  {"active", nullptr},
                  {"added", nullptr},
                  {"removed", nullptr},
                  {"kept", nullptr}};
    if (active.is_object() && active.contains("units") && active["units"].is_array()) {
      std::set<std::string> now;
      for (const auto& u : active["units"])
        if (u.is_string()) now.insert(u.get<std::string>());
      // A release without etc/systemd/system/ leaves the installed units as they are.
      std::set<std::string> next = now;
      if (ships) next = std::set<std::string>(target.units.begin(), target.units.end());
      json added = json::array(), removed = json::array(), kept = json::array();
      for (const auto& u : next)
        if (!now.contains(u)) added.push_back(u);
      for (const auto& u : now) (next.contains(u) ? kept : removed).push_back(u);
      units["active"] = json(now);
      units["added"] = added;
      units["removed"] = removed;
      units["kept"] = kept;
    }
    if (!ships) notes.push_back("the release ships no etc/systemd/system/: units stay as they are");
    o.details = {{"active", active},
                 {"previous", Slot(releases, "prev")},
                 {"target",
                  {{"version", target.version.empty() ? json(nullptr) : json(target.version)},
                   {"sha256", target.sha256}}},
                 {"would_change", would_change},
                 {"units", units},
                 {"version_floor", floor},
                 {"require_signature", health.value("require_signature", json(nullptr))},
                 {"notes", notes}};
    o.result = HostResult::kOk;
    o.phase = "done";
  });
}

HostOutcome StatusHost(const Target& t, const PushSettings& s, ProgressSink& progress) {
  return OnHost(t, progress, [&](HostOutcome& o) {
    json health, releases;
    const bool reachable = Query(t, s, o, health, releases);
    if (reachable) {
      o.release = Slot(releases, "active");
      o.result = HostResult::kOk;
      o.phase = "done";
    }
    o.details = {
        {"reachable", reachable},
        {"updater_version", reachable ? health.value("version", json(nullptr)) : json(nullptr)},
        {"active", reachable ? Slot(releases, "active") : json(nullptr)},
        {"previous", reachable ? Slot(releases, "prev") : json(nullptr)},
        {"build", reachable ? StringFields(health.value("build", json(nullptr)), {"version", "id"})
                            : json(nullptr)},
        {"last_result", reachable ? StringFields(health.value("last_result", json(nullptr)),
                                                 {"op", "result", "rule", "version", "at"})
                                  : json(nullptr)},
        {"version_floor", reachable ? health.value("version_floor", json(nullptr)) : json(nullptr)},
        {"require_signature",
         reachable ? health.value("require_signature", json(nullptr)) : json(nullptr)}};
  });
}

HostOutcome RollbackHost(const Target& t, const PushSettings& s, ProgressSink& progress) {
  return OnHost(t, progress, [&](HostOutcome& o) {
    auto conn = PinnedConnection::Open(*s.tls, t, s.timeouts);
    if (!conn) {
      FailTransport(o, conn.error());
    } else {
      o.phase = "rollback";
      progress.Phase(t.name, "rollback");
      auto answer = conn->Request("POST", "/rollback");
      if (!answer) {
        FailTransport(o, answer.error());
      } else if (answer->status != 200) {
        FailAnswer(o, *answer, FailureKind::kRefused);
        if (answer->status == 404 && o.rule.empty()) o.rule = "rollback-no-previous";
      } else {
        o.http_status = 200;
        json body = ParseJson(answer->body);
        o.release = body.is_object() && body.contains("release") ? body["release"] : json(nullptr);
        o.result = HostResult::kOk;
        o.phase = "done";
      }
    }
  });
}

}  // namespace decnet::fleet
