// A release tarball made at test time from a directory tree with the real tar, and what the
// pipeline is told about it (digest and size).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "proto/sha256.h"

namespace decnet::test {

struct Tarball {
  std::string path;
  std::string sha256;
  uint64_t size = 0;
};

// Packs the directory `tree` into `tree`.tar.gz (gzip) and hashes it.
inline Tarball PackTree(const std::string& tree) {
  Tarball t;
  t.path = tree + ".tar.gz";
  EXPECT_EQ(std::system(("tar -C " + tree + " -czf " + t.path + " .").c_str()), 0);
  std::ifstream in(t.path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  t.sha256 = Sha256Hex(bytes);
  t.size = bytes.size();
  return t;
}

}  // namespace decnet::test
