# The mTLS HTTP server: a reusable test PKI, the client-certificate policy over memory BIOs,
# and the server over real sockets with curl and openssl s_client as clients.
find_package(OpenSSL REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED)

add_library(decnet_test_pki STATIC ${CMAKE_CURRENT_LIST_DIR}/test_pki.cc)
target_include_directories(decnet_test_pki PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(decnet_test_pki PUBLIC OpenSSL::SSL OpenSSL::Crypto)

decnet_gtest(daemon_client_identity_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_identity_test.cc
  LIBS decnet_daemon_http decnet_test_pki)

decnet_gtest(daemon_http_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
  LIBS decnet_daemon_http decnet_test_pki
  PROPERTIES TIMEOUT 120)
