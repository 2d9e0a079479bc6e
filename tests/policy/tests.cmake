# Tests of the pure unit and link policy (policy/). Each NAME_test.cc becomes the executable
# policy_NAME_test.
foreach(name policy unit_file unit_name_policy unit_policy loaded_view systemd_values
    unit_identity)
  decnet_gtest(policy_${name}_test
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/${name}_test.cc
    LIBS decnet_policy)
endforeach()
