#include "fleet/worker_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace decnet::fleet {

namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxHead = 16 * 1024;
constexpr size_t kMaxBody = 1024 * 1024;

tl::unexpected<Error> Failed(std::string rule, std::string message) {
  return Fail(ErrorCode::kFailed, std::move(rule), std::move(message));
}

std::string OpensslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

timeval ToTimeval(std::chrono::milliseconds t) {
  return timeval{static_cast<time_t>(t.count() / 1000),
                 static_cast<suseconds_t>((t.count() % 1000) * 1000)};
}

// Connects to one resolved address within `limit`; the socket is left blocking.
int ConnectOne(const addrinfo* ai, std::chrono::milliseconds limit, int* error) {
  int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      *error = errno;
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int r;
    do r = ::poll(&p, 1, static_cast<int>(limit.count()));
    while (r < 0 && errno == EINTR);
    if (r == 0) {
      *error = ETIMEDOUT;
      ::close(fd);
      return -1;
    }
    int so = 0;
    socklen_t len = sizeof so;
    if (r < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0 || so != 0) {
      *error = r < 0 ? errno : so;
      ::close(fd);
      return -1;
    }
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

Result<int> ConnectTcp(const std::string& host, std::uint16_t port,
                       std::chrono::milliseconds limit) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list); rc != 0)
    return Failed("connect-failed", "cannot resolve " + host + ": " + ::gai_strerror(rc));
  int error = 0;
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next)
    fd = ConnectOne(ai, limit, &error);
  ::freeaddrinfo(list);
  if (fd >= 0) return fd;
  const std::string where = host + ":" + service;
  if (error == ETIMEDOUT)
    return Failed("connect-timeout", "no TCP answer from " + where + " within " +
                                         std::to_string(limit.count()) + " ms");
  return Failed("connect-failed", "cannot connect to " + where + ": " + std::strerror(error));
}

std::string HostHeader(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  return true;
}

}  // namespace

std::string CertificateFingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return "";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(der, static_cast<size_t>(len), md, &md_len, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  return Hex(md, md_len);
}

Result<std::string> FileSha256(const std::string& path, std::uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Failed("upload-file", "cannot read " + path);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(kChunk);
  std::uint64_t total = 0;
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
    total += got;
  }
  if (in.bad()) return Failed("upload-file", "error reading " + path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &md_len);
  if (size != nullptr) *size = total;
  return Hex(md, md_len);
}

Result<ClientTls> ClientTls::Load(const TlsFiles& files) {
  ClientTls out;
  out.ctx_.reset(SSL_CTX_new(TLS_client_method()), Free{});
  SSL_CTX* ctx = out.ctx_.get();
  if (ctx == nullptr) return Failed("tls-identity", "cannot make a TLS context: " + OpensslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert.c_str()) != 1)
    return Failed("tls-identity", "cannot use certificate " + files.cert + ": " + OpensslError());
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    return Failed("tls-identity", "cannot use key " + files.key + ": " + OpensslError());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return Failed("tls-identity", files.key + " is not the key of " + files.cert);
  if (!files.ca.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, files.ca.c_str(), nullptr) != 1)
      return Failed("tls-ca", "cannot read CA " + files.ca + ": " + OpensslError());
    // SECURITY: with a CA the updater's chain must verify as well as match its pin.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    out.verifies_chain_ = true;
  } else {
    // The pin, checked after the handshake and before any request byte, authenticates the
    // updater; a self-signed updater certificate is normal without a CA.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return out;
}

PinnedConnection::PinnedConnection(PinnedConnection&& o) noexcept { *this = std::move(o); }

PinnedConnection& PinnedConnection::operator=(PinnedConnection&& o) noexcept {
  if (this != &o) {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    ssl_ = std::exchange(o.ssl_, nullptr);
    host_header_ = std::move(o.host_header_);
    timeouts_ = o.timeouts_;
    written_ = o.written_;
    peer_fingerprint_ = std::move(o.peer_fingerprint_);
    buffered_ = std::move(o.buffered_);
  }
  return *this;
}

PinnedConnection::~PinnedConnection() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // no close_notify: the socket is closed regardless
  if (fd_ >= 0) ::close(fd_);
}

void PinnedConnection::SetReadTimeout(std::chrono::milliseconds t) {
  timeval tv = ToTimeval(t);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

Result<PinnedConnection> PinnedConnection::OpenPlain(const std::string& host, std::uint16_t port,
                                                     const Timeouts& timeouts) {
  auto fd = ConnectTcp(host, port, timeouts.connect);
  if (!fd) return tl::make_unexpected(fd.error());
  PinnedConnection c;
  c.fd_ = *fd;
  c.timeouts_ = timeouts;
  c.host_header_ = HostHeader(host, port);
  timeval tv = ToTimeval(timeouts.io);
  ::setsockopt(c.fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  c.SetReadTimeout(timeouts.io);
  return c;
}

namespace {

Result<void> Handshake(SSL* ssl, const std::string& where) {
  ERR_clear_error();
  if (SSL_connect(ssl) == 1) return {};
  const int saved = errno;
  std::string detail = OpensslError();
  if (saved == EAGAIN || saved == EWOULDBLOCK)
    return Failed("io-timeout", "the TLS handshake with " + where + " timed out");
  return Failed("tls-handshake", "TLS handshake with " + where + " failed: " + detail);
}

}  // namespace

Result<PinnedConnection> PinnedConnection::Open(const ClientTls& tls, const Target& target,
                                                const Timeouts& timeouts) {
  auto c = OpenPlain(target.address, target.port, timeouts);
  if (!c) return c;
  const std::string where = target.name + " (" + c->host_header_ + ")";
  c->ssl_ = SSL_new(tls.ctx());
  if (c->ssl_ == nullptr) return Failed("tls-handshake", "SSL_new: " + OpensslError());
  SSL_set_fd(c->ssl_, c->fd_);
  if (auto hs = Handshake(c->ssl_, where); !hs) return tl::make_unexpected(hs.error());
  X509* peer = SSL_get1_peer_certificate(c->ssl_);
  if (peer == nullptr) return Failed("pin-mismatch", where + " presented no certificate");
  c->peer_fingerprint_ = CertificateFingerprint(peer);
  X509_free(peer);
  // SECURITY: the pin is compared on the connection that will carry the request, after the
  // handshake and before any request byte, so no other endpoint can receive the release.
  if (c->peer_fingerprint_.size() != target.fingerprint.size() ||
      CRYPTO_memcmp(c->peer_fingerprint_.data(), target.fingerprint.data(),
                    target.fingerprint.size()) != 0)
    return Failed("pin-mismatch", where + " presented certificate " + c->peer_fingerprint_ +
                                      ", not the pinned " + target.fingerprint);
  return c;
}

Result<PinnedConnection> PinnedConnection::OpenVerified(const ClientTls& tls,
                                                        const std::string& host, std::uint16_t port,
                                                        const Timeouts& timeouts) {
  auto c = OpenPlain(host, port, timeouts);
  if (!c) return c;
  c->ssl_ = SSL_new(tls.ctx());
  if (c->ssl_ == nullptr) return Failed("tls-handshake", "SSL_new: " + OpensslError());
  if (!tls.verifies_chain()) SSL_CTX_set_default_verify_paths(tls.ctx());
  SSL_set_verify(c->ssl_, SSL_VERIFY_PEER, nullptr);
  SSL_set1_host(c->ssl_, host.c_str());
  SSL_set_tlsext_host_name(c->ssl_, host.c_str());
  SSL_set_fd(c->ssl_, c->fd_);
  if (auto hs = Handshake(c->ssl_, c->host_header_); !hs) return tl::make_unexpected(hs.error());
  if (SSL_get_verify_result(c->ssl_) != X509_V_OK)
    return Failed("tls-handshake", c->host_header_ + "'s certificate does not verify");
  return c;
}

Result<void> PinnedConnection::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n;
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int chunk = static_cast<int>(std::min<size_t>(data.size(), 1 << 20));
      n = SSL_write(ssl_, data.data(), chunk);
      if (n <= 0) {
        const int saved = errno;
        if (saved == EAGAIN || saved == EWOULDBLOCK)
          return Failed("io-timeout", "a write to " + host_header_ + " timed out");
        return Failed("connection-dropped", "the connection to " + host_header_ +
                                                " dropped while writing: " + OpensslError());
      }
    } else {
      n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return Failed("io-timeout", "a write to " + host_header_ + " timed out");
        return Failed("connection-dropped", "the connection to " + host_header_ +
                                                " dropped while writing: " + std::strerror(errno));
      }
    }
    written_ += static_cast<std::uint64_t>(n);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<size_t> PinnedConnection::ReadSome(char* buf, size_t len) {
  if (!buffered_.empty()) {
    const size_t n = std::min(len, buffered_.size());
    std::memcpy(buf, buffered_.data(), n);
    buffered_.erase(0, n);
    return n;
  }
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      const int n = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(len, 1 << 20)));
      if (n > 0) return static_cast<size_t>(n);
      const int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
      const int saved = errno;
      if (err == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))
        return Failed("io-timeout", "no answer from " + host_header_ + " in time");
      if (err == SSL_ERROR_SYSCALL && saved == 0) return size_t{0};  // EOF without notify
      return Failed("connection-dropped",
                    "the connection to " + host_header_ + " dropped: " + OpensslError());
    }
    const ssize_t n = ::recv(fd_, buf, len, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return Failed("io-timeout", "no answer from " + host_header_ + " in time");
    return Failed("connection-dropped",
                  "the connection to " + host_header_ + " dropped: " + std::strerror(errno));
  }
}

Result<HttpResponse> PinnedConnection::ReadResponse(std::chrono::milliseconds wait) {
  SetReadTimeout(wait);
  std::string data;
  char buf[16 * 1024];
  size_t head_end = std::string::npos;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxHead)
      return Failed("http-protocol", host_header_ + " sent an oversized response head");
    auto n = ReadSome(buf, sizeof buf);
    if (!n) return tl::make_unexpected(n.error());
    if (*n == 0)
      return Failed("connection-dropped", host_header_ + " closed the connection before answering");
    data.append(buf, *n);
    SetReadTimeout(timeouts_.io);
  }
  const std::string head = data.substr(0, head_end);
  std::string rest = data.substr(head_end + 4);

  HttpResponse out;
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12 || head[8] != ' ')
    return Failed("http-protocol", host_header_ + " did not answer in HTTP/1.x");
  out.status = std::atoi(head.substr(9, 3).c_str());
  if (out.status < 100 || out.status > 599)
    return Failed("http-protocol", host_header_ + " answered an invalid status");

  std::optional<std::uint64_t> length;
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos < head.size()) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    pos = next;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    if (name == "content-length") length = std::strtoull(value.c_str(), nullptr, 10);
    if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) chunked = true;
  }
  if (out.status == 100) {  // an interim answer: the real one follows
    buffered_ = rest + buffered_;
    return ReadResponse(wait);
  }

  auto fill = [&](size_t want) -> Result<void> {
    while (rest.size() < want) {
      if (rest.size() > kMaxBody + 64)
        return Failed("http-protocol", host_header_ + " sent an oversized answer");
      auto n = ReadSome(buf, sizeof buf);
      if (!n) return tl::make_unexpected(n.error());
      if (*n == 0) return Failed("connection-dropped", host_header_ + " cut its answer short");
      rest.append(buf, *n);
    }
    return {};
  };
  if (chunked) {
    std::string body;
    for (;;) {
      size_t eol;
      while ((eol = rest.find("\r\n")) == std::string::npos)
        if (auto f = fill(rest.size() + 1); !f) return tl::make_unexpected(f.error());
      const std::uint64_t size = std::strtoull(rest.substr(0, eol).c_str(), nullptr, 16);
      rest.erase(0, eol + 2);
      if (size > kMaxBody || body.size() + size > kMaxBody)
        return Failed("http-protocol", host_header_ + " sent an oversized answer");
      if (auto f = fill(size + 2); !f) return tl::make_unexpected(f.error());
      body.append(rest, 0, size);
      rest.erase(0, size + 2);
      if (size == 0) break;
    }
    out.body = std::move(body);
  } else if (length) {
    if (*length > kMaxBody)
      return Failed("http-protocol", host_header_ + " sent an oversized answer");
    if (auto f = fill(*length); !f) return tl::make_unexpected(f.error());
    out.body = rest.substr(0, *length);
  } else {
    for (;;) {  // until the peer closes
      if (rest.size() > kMaxBody)
        return Failed("http-protocol", host_header_ + " sent an oversized answer");
      auto n = ReadSome(buf, sizeof buf);
      if (!n) return tl::make_unexpected(n.error());
      if (*n == 0) break;
      rest.append(buf, *n);
    }
    out.body = std::move(rest);
  }
  return out;
}

Result<HttpResponse> PinnedConnection::Request(std::string_view method, std::string_view path) {
  std::string head = std::string(method) + " " + std::string(path) +
                     " HTTP/1.1\r\nHost: " + host_header_ +
                     "\r\nUser-Agent: decnet-rollout\r\nAccept: application/json\r\n"
                     "Connection: close\r\n";
  if (method != "GET") head += "Content-Length: 0\r\n";
  head += "\r\n";
  if (auto w = WriteAll(head); !w) return tl::make_unexpected(w.error());
  return ReadResponse(method == "GET" ? timeouts_.io : timeouts_.response);
}

Result<MultipartFrame> FrameUpload(const UploadForm& form, std::string boundary) {
  MultipartFrame f;
  f.boundary = std::move(boundary);
  const std::string dash = "--" + f.boundary;
  for (const auto& [name, value] : form.fields) {
    if (!IsToken(name)) return Failed("upload-field", "invalid form field name " + name);
    if (value.find(f.boundary) != std::string::npos || value.find('\0') != std::string::npos)
      return Failed("upload-field", "form field " + name + " cannot be framed");
    f.head +=
        dash + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  }
  if (!IsToken(form.file_field)) return Failed("upload-field", "invalid file field name");
  std::string file_name;
  for (char c : form.file_name)
    file_name += (c == '"' || c == '\\' || c < 0x20 || c == 0x7f) ? '_' : c;
  f.head += dash + "\r\nContent-Disposition: form-data; name=\"" + form.file_field +
            "\"; filename=\"" + file_name + "\"\r\nContent-Type: application/gzip\r\n\r\n";
  f.tail = "\r\n" + dash + "--\r\n";
  f.content_length = f.head.size() + form.file_size + f.tail.size();
  return f;
}

Result<HttpResponse> PinnedConnection::Upload(std::string_view path, const UploadForm& form,
                                              const ProgressFn& progress, std::uint64_t& sent) {
  sent = 0;
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return Failed("upload-field", "no random boundary");
  auto frame = FrameUpload(form, "decnet-rollout-" + Hex(rnd, sizeof rnd));
  if (!frame) return tl::make_unexpected(frame.error());
  std::ifstream in(form.file_path, std::ios::binary);
  if (!in) return Failed("upload-file", "cannot read " + form.file_path);

  const std::string head = "POST " + std::string(path) + " HTTP/1.1\r\nHost: " + host_header_ +
                           "\r\nUser-Agent: decnet-rollout\r\nAccept: application/json\r\n"
                           "Content-Type: multipart/form-data; boundary=" +
                           frame->boundary +
                           "\r\nContent-Length: " + std::to_string(frame->content_length) +
                           "\r\nConnection: close\r\n\r\n";
  const std::uint64_t total = frame->content_length;
  auto send = [&](std::string_view bytes) -> Result<void> {
    auto w = WriteAll(bytes);
    if (w) {
      sent += bytes.size();
      if (progress) progress(sent, total);
    }
    return w;
  };
  Result<void> written = WriteAll(head);
  if (written) written = send(frame->head);
  std::vector<char> buf(kChunk);
  std::uint64_t file_sent = 0;
  while (written && file_sent < form.file_size) {
    in.read(buf.data(), static_cast<std::streamsize>(
                            std::min<std::uint64_t>(buf.size(), form.file_size - file_sent)));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) return Failed("upload-file", form.file_path + " became shorter while sent");
    written = send(std::string_view(buf.data(), got));
    file_sent += got;
  }
  if (written) {
    in.peek();
    if (!in.eof()) return Failed("upload-file", form.file_path + " grew while it was sent");
    written = send(frame->tail);
  }
  if (!written && written.error().rule != "connection-dropped")
    return tl::make_unexpected(written.error());
  // Sent whole, or cut short by the worker: either way its answer, if any, says why.
  auto answer = ReadResponse(timeouts_.response);
  if (!answer && !written) return tl::make_unexpected(written.error());
  return answer;
}

}  // namespace decnet::fleet
