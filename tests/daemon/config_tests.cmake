decnet_gtest(daemon_config_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_test.cc
  LIBS decnet_daemon_config)
