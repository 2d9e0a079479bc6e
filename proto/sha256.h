// SHA-256 (FIPS 180-4), self-contained so that the root helper can digest its policy and
// the unit files it writes without linking a crypto library. Not used for anything that
// needs speed on large inputs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace decnet {

class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // Finishes and returns the 32-byte digest; the object must not be updated afterwards.
  std::array<uint8_t, 32> Finish();

 private:
  void Block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace decnet
