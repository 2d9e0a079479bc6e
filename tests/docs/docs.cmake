# The documents hold to the code and stand on their own (tests/docs/). Scans of the tree and
# runs of mandoc: labelled `external`, run in the release build only.

# docs/man/*: clean under `mandoc -T lint -W warning`, and naming exactly the commands and
# options each program's --help knows (and its code's command table).
# A program this build leaves out (the daemon without DECNET_BUILD_HTTP) is passed as "" and
# its page's drift check is skipped; the lint still runs.
decnet_gtest(docs_man_pages_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/man_pages_test.cc
  LABELS unit external)
foreach(pair helperctl:HELPERCTL decnet-rollout:ROLLOUT decnet-update-helper:HELPER
             decnet-adopt:ADOPT decnet-updaterd:DAEMON decnet-updater-enrol:ENROL)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 program)
  list(GET pair 1 macro)
  if(TARGET ${program})
    target_compile_definitions(docs_man_pages_test PRIVATE
      ${macro}_BINARY="$<TARGET_FILE:${program}>")
    add_dependencies(docs_man_pages_test ${program})
  else()
    target_compile_definitions(docs_man_pages_test PRIVATE ${macro}_BINARY="")
  endif()
endforeach()

# Nothing in the repository names a document outside it.
decnet_gtest(docs_self_contained_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/self_contained_test.cc
  LABELS unit external)

# Every command in the documents' fenced shell blocks is run by a test or a script.
decnet_gtest(docs_commands_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/doc_commands_test.cc
  LABELS unit external)
