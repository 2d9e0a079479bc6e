// A streaming multipart/form-data reader (RFC 7578 over RFC 2046) for request bodies that
// come off the network. It holds at most a bounded window of the body (a part's header line
// or a delimiter's worth of data), never a whole part, so a file part of any size passes
// through in pieces. Every refusal is ErrorCode::kMalformed with a "multipart-*" rule.
#pragma once

#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "proto/result.h"

namespace decnet::daemon {

// What the reader learnt from one part's header block. `name` is never empty; `filename`
// is the client's label, untrusted, and must never be used as a path.
struct PartHeaders {
  std::string name;
  std::optional<std::string> filename;
  std::optional<std::string> content_type;
};

// Receives a body's parts in order: OnPartBegin, zero or more OnPartData (never empty
// pieces), OnPartEnd. An error returned from any callback stops the reader, which then
// returns that same error from every later call.
class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  [[nodiscard]] virtual Result<void> OnPartBegin(const PartHeaders& headers) = 0;
  [[nodiscard]] virtual Result<void> OnPartData(std::string_view data) = 0;
  [[nodiscard]] virtual Result<void> OnPartEnd() = 0;
};

// Bounds on what a body may contain. The defaults fit DECNET's form (four fields).
struct MultipartLimits {
  size_t max_header_bytes = 8 * 1024;  // one part's header block, CRLFs included
  size_t max_parts = 16;
  size_t max_preamble_bytes = 4 * 1024;
  size_t max_epilogue_bytes = 4 * 1024;
  // Names that may appear more than once (the upload form's `signature`); every other name
  // seen twice is refused.
  std::vector<std::string> repeatable_fields{};
};

// Reads one multipart/form-data body fed in chunks split anywhere.
//
// Refuses (rule): a Content-Type that is not multipart/form-data with one boundary of 1..70
// RFC 2046 characters ("multipart-content-type"); a header block over the cap
// ("multipart-header-size"); more parts than the cap ("multipart-parts"); a part without a
// non-empty form-data name ("multipart-field-name"); a name seen before, unless the limits
// make it repeatable ("multipart-duplicate-field"); a preamble or epilogue over its cap
// ("multipart-preamble-size", "multipart-epilogue-size"); anything else off the grammar,
// including bare LF or CR line ends, folded or malformed header lines, repeated
// Content-Disposition or Content-Type headers, a Content-Transfer-Encoding other than
// 7bit/8bit/binary, a delimiter followed by anything but padding and CRLF or "--", and a
// body closed before its first part ("multipart-syntax"); and, at Finish, a body that ended
// before its closing delimiter ("multipart-truncated").
class MultipartReader {
 public:
  // Parses the request's Content-Type value (e.g. `multipart/form-data; boundary="x"`).
  // Fails with "multipart-content-type" when it is another media type, has no boundary, a
  // repeated boundary, or a boundary that is empty, longer than 70 characters, ends in a
  // space or has a character outside RFC 2046's bchars (space only when quoted).
  [[nodiscard]] static Result<MultipartReader> Create(std::string_view content_type,
                                                      MultipartLimits limits = {});

  // Consumes `chunk` (any size, including empty), calling `handler` for what it completes.
  // Returns the first error, from the grammar or from the handler; after an error every
  // call returns it again.
  [[nodiscard]] Result<void> Feed(std::string_view chunk, MultipartHandler& handler);

  // Declares the end of the body. Fails with "multipart-truncated" unless the closing
  // delimiter was seen, or with the error that stopped the reader earlier.
  [[nodiscard]] Result<void> Finish();

  // The boundary parsed from the Content-Type.
  const std::string& boundary() const { return boundary_; }

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kData, kEpilogue };
  // What one step over the buffer achieved.
  enum class Progress { kNeedMore, kAdvanced };

  MultipartReader(std::string boundary, MultipartLimits limits);

  Result<Progress> Step(MultipartHandler& handler);
  Result<Progress> StepPreamble();
  Result<Progress> StepAfterDelimiter();
  Result<Progress> StepHeaders(MultipartHandler& handler);
  Result<Progress> StepData(MultipartHandler& handler);
  Result<Progress> StepEpilogue();
  Result<void> HeaderLine(std::string_view line);
  Result<void> EndOfHeaders(MultipartHandler& handler);
  Result<void> Poison(Result<void> result);

  std::string boundary_;
  std::string delimiter_;  // CRLF "--" boundary
  MultipartLimits limits_;
  State state_ = State::kPreamble;
  std::string buf_;  // bytes not yet consumed start at pos_; bounded by window_
  size_t pos_ = 0;
  size_t window_ = 0;         // most bytes buf_ may hold
  size_t line_checked_ = 0;   // bytes of buf_'s partial header line already checked
  size_t preamble_seen_ = 0;  // preamble bytes discarded so far
  size_t epilogue_seen_ = 0;
  size_t padding_seen_ = 0;  // transport padding after the current delimiter
  size_t header_bytes_ = 0;  // header bytes of the current part so far
  size_t parts_ = 0;
  bool in_part_ = false;
  std::optional<std::string> disposition_;
  std::optional<std::string> part_content_type_;
  bool saw_transfer_encoding_ = false;
  std::set<std::string> names_;
  std::optional<Error> error_;
};

}  // namespace decnet::daemon
