#include "proto/sha256.h"

#include <gtest/gtest.h>

namespace decnet {
namespace {

TEST(Sha256, MatchesTheStandardTestVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, GivesTheSameDigestWhateverTheChunking) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7);
  std::string whole = Sha256Hex(data);
  for (size_t chunk : {1u, 3u, 63u, 64u, 65u, 127u}) {
    Sha256 s;
    for (size_t i = 0; i < data.size(); i += chunk)
      s.Update(std::string_view(data).substr(i, chunk));
    std::string hex;
    for (uint8_t b : s.Finish()) {
      char buf[3];
      snprintf(buf, sizeof buf, "%02x", b);
      hex += buf;
    }
    EXPECT_EQ(hex, whole) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace decnet
