#include "fleet/pack_args.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace decnet::fleet {

std::string ParsedArgs::Get(std::string_view name, std::string_view fallback) const {
  auto it = options.find(name);
  if (it == options.end() || it->second.empty()) return std::string(fallback);
  return it->second.back();
}

std::vector<std::string> ParsedArgs::All(std::string_view name) const {
  auto it = options.find(name);
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedArgs> ParseArgs(std::span<const std::string_view> args,
                             std::span<const OptionSpec> specs, size_t max_operands) {
  auto usage = [](std::string message) {
    return Fail(ErrorCode::kMalformed, "usage", std::move(message));
  };
  ParsedArgs out;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.operands.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) return usage("unknown option " + std::string(name));
    auto& values = out.options[std::string(name)];
    if (!values.empty() && !spec->repeatable) {
      return usage(std::string(name) + " given twice");
    }
    if (!spec->takes_value) {
      if (inline_value) return usage(std::string(name) + " takes no value");
      values.emplace_back();
      continue;
    }
    if (inline_value) {
      values.emplace_back(*inline_value);
    } else if (i + 1 < args.size()) {
      values.emplace_back(args[++i]);
    } else {
      return usage(std::string(name) + " needs a value");
    }
  }
  if (out.operands.size() > max_operands) {
    return usage("unexpected argument '" + out.operands[max_operands] + "'");
  }
  return out;
}

Result<uint64_t> ParseCount(std::string_view option, std::string_view text, uint64_t min,
                            uint64_t max) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min ||
      value > max) {
    return Fail(ErrorCode::kMalformed, "usage",
                std::string(option) + " must be a whole number from " + std::to_string(min) +
                    " to " + std::to_string(max) + ", not '" + std::string(text) + "'");
  }
  return value;
}

}  // namespace decnet::fleet
