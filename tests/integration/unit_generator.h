// A deterministic generator of hostile unit files for the unit-policy oracle
// (unit_oracle_test.cc): random combinations of the directive table's rows and values, biased
// towards what a compromised daemon would try (privileged exec prefixes in every spelling,
// multi-component and reserved directory names, symlinked and root-only paths, units that
// cannot be stopped, dependencies on system units, misspelt sections, CR, NUL, continuations,
// repeated keys where the last one wins).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace decnet::test {

// Units of one stream are named so that any kGeneratorRound consecutive indices starting at
// a multiple of kGeneratorRound have distinct names: one batch loads them side by side.
inline constexpr size_t kGeneratorRound = 50;

struct GeneratedUnit {
  uint64_t seed = 0;
  size_t index = 0;
  std::string name;                 // decnet-oINDEX.service, or a name with an allowance
  std::string content;              // the unit file, byte for byte
  std::vector<std::string> traits;  // what was put in, for the log ("exec-prefix +@", ...)
};

// Unit number `index` of the stream `seed`. The same pair always gives the same unit, so a
// case replays from the two numbers the oracle prints. Most units are services named
// decnet-oINDEX.service; within each round, one is decnet-agent.service and one
// decnet-sniffer.service (the default policy's capability allowances) and one decnet.target.
GeneratedUnit GenerateUnit(uint64_t seed, size_t index);

// `text` with control bytes other than '\n' written as \r, \0, \xNN, for logs.
std::string Printable(std::string_view text);

}  // namespace decnet::test
