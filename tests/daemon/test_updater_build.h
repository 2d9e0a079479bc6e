// An updater build made at test time: what update-self takes from a master.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/self_update.h"
#include "proto/helper_protocol.h"
#include "tests/daemon/test_tarball.h"

namespace decnet::test {

// Writes into the directory `tree` a build of `version` for this host (its manifest, and
// bin/decnet-updaterd, a script answering --version) and packs it.
inline Tarball PackUpdaterBuild(const std::string& tree, const std::string& version) {
  namespace fs = std::filesystem;
  fs::create_directories(tree + "/bin");
  std::ofstream(tree + "/bin/decnet-updaterd")
      << "#!/bin/sh\necho decnet-updaterd " << version << "\n";
  fs::permissions(tree + "/bin/decnet-updaterd", fs::perms(0755));
  nlohmann::json m = {{"format", 1},
                      {"version", version},
                      {"kind", "updater"},
                      {"arch", daemon::HostArch()},
                      {"helper_protocol", proto::kProtocolVersion}};
  std::ofstream(tree + "/.decnet-release.json") << m.dump();
  return PackTree(tree);
}

}  // namespace decnet::test
