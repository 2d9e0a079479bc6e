# Fuzz targets. Always: a corpus-replay driver per target (runs the seed corpus and the unit
# fixtures through the target under ctest, with any compiler). With DECNET_FUZZ=ON (clang,
# the `fuzz` preset): real libFuzzer binaries, run by scripts/fuzz.sh.
set(DECNET_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})

function(decnet_fuzz_target name source lib)
  add_executable(${name}_corpus ${DECNET_FUZZ_DIR}/${source} ${DECNET_FUZZ_DIR}/corpus_driver.cc)
  target_include_directories(${name}_corpus PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name}_corpus PRIVATE ${lib})
  add_test(NAME fuzz_corpus_${name}
    COMMAND ${name}_corpus ${DECNET_FUZZ_DIR}/corpus/${name} ${ARGN})
  set_tests_properties(fuzz_corpus_${name} PROPERTIES LABELS "unit;fuzz")
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
