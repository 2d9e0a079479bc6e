# Fuzz targets. Always: a corpus-replay driver per target (runs the seed corpus and the unit
# fixtures through the target under ctest, with any compiler). With DECNET_FUZZ=ON (clang,
# the `asan` preset): real libFuzzer binaries, run by scripts/fuzz.sh.
set(DECNET_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

function(decnet_fuzz_target name source lib)
  add_executable(${name}_corpus ${DECNET_FUZZ_DIR}/${source} ${DECNET_FUZZ_DIR}/corpus_driver.cc)
  target_include_directories(${name}_corpus PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name}_corpus PRIVATE ${lib})
  add_test(NAME fuzz_corpus_${name}
    COMMAND ${name}_corpus ${DECNET_FUZZ_DIR}/corpus/${name} ${ARGN})
  set_tests_properties(fuzz_corpus_${name} PROPERTIES LABELS "unit;fuzz")
  add_dependencies(unit-tests ${name}_corpus)
  if(DECNET_FUZZ)
    add_executable(${name}_fuzzer ${DECNET_FUZZ_DIR}/${source})
    target_include_directories(${name}_fuzzer PRIVATE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${name}_fuzzer PRIVATE ${lib})
    target_link_options(${name}_fuzzer PRIVATE -fsanitize=fuzzer)
  endif()
endfunction()

decnet_fuzz_target(unit_policy unit_policy_fuzz.cc decnet_policy
  ${PROJECT_SOURCE_DIR}/tests/fixtures/units)
decnet_fuzz_target(request request_fuzz.cc decnet_proto_helper)
decnet_fuzz_target(release_auth release_auth_fuzz.cc decnet_proto_auth)

# The daemon's whole HTTP session over a socket pair (no TLS): the real server, API and upload
# form with a fake Operations. The replay fails on a broken invariant, not only on a crash.
if(DECNET_BUILD_HTTP)
  add_executable(http_session_corpus
    ${DECNET_FUZZ_DIR}/http_session_fuzz.cc ${DECNET_FUZZ_DIR}/corpus_driver.cc)
  target_include_directories(http_session_corpus PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(http_session_corpus PRIVATE decnet_daemon_api decnet_daemon_http_testing)
  add_test(NAME fuzz_corpus_http_session
    COMMAND http_session_corpus ${DECNET_FUZZ_DIR}/corpus/http_session)
  set_tests_properties(fuzz_corpus_http_session PROPERTIES LABELS "unit;fuzz" TIMEOUT 300)
  add_dependencies(unit-tests http_session_corpus)
  if(DECNET_FUZZ)
    add_executable(http_session_fuzzer ${DECNET_FUZZ_DIR}/http_session_fuzz.cc)
    target_include_directories(http_session_fuzzer PRIVATE ${PROJECT_SOURCE_DIR})
    target_link_libraries(http_session_fuzzer PRIVATE decnet_daemon_api decnet_daemon_http_testing)
    target_link_options(http_session_fuzzer PRIVATE -fsanitize=fuzzer)
  endif()
endif()
