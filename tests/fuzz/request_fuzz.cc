// Fuzz target: the helper's request decoder. A request that decodes with a good body must
// survive a round trip: re-encoding it and decoding again gives the same id, type and bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/helper_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace decnet::proto;
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto request = DecodeRequest(frame);
  if (!request || !request->body) return 0;
  const std::string encoded = EncodeRequest(request->id, *request->body);
  auto again = DecodeRequest(encoded);
  if (!again || !again->body || again->id != request->id || again->type != request->type ||
      TypeOf(*again->body) != request->type || EncodeRequest(again->id, *again->body) != encoded) {
    std::abort();
  }
  return 0;
}
