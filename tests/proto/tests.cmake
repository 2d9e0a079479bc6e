decnet_gtest(proto_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/values_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/sha256_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/helper_protocol_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/framing_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/unique_fd_test.cc
  LIBS decnet_proto_helper)

decnet_gtest(proto_auth_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/release_auth_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/release_auth_keys_test.cc
  LIBS decnet_proto_auth)
