#include "fleet/report.h"

#include <fstream>
#include <iostream>

namespace decnet::fleet {

using nlohmann::json;

std::string Printable(std::string_view text, std::size_t max) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i >= max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {

std::string ReleaseLabel(const json& release) {
  if (!release.is_object()) return "-";
  std::string out;
  if (auto v = release.find("version"); v != release.end() && v->is_string()) out = *v;
  if (auto id = release.find("id"); id != release.end() && id->is_string() && !id->empty())
    out += (out.empty() ? "" : " ") + std::string("(") + id->get<std::string>() + ")";
  return out.empty() ? "-" : out;
}

std::string Percent(std::uint64_t sent, std::uint64_t total) {
  if (total == 0) return "";
  return std::to_string(sent * 100 / total) + "%";
}

}  // namespace

ConsoleProgress::ConsoleProgress(std::FILE* out, bool tty, std::vector<std::string> hosts)
    : out_(out), tty_(tty), order_(std::move(hosts)) {
  for (const auto& h : order_) rows_[h];
}

void ConsoleProgress::Phase(const std::string& host, std::string_view phase) {
  if (phase == "done") return;  // Finished() says it, with the result
  std::lock_guard lock(mu_);
  Row& row = rows_[host];
  if (row.phase == phase) return;
  row.phase = std::string(phase);
  if (phase != "upload" && phase != "self") row.sent = row.total = 0;
  if (tty_)
    Redraw(true);
  else
    std::fprintf(out_, "%s: %s\n", Printable(host).c_str(), row.phase.c_str());
  std::fflush(out_);
}

void ConsoleProgress::Bytes(const std::string& host, std::uint64_t sent, std::uint64_t total) {
  std::lock_guard lock(mu_);
  Row& row = rows_[host];
  row.sent = sent;
  row.total = total;
  if (tty_) Redraw(false);
}

void ConsoleProgress::Finished(const HostOutcome& o) {
  std::lock_guard lock(mu_);
  Row& row = rows_[o.name];
  row.phase = "done";
  row.result = std::string(HostResultName(o.result));
  if (o.result != HostResult::kOk)
    row.result += " (" + std::string(FailureKindName(o.failure)) + ")";
  if (tty_)
    Redraw(true);
  else
    std::fprintf(out_, "%s: done %s%s%s\n", Printable(o.name).c_str(),
                 std::string(HostResultName(o.result)).c_str(), o.cause.empty() ? "" : ": ",
                 Printable(o.cause, 200).c_str());
  std::fflush(out_);
}

void ConsoleProgress::Close() {
  std::lock_guard lock(mu_);
  if (tty_) Redraw(true);
  tty_ = false;
}

void ConsoleProgress::Redraw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  // Back to the first row of the previous drawing, then each row cleared and rewritten.
  if (drawn_) std::fprintf(out_, "\x1b[%zuA", order_.size());
  for (const auto& host : order_) {
    const Row& row = rows_[host];
    std::string line = Printable(host, 32) + "  " + row.phase;
    if (row.phase == "upload" || row.phase == "self")
      line += " " + Percent(row.sent, row.total) + " (" + std::to_string(row.sent) + " bytes)";
    if (!row.result.empty()) line += "  " + row.result;
    std::fprintf(out_, "\r\x1b[2K%s\n", line.c_str());
  }
  drawn_ = true;
  std::fflush(out_);
}

void PrintTable(std::FILE* out, const std::vector<HostOutcome>& hosts) {
  std::size_t name_w = 4;
  for (const auto& h : hosts) name_w = std::max(name_w, Printable(h.name, 32).size());
  std::fprintf(out, "%-*s  %-8s  %-30s  %s\n", static_cast<int>(name_w), "HOST", "RESULT",
               "RELEASE", "CAUSE");
  for (const auto& h : hosts) {
    std::string result(HostResultName(h.result));
    std::string cause = h.cause;
    if (h.result == HostResult::kFailed)
      cause = std::string(FailureKindName(h.failure)) + (cause.empty() ? "" : ": " + cause);
    std::fprintf(out, "%-*s  %-8s  %-30s  %s\n", static_cast<int>(name_w),
                 Printable(h.name, 32).c_str(), result.c_str(),
                 Printable(ReleaseLabel(h.release), 30).c_str(), Printable(cause, 160).c_str());
  }
}

namespace {

// A string field of `j`, or "" when `j` is no object or the field no string.
std::string Text(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// "update refused (version-not-newer)", "rollback rolled_back", or "-".
std::string LastResultLabel(const json& last) {
  std::string out = Text(last, "op");
  if (std::string result = Text(last, "result"); !result.empty())
    out += (out.empty() ? "" : " ") + result;
  if (std::string rule = Text(last, "rule"); !rule.empty())
    out += (out.empty() ? "(" : " (") + rule + ")";
  return out.empty() ? "-" : out;
}

}  // namespace

void PrintStatusTable(std::FILE* out, const std::vector<HostOutcome>& hosts) {
  std::size_t name_w = 4;
  for (const auto& h : hosts) name_w = std::max(name_w, Printable(h.name, 32).size());
  std::fprintf(out, "%-*s  %-8s  %-30s  %-40s  %-16s  %s\n", static_cast<int>(name_w), "HOST",
               "RESULT", "RELEASE", "LAST RESULT", "BUILD", "CAUSE");
  for (const auto& h : hosts) {
    std::string result(HostResultName(h.result));
    std::string cause = h.cause;
    if (h.result == HostResult::kFailed)
      cause = std::string(FailureKindName(h.failure)) + (cause.empty() ? "" : ": " + cause);
    const json none = nullptr;
    const json& last = h.details.is_object() && h.details.contains("last_result")
                           ? h.details["last_result"]
                           : none;
    const json& build =
        h.details.is_object() && h.details.contains("build") ? h.details["build"] : none;
    std::string build_id = Text(build, "id");
    std::fprintf(out, "%-*s  %-8s  %-30s  %-40s  %-16s  %s\n", static_cast<int>(name_w),
                 Printable(h.name, 32).c_str(), result.c_str(),
                 Printable(ReleaseLabel(h.release), 30).c_str(),
                 Printable(LastResultLabel(last), 40).c_str(),
                 Printable(build_id.empty() ? "-" : build_id, 16).c_str(),
                 Printable(cause, 160).c_str());
  }
}

json ReportJson(const ReportHeader& header, const PlanReport& plan) {
  json hosts = json::array();
  std::size_t ok = 0, failed = 0, skipped = 0;
  for (const auto& h : plan.hosts) {
    switch (h.result) {
      case HostResult::kOk:
        ++ok;
        break;
      case HostResult::kFailed:
        ++failed;
        break;
      case HostResult::kSkipped:
        ++skipped;
        break;
    }
    json j = {{"name", h.name},
              {"address", h.address},
              {"port", h.port},
              {"result", HostResultName(h.result)},
              {"failure",
               h.result == HostResult::kFailed ? json(FailureKindName(h.failure)) : json(nullptr)},
              {"cause", h.cause.empty() ? json(nullptr) : json(h.cause)},
              {"rule", h.rule.empty() ? json(nullptr) : json(h.rule)},
              {"http_status", h.http_status ? json(*h.http_status) : json(nullptr)},
              {"phase", h.phase},
              {"bytes_sent", h.bytes_sent},
              {"duration_ms", h.duration_ms},
              {"release", h.release},
              {"self", h.self}};
    if (!h.details.is_null()) j["details"] = h.details;
    hosts.push_back(std::move(j));
  }
  const bool all_ok = failed == 0 && skipped == 0 && !plan.interrupted;
  return {{"format", 1},
          {"command", header.command},
          {"started", header.started},
          {"finished", header.finished},
          {"result", all_ok ? "ok" : "failed"},
          {"interrupted", plan.interrupted},
          {"halted_by", plan.halted_by ? json(*plan.halted_by) : json(nullptr)},
          {"release", header.release},
          {"self_release", header.self_release},
          {"options", header.options},
          {"counts", {{"ok", ok}, {"failed", failed}, {"skipped", skipped}}},
          {"hosts", std::move(hosts)}};
}

bool WriteReport(const std::string& path, const json& report) {
  // Invalid UTF-8 from a worker is replaced rather than aborting the report.
  const std::string text = report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

}  // namespace decnet::fleet
