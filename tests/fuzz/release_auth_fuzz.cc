// Fuzz target: the release-authenticity parsers. Every input is read as a descriptor, a
// signature line, a UTC time and a pair of versions (split at the first newline). Whatever
// parses must survive a round trip, and the version order must be antisymmetric and reflexive.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/release_auth.h"

namespace {

void CheckDescriptor(std::string_view input) {
  auto d = decnet::ParseReleaseDescriptor(input);
  if (!d) return;
  const std::string out = decnet::SerializeReleaseDescriptor(*d);
  auto again = decnet::ParseReleaseDescriptor(out);
  if (!again || again->sha256 != d->sha256 || again->size != d->size || again->kind != d->kind ||
      again->version != d->version || again->commit != d->commit || again->created != d->created ||
      again->expires != d->expires || decnet::SerializeReleaseDescriptor(*again) != out) {
    std::abort();
  }
}

void CheckSignatureLine(std::string_view input) {
  auto s = decnet::ParseSignatureLine(input);
  if (!s) return;
  // One signature has one spelling: the canonical line is the input (plus its newline).
  const std::string line = decnet::FormatSignatureLine(*s);
  if (line != input && line != std::string(input) + "\n") std::abort();
  if (s->signature.size() != 64 || s->key_id.size() != 16) std::abort();
}

void CheckTime(std::string_view input) {
  auto t = decnet::ParseUtcTime(input);
  if (t && decnet::FormatUtcTime(*t) != input) std::abort();
}

void CheckVersions(std::string_view input) {
  const size_t newline = input.find('\n');
  const std::string_view a = input.substr(0, newline);
  const std::string_view b = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  auto ab = decnet::CompareVersions(a, b);
  auto ba = decnet::CompareVersions(b, a);
  if (ab.has_value() != ba.has_value()) std::abort();
  if (ab && *ab != (0 <=> *ba)) std::abort();
  if (ab.has_value() != (decnet::IsOrderedVersion(a) && decnet::IsOrderedVersion(b))) std::abort();
  auto aa = decnet::CompareVersions(a, a);
  if (aa.has_value() != decnet::IsOrderedVersion(a)) std::abort();
  if (aa && *aa != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckDescriptor(input);
  CheckSignatureLine(input);
  CheckTime(input);
  CheckVersions(input);
  return 0;
}
