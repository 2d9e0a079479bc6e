#!/usr/bin/python3
"""A master's client for the updater, sending what DECNET's master sends.

The requests are those of DECNET's updater client, byte for byte where it matters: a
multipart form with the file field `tarball` (filename tree.tgz, type application/gzip) and the
fields `sha` and `sha256` (the hex SHA-256 of the tarball, computed here), plus
`confirm_self=true` for /update-self; /rollback is a POST with no body. Like DECNET's client it
presents the master's certificate and verifies the updater's against the CA, and it adds two
checks of its own: TLS 1.2 or newer, and the updater's certificate pinned by the SHA-256 of its
DER encoding, checked right after the handshake, before any byte of the request is sent.

As a command (used by the tests):
  decnet_master_client.py --url https://HOST:PORT --ca CA --cert CRT --key KEY --pin HEX
                          {health | releases | rollback | update TARBALL | update-self TARBALL}
                          [--sha GITSHA]
prints {"status": int, "body": str} (status 0 and "error" when no answer came) and exits 0;
it exits 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import ssl
import sys
from typing import Any, Dict, Optional

import httpx

# DECNET's own timeouts: an update may take minutes, control calls are short.
UPDATE_TIMEOUT = httpx.Timeout(connect=10.0, read=180.0, write=120.0, pool=5.0)
CONTROL_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=10.0, pool=5.0)


class PinMismatch(Exception):
    """The updater's certificate is not the pinned one: nothing was sent."""


class MasterClient:
    """One updater, reached as the master.

    `pin` is the hex SHA-256 of the updater's certificate (DER); a server presenting any other
    certificate, even one the CA signed, is refused before the request is written.
    """

    def __init__(self, url: str, ca: str, cert: str, key: str, pin: str,
                 verify_hostname: bool = False) -> None:
        self._url = url.rstrip("/")
        self._pin = pin.lower().replace(":", "")
        if len(self._pin) != 64 or any(c not in "0123456789abcdef" for c in self._pin):
            raise ValueError("pin must be 64 hex digits (the SHA-256 of the certificate's DER)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        ctx.load_verify_locations(cafile=ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = verify_hostname
        self._ctx = ctx

    def _check_pin(self, event: str, info: Dict[str, Any]) -> None:
        # httpcore's trace hook: called once the TLS handshake of a new connection is done.
        if event != "connection.start_tls.complete":
            return
        stream = info.get("return_value")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        got = hashlib.sha256(der).hexdigest() if der else "(none)"
        if got != self._pin:
            raise PinMismatch(f"updater certificate sha256 {got} is not the pinned {self._pin}")

    def _send(self, method: str, path: str, timeout: httpx.Timeout, **kwargs: Any) -> httpx.Response:
        # One connection per call, as DECNET opens one client per host and operation.
        with httpx.Client(base_url=self._url, verify=self._ctx, timeout=timeout) as client:
            return client.request(method, path, extensions={"trace": self._check_pin}, **kwargs)

    def health(self) -> httpx.Response:
        return self._send("GET", "/health", CONTROL_TIMEOUT)

    def releases(self) -> httpx.Response:
        return self._send("GET", "/releases", CONTROL_TIMEOUT)

    def update(self, tarball: bytes, sha: str = "") -> httpx.Response:
        return self._send("POST", "/update", UPDATE_TIMEOUT,
                          files={"tarball": ("tree.tgz", tarball, "application/gzip")},
                          data={"sha": sha, "sha256": hashlib.sha256(tarball).hexdigest()})

    def update_self(self, tarball: bytes, sha: str = "") -> httpx.Response:
        return self._send("POST", "/update-self", UPDATE_TIMEOUT,
                          files={"tarball": ("tree.tgz", tarball, "application/gzip")},
                          data={"sha": sha, "sha256": hashlib.sha256(tarball).hexdigest(),
                                "confirm_self": "true"})

    def rollback(self) -> httpx.Response:
        return self._send("POST", "/rollback", CONTROL_TIMEOUT)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description="Talk to an updater as DECNET's master does.")
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--pin", required=True)
    p.add_argument("--sha", default="")
    p.add_argument("op", choices=["health", "releases", "rollback", "update", "update-self"])
    p.add_argument("tarball", nargs="?")
    args = p.parse_args(argv)
    if args.op in ("update", "update-self") and not args.tarball:
        p.error(f"{args.op} needs a TARBALL")
    client = MasterClient(args.url, args.ca, args.cert, args.key, args.pin)
    try:
        if args.op in ("update", "update-self"):
            with open(args.tarball, "rb") as f:
                data = f.read()
            call = client.update if args.op == "update" else client.update_self
            r = call(data, sha=args.sha)
        else:
            r = {"health": client.health, "releases": client.releases,
                 "rollback": client.rollback}[args.op]()
        out = {"status": r.status_code, "body": r.text}
    except Exception as exc:  # noqa: BLE001 (any failure is reported as "no answer")
        out = {"status": 0, "body": "", "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
