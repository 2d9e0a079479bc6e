// Test-only: builds multipart/form-data bodies the way DECNET's master (httpx) and curl do,
// CRLF line ends, so tests can state a form as data and then damage it on purpose.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace decnet::daemon::testing {

struct FormPart {
  std::string name;
  std::string data = {};
  std::optional<std::string> filename = std::nullopt;
  std::optional<std::string> content_type = std::nullopt;
};

inline std::string EncodeMultipart(const std::vector<FormPart>& parts, std::string_view boundary) {
  std::string body;
  for (const FormPart& part : parts) {
    body += "--";
    body += boundary;
    body += "\r\nContent-Disposition: form-data; name=\"" + part.name + "\"";
    if (part.filename) body += "; filename=\"" + *part.filename + "\"";
    body += "\r\n";
    if (part.content_type) body += "Content-Type: " + *part.content_type + "\r\n";
    body += "\r\n";
    body += part.data;
    body += "\r\n";
  }
  body += "--";
  body += boundary;
  body += "--\r\n";
  return body;
}

inline std::string ContentTypeFor(std::string_view boundary) {
  return "multipart/form-data; boundary=" + std::string(boundary);
}

}  // namespace decnet::daemon::testing
