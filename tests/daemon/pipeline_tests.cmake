decnet_gtest(daemon_update_pipeline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/update_pipeline_test.cc
  LIBS decnet_daemon_pipeline decnet_helper_core)

decnet_gtest(daemon_crash_matrix_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/crash_matrix_test.cc
  LIBS decnet_daemon_pipeline decnet_helper_core
  PROPERTIES TIMEOUT 300)
