// GET /metrics (Prometheus text exposition format 0.0.4) and GET /audit.
#include <cstdio>
#include <string>

#include "daemon/api_internal.h"
#include "proto/updater_api.h"

namespace decnet::daemon {

using nlohmann::json;

namespace {

constexpr const char* kOps[] = {"update", "update-self", "rollback"};
constexpr const char* kResults[] = {"updated", "rolled_back", "failed", "refused"};

// The result label of an operation's HTTP status: 409 is DECNET's "rolled back", and a
// manual rollback that succeeded is one too.
const char* ResultOf(UpdaterApi::Op op, unsigned status) {
  if (status == 200) return op == UpdaterApi::Op::kRollback ? "rolled_back" : "updated";
  if (status == 409) return "rolled_back";
  if (status >= 400 && status < 500) return "refused";
  return "failed";
}

// A label value: backslash, double quote and line feed escaped, as the format requires.
std::string LabelValue(const json& value) {
  std::string raw = value.is_string() ? value.get<std::string>() : "";
  std::string out;
  for (char c : raw) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Number(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", value);
  return buf;
}

}  // namespace

void UpdaterApi::Count(Op op, unsigned status, std::chrono::steady_clock::duration took) {
  std::lock_guard lock(metrics_mu_);
  ++counters_.results[{OpName(op), ResultOf(op, status)}];
  counters_.duration_sum_seconds += std::chrono::duration<double>(took).count();
  ++counters_.duration_count;
}

void UpdaterApi::Refuse(Op op, const Caller& caller, const Error& why,
                        const std::vector<std::string>& signed_by) {
  {
    std::lock_guard lock(metrics_mu_);
    ++counters_.results[{OpName(op), "refused"}];
  }
  RecordInAudit(op, caller, "refused", why, signed_by);
}

std::string UpdaterApi::MetricsText() const {
  std::string out;
  {
    std::lock_guard lock(metrics_mu_);
    out += "# HELP decnet_updater_updates_total Operations answered, by operation and result.\n";
    out += "# TYPE decnet_updater_updates_total counter\n";
    for (const char* op : kOps) {
      for (const char* result : kResults) {
        auto it = counters_.results.find({op, result});
        uint64_t n = it == counters_.results.end() ? 0 : it->second;
        out += std::string("decnet_updater_updates_total{op=\"") + op + "\",result=\"" + result +
               "\"} " + std::to_string(n) + "\n";
      }
    }
    out +=
        "# HELP decnet_updater_update_duration_seconds Time from a verified request to the "
        "operation's answer.\n";
    out += "# TYPE decnet_updater_update_duration_seconds summary\n";
    out += "decnet_updater_update_duration_seconds_sum " + Number(counters_.duration_sum_seconds) +
           "\n";
    out += "decnet_updater_update_duration_seconds_count " +
           std::to_string(counters_.duration_count) + "\n";
  }
  out += "# HELP decnet_updater_active_release_info The active release.\n";
  out += "# TYPE decnet_updater_active_release_info gauge\n";
  {
    std::lock_guard lock(snapshot_mu_);
    for (const json& r : releases_) {
      if (!r.is_object() || r.value("slot", "") != "active") continue;
      out += "decnet_updater_active_release_info{id=\"" + LabelValue(r.value("id", json())) +
             "\",version=\"" + LabelValue(r.value("version", json())) + "\"} 1\n";
    }
  }
  bool alive = options_.helper_alive ? options_.helper_alive() : false;
  out += "# HELP decnet_updater_helper_up Whether the channel to the root helper is healthy.\n";
  out += "# TYPE decnet_updater_helper_up gauge\n";
  out += std::string("decnet_updater_helper_up ") + (alive ? "1" : "0") + "\n";
  out += "# HELP decnet_updater_update_running Whether an operation is running.\n";
  out += "# TYPE decnet_updater_update_running gauge\n";
  out += std::string("decnet_updater_update_running ") + (busy_.load() ? "1" : "0") + "\n";
  return out;
}

Response UpdaterApi::Audit() const {
  if (options_.audit == nullptr)
    return JsonResponse(503,
                        api::FailureJson("no audit log", "", std::nullopt, "audit-unavailable"));
  Result<std::vector<std::string>> lines = options_.audit->Tail(100);
  if (!lines)
    return JsonResponse(
        500, api::FailureJson(lines.error().message, "", std::nullopt, lines.error().rule));
  json entries = json::array();
  for (const std::string& line : *lines) {
    json entry = json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A line that is not JSON (a torn write before a crash) is shown as it is.
    entries.push_back(entry.is_discarded() ? json(line) : std::move(entry));
  }
  return JsonResponse(200, json{{"entries", std::move(entries)}});
}

}  // namespace decnet::daemon
