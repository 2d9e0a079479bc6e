add_executable(decnet-helper-client ${CMAKE_CURRENT_LIST_DIR}/../tools/helper_client.cc)
target_link_libraries(decnet-helper-client PRIVATE decnet_proto_helper)

decnet_gtest(helper_core_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/fs_ops_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/record_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/log_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/link_target_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/handlers_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/serve_test.cc
  LIBS decnet_helper_core)

# The real helper binary driven by the stand-in daemon.
add_library(decnet_helper_harness STATIC ${CMAKE_CURRENT_LIST_DIR}/helper_harness.cc)
target_include_directories(decnet_helper_harness PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(decnet_helper_harness PUBLIC decnet_policy)
target_compile_definitions(decnet_helper_harness PUBLIC
  DECNET_HELPER_BINARY_PATH="$<TARGET_FILE:decnet-update-helper>"
  DECNET_CLIENT_BINARY_PATH="$<TARGET_FILE:decnet-helper-client>")
add_dependencies(decnet_helper_harness decnet-update-helper decnet-helper-client)

decnet_gtest(helper_hostile_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/hostile_child_test.cc
  LIBS decnet_helper_harness
  LABELS hostile)

# update-self, the helper's half: the start record, the decision table, and the start-up
# revert on a real store in a temporary directory.
decnet_gtest(helper_self_update_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/self_update_test.cc
  LIBS decnet_helper_core)
