# Extraction (daemon/extract*.cc): unit tests, the hostile-tarball table, and the fuzz target's
# corpus replay (plus a libFuzzer binary with DECNET_FUZZ=ON).
find_package(ZLIB REQUIRED)

decnet_gtest(extract_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/extract_test.cc
  LIBS decnet_daemon_extract ZLIB::ZLIB)

# The writer alone, fed paths the parser refuses: its own openat2 resolution must hold.
decnet_gtest(extract_writer_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/extract_writer_test.cc
  LIBS decnet_daemon_extract)

decnet_gtest(hostile_tarballs_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hostile_tarballs_test.cc
  LIBS decnet_daemon_extract ZLIB::ZLIB
  PROPERTIES TIMEOUT 120)

# Gzip bombs: refused by the ratio per entry and overall, measured in bytes written.
decnet_gtest(gzip_bomb_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/gzip_bomb_test.cc
  LIBS decnet_daemon_extract ZLIB::ZLIB
  PROPERTIES TIMEOUT 120)

# The replay compares each input's outcome with the one its file name expects
# (accept--NAME, refuse--RULE--NAME); the target itself aborts on a write outside the
# destination or a forbidden file inside it.
add_executable(extract_corpus
  ${CMAKE_CURRENT_LIST_DIR}/extract_fuzz.cc ${CMAKE_CURRENT_LIST_DIR}/extract_corpus_replay.cc)
target_include_directories(extract_corpus PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(extract_corpus PRIVATE decnet_daemon_extract)
add_test(NAME fuzz_corpus_extract
  COMMAND extract_corpus ${CMAKE_CURRENT_LIST_DIR}/extract_corpus)
set_tests_properties(fuzz_corpus_extract PROPERTIES LABELS "unit;fuzz")
add_dependencies(unit-tests extract_corpus)
if(DECNET_FUZZ)
  add_executable(extract_fuzzer ${CMAKE_CURRENT_LIST_DIR}/extract_fuzz.cc)
  target_include_directories(extract_fuzzer PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(extract_fuzzer PRIVATE decnet_daemon_extract)
  target_link_options(extract_fuzzer PRIVATE -fsanitize=fuzzer)
endif()
