// The health gate: proves a freshly switched release healthy before it is kept.
//  1. settle: every restarted unit stays ActiveState "active" with no new restarts
//     (NRestarts unchanged) for the settle window;
//  2. probe: the agent's mTLS health endpoint answers 200 (attempts, interval, per-attempt
//     timeout from the configuration; the agent's client certificate; the host name is not
//     checked, as DECNET does), and, when configured, its JSON "version" equals the release's.
// Everything is bounded by the caller's deadline.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"
#include "daemon/helper_client.h"
#include "proto/values.h"

namespace decnet::daemon {

struct GateVerdict {
  bool healthy = false;
  std::string probe;   // the agent's last health body (or the probe error)
  std::string detail;  // why it failed: "decnet-agent.service restarted 2 times", ...
  std::string rule;    // "gate-unit-inactive", "gate-unit-restarted", "gate-probe",
                       // "gate-version", "gate-deadline"
};

class HealthGate {
 public:
  virtual ~HealthGate() = default;
  // `restarts_before` maps each unit to its NRestarts right after its restart.
  virtual GateVerdict Check(const std::map<UnitName, uint32_t>& restarts_before,
                            const std::string& expected_version,
                            std::chrono::steady_clock::time_point deadline) = 0;
};

// The real gate: settle through the helper (unit_status), probe over mTLS with OpenSSL.
std::unique_ptr<HealthGate> MakeHealthGate(const DaemonConfig& config, HelperClient& helper);

// One probe attempt: GET `url` over TLS with the client certificate; returns the body of a
// 200, or an error naming what failed (connect, handshake, status, timeout). Exposed for
// tests.
[[nodiscard]] Result<std::string> ProbeOnce(const ProbeConfig& probe,
                                            std::chrono::milliseconds timeout);

// --- Pieces of the probe, exposed for their own tests (daemon/probe_http.cc).

// The most a probe reads of one response, headers included; more is refused.
inline constexpr size_t kMaxProbeResponseBytes = 64 * 1024;

// The parts of the probe URL: `https://HOST[:PORT][/PATH]`.
struct ProbeUrl {
  std::string host;       // a name or an IP literal, IPv6 without its brackets
  std::string port;       // decimal, 1..65535; "443" when absent
  std::string path;       // "/" when absent; the query kept, a fragment dropped
  std::string authority;  // the Host header: as written in the URL (IPv6 bracketed)
};

// Parses the probe URL. Refuses (kMalformed, "probe-url") any scheme but https, user
// information, an empty or ill-formed host, a port outside 1..65535, and control
// characters or spaces anywhere (they would let the URL inject into the request).
[[nodiscard]] Result<ProbeUrl> ParseProbeUrl(std::string_view url);

// One HTTP/1.x response.
struct ProbeResponse {
  int status = 0;
  std::string body;
};

// Parses the bytes read so far of a response to a GET. Returns nullopt while more bytes
// are needed; `closed` says the peer has closed, so a body without Content-Length ends
// here and a shorter one is truncated. Refuses (kFailed, "probe-http") a malformed status
// line or header, conflicting or invalid Content-Length, any Transfer-Encoding (chunked
// is not supported: the agent sends Content-Length), a truncated response, and anything
// past kMaxProbeResponseBytes.
[[nodiscard]] Result<std::optional<ProbeResponse>> ParseProbeResponse(std::string_view bytes,
                                                                      bool closed);

// Checks an agent health body for the release's version: a JSON object whose "version"
// is a string equal to `expected`. Refuses (kFailed, "gate-version") a body that is not
// a JSON object, lacks the string, or names another version.
[[nodiscard]] Result<void> CheckProbeVersion(std::string_view body, const std::string& expected);

}  // namespace decnet::daemon
