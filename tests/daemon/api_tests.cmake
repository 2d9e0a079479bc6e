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

# An upload whose client is killed mid-body, and a spool file a killed daemon left, through the
# real mTLS server, API and pipeline, curl as the master. (The daemon's own crashes are the
# crash matrix, tests/integration/crash_e2e_test.cc.)
decnet_gtest(daemon_upload_cut_short_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/upload_cut_short_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_helper_core decnet_test_pki
  PROPERTIES TIMEOUT 300)

# No busy window: the request the master sends as soon as it reads an answer is served, even
# while old releases are being deleted (the real mTLS server, API and pipeline, curl).
decnet_gtest(daemon_no_busy_window_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/no_busy_window_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_helper_core decnet_test_pki
  PROPERTIES TIMEOUT 300)

# Every answer of every route, from the real mTLS server, API and pipeline, read by a
# restatement of DECNET's master (its pydantic models, its handlers, its CLI's table; Debian's
# python3-pydantic and python3-httpx), its requests sent by our restatement of its client.
decnet_gtest(daemon_decnet_master_models_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/decnet_master_models_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_helper_core decnet_test_pki
  PROPERTIES TIMEOUT 300)

# docs/operations.md holds to the code: its configuration tables against the daemon's and the
# helper's parsers, and every curl command it shows run as written against the real mTLS
# server, API and pipeline, with a build packed by scripts/pack-updater-build.sh.
decnet_gtest(daemon_operations_doc_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operations_doc_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_helper_core decnet_test_pki
  PROPERTIES TIMEOUT 300)
target_compile_definitions(daemon_operations_doc_test PRIVATE
  DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>")
add_dependencies(daemon_operations_doc_test decnet-updaterd)

# Signed, fresh, never-older releases: signatures, descriptors and the version floor through
# the real mTLS server, API and pipeline, curl and a raw TLS client as the master.
decnet_gtest(daemon_release_guard_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/release_guard_test.cc
  LIBS decnet_daemon_api decnet_daemon_pipeline decnet_daemon_guard decnet_helper_core
    decnet_test_pki
  PROPERTIES TIMEOUT 300)
