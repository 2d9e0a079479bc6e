decnet_gtest(daemon_release_manifest_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/release_manifest_test.cc
  LIBS decnet_proto_release)
decnet_gtest(daemon_release_store_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/release_store_test.cc
  LIBS decnet_daemon_store)
decnet_gtest(daemon_install_command_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/install_command_test.cc
  LIBS decnet_daemon_store)
decnet_gtest(daemon_install_reap_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/install_reap_test.cc
  LIBS decnet_daemon_store)
