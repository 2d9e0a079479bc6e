// Readable names for table-driven tests: a row's sentence ("a drop-in owned by the unit's
// user") becomes its ctest name ("ADropInOwnedByTheUnitsUser"), so a failure reads as what
// was tried rather than as the bytes of a parameter.
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace decnet::test {

// Letters and digits of `what`, each word capitalised; anything else separates words.
inline std::string CamelName(const std::string& what) {
  std::string out;
  bool start = true;
  for (unsigned char c : what) {
    if (std::isalnum(c) == 0) {
      start = c != '\'';  // "unit's" stays one word
      continue;
    }
    out.push_back(start ? static_cast<char>(std::toupper(c)) : static_cast<char>(c));
    start = false;
  }
  return out.empty() ? "Row" : out;
}

// For rows without a sentence: the row's number (unique, in table order) and the first words
// of what it holds, e.g. "R07_HttpsHostHealth".
inline std::string IndexedName(std::size_t index, const std::string& text) {
  std::string number = std::to_string(index);
  if (number.size() < 2) number.insert(0, 1, '0');
  return "R" + number + "_" + CamelName(text.substr(0, 48));
}

// For INSTANTIATE_TEST_SUITE_P over rows that carry a `what` sentence.
struct NameFromWhat {
  template <typename Param>
  std::string operator()(const ::testing::TestParamInfo<Param>& info) const {
    return CamelName(info.param.what);
  }
};

}  // namespace decnet::test
