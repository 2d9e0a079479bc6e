#include "proto/json_strict.h"

#include <vector>

namespace decnet::strict_json {

using nlohmann::json;

tl::expected<json, JsonError> ParseObject(std::string_view text, int max_depth, Comments comments) {
  std::vector<std::set<std::string>> keys;
  std::optional<JsonError> problem;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (problem) return false;
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth >= max_depth) {
          problem = JsonError{"json-depth", "nesting deeper than " + std::to_string(max_depth)};
        }
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      case json::parse_event_t::key: {
        // SECURITY: nlohmann keeps the last of duplicate keys; two readers of one message
        // could disagree, so duplicates are refused outright.
        const auto& key = parsed.get_ref<const std::string&>();
        if (keys.empty() || !keys.back().insert(key).second) {
          problem = JsonError{"json-duplicate-key", "duplicate key \"" + key + "\""};
        }
        break;
      }
      default:
        break;
    }
    return !problem;
  };
  json parsed = json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false,
                            /*ignore_comments=*/comments == Comments::kIgnored);
  if (problem) return tl::make_unexpected(*problem);
  if (parsed.is_discarded()) {
    return tl::make_unexpected(JsonError{
        "json-syntax", "not a single valid JSON value (syntax, UTF-8 or trailing bytes)"});
  }
  if (!parsed.is_object()) {
    return tl::make_unexpected(JsonError{"json-not-object", "the message is not a JSON object"});
  }
  return parsed;
}

StrictObject::StrictObject(const json& object, std::string context)
    : object_(object), context_(std::move(context)) {}

bool StrictObject::Has(std::string_view key) const { return object_.contains(key); }

const json* StrictObject::Take(std::string_view key, json::value_t type,
                               std::string_view type_name) {
  consumed_.emplace(key);
  auto it = object_.find(key);
  if (it == object_.end()) {
    if (!error_) {
      error_ =
          JsonError{"json-missing-key", context_ + " lacks the key \"" + std::string(key) + "\""};
    }
    return nullptr;
  }
  bool ok =
      it->type() == type || (type == json::value_t::number_unsigned && it->is_number_unsigned());
  if (!ok) {
    if (!error_) {
      error_ = JsonError{"json-wrong-type", context_ + " key \"" + std::string(key) +
                                                "\" must be " + std::string(type_name)};
    }
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> StrictObject::String(std::string_view key) {
  const json* v = Take(key, json::value_t::string, "a string");
  if (!v) return std::nullopt;
  return v->get<std::string>();
}

std::optional<uint64_t> StrictObject::Uint(std::string_view key) {
  const json* v = Take(key, json::value_t::number_unsigned, "a non-negative integer");
  if (!v) return std::nullopt;
  return v->get<uint64_t>();
}

std::optional<bool> StrictObject::Bool(std::string_view key) {
  const json* v = Take(key, json::value_t::boolean, "a boolean");
  if (!v) return std::nullopt;
  return v->get<bool>();
}

const json* StrictObject::Object(std::string_view key) {
  return Take(key, json::value_t::object, "an object");
}

const json* StrictObject::Array(std::string_view key) {
  return Take(key, json::value_t::array, "an array");
}

tl::expected<void, JsonError> StrictObject::Finish() {
  if (error_) return tl::make_unexpected(*error_);
  for (const auto& [key, value] : object_.items()) {
    if (!consumed_.contains(key)) {
      return tl::make_unexpected(
          JsonError{"json-unknown-key", context_ + " has the unknown key \"" + key + "\""});
    }
  }
  return {};
}

}  // namespace decnet::strict_json
