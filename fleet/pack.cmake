# decnet_fleet_pack: making and signing releases (pack, pack-self, keygen, sign).
# libarchive writes the tarball; OpenSSL digests it; proto/ says what a manifest, a
# descriptor and a signature are.
find_package(PkgConfig REQUIRED)
pkg_check_modules(libarchive REQUIRED IMPORTED_TARGET libarchive)

add_library(decnet_fleet_pack STATIC
  pack_args.cc
  pack_tree.cc
  pack_archive.cc
  pack_release.cc
  pack.cc
  sign_commands.cc)
target_include_directories(decnet_fleet_pack PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(decnet_fleet_pack PUBLIC
  decnet_proto_auth decnet_proto_release PkgConfig::libarchive OpenSSL::Crypto)
