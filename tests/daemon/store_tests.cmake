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
decnet_gtest(daemon_install_confine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/install_confine_test.cc
  LIBS decnet_daemon_store)
decnet_gtest(daemon_python_env_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/python_env_test.cc
  LIBS decnet_daemon_install
  PROPERTIES TIMEOUT 600)
decnet_gtest(daemon_release_import_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/release_import_test.cc
  LIBS decnet_daemon_import)
