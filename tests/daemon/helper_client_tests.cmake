decnet_gtest(daemon_helper_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helper_client_test.cc
  LIBS decnet_daemon_helper_client decnet_helper_core)
