// Strict JSON reading for wire messages: exactly one object, no duplicate keys, bounded
// depth, and field access that refuses unknown, missing and wrongly typed keys. No
// exception leaves this module.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace decnet::strict_json {

// A structural failure: `rule` is stable ("json-syntax", "json-duplicate-key", ...).
struct JsonError {
  std::string rule;
  std::string message;
};

// Whether `/* ... */` and `// ...` comments are read as white space. Wire messages never
// carry them; the configuration files an operator edits may.
enum class Comments { kRefused, kIgnored };

// Parses `text` as exactly one JSON object. Refuses invalid JSON or UTF-8, trailing bytes,
// a top level that is not an object, duplicate keys at any depth, nesting deeper than
// `max_depth`, and comments unless `comments` is kIgnored (every other check applies alike).
[[nodiscard]] tl::expected<nlohmann::json, JsonError> ParseObject(
    std::string_view text, int max_depth = 4, Comments comments = Comments::kRefused);

// Reads the fields of one object. Every accessor marks its key as consumed and returns
// nullopt (recording the first error) when the key is missing or of the wrong type;
// Finish() then refuses any key nobody asked for.
class StrictObject {
 public:
  explicit StrictObject(const nlohmann::json& object, std::string context = "message");
  std::optional<std::string> String(std::string_view key);
  std::optional<uint64_t> Uint(std::string_view key);
  std::optional<bool> Bool(std::string_view key);
  // The key's value when it is an object (for nested readers).
  const nlohmann::json* Object(std::string_view key);
  // The key's value when it is an array.
  const nlohmann::json* Array(std::string_view key);
  bool Has(std::string_view key) const;
  // The first error, or an unknown-key error, or success.
  [[nodiscard]] tl::expected<void, JsonError> Finish();

 private:
  const nlohmann::json* Take(std::string_view key, nlohmann::json::value_t type,
                             std::string_view type_name);
  const nlohmann::json& object_;
  std::string context_;
  std::set<std::string, std::less<>> consumed_;
  std::optional<JsonError> error_;
};

}  // namespace decnet::strict_json
