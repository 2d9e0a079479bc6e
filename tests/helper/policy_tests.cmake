# Tests of the unit and link policy (helper/policy.cc, unit_file.cc, unit_policy.cc,
# directive_table.cc, root_path_check.cc) and of helperctl over them. Each NAME_test.cc
# becomes the executable helper_NAME_test.
foreach(name policy unit_file unit_name_policy unit_policy)
  decnet_gtest(helper_${name}_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS decnet_helper_policy)
endforeach()
# Differential: needs systemd-analyze (systemd 252), which every machine of this kind has.
decnet_gtest(helper_unit_runs_as_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_runs_as_test.cc
  LIBS decnet_helper_policy
  PROPERTIES TIMEOUT 300)
# helperctl as a subprocess: check-unit over the fixtures, policy [--json], the policy file.
decnet_gtest(helper_helperctl_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helperctl_test.cc
  LIBS decnet_helper_policy)
target_compile_definitions(helper_helperctl_test PRIVATE
  HELPERCTL_PATH="$<TARGET_FILE:helperctl>")
add_dependencies(helper_helperctl_test helperctl)
# helperctl audit as a subprocess over an audit log written by the daemon's AuditLog and a
# record written by the helper's RequestRecord.
decnet_gtest(helper_helperctl_audit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helperctl_audit_test.cc
  LIBS decnet_helper_core decnet_daemon_audit)
target_compile_definitions(helper_helperctl_audit_test PRIVATE
  HELPERCTL_PATH="$<TARGET_FILE:helperctl>")
add_dependencies(helper_helperctl_audit_test helperctl)
