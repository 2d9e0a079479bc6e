# The mTLS HTTP server: a reusable test PKI, the client-certificate policy over memory BIOs,
# and the server over real sockets with curl and openssl s_client as clients.
find_package(Boost 1.81 CONFIG REQUIRED)

decnet_gtest(daemon_client_identity_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_identity_test.cc
  LIBS decnet_daemon_http decnet_test_pki)

decnet_gtest(daemon_http_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
  LIBS decnet_daemon_http decnet_test_pki
  PROPERTIES TIMEOUT 120)
