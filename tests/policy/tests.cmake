# Tests of the pure unit and link policy (policy/). Each NAME_test.cc becomes the executable
# policy_NAME_test.
foreach(name policy unit_file unit_name_policy unit_policy)
  decnet_gtest(policy_${name}_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS decnet_policy)
endforeach()
# Differential: needs systemd-analyze (systemd 252), which every machine of this kind has.
decnet_gtest(policy_unit_runs_as_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/unit_runs_as_test.cc
  LIBS decnet_policy
  PROPERTIES TIMEOUT 300)
