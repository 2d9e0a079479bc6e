#!/usr/bin/env python3
"""Writes the seed corpus of the http_session fuzz target (tests/fuzz/http_session_fuzz.cc).

Each file is one connection: a first byte that picks the server and the client certificate,
then the bytes the client sends. The requests are those of the HTTP tests (the abuse table,
the server's protocol manners, the flood's slowloris, the API's routes and forms, DECNET's
uploads, the crash matrix's cut-short upload), at sizes that keep every file under 64 KiB,
and sent by the master and by other clients. Deterministic: run it again and nothing changes.

    tests/fuzz/make_http_corpus.py [DIR]   # default: tests/fuzz/corpus/http_session
"""

import gzip
import hashlib
import io
import os
import sys
import tarfile

# The first byte: bit 0 picks the server (0: production limits, the master pinned; 1: small
# limits, the master known by its CN), the rest the certificate (see Clients() in the target).
PINNED, SMALL = 0, 1
CERT_MASTER, CERT_UNPINNED_MASTER_CN, CERT_WORKER, CERT_TWO_CNS, CERT_PINNED_OTHER_CN = range(5)

MASTER = (PINNED, CERT_MASTER)
WORKER = (PINNED, CERT_WORKER)
IMPOSTOR = (PINNED, CERT_UNPINNED_MASTER_CN)  # CN decnet-master, not pinned: not the master
NO_CN = (PINNED, CERT_TWO_CNS)
PINNED_OTHER_CN = (PINNED, CERT_PINNED_OTHER_CN)  # the pin decides: the master
SMALL_MASTER = (SMALL, CERT_MASTER)
SMALL_BY_CN = (SMALL, CERT_UNPINNED_MASTER_CN)  # no pins there: the CN decides, the master
SMALL_WORKER = (SMALL, CERT_WORKER)

END = b"Connection: close\r\n\r\n"
BOUNDARY = b"fuzzboundary"
FORM = b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n"


def selector(who):
    server, cert = who
    return bytes([server | (cert << 1)])


def tarball(files):
    """A small, valid, reproducible .tar.gz."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


RELEASE = tarball([("release.json", b'{"version":"1.2.3"}\n'), ("bin/agent", b"#!/bin/sh\nexit 0\n")])
DIGEST = hashlib.sha256(RELEASE).hexdigest().encode()
EMPTY_TARBALL = tarball([])
BOMB = gzip.compress(b"\0" * (4 << 20), mtime=0)  # 4 MiB of zeros, about 4 KiB packed


def part(name, data, filename=None, content_type=None):
    out = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        out += b'; filename="' + filename + b'"'
    out += b"\r\n"
    if content_type is not None:
        out += b"Content-Type: " + content_type + b"\r\n"
    return out + b"\r\n" + data + b"\r\n"


def form(*parts):
    return b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"


def push(body, path=b"/update", extra=b"", blob=None):
    """A POST of a form with Content-Length, as curl -F sends it (without Expect)."""
    return (b"POST " + path + b" HTTP/1.1\r\nHost: updater\r\n" + FORM + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def chunked(body, path=b"/update", sizes=(7,), trailer=b"", ext=b"", extra=b""):
    """The same form, chunked in pieces of `sizes` (cycled), with extensions and a trailer."""
    out = (b"POST " + path + b" HTTP/1.1\r\nHost: updater\r\n" + FORM + extra +
           b"Transfer-Encoding: chunked\r\n\r\n")
    at, i = 0, 0
    while at < len(body):
        n = sizes[i % len(sizes)]
        piece = body[at:at + n]
        out += b"%x" % len(piece) + ext + b"\r\n" + piece + b"\r\n"
        at += n
        i += 1
    return out + b"0\r\n" + trailer + b"\r\n"


def fields(n):
    return b"".join(b"X-F%d: v\r\n" % i for i in range(n))


def get(path, extra=b"", version=b"1.1"):
    return b"GET " + path + b" HTTP/" + version + b"\r\nHost: updater\r\n" + extra + END


GOOD_FORM = form(part(b"tarball", RELEASE, b"release.tar.gz", b"application/gzip"),
                 part(b"sha256", DIGEST), part(b"sha", b"0123abcd"))
SELF_FORM = form(part(b"tarball", RELEASE, b"decnet-updater.tar.gz"), part(b"sha256", DIGEST),
                 part(b"confirm_self", b"true"))

CASES = []


def case(name, data, *who):
    for w in who:
        CASES.append((name, selector(w) + data))


# --- routes and authorisation (api_test, decnet_contract_test) ------------------------------
for path in [b"/health", b"/releases", b"/metrics", b"/audit"]:
    case("get" + path.decode().replace("/", "-"), get(path), MASTER, WORKER, IMPOSTOR, NO_CN,
         PINNED_OTHER_CN, SMALL_MASTER, SMALL_BY_CN, SMALL_WORKER)
case("get-health-with-query", get(b"/health?verbose=1"), MASTER, WORKER)
case("unknown-path", get(b"/nope"), MASTER, WORKER)
case("unknown-path-with-body", b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
     MASTER, WORKER)
case("wrong-method-delete-update", b"DELETE /update HTTP/1.1\r\nHost: x\r\n" + END, MASTER, WORKER)
case("wrong-method-post-health", b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
     MASTER, WORKER)
case("wrong-method-get-rollback", get(b"/rollback"), MASTER, WORKER)
case("head-health", b"HEAD /health HTTP/1.1\r\nHost: x\r\n" + END, MASTER, WORKER)
case("options-star", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n" + END, MASTER)
case("connect-authority", b"CONNECT updater:443 HTTP/1.1\r\nHost: updater:443\r\n\r\n", MASTER)
case("absolute-form-target", b"GET https://updater/health HTTP/1.1\r\nHost: updater\r\n" + END, MASTER)
case("bad-verb", b"G@T /health HTTP/1.1\r\nHost: x\r\n" + END, MASTER, WORKER)
case("lowercase-verb", b"get /health HTTP/1.1\r\nHost: x\r\n" + END, MASTER)
case("http-2-0-version", b"GET /health HTTP/2.0\r\nHost: x\r\n" + END, MASTER)
case("http-0-9", b"GET /health\r\n\r\n", MASTER)
case("bare-lf-line-ends", b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n", MASTER)
case("tls-client-hello-bytes", bytes.fromhex("16030100c4010000c00303") + bytes(32) + b"\x00\x00\x02\x13\x01",
     MASTER, WORKER)
case("rollback", b"POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", MASTER, WORKER,
     IMPOSTOR, PINNED_OTHER_CN, SMALL_BY_CN, SMALL_WORKER)
case("rollback-without-length", b"POST /rollback HTTP/1.1\r\nHost: x\r\n\r\n", MASTER, WORKER)
case("rollback-with-ignored-body", b"POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"
     b"hello world", MASTER)

# --- uploads (api_test, decnet_contract_test, gzip_bomb, empty_tarball, crash_upload) -------
case("update-valid-form", push(GOOD_FORM), MASTER, WORKER, IMPOSTOR, PINNED_OTHER_CN, SMALL_MASTER,
     SMALL_BY_CN, SMALL_WORKER)
case("update-valid-form-chunked", chunked(GOOD_FORM, sizes=(1, 7, 300)), MASTER, SMALL_MASTER)
case("update-valid-form-expect-100-continue", push(GOOD_FORM, extra=b"Expect: 100-continue\r\n"),
     MASTER, WORKER, SMALL_MASTER)
case("update-self-confirmed", push(SELF_FORM, b"/update-self"), MASTER, WORKER)
case("update-self-without-confirm", push(GOOD_FORM, b"/update-self"), MASTER)
case("update-self-confirm-false", push(form(part(b"tarball", RELEASE, b"t.tar.gz"), part(b"sha256", DIGEST),
                                             part(b"confirm_self", b"false")), b"/update-self"), MASTER)
case("update-without-sha256", push(form(part(b"tarball", RELEASE, b"t.tar.gz"))), MASTER)
case("update-blank-sha256", push(form(part(b"tarball", RELEASE, b"t.tar.gz"), part(b"sha256", b"   "))),
     MASTER)
case("update-malformed-sha256", push(form(part(b"tarball", RELEASE, b"t.tar.gz"),
                                          part(b"sha256", b" " + DIGEST))), MASTER)
case("update-mismatching-sha256", push(form(part(b"tarball", RELEASE, b"t.tar.gz"),
                                            part(b"sha256", b"0" * 64))), MASTER)
case("update-without-tarball", push(form(part(b"sha256", DIGEST))), MASTER)
case("update-unknown-field", push(form(part(b"tarball", RELEASE, b"t.tar.gz"), part(b"sha256", DIGEST),
                                       part(b"extra", b"1"))), MASTER)
case("update-text-field-with-filename", push(form(part(b"tarball", RELEASE, b"t.tar.gz"),
                                                  part(b"sha256", DIGEST, b"sha.txt"))), MASTER)
case("update-oversized-sha-field", push(form(part(b"tarball", RELEASE, b"t.tar.gz"), part(b"sha256", DIGEST),
                                             part(b"sha", b"a" * 200))), MASTER)
case("update-not-a-form", b"POST /update HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2\r\n\r\n{}", MASTER, WORKER)
case("update-no-content-type", b"POST /update HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", MASTER)
case("update-form-without-boundary", b"POST /update HTTP/1.1\r\nHost: x\r\n"
     b"Content-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\n{}", MASTER)
case("update-truncated-form", push(GOOD_FORM)[:-40], MASTER, SMALL_MASTER)
case("update-form-without-closing-boundary", push(GOOD_FORM[:-len(BOUNDARY) - 6]), MASTER)
case("update-form-garbage-preamble", push(b"garbage before\r\n" + GOOD_FORM), MASTER)
case("update-form-part-without-disposition",
     push(b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"), MASTER)
case("update-form-part-headers-huge",
     push(b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"tarball\"; filename=\"" +
          b"f" * 20000 + b"\"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"), MASTER)
case("update-form-many-part-headers",
     push(b"--" + BOUNDARY + b"\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) +
          b"Content-Disposition: form-data; name=\"sha\"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"), MASTER)
case("update-empty-tarball", push(form(part(b"tarball", EMPTY_TARBALL, b"t.tar.gz"),
                                       part(b"sha256", hashlib.sha256(EMPTY_TARBALL).hexdigest().encode()))),
     MASTER)
case("update-gzip-bomb", push(form(part(b"tarball", BOMB, b"bomb.tar.gz"),
                                   part(b"sha256", hashlib.sha256(BOMB).hexdigest().encode()))), MASTER)
case("update-cut-short-mid-body", push(GOOD_FORM)[:200], MASTER)
case("update-content-length-over-the-cap",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: 2097152\r\n\r\n" + GOOD_FORM[:1000],
     MASTER, WORKER, SMALL_MASTER)
case("update-content-length-over-the-cap-expect-100",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Expect: 100-continue\r\n"
     b"Content-Length: 2097152\r\n\r\n", MASTER, WORKER)
case("update-tarball-over-the-upload-cap",
     push(form(part(b"tarball", b"z" * 12000, b"t.tar.gz"), part(b"sha256", DIGEST))), SMALL_MASTER)
case("update-chunked-over-the-body-cap",
     chunked(form(part(b"tarball", b"z" * 20000, b"t.tar.gz")), sizes=(4096,)), SMALL_MASTER)
case("update-content-length-and-chunked",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: 10\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", MASTER)
case("update-two-content-lengths",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: 10\r\nContent-Length: 11\r\n\r\n"
     + b"x" * 11, MASTER)
case("update-negative-content-length",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Content-Length: -1\r\n\r\n", MASTER)
case("update-transfer-encoding-gzip",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Transfer-Encoding: gzip\r\n\r\nxx", MASTER)

# --- chunked bodies: extensions and trailers (http_abuse_test) ------------------------------
def chunk_head(path, form_head=True):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + (FORM if form_head else b"") +
            b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n")


for path, form_head in [(b"/update", True), (b"/rollback", False)]:
    tag = path.decode().strip("/")
    case("trailer-over-the-read-buffer-" + tag,
         chunk_head(path, form_head) + b"X-Big: " + b"t" * (40 << 10) + b"\r\n\r\n", MASTER, WORKER)
    case("trailer-over-the-small-read-buffer-" + tag,
         chunk_head(path, form_head) + b"X-Big: " + b"t" * 5000 + b"\r\n\r\n", SMALL_MASTER)
case("trailer-under-the-cap-rollback", chunk_head(b"/rollback", False) + b"X-Small: " + b"t" * 1024 + b"\r\n\r\n",
     MASTER, SMALL_MASTER)
case("trailer-many-fields-rollback", chunk_head(b"/rollback", False) + fields(500) + b"\r\n", MASTER)
case("trailer-obs-fold-rollback", chunk_head(b"/rollback", False) + b"X-A: a\r\n b\r\n\r\n", MASTER)
case("trailer-host-rollback", chunk_head(b"/rollback", False) + b"Host: other\r\n\r\n", MASTER)
case("trailer-content-length-rollback", chunk_head(b"/rollback", False) + b"Content-Length: 5\r\n\r\n",
     MASTER)
case("chunk-extension-over-the-read-buffer",
     b"POST /update HTTP/1.1\r\nHost: x\r\n" + FORM + b"Transfer-Encoding: chunked\r\n\r\n5;ext=" +
     b"a" * (40 << 10) + b"\r\nhello\r\n0\r\n\r\n", MASTER, WORKER)
case("chunk-extension-over-the-small-read-buffer",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=" +
     b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n", SMALL_MASTER)
case("chunk-extensions-many-small", chunked(GOOD_FORM, sizes=(64,), ext=b';a=1;b="q\\"x";c'), MASTER)
case("chunk-extensions-on-the-last-chunk",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0;last=yes\r\n\r\n", MASTER)
case("chunk-size-huge-hex",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx", MASTER)
case("chunk-size-not-hex",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n", MASTER)
case("chunk-missing-crlf",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n", MASTER)
case("chunked-upload-with-trailer", chunked(GOOD_FORM, sizes=(500,), trailer=b"X-Checksum: abc\r\n"),
     MASTER)

# --- the request head (http_abuse_test's table) ----------------------------------------------
case("head-plain-control", b"GET /health HTTP/1.1\r\nHost: x\r\n" + END, MASTER, WORKER)
case("head-http-1-0-with-host", b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n", MASTER, WORKER)
case("head-http-1-0-keep-alive-pipelined",
     b"GET /health HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" * 2 +
     b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n", MASTER)
case("head-64-fields", b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(62) + END, MASTER)
case("head-65-fields", b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(63) + END, MASTER, WORKER)
case("head-17-fields-small", b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(15) + END, SMALL_MASTER)
case("head-http-1-0-without-host", b"GET /health HTTP/1.0\r\n\r\n", MASTER, WORKER)
case("head-http-1-1-without-host", b"GET /health HTTP/1.1\r\n" + END, MASTER, WORKER)
case("head-two-hosts", b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\n" + END, MASTER, WORKER)
case("head-empty-host", b"GET /health HTTP/1.1\r\nHost:\r\n" + END, MASTER)
case("head-obs-fold-sp", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n" + END, MASTER, WORKER)
case("head-obs-fold-htab", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n" + END, MASTER)
case("head-obs-fold-post", b"POST /rollback HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n" + END, MASTER)
case("head-obs-fold-first-line", b"GET /health HTTP/1.1\r\n Host: x\r\n" + END, MASTER)
case("head-20k-field", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (20 << 10) + b"\r\n" + END,
     MASTER, WORKER)
case("head-40k-field", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (40 << 10) + b"\r\n" + END,
     MASTER)
case("head-40k-target", b"GET /" + b"p" * (40 << 10) + b" HTTP/1.1\r\nHost: x\r\n" + END, MASTER)
case("head-3k-field-small", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 3000 + b"\r\n" + END,
     SMALL_MASTER)
case("head-4000-tiny-fields", b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 4000 + b"\r\n", MASTER)
case("head-field-without-colon", b"GET /health HTTP/1.1\r\nHost: x\r\nNoColon\r\n" + END, MASTER)
case("head-space-before-colon", b"GET /health HTTP/1.1\r\nHost : x\r\n" + END, MASTER)
case("head-nul-in-value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n" + END, MASTER)
case("head-crlf-only", b"\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n" + END, MASTER)
case("head-handler-paths-with-body",
     b"".join(b"POST " + p + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              for p in [b"/head", b"/consume", b"/finish"]), MASTER)

# --- keep-alive and pipelining (http_server_test, http_flood_test) --------------------------
case("keep-alive-two-gets", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + get(b"/health"), MASTER, WORKER)
case("pipelined-20-gets", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 20 + get(b"/releases"), MASTER, WORKER)
case("pipelined-gets-then-rollback",
     b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
     MASTER, WORKER)
case("pipelined-refused-then-get",
     b"GET /releases HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", WORKER, IMPOSTOR)
case("pipelined-after-a-bad-request",
     b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n", MASTER)
case("pipelined-get-then-upload", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + push(GOOD_FORM), MASTER)
case("pipelined-upload-then-get", push(GOOD_FORM) + get(b"/health"), MASTER)
case("te-gzip-chunked-then-get",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
     + get(b"/releases"), MASTER, WORKER)
case("te-chunked-not-last-then-get",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
     + get(b"/releases"), MASTER)
case("te-beside-content-length-then-get",
     b"POST /rollback HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n" + get(b"/releases"), MASTER)
case("pipelined-head-then-get",
     b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nHEAD /releases HTTP/1.1\r\nHost: x\r\n\r\n"
     + get(b"/health"), MASTER, WORKER)
case("get-with-a-body-then-get",
     b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody" + get(b"/health"), MASTER, WORKER)

# --- slowloris and idle connections (http_flood_test) -----------------------------------------
case("idle-connection", b"", MASTER, WORKER)
case("slowloris-request-line-only", b"GET /health HTTP/1.1\r\n", MASTER, WORKER)
case("slowloris-half-a-head", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a", MASTER)
case("slowloris-half-a-request-line", b"GET /hea", WORKER)

# --- the gate and the probe's shapes, sent at the updater (health_probe, empty_tarball) -----
case("health-http-1-0-close", b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
     MASTER, WORKER)

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "http_session")
    os.makedirs(out_dir, exist_ok=True)
    names = {0: "master", 2: "unpinned-master-cn", 4: "worker", 6: "two-cns", 8: "pinned-other-cn"}
    written = set()
    for name, data in CASES:
        pick = data[0]
        who = ("small-" if pick & 1 else "") + names[pick & ~1]
        file = f"{name}--{who}"
        assert file not in written, file
        assert len(data) < 64 * 1024, (file, len(data))
        written.add(file)
        with open(os.path.join(out_dir, file), "wb") as f:
            f.write(data)
    for stale in set(os.listdir(out_dir)) - written:
        os.remove(os.path.join(out_dir, stale))
    print(f"{len(written)} inputs in {out_dir}")
