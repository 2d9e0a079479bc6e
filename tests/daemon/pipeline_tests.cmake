decnet_gtest(daemon_update_pipeline_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/update_pipeline_test.cc
  LIBS decnet_daemon_pipeline decnet_daemon_answers decnet_helper_core)

if(DECNET_BUILD_HTTP)
  # update-self smoke-runs the real daemon binary as a build would ship it.
  target_compile_definitions(daemon_update_pipeline_test PRIVATE
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>")
  add_dependencies(daemon_update_pipeline_test decnet-updaterd)
endif()

# DECNET's contract and defects (docs/decnet-compat.md):
# the real pipeline, store, extractor and helper serve loop; with the HTTP build, the digest
# rules also through the real mTLS server and API, curl as the master.
decnet_gtest(daemon_decnet_contract_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/decnet_contract_test.cc
  LIBS decnet_daemon_pipeline decnet_daemon_answers decnet_helper_core
  PROPERTIES TIMEOUT 300)
if(DECNET_BUILD_HTTP)
  target_link_libraries(daemon_decnet_contract_test PRIVATE decnet_daemon_api decnet_test_pki)
  target_compile_definitions(daemon_decnet_contract_test PRIVATE DECNET_CONTRACT_HTTP=1)
endif()

# The store on a small tmpfs (a private mount namespace; root only, skipped otherwise): the disk
# runs out at each phase of an update, and the store stays consistent without a restart.
decnet_gtest(daemon_store_full_disk_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/store_full_disk_test.cc
  LIBS decnet_daemon_pipeline decnet_daemon_answers decnet_helper_core
  PROPERTIES TIMEOUT 120)
# An empty tarball is a 400 with its rule, through the real pipeline and store.
find_package(ZLIB REQUIRED)
decnet_gtest(daemon_empty_tarball_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/empty_tarball_test.cc
  LIBS decnet_daemon_pipeline decnet_daemon_answers decnet_helper_core ZLIB::ZLIB)

if(DECNET_BUILD_HTTP)
  # The daemon's own builds: scripts/pack-updater-build.sh (the `updater-build` target) on the
  # daemon binary this tree built, its tarball installed by update-self's own checks.
  decnet_gtest(daemon_updater_build_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/updater_build_test.cc
    LIBS decnet_daemon_pipeline
    LABELS unit external
    PROPERTIES TIMEOUT 120)
  target_compile_definitions(daemon_updater_build_test PRIVATE
    DECNET_DAEMON_BINARY="$<TARGET_FILE:decnet-updaterd>")
  add_dependencies(daemon_updater_build_test decnet-updaterd)
endif()
