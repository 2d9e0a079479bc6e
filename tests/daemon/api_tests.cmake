# The updater's HTTP API through the real mTLS server, curl as the client, a fake Operations.
decnet_gtest(daemon_api_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_test.cc
  LIBS decnet_daemon_api decnet_test_pki decnet_proto_helper
  PROPERTIES TIMEOUT 120)

# decnet-updaterd's start-up checks (the binary itself for the root refusal).
decnet_gtest(daemon_main_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_main_test.cc
  LIBS decnet_daemon_main)
add_dependencies(daemon_main_test decnet-updaterd)

# The crash matrix's points before the pipeline ("uploading", "spooled"; the others are in
# crash_matrix_test.cc), through the real mTLS server, API and pipeline, curl as the master.
decnet_gtest(daemon_crash_upload_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/crash_upload_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_helper_core decnet_test_pki
  PROPERTIES TIMEOUT 300)
