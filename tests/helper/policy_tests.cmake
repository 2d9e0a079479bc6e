# Tests of the unit and link policy (helper/policy.cc, unit_file.cc, unit_policy.cc).
decnet_gtest(helper_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/policy_test.cc
  LIBS decnet_helper_policy)
decnet_gtest(helper_unit_file_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_file_test.cc
  LIBS decnet_helper_policy)
decnet_gtest(helper_unit_name_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_name_policy_test.cc
  LIBS decnet_helper_policy)
decnet_gtest(helper_unit_policy_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_policy_test.cc
  LIBS decnet_helper_policy)
# Differential: needs systemd-analyze (systemd 252), which every machine of this kind has.
decnet_gtest(helper_unit_runs_as_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_runs_as_test.cc
  LIBS decnet_helper_policy
  PROPERTIES TIMEOUT 300)
