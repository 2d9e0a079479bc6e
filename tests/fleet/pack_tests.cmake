# decnet-rollout pack, pack-self, keygen and sign (fleet/pack.cmake), called in process; the
# tarballs read back with libarchive.
pkg_check_modules(libarchive REQUIRED IMPORTED_TARGET libarchive)
find_package(OpenSSL REQUIRED)

decnet_gtest(fleet_pack_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pack_test.cc
  LIBS decnet_fleet_pack PkgConfig::libarchive OpenSSL::Crypto)

decnet_gtest(fleet_sign_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sign_test.cc
  LIBS decnet_fleet_pack PkgConfig::libarchive OpenSSL::Crypto)

# The real binary: the same bytes as the in-process call, and its exit codes.
decnet_gtest(fleet_rollout_pack_cli_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/rollout_pack_cli_test.cc
  LIBS decnet_fleet_pack PkgConfig::libarchive OpenSSL::Crypto)
target_compile_definitions(fleet_rollout_pack_cli_test PRIVATE
  DECNET_ROLLOUT_PATH="$<TARGET_FILE:decnet-rollout>")
add_dependencies(fleet_rollout_pack_cli_test decnet-rollout)

# What pack and pack-self write, the worker's own extraction (daemon/extract.h) takes: a test
# may link both sides, the rollout tool never does.
decnet_gtest(fleet_packed_release_accepted_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/packed_release_accepted_test.cc
  LIBS decnet_fleet_pack decnet_daemon_extract PkgConfig::libarchive OpenSSL::Crypto)
