# decnet_fleet_push: push, status and rollback, the master talking to workers. Plain OpenSSL
# and POSIX sockets (no Asio): one pinned TLS connection per request, the upload streamed
# from disk. libarchive lists a release's entries for the dry run.
find_package(PkgConfig REQUIRED)
pkg_check_modules(fleet_libarchive REQUIRED IMPORTED_TARGET libarchive)
add_library(decnet_fleet_push STATIC
  ${CMAKE_CURRENT_LIST_DIR}/inventory.cc
  ${CMAKE_CURRENT_LIST_DIR}/worker_client.cc
  ${CMAKE_CURRENT_LIST_DIR}/release_file.cc
  ${CMAKE_CURRENT_LIST_DIR}/rollout_plan.cc
  ${CMAKE_CURRENT_LIST_DIR}/host_ops.cc
  ${CMAKE_CURRENT_LIST_DIR}/report.cc
  ${CMAKE_CURRENT_LIST_DIR}/push.cc)
target_include_directories(decnet_fleet_push PUBLIC ${PROJECT_SOURCE_DIR})
find_package(Threads REQUIRED)
target_link_libraries(decnet_fleet_push PUBLIC
  decnet_proto_auth decnet_proto_release decnet_proto_helper decnet_proto_updater
  OpenSSL::SSL OpenSSL::Crypto nlohmann_json::nlohmann_json tl::expected
  PkgConfig::fleet_libarchive Threads::Threads)
