# helperctl (ctl/) as a subprocess: check-unit over the fixtures, policy [--json], the policy
# file.
decnet_gtest(ctl_helperctl_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helperctl_test.cc
  LIBS decnet_policy)
target_compile_definitions(ctl_helperctl_test PRIVATE
  HELPERCTL_PATH="$<TARGET_FILE:helperctl>")
add_dependencies(ctl_helperctl_test helperctl)
# helperctl audit as a subprocess over an audit log written by the daemon's AuditLog and a
# record written by the helper's RequestRecord.
decnet_gtest(ctl_helperctl_audit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helperctl_audit_test.cc
  LIBS decnet_helper_core decnet_daemon_audit)
target_compile_definitions(ctl_helperctl_audit_test PRIVATE
  HELPERCTL_PATH="$<TARGET_FILE:helperctl>")
add_dependencies(ctl_helperctl_audit_test helperctl)
