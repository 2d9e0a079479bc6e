// The extraction fuzz target's check, shared by the libFuzzer entry point and the corpus
// replay: one input extracted into a destination inside a private parent directory that also
// holds canaries, then the parent and the destination inspected.
#pragma once

#include <string>
#include <string_view>

namespace decnet::daemon::fuzzing {

// Extracts `archive` (any bytes) with ExtractRelease into PARENT/dest, where PARENT is a fresh
// private directory holding a canary file, a hard link to it, a canary directory with a file
// and a symlink pointing out of dest (at the canary directory). Afterwards, whatever the
// outcome:
//  * everything in PARENT outside dest is as it was (type, mode, size, link count, content,
//    symlink target), and nothing was added or removed there;
//  * everything under dest is a directory with no mode bit outside 0755, or a regular file
//    with one link and no mode bit outside 0755, owned by the calling user: no symlink, hard
//    link, device, FIFO, socket, set-id or sticky bit;
//  * a refusal carries one of kExtractRules.
// A broken invariant prints what was seen to stderr and calls abort(), so a fuzzing run and a
// corpus replay both fail. Returns the outcome: "accept", or "refuse:RULE". PARENT is removed.
std::string ExtractAndCheck(std::string_view archive);

}  // namespace decnet::daemon::fuzzing
