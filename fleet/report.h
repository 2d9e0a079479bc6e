// What a push, status or rollback shows: live progress (redrawn in place on a terminal, one
// plain line per phase change otherwise), the final table, and the JSON report described by
// docs/rollout-report.schema.json.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fleet/rollout_plan.h"

namespace decnet::fleet {

// Progress on `out`. On a terminal (tty = true) one line per host is redrawn with ANSI
// cursor movement at most every 100 ms; otherwise each phase change is one line
// ("w1: upload", "w1: done ok"). Every string from a worker is printed through Printable.
class ConsoleProgress final : public ProgressSink {
 public:
  ConsoleProgress(std::FILE* out, bool tty, std::vector<std::string> hosts);
  void Phase(const std::string& host, std::string_view phase) override;
  void Bytes(const std::string& host, std::uint64_t sent, std::uint64_t total) override;
  void Finished(const HostOutcome& outcome) override;
  // Draws the last state (a terminal only) and stops redrawing.
  void Close();

 private:
  struct Row {
    std::string phase = "pending";
    std::uint64_t sent = 0;
    std::uint64_t total = 0;
    std::string result;
  };
  void Redraw(bool force);  // mu_ held
  std::FILE* out_;
  bool tty_;
  std::vector<std::string> order_;
  std::map<std::string, Row> rows_;
  std::mutex mu_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

// Control bytes, DEL and non-ASCII as \xNN, at most `max` bytes shown (then "...").
std::string Printable(std::string_view text, std::size_t max = 120);

// The final table: host, result, release, cause, one row per host.
void PrintTable(std::FILE* out, const std::vector<HostOutcome>& hosts);
// status's table: as PrintTable plus, from each host's details, the worker's last result
// (op, result and rule) and its updater build's release id ("-" when it shows none).
void PrintStatusTable(std::FILE* out, const std::vector<HostOutcome>& hosts);

// Everything the JSON report says beyond the hosts.
struct ReportHeader {
  std::string command;       // "push", "dry-run", "status", "rollback"
  std::int64_t started = 0;  // seconds since the epoch
  std::int64_t finished = 0;
  nlohmann::json release = nullptr;       // push: {"path","sha256","size","version",...}
  nlohmann::json self_release = nullptr;  // --include-self: the same for the build
  nlohmann::json options = nlohmann::json::object();
};

// The report (docs/rollout-report.schema.json): header, "result" ("ok" when every host is
// ok, else "failed"), "interrupted", "halted_by", "counts" and "hosts". Strings are kept as
// UTF-8 text; the JSON writer escapes control bytes.
nlohmann::json ReportJson(const ReportHeader& header, const PlanReport& plan);

// Writes the report to `path` ("-" is stdout). False when it cannot be written.
bool WriteReport(const std::string& path, const nlohmann::json& report);

}  // namespace decnet::fleet
