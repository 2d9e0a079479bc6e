decnet_gtest(daemon_update_pipeline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/update_pipeline_test.cc
  LIBS decnet_daemon_pipeline decnet_helper_core)

decnet_gtest(daemon_crash_matrix_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/crash_matrix_test.cc
  LIBS decnet_daemon_pipeline decnet_helper_core
  PROPERTIES TIMEOUT 300)
if(DECNET_BUILD_HTTP)
  # update-self smoke-runs the real daemon binary as a build would ship it.
  target_compile_definitions(daemon_update_pipeline_test PRIVATE
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>")
  add_dependencies(daemon_update_pipeline_test decnet-updaterd)
endif()
