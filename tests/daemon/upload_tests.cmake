# The daemon's upload path: multipart reader, spool, DECNET's form. Included from
# tests/CMakeLists.txt, so CMAKE_CURRENT_LIST_DIR is tests/daemon.
decnet_gtest(daemon_upload_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/multipart_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/spool_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/upload_form_test.cc
  LIBS decnet_daemon_upload OpenSSL::Crypto)

# Fuzz target for the multipart reader, built like tests/fuzz/fuzz.cmake's targets (whose
# helper takes sources relative to tests/fuzz): a corpus replay under ctest always, the
# libFuzzer binary `multipart_fuzzer` with DECNET_FUZZ=ON.
add_executable(multipart_corpus
  ${CMAKE_CURRENT_LIST_DIR}/multipart_fuzz.cc
  ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus_driver.cc)
target_include_directories(multipart_corpus PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(multipart_corpus PRIVATE decnet_daemon_upload)
add_test(NAME fuzz_corpus_multipart
  COMMAND multipart_corpus ${CMAKE_CURRENT_LIST_DIR}/corpus/multipart)
set_tests_properties(fuzz_corpus_multipart PROPERTIES LABELS "unit;fuzz")
add_dependencies(unit-tests multipart_corpus)
if(DECNET_FUZZ)
  add_executable(multipart_fuzzer ${CMAKE_CURRENT_LIST_DIR}/multipart_fuzz.cc)
  target_include_directories(multipart_fuzzer PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(multipart_fuzzer PRIVATE decnet_daemon_upload)
  target_link_options(multipart_fuzzer PRIVATE -fsanitize=fuzzer)
endif()
