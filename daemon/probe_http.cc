// The probe's two parsers: its URL and the agent's HTTP/1.x response. Both see only
// bytes, so they are tested as tables (tests/daemon/health_probe_test.cc); the connection
// that feeds them lives in health_probe.cc.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "daemon/health_gate.h"

namespace decnet::daemon {
namespace {

bool IsCtl(char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

tl::unexpected<Error> UrlError(std::string why) {
  return Fail(ErrorCode::kMalformed, "probe-url", "probe URL: " + std::move(why));
}

tl::unexpected<Error> HttpError(std::string why) {
  return Fail(ErrorCode::kFailed, "probe-http", "agent response: " + std::move(why));
}

// A decimal in [0, max] made of digits only, or nullopt.
std::optional<uint64_t> Decimal(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

}  // namespace

Result<ProbeUrl> ParseProbeUrl(std::string_view url) {
  if (std::any_of(url.begin(), url.end(), IsCtl)) return UrlError("contains spaces or controls");
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() || !IEquals(url.substr(0, kScheme.size()), kScheme)) {
    return UrlError("must start with https://");
  }
  url.remove_prefix(kScheme.size());
  if (auto hash = url.find('#'); hash != url.npos) url = url.substr(0, hash);
  size_t slash = url.find_first_of("/?");
  ProbeUrl out;
  std::string_view authority = url.substr(0, slash);
  out.path = slash == url.npos ? "/" : std::string(url.substr(slash));
  if (out.path.front() == '?') out.path.insert(0, "/");
  if (authority.find('@') != authority.npos) return UrlError("user information is not allowed");
  out.authority = std::string(authority);
  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == authority.npos) return UrlError("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    in6_addr v6{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
      return UrlError("invalid IPv6 literal");
    }
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return UrlError("junk after the IPv6 literal");
    if (!rest.empty()) port = rest.substr(1);
    if (!rest.empty() && port.empty()) return UrlError("empty port");
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != authority.npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return UrlError("empty port");
    }
    if (host.empty()) return UrlError("empty host");
    if (!std::all_of(host.begin(), host.end(), IsHostChar) || host.front() == '-' ||
        host.front() == '.') {
      return UrlError("invalid host '" + std::string(host) + "'");
    }
  }
  if (!port.empty()) {
    auto p = Decimal(port, 65535);
    if (!p || *p == 0) return UrlError("invalid port '" + std::string(port) + "'");
    out.port = std::to_string(*p);
  } else {
    out.port = "443";
  }
  out.host = std::string(host);
  return out;
}

Result<std::optional<ProbeResponse>> ParseProbeResponse(std::string_view bytes, bool closed) {
  if (bytes.size() > kMaxProbeResponseBytes) {
    return HttpError("larger than " + std::to_string(kMaxProbeResponseBytes) + " bytes");
  }
  size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == bytes.npos) {
    if (closed) return HttpError("closed before the end of the headers");
    return std::optional<ProbeResponse>{};
  }
  std::string_view head = bytes.substr(0, head_end + 2);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.x SSS[ reason]"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return HttpError("malformed status line");
  }
  auto status = Decimal(status_line.substr(9, 3), 999);
  if (!status || *status < 100) return HttpError("malformed status code");
  std::optional<uint64_t> length;
  for (size_t at = eol + 2; at < head.size();) {
    size_t end = head.find("\r\n", at);
    std::string_view line = head.substr(at, end - at);
    at = end + 2;
    size_t colon = line.find(':');
    if (colon == line.npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<ptrdiff_t>(colon), IsTokenChar)) {
      return HttpError("malformed header line");
    }
    std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
    if (IEquals(name, "Transfer-Encoding")) {
      return HttpError("Transfer-Encoding '" + std::string(value) + "' is not supported");
    }
    if (IEquals(name, "Content-Length")) {
      auto v = Decimal(value, kMaxProbeResponseBytes);
      if (!v) return HttpError("invalid or oversized Content-Length");
      if (length && *length != *v) return HttpError("conflicting Content-Length headers");
      length = v;
    }
  }
  const bool bodiless = *status < 200 || *status == 204 || *status == 304;
  std::string_view body = bytes.substr(head_end + 4);
  if (bodiless) return std::optional<ProbeResponse>{ProbeResponse{int(*status), ""}};
  if (length) {
    if (body.size() >= *length) {
      return std::optional<ProbeResponse>{
          ProbeResponse{int(*status), std::string(body.substr(0, *length))}};
    }
    if (closed) return HttpError("body truncated before its Content-Length");
    return std::optional<ProbeResponse>{};
  }
  if (!closed) return std::optional<ProbeResponse>{};
  return std::optional<ProbeResponse>{ProbeResponse{int(*status), std::string(body)}};
}

}  // namespace decnet::daemon
