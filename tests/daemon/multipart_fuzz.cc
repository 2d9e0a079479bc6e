// Fuzz target: the multipart reader. The first input byte picks a chunk size; the rest is
// a body under a fixed boundary. Oracles: the callbacks come in order (begin, data, end),
// no piece exceeds the reader's window, and feeding the same body all at once and in
// small chunks gives the same parts and the same verdict.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/multipart.h"

namespace {

using decnet::Result;
using decnet::daemon::MultipartHandler;
using decnet::daemon::MultipartLimits;
using decnet::daemon::MultipartReader;
using decnet::daemon::PartHeaders;

constexpr size_t kMaxPiece = 64 * 1024;

class Checker : public MultipartHandler {
 public:
  Result<void> OnPartBegin(const PartHeaders& h) override {
    if (open_ || h.name.empty()) std::abort();
    open_ = true;
    log_ +=
        "B" + h.name + '\0' + h.filename.value_or("-") + '\0' + h.content_type.value_or("-") + '\0';
    return {};
  }
  Result<void> OnPartData(std::string_view data) override {
    if (!open_ || data.empty() || data.size() > kMaxPiece) std::abort();
    log_.append(data);
    return {};
  }
  Result<void> OnPartEnd() override {
    if (!open_) std::abort();
    open_ = false;
    log_ += "E";
    return {};
  }
  std::string log_;

 private:
  bool open_ = false;
};

// The log of events and the verdict ("" or the refusing rule).
std::string Run(std::string_view body, size_t chunk) {
  MultipartLimits limits;
  limits.max_header_bytes = 512;
  limits.max_parts = 8;
  limits.max_preamble_bytes = 256;
  limits.max_epilogue_bytes = 256;
  auto reader = MultipartReader::Create("multipart/form-data; boundary=\"b:1\"", limits);
  if (!reader) std::abort();
  Checker checker;
  for (size_t at = 0; at < body.size(); at += chunk) {
    if (!reader->Feed(body.substr(at, chunk), checker)) {
      // An error is sticky: a later call repeats it.
      if (reader->Finish()) std::abort();
      return checker.log_ + "|" + reader->Finish().error().rule;
    }
  }
  auto done = reader->Finish();
  return checker.log_ + "|" + (done ? std::string("ok") : done.error().rule);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 17;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string whole = Run(body, body.size() + 1);
  const std::string split = Run(body, chunk);
  // The events before an error may differ in how far data got; the verdicts may not, and
  // an accepted body must give identical events.
  const std::string_view whole_verdict = std::string_view(whole).substr(whole.rfind('|'));
  const std::string_view split_verdict = std::string_view(split).substr(split.rfind('|'));
  if (whole_verdict != split_verdict) std::abort();
  if (whole_verdict == "|ok" && whole != split) std::abort();
  return 0;
}
