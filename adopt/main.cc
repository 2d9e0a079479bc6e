// decnet-adopt: see adopt.h.
#include <cstdio>
#include <string>

#include "adopt/adopt.h"

int main(int argc, char** argv) {
  decnet::adopt::AdoptOptions options;
  std::string error;
  if (!decnet::adopt::ParseAdoptArgs(argc, argv, &options, &error)) {
    std::fprintf(stderr, "decnet-adopt: %s\n%s", error.c_str(), decnet::adopt::Usage().c_str());
    return 2;
  }
  return decnet::adopt::RunAdopt(options, stdout, stderr);
}
