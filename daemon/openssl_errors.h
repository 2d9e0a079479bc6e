// OpenSSL's per-thread error queue as one line, for the TLS server and the health probe.
#pragma once

#include <string>

namespace decnet::daemon {

// Drains the calling thread's OpenSSL error queue into "error; error; ..." (entries left
// behind would be blamed on the next unrelated call). Never empty.
std::string OpenSslErrors();

}  // namespace decnet::daemon
