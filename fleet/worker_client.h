// The master's side of one connection to a worker's updater: TCP with a bounded connect,
// TLS with the master's certificate, the updater's leaf certificate pinned before a single
// request byte is written, and HTTP/1.1 requests on that same connection, an upload
// streamed from disk in fixed-size chunks.
//
// Errors name their rule, which the rollout turns into a host's failure class:
// "connect-failed" and "connect-timeout" (unreachable), "tls-handshake", "pin-mismatch",
// "io-timeout", "connection-dropped", "http-protocol", "upload-file".
//
// The caller ignores SIGPIPE (decnet-rollout does while it runs): OpenSSL writes to the
// socket with write(2), and a worker that hangs up must be an error, not the end of the run.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fleet/inventory.h"
#include "proto/result.h"

namespace decnet::fleet {

// The master's TLS identity, as given on the command line.
struct TlsFiles {
  std::string cert;  // PEM certificate (chain) presented to workers
  std::string key;   // its PEM private key
  std::string ca;    // optional: a CA the updater's chain must also verify against
};

struct Timeouts {
  std::chrono::milliseconds connect{10'000};    // TCP connect, per address tried
  std::chrono::milliseconds io{30'000};         // the handshake, each write, each read
  std::chrono::milliseconds response{180'000};  // the wait for an operation's answer
};

// An SSL_CTX holding the master's certificate and key (TLS 1.2 or later). With a CA, the
// updater's chain must verify against it (the handshake fails otherwise); without one the
// pin alone authenticates the updater. Refuses unreadable or mismatched files
// ("tls-identity"), an unreadable CA ("tls-ca").
class ClientTls {
 public:
  [[nodiscard]] static Result<ClientTls> Load(const TlsFiles& files);
  SSL_CTX* ctx() const { return ctx_.get(); }
  bool verifies_chain() const { return verifies_chain_; }

 private:
  struct Free {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };
  std::shared_ptr<SSL_CTX> ctx_;
  bool verifies_chain_ = false;
};

struct HttpResponse {
  int status = 0;
  std::string body;  // at most 1 MiB
};

// A multipart/form-data upload: text fields in order, then one file part read from disk.
struct UploadForm {
  std::vector<std::pair<std::string, std::string>> fields;
  std::string file_field = "tarball";
  std::string file_path;
  std::string file_name;  // the part's filename
  std::uint64_t file_size = 0;
};

// The bytes written around the file: head (fields and the file part's headers) and tail.
struct MultipartFrame {
  std::string boundary;
  std::string head;
  std::string tail;
  std::uint64_t content_length = 0;  // head + file_size + tail
};
// Builds the frame for `form` with `boundary` (which must not occur in any field value: it
// is random and long, and the fields are checked). Fails ("upload-field") when a value holds
// it or a name is not a token.
[[nodiscard]] Result<MultipartFrame> FrameUpload(const UploadForm& form, std::string boundary);

// Called with (bytes of the request body sent, body total) as an upload proceeds.
using ProgressFn = std::function<void(std::uint64_t, std::uint64_t)>;

// One TLS connection to one updater, its certificate checked against the pin. Not copyable.
class PinnedConnection {
 public:
  PinnedConnection(PinnedConnection&&) noexcept;
  PinnedConnection& operator=(PinnedConnection&&) noexcept;
  ~PinnedConnection();

  // Resolves and connects to target.address:port (each address within timeouts.connect),
  // handshakes (within timeouts.io) and compares SHA-256 of the peer's DER leaf certificate
  // with target.fingerprint. Nothing is written after the handshake when the pin does not
  // match: "pin-mismatch" names both fingerprints.
  [[nodiscard]] static Result<PinnedConnection> Open(const ClientTls& tls, const Target& target,
                                                     const Timeouts& timeouts);
  // Without a pin, for a controller URL: the chain must verify (a CA or the system's store)
  // and the certificate must name `host`.
  [[nodiscard]] static Result<PinnedConnection> OpenVerified(const ClientTls& tls,
                                                             const std::string& host,
                                                             std::uint16_t port,
                                                             const Timeouts& timeouts);
  // Over a plain TCP socket (http:// controller URLs only; never a worker).
  [[nodiscard]] static Result<PinnedConnection> OpenPlain(const std::string& host,
                                                          std::uint16_t port,
                                                          const Timeouts& timeouts);

  // A request without a body (GET, or POST with Content-Length: 0), then its answer.
  [[nodiscard]] Result<HttpResponse> Request(std::string_view method, std::string_view path);
  // POSTs `form` to `path`: the head, the fields and the file streamed in 64 KiB chunks
  // (the file is never held whole), then waits up to timeouts.response for the answer.
  // When the worker answers before the body is out (a refusal at the head) and closes, the
  // answer is still read and returned. `sent` holds the body bytes written so far, success or
  // not. "upload-file" when the file cannot be read or changed size.
  [[nodiscard]] Result<HttpResponse> Upload(std::string_view path, const UploadForm& form,
                                            const ProgressFn& progress, std::uint64_t& sent);

  // Bytes of any kind written on this connection (0 when the pin refused it).
  std::uint64_t bytes_written() const { return written_; }
  // The SHA-256 of the peer's DER leaf certificate (empty on a plain connection).
  const std::string& peer_fingerprint() const { return peer_fingerprint_; }

 private:
  PinnedConnection() = default;
  [[nodiscard]] Result<void> WriteAll(std::string_view data);
  [[nodiscard]] Result<HttpResponse> ReadResponse(std::chrono::milliseconds wait);
  [[nodiscard]] Result<size_t> ReadSome(char* buf, size_t len);
  void SetReadTimeout(std::chrono::milliseconds t);

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string host_header_;
  Timeouts timeouts_;
  std::uint64_t written_ = 0;
  std::string peer_fingerprint_;
  std::string buffered_;  // bytes read past the response head
};

// SHA-256 of a certificate's DER encoding, lower-case hex.
std::string CertificateFingerprint(X509* cert);

// Lower-case hex SHA-256 of a file, read in chunks; "upload-file" when it cannot be read.
[[nodiscard]] Result<std::string> FileSha256(const std::string& path, std::uint64_t* size);

}  // namespace decnet::fleet
