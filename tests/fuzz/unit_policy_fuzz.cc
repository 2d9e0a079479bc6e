// Fuzz target: the unit policy over arbitrary unit text, with a path check that never
// touches the disk. Anything but a clean return (crash, sanitizer report, hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/unit_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace decnet::helper;
  static const Policy policy = Policy::Defaults();
  static const auto service = decnet::UnitName::Parse("decnet-agent.service");
  static const auto target = decnet::UnitName::Parse("decnet.target");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const PathChainCheck no_disk = [](std::string_view) { return std::string(); };
  (void)CheckUnitContent(policy, *service, text, no_disk);
  (void)CheckUnitContent(policy, *target, text, no_disk);
  (void)UnitRunsAsRoot("decnet-agent.service", text);
  return 0;
}
