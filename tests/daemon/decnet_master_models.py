#!/usr/bin/python3
"""What DECNET's master makes of each answer of this updater.

A restatement, written for this project, of the master-side code that consumes the updater's
answers in DECNET (its dashboard's swarm-update handlers, their pydantic response models, and
the `decnet swarm update` command's table). For each answer (route, HTTP status, body) it runs
the same reading logic and validates the result with the same field types, then checks that the
master classifies it as expected.

DECNET's models are pydantic 2 models; Debian 12 ships pydantic 1.10. Pydantic 2 accepts only a
string for a `str` field when the input comes from JSON; pydantic 1 would turn a number into a
string. So every `str` here is StrictStr, every `int` StrictInt, and a list of dicts is checked
to hold dicts only: a body that pydantic 2 would refuse is refused here too.

Usage: decnet_master_models.py CASES.json
  CASES.json is a list of cases:
    {"name": str, "route": "update"|"update-self"|"include-self"|"rollback"|"health"|"releases",
     "status": int, "body": str (raw bytes as sent),
     "expect": str, "detail_contains": str (optional), "cli": bool (optional)}
  "include-self" has "update_status"/"update_body" for the /update answer that preceded it.
Prints one line per case and exits 0 only when every case is read as expected.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, StrictInt, StrictStr, ValidationError, validator

# --- The models, restated ------------------------------------------------------------------

PushStatus = Literal["updated", "rolled-back", "failed", "self-updated", "self-failed"]


class PushUpdateResult(BaseModel):
    host_uuid: StrictStr
    host_name: StrictStr
    status: PushStatus
    http_status: Optional[StrictInt] = None
    sha: Optional[StrictStr] = None
    detail: Optional[StrictStr] = None
    stderr: Optional[StrictStr] = None


class PushUpdateResponse(BaseModel):
    sha: StrictStr
    tarball_bytes: StrictInt
    results: List[PushUpdateResult]


class RollbackResponse(BaseModel):
    host_uuid: StrictStr
    host_name: StrictStr
    status: Literal["rolled-back", "failed"]
    http_status: Optional[StrictInt] = None
    detail: Optional[StrictStr] = None


class HostReleaseInfo(BaseModel):
    host_uuid: StrictStr
    host_name: StrictStr
    address: StrictStr
    reachable: bool
    agent_status: Optional[StrictStr] = None
    current_sha: Optional[StrictStr] = None
    previous_sha: Optional[StrictStr] = None
    releases: List[Dict[StrictStr, Any]] = []
    detail: Optional[StrictStr] = None

    @validator("releases", pre=True)
    def _only_objects(cls, v: Any) -> Any:  # noqa: N805 (pydantic's signature)
        # Pydantic 2 takes a dict from a JSON object only (pydantic 1 would also convert a
        # list of pairs).
        if not isinstance(v, list) or not all(isinstance(r, dict) for r in v):
            raise ValueError("releases must be a list of JSON objects")
        return v


class HostReleasesResponse(BaseModel):
    hosts: List[HostReleaseInfo]


HOST = {"uuid": "3f1c0e9a-0000-4000-8000-000000000001", "name": "worker-1",
        "address": "127.0.0.1"}
SHA = ""  # what the master sends when its tree is not a git checkout


class Unreadable(Exception):
    """The master would fail on this answer (an exception, or a model refusing it)."""


def parse_body(raw: str) -> Any:
    # The master reads `r.json() if r.content else {}`.
    if raw == "":
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Unreadable(f"body is not JSON: {exc}") from exc


# --- The handlers' reading logic, restated -------------------------------------------------

def classify_update(status: int) -> str:
    return {200: "updated", 409: "rolled-back"}.get(status, "failed")


def read_error_or_probe(body: Any) -> Any:
    return (body.get("error") or body.get("probe")) if isinstance(body, dict) else None


def read_stderr(body: Any) -> Any:
    return body.get("stderr") if isinstance(body, dict) else None


def push(status: int, body: Any) -> PushUpdateResult:
    """The dashboard's push to one host, without include_self."""
    return PushUpdateResult(host_uuid=HOST["uuid"], host_name=HOST["name"],
                            status=classify_update(status), http_status=status, sha=SHA,
                            detail=read_error_or_probe(body), stderr=read_stderr(body))


def include_self(update_status: int, update_body: Any, self_status: int) -> PushUpdateResult:
    """The dashboard's push with include_self: /update, then /update-self after a 200."""
    status = classify_update(update_status)
    if update_status == 200:
        status = "self-updated" if self_status in (200, 0) else "self-failed"
    return PushUpdateResult(host_uuid=HOST["uuid"], host_name=HOST["name"], status=status,
                            http_status=update_status, sha=SHA,
                            detail=read_error_or_probe(update_body),
                            stderr=read_stderr(update_body))


def push_self(status: int, body: Any) -> PushUpdateResult:
    """The dashboard's push-self to one host."""
    return PushUpdateResult(host_uuid=HOST["uuid"], host_name=HOST["name"],
                            status="self-updated" if status == 200 else "self-failed",
                            http_status=status, sha=SHA, detail=read_error_or_probe(body),
                            stderr=read_stderr(body))


def rollback(status: int, body: Any) -> str:
    """The dashboard's rollback of one host: 'rolled-back', 'failed', or '404: <detail>'."""
    if status == 404:
        detail = body.get("detail") if isinstance(body, dict) else "No previous release on worker."
        # FastAPI's HTTPException serialises any JSON value; the dashboard shows it as text.
        if not isinstance(detail, str) or not detail:
            raise Unreadable(f"404 detail is not a message: {detail!r}")
        return "404: " + detail
    if status != 200:
        detail = (body.get("error") or body.get("detail")) if isinstance(body, dict) else None
        r = RollbackResponse(host_uuid=HOST["uuid"], host_name=HOST["name"], status="failed",
                             http_status=status, detail=detail)
    else:
        r = RollbackResponse(host_uuid=HOST["uuid"], host_name=HOST["name"],
                             status="rolled-back", http_status=status,
                             detail=body.get("status") if isinstance(body, dict) else None)
    return f"{r.status}: {r.detail}"


def host_releases(status: int, body: Any) -> HostReleaseInfo:
    """The dashboard's per-host probe (GET /health, raise_for_status, then its fields)."""
    if not 200 <= status < 300:
        info = HostReleaseInfo(host_uuid=HOST["uuid"], host_name=HOST["name"],
                               address=HOST["address"], reachable=False,
                               detail="host unreachable")
    else:
        if not isinstance(body, dict):
            raise Unreadable("health body is not an object")
        releases = body.get("releases") or []

        def by_slot(slot: str) -> Any:
            # Each entry is read with .get(): it must be an object.
            return next((r.get("sha") for r in releases if r.get("slot") == slot), None)

        try:
            current, previous = by_slot("active"), by_slot("prev")
        except AttributeError as exc:
            raise Unreadable(f"a release entry is not an object: {exc}") from exc
        info = HostReleaseInfo(host_uuid=HOST["uuid"], host_name=HOST["name"],
                               address=HOST["address"], reachable=True,
                               agent_status=body.get("agent_status") or body.get("status"),
                               current_sha=current, previous_sha=previous, releases=releases)
    HostReleasesResponse(hosts=[info])
    return info


def cli_row(status: int, body: Any) -> str:
    """`decnet swarm update`'s table row for one host: its agent cell and detail text."""
    if status == 200:
        cell = "updated"
    elif status == 409:
        cell = "rolled-back"
    else:
        cell = str(status)
    detail = ""
    if isinstance(body, dict):
        try:
            detail = body.get("release", {}).get("sha") or body.get("detail", {}).get("error") or ""
        except AttributeError as exc:
            raise Unreadable(f"the CLI's table fails: {exc}") from exc
    return f"{cell} | {str(detail)[:80]}"


# --- The cases -----------------------------------------------------------------------------

def read_case(case: Dict[str, Any]) -> str:
    """What the master makes of one case, as one comparable string."""
    route, status = case["route"], case["status"]
    body = parse_body(case["body"])
    if route == "update":
        r = push(status, body)
        PushUpdateResponse(sha=SHA, tarball_bytes=1, results=[r])
        out = f"{r.status}: {r.detail}"
        if case.get("cli"):
            out += " || cli " + cli_row(status, body)
        return out
    if route == "include-self":
        r = include_self(case["update_status"], parse_body(case["update_body"]), status)
        PushUpdateResponse(sha=SHA, tarball_bytes=1, results=[r])
        return f"{r.status}: {r.detail}"
    if route == "update-self":
        r = push_self(status, body)
        PushUpdateResponse(sha=SHA, tarball_bytes=1, results=[r])
        return f"{r.status}: {r.detail}"
    if route == "rollback":
        return rollback(status, body)
    if route in ("health", "releases"):
        # /releases has the same list; the master's client reads it with raise_for_status.
        info = host_releases(status, body)
        return f"{'reachable' if info.reachable else 'unreachable'}: {info.agent_status}"
    raise Unreadable(f"unknown route {route!r}")


def check(case: Dict[str, Any]) -> Optional[str]:
    """None when the master reads the case as expected, else why not."""
    try:
        got = read_case(case)
    except (Unreadable, ValidationError) as exc:
        return "the master cannot read it: " + " ".join(str(exc).split())
    if not got.startswith(case["expect"] + ":"):
        return f"classified {got!r}, expected {case['expect']!r}"
    want = case.get("detail_contains")
    if want and want not in got:
        return f"read {got!r}, which does not contain {want!r}"
    return None


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    failed = 0
    for case in cases:
        why = check(case)
        if why is None:
            print(f"ok   {case['name']}: {read_case(case)[:160]}")
        else:
            failed += 1
            print(f"FAIL {case['name']} ({case['route']} {case['status']} "
                  f"{case['body'][:300]}): {why}")
    print(f"{len(cases) - failed} of {len(cases)} answers read as DECNET's master reads them")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
