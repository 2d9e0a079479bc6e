// Command-line parsing for pack, pack-self, keygen and sign: "--name VALUE" or "--name=VALUE"
// options from a fixed table, flags without a value, and positional operands.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace decnet::fleet {

// One accepted option.
struct OptionSpec {
  std::string_view name;  // with its leading "--"
  bool takes_value = true;
  bool repeatable = false;
};

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>, std::less<>> options;
  std::vector<std::string> operands;
  bool help = false;  // --help or -h was given

  bool Has(std::string_view name) const { return options.find(name) != options.end(); }
  // The option's (last) value, or `fallback` when absent.
  std::string Get(std::string_view name, std::string_view fallback = {}) const;
  std::vector<std::string> All(std::string_view name) const;
};

// Parses `args` against `specs`. Refuses ("usage", kMalformed): an unknown option, a missing
// value, a non-repeatable option given twice, a value given to a flag, and more than
// `max_operands` operands. "--" ends the options.
[[nodiscard]] Result<ParsedArgs> ParseArgs(std::span<const std::string_view> args,
                                           std::span<const OptionSpec> specs, size_t max_operands);

// Parses a decimal count in [min, max]; refuses anything else ("usage").
[[nodiscard]] Result<uint64_t> ParseCount(std::string_view option, std::string_view text,
                                          uint64_t min, uint64_t max);

}  // namespace decnet::fleet
