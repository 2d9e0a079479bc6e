# decnet-rollout push, status and rollback: the inventory readers and the rolling plan (with a
# fake worker transport) as unit tables, the report against its JSON Schema, and the pinned
# client against a tiny TLS updater made in the test.
decnet_gtest(fleet_push_unit_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/inventory_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/rollout_plan_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/report_test.cc
  LIBS decnet_fleet_push decnet_test_pki decnet_proto_updater
  PROPERTIES TIMEOUT 60)
# One host's update-self wait (the build identity /health shows) and the dry run's unit
# differences (what /releases lists), against a scripted TLS updater on loopback.
decnet_gtest(fleet_host_ops_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/host_ops_test.cc
  LIBS decnet_fleet_push decnet_test_pki
  PROPERTIES TIMEOUT 120)
decnet_gtest(fleet_worker_client_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/worker_client_test.cc
  LIBS decnet_fleet_push decnet_test_pki
  LABELS integration
  PROPERTIES TIMEOUT 120)
