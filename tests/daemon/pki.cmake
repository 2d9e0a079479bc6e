# A test PKI made at test time (CA, server and client certificates, expired and not yet
# valid ones), shared by the TLS, API, health-gate and end-to-end tests.
find_package(OpenSSL REQUIRED)
add_library(decnet_test_pki STATIC ${CMAKE_CURRENT_LIST_DIR}/test_pki.cc)
target_include_directories(decnet_test_pki PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(decnet_test_pki PUBLIC OpenSSL::SSL OpenSSL::Crypto)
