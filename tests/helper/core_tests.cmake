add_executable(decnet-helper-client ${CMAKE_CURRENT_LIST_DIR}/../tools/helper_client.cc)
target_link_libraries(decnet-helper-client PRIVATE decnet_proto_helper)

decnet_gtest(helper_core_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/fs_ops_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/handlers_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/serve_test.cc
  LIBS decnet_helper_core)
