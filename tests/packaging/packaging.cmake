# The worker package's default configuration (packaging/config/) read by the real parsers,
# and comments in both configuration readers.
decnet_gtest(packaging_config_files_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/config_files_test.cc
  LIBS decnet_policy decnet_daemon_config decnet_proto_helper nlohmann_json::nlohmann_json)

# The Debian packages (packaging/CMakeLists.txt). The fixture `decnet_debs` builds them once
# per run with the `debs` target; the package test judges them with dpkg-deb and lintian, and
# the install test (tests/integration/tests.cmake) installs them in a container.
if(TARGET debs)
  add_test(NAME packaging_debs_built
    COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target debs)
  set_tests_properties(packaging_debs_built PROPERTIES
    FIXTURES_SETUP decnet_debs LABELS integration TIMEOUT 1800 RESOURCE_LOCK decnet_debs
    # The install test needs both fixtures and can name one: this one brings the other.
    FIXTURES_REQUIRED testbed_rootfs)
  decnet_gtest(packaging_debs_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/debs_test.cc
    LABELS integration
    PROPERTIES FIXTURES_REQUIRED decnet_debs TIMEOUT 300)
  target_compile_definitions(packaging_debs_test PRIVATE
    DECNET_PACKAGES_DIR="${PROJECT_BINARY_DIR}/packages"
    DECNET_PROJECT_VERSION="${PROJECT_VERSION}"
    DECNET_HAS_ENROL=$<TARGET_EXISTS:decnet-updater-enrol>)
endif()
