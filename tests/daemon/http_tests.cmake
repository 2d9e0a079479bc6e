# The mTLS HTTP server: a reusable test PKI, the client-certificate policy over memory BIOs,
# and the server over real sockets with curl and openssl s_client as clients.
find_package(Boost 1.81 CONFIG REQUIRED)

decnet_gtest(daemon_client_identity_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_identity_test.cc
  LIBS decnet_daemon_http decnet_test_pki)

# ReadClientIdentity behind a server context that lets unverified clients finish the
# handshake. Built from the one source it needs, so it does not wait for the HTTP server.
decnet_gtest(daemon_client_identity_recheck_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/client_identity_recheck_test.cc
          ${PROJECT_SOURCE_DIR}/daemon/client_identity.cc
  LIBS decnet_test_pki tl::expected)

decnet_gtest(daemon_http_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_server_test.cc
  LIBS decnet_daemon_http decnet_test_pki
  PROPERTIES TIMEOUT 120)

# The same server in front of the real API under abuse: oversized trailers, chunk extensions
# and header fields, obs-fold, missing Host, throwing handlers; a raw TLS client.
decnet_gtest(daemon_http_abuse_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_abuse_test.cc
  LIBS decnet_daemon_api decnet_test_pki
  PROPERTIES TIMEOUT 180)

# The server under a connection flood from several loopback addresses while the master polls:
# per-source and total caps on pending connections, shedding the oldest, tightening deadlines,
# apart pools for authenticated clients, memory handed back afterwards.
decnet_gtest(daemon_http_flood_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_flood_test.cc
  LIBS decnet_daemon_http decnet_test_pki
  PROPERTIES TIMEOUT 240)
