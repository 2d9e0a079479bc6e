# Confinement tests: the helper's privilege drop, Landlock, seccomp, start-up and self-test,
# run for real (root, forked children, the real helper binary). Label: confinement.

# A stand-in daemon the helper execs: reports what it was given, says hello, idles.
add_executable(decnet_probe_daemon ${CMAKE_CURRENT_LIST_DIR}/probe_daemon.cc)
target_link_libraries(decnet_probe_daemon PRIVATE decnet_proto_helper)

decnet_gtest(confine_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/confine_test.cc
  LIBS decnet_helper_core PkgConfig::libseccomp
  LABELS confinement)

decnet_gtest(startup_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/startup_test.cc
          ${PROJECT_SOURCE_DIR}/ctl/ctl_status.cc
          ${PROJECT_SOURCE_DIR}/ctl/ctl_selftest.cc
  LIBS decnet_helper_core
  LABELS confinement
  PROPERTIES TIMEOUT 120)
target_compile_definitions(startup_test PRIVATE
  DECNET_HELPER_BIN="$<TARGET_FILE:decnet-update-helper>"
  DECNET_PROBE_BIN="$<TARGET_FILE:decnet_probe_daemon>")
add_dependencies(startup_test decnet-update-helper decnet_probe_daemon)
