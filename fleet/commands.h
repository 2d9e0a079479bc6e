// The subcommands of decnet-rollout, the master side. Each takes the arguments after its
// own name and returns the process exit code: 0 success, 1 a failure (a host not updated, a
// file refused), 2 a usage error. Each prints its own usage on `--help`.
//
// Nothing here is shared with the worker's helper or daemon but the wire contracts in proto/.
#pragma once

#include <span>
#include <string_view>

namespace decnet::fleet {

using Args = std::span<const std::string_view>;

// fleet/pack.cmake: making and signing releases.
int RunPack(Args args);      // pack --root DIR --out FILE.tgz --version V [...]
int RunPackSelf(Args args);  // pack-self --build DIR --out FILE.tgz --version V [...]
int RunKeygen(Args args);    // keygen --out NAME (NAME.key, NAME.pub)
int RunSign(Args args);      // sign --key NAME.key FILE.tgz.manifest.json

// fleet/push.cmake: talking to workers.
int RunPush(Args args);      // push --inventory FILE (--host NAME... | --all) FILE.tgz
int RunStatus(Args args);    // status --inventory FILE [--host NAME... | --all]
int RunRollback(Args args);  // rollback --inventory FILE (--host NAME... | --all)

}  // namespace decnet::fleet
