# Tests of decnet-updater-enrol (enrol/): its command line, the configurations and files it
# renders, and real runs beneath a temporary root (--root; these need root and the users of
# systemd/decnet-updater.sysusers, and skip otherwise).
decnet_gtest(enrol_options_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/enrol_options_test.cc
  LIBS decnet_enrol)
decnet_gtest(enrol_configs_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/enrol_configs_test.cc
  LIBS decnet_enrol)
decnet_gtest(enrol_run_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/enrol_run_test.cc
  LIBS decnet_enrol decnet_test_pki)
# The drop-in with the shipped unit under systemd-analyze (verify, security --offline).
decnet_gtest(enrol_dropin_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/enrol_dropin_test.cc
  LIBS decnet_enrol)
# Against a real systemd (the throw-away container): users created, the drop-in loaded after
# the reload (systemctl show), keys readable by the daemon's user only, a second run a no-op.
if(TARGET decnet_testbed)
  decnet_gtest(enrol_systemd_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/enrol_systemd_test.cc
    LIBS decnet_testbed
    LABELS systemd
    PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)
  target_compile_definitions(enrol_systemd_test PRIVATE
    DECNET_ENROL_BINARY="$<TARGET_FILE:decnet-updater-enrol>")
  add_dependencies(enrol_systemd_test decnet-updater-enrol)
endif()
