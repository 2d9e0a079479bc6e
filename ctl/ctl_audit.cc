// `helperctl audit`: the daemon's audit log beside the helper's own record of the requests
// behind each operation. The audit log is written by the daemon, which the helper does not
// trust, so it is read like a peer's message: bounded lines, strict JSON, every field typed,
// unknown keys refused, and every string escaped before it reaches the operator's terminal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "ctl/ctl.h"
#include "daemon/config.h"
#include "daemon/daemon_main.h"
#include "helper/record.h"
#include "proto/json_strict.h"
#include "proto/values.h"

namespace decnet::helper::ctl {
namespace {

using nlohmann::json;
using strict_json::JsonError;
using strict_json::StrictObject;

// The file name daemon/daemon_main.cc opens in its state directory.
constexpr char kAuditLogFile[] = "audit.jsonl";
// Both writers' lines are far shorter; a longer one is reported, never buffered whole.
constexpr size_t kMaxLineBytes = 64 * 1024;
constexpr size_t kMaxLast = 1'000'000;
// A file of junk lines must not grow helperctl without bound: only the latest are listed.
constexpr size_t kMaxMalformedListed = 1000;
constexpr char kMatchRule[] =
    "each helper request is listed under the first operation whose audit line was written at "
    "or after it (millisecond UTC timestamps), i.e. after the previous operation ended";

struct Malformed {
  std::string file;
  size_t line = 0;
  std::string rule;
  std::string message;
};

struct HelperRequest {
  std::string file;
  size_t line = 0;
  int64_t ts_ms = 0;
  std::string ts;
  uint64_t pid = 0;
  uint64_t id = 0;
  std::string type, subject, result, rule, detail;
};

struct Operation {
  size_t line = 0;
  int64_t ts_ms = 0;
  std::string ts, op, fingerprint, cn, sha256, release, version, result, rule, error,
      rollback_cause, note;
  std::vector<std::string> signed_by;  // trusted key ids that signed the release
  std::vector<std::pair<std::string, uint64_t>> durations_ms;
  std::vector<HelperRequest> requests;
};

// Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS.mmmZ", the form both writers use.
std::optional<int64_t> ParseTimestamp(std::string_view s) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != kShape.size()) return std::nullopt;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool digit = s[i] >= '0' && s[i] <= '9';
    if (kShape[i] == 'd' ? !digit : s[i] != kShape[i]) return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    std::from_chars(s.data() + pos, s.data() + pos + len, v);
    return v;
  };
  using namespace std::chrono;
  const year_month_day date{year{num(0, 4)}, month{static_cast<unsigned>(num(5, 2))},
                            day{static_cast<unsigned>(num(8, 2))}};
  const int h = num(11, 2), m = num(14, 2), sec = num(17, 2);
  if (!date.ok() || h > 23 || m > 59 || sec > 59) return std::nullopt;
  const int64_t days = sys_days{date}.time_since_epoch().count();
  return ((days * 24 + h) * 60 + m) * 60'000 + sec * 1000 + num(20, 3);
}

tl::unexpected<JsonError> Bad(std::string rule, std::string message) {
  return tl::make_unexpected(JsonError{std::move(rule), std::move(message)});
}

tl::expected<Operation, JsonError> ParseAuditLine(std::string_view text) {
  auto parsed = strict_json::ParseObject(text, 2);
  if (!parsed) return tl::make_unexpected(parsed.error());
  StrictObject o(*parsed, "audit line");
  Operation op;
  std::string* fields[] = {&op.ts,     &op.op,   &op.sha256, &op.release,       &op.version,
                           &op.result, &op.rule, &op.error,  &op.rollback_cause};
  const char* keys[] = {"ts",     "op",   "sha256", "release",       "version",
                        "result", "rule", "error",  "rollback_cause"};
  for (size_t i = 0; i < std::size(keys); ++i) *fields[i] = o.String(keys[i]).value_or("");
  const json* client = o.Object("client");
  const json* durations = o.Object("durations_ms");
  // The daemon writes these two only when it has something to say.
  if (o.Has("note")) op.note = o.String("note").value_or("");
  const json* signed_by = o.Has("signed_by") ? o.Array("signed_by") : nullptr;
  if (auto done = o.Finish(); !done) return tl::make_unexpected(done.error());
  if (signed_by != nullptr) {
    for (const json& id : *signed_by) {
      if (!id.is_string()) return Bad("json-wrong-type", "signed_by must list strings");
      op.signed_by.push_back(id.get<std::string>());
    }
  }
  StrictObject c(*client, "audit line's client");
  op.fingerprint = c.String("fingerprint").value_or("");
  op.cn = c.String("cn").value_or("");
  if (auto done = c.Finish(); !done) return tl::make_unexpected(done.error());
  for (const auto& [step, ms] : durations->items()) {
    if (!ms.is_number_unsigned())
      return Bad("json-wrong-type", "durations_ms \"" + step + "\" must be a non-negative integer");
    op.durations_ms.emplace_back(step, ms.get<uint64_t>());
  }
  const auto ts = ParseTimestamp(op.ts);
  if (!ts) return Bad("audit-ts", "ts is not YYYY-MM-DDTHH:MM:SS.mmmZ");
  op.ts_ms = *ts;
  return op;
}

tl::expected<HelperRequest, JsonError> ParseRecordLine(std::string_view text) {
  auto parsed = strict_json::ParseObject(text, 1);
  if (!parsed) return tl::make_unexpected(parsed.error());
  StrictObject o(*parsed, "record line");
  HelperRequest r;
  r.ts = o.String("ts").value_or("");
  r.pid = o.Uint("pid").value_or(0);
  r.id = o.Uint("id").value_or(0);
  std::string* fields[] = {&r.type, &r.subject, &r.result, &r.rule, &r.detail};
  const char* keys[] = {"type", "subject", "result", "rule", "detail"};
  for (size_t i = 0; i < std::size(keys); ++i) *fields[i] = o.String(keys[i]).value_or("");
  if (auto done = o.Finish(); !done) return tl::make_unexpected(done.error());
  const auto ts = ParseTimestamp(r.ts);
  if (!ts) return Bad("record-ts", "ts is not YYYY-MM-DDTHH:MM:SS.mmmZ");
  r.ts_ms = *ts;
  return r;
}

// Calls `on_line(number, text)` for every line of the regular file at `path`; a line longer
// than kMaxLineBytes is passed as nullopt (and never held whole). ENOENT is kNotFound.
Result<void> ForEachLine(
    const std::string& path,
    const std::function<void(size_t, std::optional<std::string_view>)>& on_line) {
  // SECURITY: the daemon owns its state directory: O_NOFOLLOW and the regular-file check keep
  // a planted symlink, FIFO or device from redirecting or hanging a root operator's read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    return Fail(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kFailed, "audit-read",
                path + ": " + (err == ELOOP ? "is a symbolic link" : std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Fail(ErrorCode::kFailed, "audit-read", path + ": not a regular file");
  }
  std::string line;
  bool overlong = false;
  size_t number = 0;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Fail(ErrorCode::kFailed, "audit-read", path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    for (std::string_view rest(buf, static_cast<size_t>(n)); !rest.empty();) {
      const size_t nl = rest.find('\n');
      const std::string_view part = rest.substr(0, nl);
      overlong = overlong || line.size() + part.size() > kMaxLineBytes;
      if (!overlong) line.append(part);
      if (nl == std::string_view::npos) break;
      on_line(++number, overlong ? std::nullopt : std::optional<std::string_view>(line));
      line.clear();
      overlong = false;
      rest.remove_prefix(nl + 1);
    }
  }
  ::close(fd);
  // A last line without its newline (a write cut short) is still a line.
  if (overlong || !line.empty())
    on_line(++number, overlong ? std::nullopt : std::optional<std::string_view>(line));
  return {};
}

std::string Basename(const std::string& path) { return path.substr(path.rfind('/') + 1); }

Malformed MalformedLine(const std::string& path, size_t number,
                        const std::optional<std::string_view>& text, const JsonError* e) {
  if (!text) return {path, number, "line-too-long", "longer than 65536 bytes"};
  if (text->empty()) return {path, number, "empty-line", "an empty line"};
  return {path, number, e->rule, e->message};
}

// Where the daemon keeps its audit log: the options, or the state_dir of the configuration
// the helper starts the daemon with (a --config among the policy's daemon_args, or the
// daemon's default file).
Result<std::string> AuditLogPath(const Policy& policy, const AuditOptions& options) {
  if (!options.audit_log.empty()) return options.audit_log;
  if (!options.state_dir.empty()) return options.state_dir + "/" + kAuditLogFile;
  std::string config = daemon::kDefaultDaemonConfig;
  const auto& args = policy.daemon_args;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) config = args[i + 1];
    if (args[i].starts_with("--config=")) config = args[i].substr(9);
  }
  auto loaded = daemon::LoadDaemonConfig(config);
  if (!loaded) {
    return Fail(ErrorCode::kFailed, "daemon-config",
                "cannot tell the daemon's state directory (" + loaded.error().message +
                    "); pass --state-dir or --audit-log");
  }
  return loaded->state_dir + "/" + kAuditLogFile;
}

struct Timeline {
  std::string audit_log;
  std::vector<std::string> record_files;
  std::string record_error;
  std::deque<Operation> ops;  // with --last N, ops[0] may be the hidden (N+1)th from the end
  bool first_hidden = false;
  std::vector<HelperRequest> after_last;
  std::deque<Malformed> malformed;
  size_t malformed_unlisted = 0;  // earlier malformed lines beyond kMaxMalformedListed
};

void NoteMalformed(Timeline& t, Malformed m) {
  t.malformed.push_back(std::move(m));
  if (t.malformed.size() > kMaxMalformedListed) {
    t.malformed.pop_front();
    ++t.malformed_unlisted;
  }
}

Result<void> ReadAudit(const std::string& path, size_t last, Timeline& t) {
  auto read = ForEachLine(path, [&](size_t number, std::optional<std::string_view> text) {
    auto op = text && !text->empty() ? ParseAuditLine(*text) : Bad("", "");
    if (!op) {
      NoteMalformed(t, MalformedLine(path, number, text, &op.error()));
      return;
    }
    op->line = number;
    t.ops.push_back(std::move(*op));
    // Keep one operation before the last N: its end is where the first shown one's window
    // begins. Malformed lines before that are outside what was asked for.
    if (last > 0 && t.ops.size() > last + 1) {
      t.ops.pop_front();
      std::erase_if(t.malformed, [&](const Malformed& m) { return m.line < t.ops[0].line; });
    }
  });
  t.first_hidden = last > 0 && t.ops.size() > last;
  if (t.first_hidden) {
    std::erase_if(t.malformed, [&](const Malformed& m) { return m.line < t.ops[0].line; });
  }
  return read;
}

// Reads requests.jsonl.1 (rotated), requests.jsonl and changes.jsonl (the never-rotated
// record of state changes, which still holds changes whose requests.jsonl lines rotated
// away), drops the second copy of a line both hold, and files each request under its
// operation (see kMatchRule) in time order. Requests at or before a hidden first operation
// are dropped.
void ReadRecord(const Policy& policy, Timeline& t) {
  const std::string dir = policy.state_dir + "/";
  std::vector<HelperRequest> all;
  std::set<std::tuple<std::string, uint64_t, uint64_t, std::string>> seen;
  for (const std::string& path :
       {dir + kChangeRecordFile, dir + kRequestRecordFile + ".1", dir + kRequestRecordFile}) {
    auto read = ForEachLine(path, [&](size_t number, std::optional<std::string_view> text) {
      auto r = text && !text->empty() ? ParseRecordLine(*text) : Bad("", "");
      if (!r) {
        NoteMalformed(t, MalformedLine(path, number, text, &r.error()));
        return;
      }
      r->file = path;
      r->line = number;
      if (t.first_hidden && r->ts_ms <= t.ops[0].ts_ms) return;
      if (!seen.emplace(r->ts, r->pid, r->id, r->type).second) return;
      all.push_back(std::move(*r));
    });
    if (read) {
      t.record_files.push_back(path);
    } else if (read.error().code != ErrorCode::kNotFound) {
      t.record_error = read.error().message;
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const HelperRequest& a, const HelperRequest& b) {
    return a.ts_ms < b.ts_ms;
  });
  size_t i = 0;  // the operation the next request is compared with
  for (HelperRequest& r : all) {
    while (i < t.ops.size() && r.ts_ms > t.ops[i].ts_ms) ++i;
    (i < t.ops.size() ? t.ops[i].requests : t.after_last).push_back(std::move(r));
  }
}

json RequestJson(const HelperRequest& r) {
  return {{"file", r.file}, {"line", r.line},    {"ts", r.ts},           {"pid", r.pid},
          {"id", r.id},     {"type", r.type},    {"subject", r.subject}, {"result", r.result},
          {"rule", r.rule}, {"detail", r.detail}};
}

json TimelineJson(const Timeline& t) {
  json ops = json::array();
  for (size_t i = t.first_hidden ? 1 : 0; i < t.ops.size(); ++i) {
    const Operation& o = t.ops[i];
    json durations = json::object();
    for (const auto& [step, ms] : o.durations_ms) durations[step] = ms;
    json requests = json::array();
    for (const auto& r : o.requests) requests.push_back(RequestJson(r));
    ops.push_back({{"line", o.line},
                   {"ts", o.ts},
                   {"op", o.op},
                   {"client", {{"fingerprint", o.fingerprint}, {"cn", o.cn}}},
                   {"sha256", o.sha256},
                   {"release", o.release},
                   {"version", o.version},
                   {"result", o.result},
                   {"rule", o.rule},
                   {"error", o.error},
                   {"rollback_cause", o.rollback_cause},
                   {"signed_by", o.signed_by},
                   {"note", o.note},
                   {"durations_ms", durations},
                   {"helper_requests", requests}});
  }
  json after = json::array();
  for (const auto& r : t.after_last) after.push_back(RequestJson(r));
  json malformed = json::array();
  for (const auto& m : t.malformed) {
    malformed.push_back(
        {{"file", m.file}, {"line", m.line}, {"rule", m.rule}, {"message", m.message}});
  }
  return {{"audit_log", t.audit_log},
          {"helper_record",
           {{"files", t.record_files},
            {"error", t.record_error.empty() ? json(nullptr) : json(t.record_error)}}},
          {"match", kMatchRule},
          {"operations", ops},
          {"after_last_operation", after},
          {"malformed", malformed},
          {"malformed_unlisted", t.malformed_unlisted}};
}

// Every string that came from either file goes through QuotePrintable: control bytes,
// escapes and non-ASCII as \xNN, at most 80 bytes, so no field can forge a line or move the
// cursor on the operator's terminal.
std::string Q(std::string_view s) { return QuotePrintable(s); }

void PrintMalformed(const Malformed& m) {
  std::printf("%s:%zu: malformed line skipped: %s %s\n", Basename(m.file).c_str(), m.line,
              m.rule.c_str(), Q(m.message).c_str());
}

void PrintRequest(const char* label, const HelperRequest& r) {
  std::string text = std::string("  ") + label + r.ts + "  #" + std::to_string(r.id) + " " +
                     Q(r.type) + " " + Q(r.subject) + " -> " + Q(r.result);
  if (!r.rule.empty()) text += " rule " + Q(r.rule);
  if (!r.detail.empty()) text += " " + Q(r.detail);
  std::printf("%s\n", text.c_str());
}

void PrintOperation(const Operation& o) {
  std::printf("%s  %s %s  (line %zu)\n", o.ts.c_str(), Q(o.op).c_str(), Q(o.result).c_str(),
              o.line);
  if (!o.cn.empty() || !o.fingerprint.empty())
    std::printf("  client    cn %s fingerprint %s\n", Q(o.cn).c_str(), Q(o.fingerprint).c_str());
  if (!o.release.empty() || !o.version.empty() || !o.sha256.empty())
    std::printf("  release   %s version %s sha256 %s\n", Q(o.release).c_str(), Q(o.version).c_str(),
                Q(o.sha256).c_str());
  if (!o.rule.empty() || !o.error.empty()) {
    std::string text = o.rule.empty() ? "" : "rule " + Q(o.rule) + " ";
    std::printf("  error     %s%s\n", text.c_str(), Q(o.error).c_str());
  }
  if (!o.rollback_cause.empty()) std::printf("  rollback  %s\n", Q(o.rollback_cause).c_str());
  if (!o.signed_by.empty()) {
    std::string text;
    for (const auto& id : o.signed_by) text += (text.empty() ? "" : ", ") + Q(id);
    std::printf("  signed    %s\n", text.c_str());
  }
  if (!o.note.empty()) std::printf("  note      %s\n", Q(o.note).c_str());
  if (!o.durations_ms.empty()) {
    std::string text;
    for (const auto& [step, ms] : o.durations_ms)
      text += (text.empty() ? "" : ", ") + Q(step) + " " + std::to_string(ms) + " ms";
    std::printf("  took      %s\n", text.c_str());
  }
  if (o.requests.empty()) std::printf("  helper    (no requests)\n");
  for (size_t i = 0; i < o.requests.size(); ++i)
    PrintRequest(i == 0 ? "helper    " : "          ", o.requests[i]);
}

void PrintTimeline(const Timeline& t) {
  std::printf("audit log: %s\n", t.audit_log.c_str());
  std::string files;
  for (const auto& f : t.record_files) files += (files.empty() ? "" : ", ") + f;
  std::printf("helper record: %s\n", files.empty() ? "(none found)" : files.c_str());
  if (!t.record_error.empty())
    std::printf("helper record unreadable: %s\n", Q(t.record_error).c_str());
  std::printf("matching: %s\n", kMatchRule);
  if (t.malformed_unlisted > 0)
    std::printf("%zu earlier malformed lines not listed\n", t.malformed_unlisted);
  auto m = t.malformed.begin();
  for (size_t i = t.first_hidden ? 1 : 0; i < t.ops.size(); ++i) {
    for (; m != t.malformed.end() && m->file == t.audit_log && m->line < t.ops[i].line; ++m)
      PrintMalformed(*m);
    std::printf("\n");
    PrintOperation(t.ops[i]);
  }
  if (!t.after_last.empty()) std::printf("\nafter the last operation:\n");
  for (const auto& r : t.after_last) PrintRequest("helper    ", r);
  if (m != t.malformed.end()) std::printf("\n");
  for (; m != t.malformed.end(); ++m) PrintMalformed(*m);
}

}  // namespace

std::optional<AuditOptions> ParseAuditArgs(const std::vector<std::string>& args) {
  AuditOptions o;
  bool json_seen = false, last_seen = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size() && !args[i + 1].empty();
    if (a == "--json" && !json_seen) {
      o.json = json_seen = true;
    } else if (a == "--last" && has_value && !last_seen) {
      const std::string& v = args[++i];
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.last);
      if (ec != std::errc() || end != v.data() + v.size() || o.last == 0 || o.last > kMaxLast)
        return std::nullopt;
      last_seen = true;
    } else if (a == "--audit-log" && has_value && o.audit_log.empty() && o.state_dir.empty()) {
      o.audit_log = args[++i];
    } else if (a == "--state-dir" && has_value && o.audit_log.empty() && o.state_dir.empty()) {
      o.state_dir = args[++i];
    } else {
      return std::nullopt;
    }
  }
  return o;
}

int RunAudit(const Policy& policy, const AuditOptions& options) {
  auto path = AuditLogPath(policy, options);
  if (!path) {
    // The message names keys of the daemon's root-owned configuration, not the daemon's output.
    std::fprintf(stderr, "helperctl: %s\n", path.error().message.c_str());
    return 2;
  }
  Timeline t;
  t.audit_log = *path;
  if (auto read = ReadAudit(*path, options.last, t); !read) {
    std::fprintf(stderr, "helperctl: audit log %s\n",
                 read.error().code == ErrorCode::kNotFound ? (*path + ": no such file").c_str()
                                                           : read.error().message.c_str());
    return 2;
  }
  ReadRecord(policy, t);
  if (options.json) {
    std::printf("%s\n",
                TimelineJson(t).dump(-1, ' ', true, json::error_handler_t::replace).c_str());
  } else {
    PrintTimeline(t);
  }
  return t.malformed.empty() && t.malformed_unlisted == 0 && t.record_error.empty() ? 0 : 1;
}

}  // namespace decnet::helper::ctl
