# Integration tests against a real systemd: PID 1 of a throw-away container
# (scripts/testbed/, TESTBED.md). Included from tests/CMakeLists.txt.
#
# Tests that boot containers use:
#   LABELS systemd
#   PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300
# and link decnet_testbed (tests/integration/testbed.h).

set(DECNET_INTEGRATION_DIR ${CMAKE_CURRENT_LIST_DIR})

# Once per ctest run: stop containers that killed runs left behind, then build (or reuse)
# the cached root filesystem, so no test pays for debootstrap inside its own timeout.
add_test(NAME testbed_rootfs
  COMMAND sh -c "\"$1\" reap && \"$2\"" testbed_rootfs
          ${PROJECT_SOURCE_DIR}/scripts/testbed/container.sh
          ${PROJECT_SOURCE_DIR}/scripts/testbed/rootfs.sh)
set_tests_properties(testbed_rootfs PROPERTIES
  FIXTURES_SETUP testbed_rootfs LABELS systemd TIMEOUT 900 RESOURCE_LOCK testbed)

# The container fixture, for every test that needs a real systemd.
add_library(decnet_testbed STATIC ${DECNET_INTEGRATION_DIR}/testbed.cc)
target_include_directories(decnet_testbed PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_definitions(decnet_testbed PRIVATE DECNET_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(decnet_testbed PUBLIC GTest::gtest tl::expected PkgConfig::libsystemd)

# The sdbus-c++ adapter (helper/systemd_manager.cc, in decnet_helper_core) against a real
# systemd.
decnet_gtest(systemd_manager_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/systemd_manager_test.cc
  LIBS decnet_testbed decnet_helper_core
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)

# The real helper binary (confined as in service) with the stand-in daemon, against a real
# systemd: install, reload, restart, a failed job, status, remove, a foreign unit file, a
# refused name that never reaches D-Bus, READY=1 only after hello, and the helper's record.
decnet_gtest(helper_systemd_integration_test
  SOURCES ${DECNET_INTEGRATION_DIR}/helper_systemd_test.cc
  LIBS decnet_helper_harness decnet_testbed nlohmann_json::nlohmann_json
  LABELS systemd
  PROPERTIES RESOURCE_LOCK testbed FIXTURES_REQUIRED testbed_rootfs TIMEOUT 300)
