#!/usr/bin/env bash
# The daemon, measured through the real product: decnet-update-helper (root) forks
# decnet-updaterd (user decnet-updater) exactly as in production, against a real systemd (PID 1
# of a throw-away container, scripts/testbed/container.sh, host network); releases are pushed
# by curl over loopback mTLS as DECNET's master pushes them (-F tarball=@F -F sha256=HEX).
#
# 1. Update pipeline: the release of bench/make_release_tree.py (10 001 files, 256 MiB),
#    upload + SHA-256 while spooling + extraction + durable on disk, against the floor
#    `sha256sum F && tar -xzf F -C fresh_dir && sync` on the same file. Runs alternate which
#    goes first; median of RUNS (default 5). Three tarballs that differ only in
#    pyproject.toml's version rotate, so that every push is a new digest that is extracted
#    (keep_releases 2: each timed push also prunes the release two back, after it answers).
#    The configured unit is a stand-in (`sleep infinity`) and the probed agent runs on the
#    host, settle_ms 0: the restart and gate cost a few tens of ms, and are reported apart.
# 2. Peak RSS (VmHWM of the daemon, fresh process) while it receives, verifies, extracts and
#    installs a 1 GiB tar.gz of random (incompressible) data; the bound is 64 MiB.
# 3. End of upload to reply for a small release whose unit restarts at once (DECNET-like: it
#    ships etc/systemd/system/decnet-agent.service and bin/decnet-test-agent; the gate probes
#    that agent over mTLS and checks its version), with the daemon's default settle_ms (3000)
#    and probe settings; median of GATE_RUNS (default 5), broken down by the audit log's
#    durations_ms.
#
# Run as root (it boots a container and starts the root helper), after scripts/setup.sh.
# Writes nothing into the source tree unless --write-doc, which replaces the daemon-bench
# section of docs/performance.md.
#
# usage: bench/daemon_bench.sh [--write-doc]
# env:   DAEMON_BENCH_BUILD (default build/release: an existing configured build dir),
#        DAEMON_BENCH_CACHE (default /tmp/decnet-daemon-bench: the generated tarballs),
#        RUNS (5), GATE_RUNS (5), QUIET_S (35: pause after each push that deleted a release,
#        see below), PERF=1 (also profile the daemon with perf, reports in the cache dir),
#        MAKE_RELEASE_TREE (the generator script), REPORT_FROM=FILE (no measuring: the section
#        from a results file; each run leaves its own in the cache dir as last-results.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# shellcheck source=../scripts/lib/pki.sh
source "$repo/scripts/lib/pki.sh"
write_doc=0
[[ "${1:-}" == "--write-doc" ]] && write_doc=1
build=${DAEMON_BENCH_BUILD:-build/release}
cache=${DAEMON_BENCH_CACHE:-/tmp/decnet-daemon-bench}
runs=${RUNS:-5}
gate_runs=${GATE_RUNS:-5}
quiet_s=${QUIET_S:-35}
generator=${MAKE_RELEASE_TREE:-$repo/bench/make_release_tree.py}
readonly TESTBED="$repo/scripts/testbed/container.sh"
readonly CONTAINER_DECNET_UID=990  # the units' user in the testbed's root filesystem

log() { echo "daemon_bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ report
# report RESULTS: prints the doc section from a results file (and writes it with --write-doc).
report() {
QUIET_S=$quiet_s BENCH_DIR="$repo/bench" python3 - "$write_doc" "$repo/docs/performance.md" "$1" "$(nproc)" \
  "$(stat -c %s "$cache/release-1.tar.gz")" "$(stat -c %s "$cache/random-1g.tar.gz")" <<'PY'
import datetime, json, os, re, statistics, sys
write_doc, doc, results, cpus = sys.argv[1] == "1", sys.argv[2], sys.argv[3], sys.argv[4]
size, big_size = int(sys.argv[5]), int(sys.argv[6])
floor, pipe, gate, big, hwm, mount = [], [], [], None, {}, "?"
for line in open(results):
    f = line.split()
    if f[0] == "floor":
        floor.append(float(f[1]))
    elif f[0] in ("pipeline", "gate", "big"):
        r = {"wall": float(f[1]), "upload": float(f[3]), "wait": float(f[4]), "audit": float(f[5]),
             "d": json.loads(f[6])}
        {"pipeline": pipe, "gate": gate}.get(f[0], []).append(r)
        if f[0] == "big":
            big = r
    elif f[0] == "mount":
        fstype, _, options = f[1].partition(":")
        mount = f"{fstype} ({options.lstrip(':')})"
    elif f[0].startswith("hwm_") or f[0] == "small_release_bytes":
        hwm[f[0]] = int(f[1])
med = statistics.median
def md(rows, key):
    return med([r["d"].get(key, 0) for r in rows]) / 1000
mf = med(floor)
rg = lambda r: (r["d"].get("apply", 0) + r["d"].get("gate", 0)) / 1000
m_audit = med([r["audit"] for r in pipe])  # curl's start to the audit line: durable, live, gated
m_work = med([r["audit"] - rg(r) for r in pipe])  # the same without restart and gate
mw = med([r["wall"] for r in pipe])  # to the 200
mup = med([r["upload"] for r in pipe])
m_rg = med([rg(r) for r in pipe])
mx = md(pipe, "extract")
m_before = med([r["audit"] - r["upload"] - r["d"].get("total", 0) / 1000 for r in pipe])
m_rest = med([(r["d"].get("total", 0) - r["d"].get("extract", 0) - r["d"].get("apply", 0)
               - r["d"].get("gate", 0)) / 1000 for r in pipe])
m_after = med([r["wall"] - r["audit"] for r in pipe])
x_after = max([r["wall"] - r["audit"] for r in pipe])
gw = med([r["wait"] for r in gate])
g_apply, g_gate, g_total, g_extract = md(gate, "apply"), md(gate, "gate"), md(gate, "total"), md(gate, "extract")
g_outside = med([r["wait"] - r["d"].get("total", 0) / 1000 for r in gate])
settle = 3.0
mib = lambda kib: kib / 1024
rng = lambda xs: f"{min(xs):.2f}–{max(xs):.2f} s"
discard_note = ("\nWith `discard`, deleting a file waits for the disk to trim its extents (perf: `unlinkat` →\n"
                "`ext4_free_blocks` → `blkdev_issue_discard`): deleting a release can take seconds, which\n"
                "is why the daemon prunes after it has answered (still refusing a second update meanwhile)."
                if "discard" in mount else "")
section = f"""<!-- daemon-bench:start -->
## The daemon, end to end (bench/daemon_bench.sh)

Measured {datetime.date.today()} on {cpus} CPUs (shared with other work: compare within a run,
not across runs), through the real product: `decnet-update-helper` (root) forks
`decnet-updaterd` (user `decnet-updater`), units restart in a real systemd (the testbed
container), releases are pushed with `curl --cert --key --cacert -F tarball=@F -F sha256=HEX`
over loopback mTLS.

### Update pipeline against its floor

The release of `bench/make_release_tree.py` (10 001 files, 256 MiB, {size / 1e6:.0f} MB gzipped), tarball
in the page cache; floor and daemon alternate (which goes first alternates too), median of
{len(floor)} runs each. Every push is a new digest, so every push uploads, hashes, extracts and
`syncfs`es a full release, then activates it: the configured unit is a stand-in
(`sleep infinity`), `settle_ms` 0, one mTLS probe of an agent on the host. The store keeps 2
releases, so each push also deletes the release two back, after it answers; each run starts
{os.environ.get('QUIET_S', '35')} s after the last deletion (ext4 avoids reusing inodes freed
moments ago).

| variant | median | runs (min–max) | ratio to floor |
|---|---|---|---|
| floor: `sha256sum F && tar -xzf F -C fresh_dir && sync` | {mf:.2f} s | {rng(floor)} | 1.00× |
| **daemon: curl's start to the release durable and live** (the audit line written) | {m_audit:.2f} s | {rng([r["audit"] for r in pipe])} | **{m_audit / mf:.2f}×** |
| the same without the unit's restart and the gate (audit `apply` + `gate`) | {m_work:.2f} s | {rng([r["audit"] - rg(r) for r in pipe])} | **{m_work / mf:.2f}×** |
| daemon: curl's whole `POST /update`, to the 200 | {mw:.2f} s | {rng([r["wall"] for r in pipe])} | {mw / mf:.2f}× |

Where the daemon's time goes (medians):

| step | median |
|---|---|
| upload over mTLS, hashed while spooling (curl's start to its last byte sent) | {mup:.2f} s |
| last byte to the pipeline's start (digest check, hand-over to the worker) | {m_before:.2f} s |
| extraction to durable (audit `extract`: libarchive, our writes, one `syncfs`) | {mx:.2f} s |
| manifest, completion record, flip, commit (rest of audit `total`) | {m_rest:.2f} s |
| restart of the stand-in unit and the gate (audit `apply` + `gate`) | {m_rg:.2f} s |
| after the audit line to the 200 (the prune of the release two back follows the reply) | {m_after:.2f} s (max {x_after:.2f} s) |

Target: ≤ 1.0× the floor, goal 0.8×. The store's filesystem here: {mount}.{discard_note}

### Memory while receiving a 1 GiB release

A fresh daemon received, hashed, verified, extracted (1 GiB into one file) and activated a
{big_size / 2**30:.2f} GiB tar.gz of random, incompressible data (answer 200 after
{big['wall']:.1f} s). Peak RSS (`VmHWM`): **{mib(hwm['hwm_after_1g']):.1f} MiB** (bound: 64 MiB;
{mib(hwm['hwm_idle']):.1f} MiB when idle before it; {mib(hwm['hwm_after_pipeline']):.1f} MiB for
the daemon of the runs above after all its pushes).

### End of upload to reply, units restarting at once

A DECNET-like release ({hwm['small_release_bytes'] / 1e6:.1f} MB: `.decnet-release.json`,
`bin/decnet-test-agent`, `etc/systemd/system/decnet-agent.service`), each push a new version, so
each rewrites the unit, reloads systemd, repoints the link, restarts the unit and gates on
the agent's mTLS health with its version checked. The daemon's defaults: `settle_ms` 3000;
probe `attempts` 10, `interval_ms` 1000, `timeout_ms` 3000. Median of {len(gate)} pushes, from
curl's last byte sent to the status line of the reply:

| part | median |
|---|---|
| **end of upload to reply** | **{gw:.3f} s** |
| of which the settle window (configured) | {settle:.3f} s |
| **the updater's own overhead** (the rest) | **{gw - settle:.3f} s** |
| audit `extract` | {g_extract * 1000:.0f} ms |
| audit `apply`: `write_unit`, `daemon_reload`, `repoint_link`, `restart_unit` (job done) | {g_apply * 1000:.0f} ms |
| audit `gate` beyond the settle window: polling, the first probe that passes | {(g_gate - settle) * 1000:.0f} ms |
| rest of the audit's `total` (manifest, unit policy, completion record, flip, commit) | {(g_total - g_extract - g_apply - g_gate) * 1000:.0f} ms |
| outside the pipeline's clock (digest check, hand-over, prune, reply) | {g_outside * 1000:.0f} ms |

Reproduce (as root, after `scripts/setup.sh` and a `build/release` build):
`bash bench/daemon_bench.sh` (`--write-doc` rewrites this section; `RUNS`, `GATE_RUNS`,
`PERF=1` in the environment).
<!-- daemon-bench:end -->
"""
print(section)
if write_doc:
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from doc_section import write_section
    write_section(doc, "daemon-bench", section)
PY
}
if [[ -n ${REPORT_FROM:-} ]]; then
  report "$REPORT_FROM"
  exit 0
fi

# ------------------------------------------------------------------ build and inputs
[[ $(id -u) == 0 ]] || die "run as root (it boots a container and starts the root helper)"
id decnet-updater >/dev/null 2>&1 || die "no user decnet-updater (scripts/setup.sh creates it)"
[[ -f $build/CMakeCache.txt ]] || die "$build is not a configured build dir (cmake --preset release)"
cmake --build "$build" -j2 --target decnet-updaterd decnet-update-helper decnet-test-agent >/dev/null
HELPER=$build/helper/decnet-update-helper
UPDATERD=$build/daemon/decnet-updaterd
AGENT=$build/tests/decnet-test-agent
for b in "$HELPER" "$UPDATERD" "$AGENT"; do [[ -x $b ]] || die "missing $b after the build"; done

mkdir -p "$cache"
if [[ ! -s $cache/release-3.tar.gz ]]; then
  log "generating the release tree and three tarballs in $cache ..."
  rm -rf "$cache/tree"
  python3 "$generator" "$cache/tree" >&2
  for k in 1 2 3; do
    printf '[project]\nname = "decnet"\nversion = "1.0.%s"\n' "$k" >"$cache/tree/pyproject.toml"
    tar -czf "$cache/release-$k.tar.gz.tmp" -C "$cache/tree" .
    mv "$cache/release-$k.tar.gz.tmp" "$cache/release-$k.tar.gz"
  done
fi
if [[ ! -s $cache/random-1g.tar.gz ]]; then
  log "generating a 1 GiB release of random data in $cache ..."
  rm -rf "$cache/random"
  mkdir -p "$cache/random/data"
  head -c $((1 << 30)) /dev/urandom >"$cache/random/data/blob.bin"
  tar -cf - -C "$cache/random" . | gzip -1 >"$cache/random-1g.tar.gz.tmp"
  mv "$cache/random-1g.tar.gz.tmp" "$cache/random-1g.tar.gz"
  rm -rf "$cache/random"
fi
for f in release-1 release-2 release-3 random-1g; do
  [[ $cache/$f.sha256 -nt $cache/$f.tar.gz ]] ||
    sha256sum "$cache/$f.tar.gz" | cut -d' ' -f1 >"$cache/$f.sha256"
done

# ------------------------------------------------------------------ the testbed
"$TESTBED" reap 2>/dev/null || true
WORK=$(mktemp -d /tmp/decnet-testbed-bench.XXXXXX)
NAME="decnet-bench-$$"
HELPER_PID="" DAEMON_PID="" HOST_AGENT_PID=""
stop_updater() {
  if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; fi
  if [[ -n $HELPER_PID ]]; then
    for _ in $(seq 1 100); do kill -0 "$HELPER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HELPER_PID" 2>/dev/null && kill -TERM "$HELPER_PID" 2>/dev/null
    wait "$HELPER_PID" 2>/dev/null || true
  fi
  HELPER_PID="" DAEMON_PID=""
}
cleanup() {
  stop_updater
  if [[ -n $HOST_AGENT_PID ]]; then kill "$HOST_AGENT_PID" 2>/dev/null || true; fi
  "$TESTBED" stop "$NAME" "$WORK" >/dev/null 2>&1 || true
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 0755 "$WORK"
STORE=$WORK/opt-decnet PKI=$WORK/pki AGENT_CERTS=$WORK/agent
install -d -m 0755 -o decnet-updater -g decnet-updater "$STORE"
install -d -m 0755 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$AGENT_CERTS"
install -d -m 0755 "$WORK/units" "$WORK/bin" "$WORK/updater-bin" "$WORK/floor" "$WORK/rel"
# The stand-in unit of benchmarks 1 and 2, in place before systemd boots.
cat >"$WORK/units/decnet-bench.service" <<'EOF'
[Unit]
Description=DECNET benchmark stand-in

[Service]
Type=exec
User=decnet
Group=decnet
NoNewPrivileges=yes
ExecStart=/bin/sleep infinity
EOF
log "booting the testbed container ..."
"$TESTBED" start "$NAME" "$WORK" --share-host-network \
  --bind-ro="$STORE:/opt/decnet" --bind-ro="$AGENT_CERTS:/etc/decnet/agent" \
  >"$WORK/boot.log" 2>&1 || { cat "$WORK/boot.log" >&2; die "the container did not come up"; }
ROOTFS=$(cat "$WORK/rootfs")
BUS="unix:path=$WORK/dbus/system_bus_socket"

# Certificates for this run: a CA, the updater (server), decnet-master and a worker (clients),
# the agent (server).
install -d -m 0700 -o decnet-updater -g decnet-updater "$PKI"
pki_ca "$PKI" decnet-bench-ca "$WORK/openssl.log"
issue() { pki_issue "$PKI" "$1" "$2" "$3" "$WORK/openssl.log"; }  # NAME CN server|client
issue updater decnet-updater server
issue master decnet-master client
issue worker decnet-worker client
issue agent decnet-agent server
rm -f "$PKI"/*.csr "$PKI/ca.key"
chown decnet-updater:decnet-updater "$PKI"/*; chmod 0600 "$PKI"/*.key
install -m 0644 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$PKI/ca.crt" "$PKI/agent.crt" "$AGENT_CERTS/"
install -m 0600 -o "$CONTAINER_DECNET_UID" -g "$CONTAINER_DECNET_UID" "$PKI/agent.key" "$AGENT_CERTS/"
install -m 0755 "$UPDATERD" "$WORK/updater-bin/decnet-updaterd"

free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
UPDATER_PORT=$(free_port)
AGENT_PORT=$(free_port)
while [[ $AGENT_PORT == "$UPDATER_PORT" ]]; do AGENT_PORT=$(free_port); done
API="https://127.0.0.1:$UPDATER_PORT"
CURL=(curl -sS --max-time 900 --cacert "$PKI/ca.crt" --cert "$PKI/master.crt" --key "$PKI/master.key")

# write_configs PHASE UNITS_JSON LINKS_JSON HELPER_LINKS_JSON EXTRA_JSON: the daemon's and the
# helper's configuration of one phase (each phase has a state directory of its own).
write_configs() {
  local phase=$1
  install -d -m 0700 -o decnet-updater -g decnet-updater "$WORK/$phase-daemon-state" "$WORK/$phase-updater"
  cat >"$WORK/$phase-daemon.json" <<EOF
{"listen_address": "127.0.0.1", "port": $UPDATER_PORT,
 "tls_ca": "$PKI/ca.crt", "tls_cert": "$PKI/updater.crt", "tls_key": "$PKI/updater.key",
 "install_dir": "$STORE", "updater_dir": "$WORK/$phase-updater", "state_dir": "$WORK/$phase-daemon-state",
 "units": $2, "links": $3, "helper_policy": "$WORK/$phase-helper.json", $5}
EOF
  cat >"$WORK/$phase-helper.json" <<EOF
{"unit_dir": "$WORK/units", "link_dir": "$WORK/bin", "state_dir": "$WORK/$phase-helper-state",
 "unit_root": "$ROOTFS", "daemon_binary": "$WORK/updater-bin/decnet-updaterd",
 "daemon_args": ["--config", "$WORK/$phase-daemon.json"], "links": $4,
 "hello_timeout_ms": 60000, "restart_timeout_ms": 30000}
EOF
  chmod 0644 "$WORK/$phase-daemon.json" "$WORK/$phase-helper.json"
}

start_updater() {  # PHASE
  DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$HELPER" --config "$WORK/$1-helper.json" \
    </dev/null >>"$WORK/updater.log" 2>&1 &
  HELPER_PID=$!
  local deadline=$((SECONDS + 60)) code
  until code=$("${CURL[@]}" -o "$WORK/health" -w '%{http_code}' "$API/health" 2>/dev/null) &&
      [[ $code == 200 ]] && grep -q '"alive":true' "$WORK/health"; do
    kill -0 "$HELPER_PID" 2>/dev/null || { tail -n 20 "$WORK/updater.log" >&2; die "the helper exited during start-up"; }
    ((SECONDS < deadline)) || { tail -n 20 "$WORK/updater.log" >&2; die "the daemon did not answer /health"; }
    sleep 0.2
  done
  DAEMON_PID=$(ps --ppid "$HELPER_PID" -o pid= | head -n 1 | tr -d ' ')
  [[ $(stat -c %U "/proc/$DAEMON_PID") == decnet-updater ]] || die "the daemon does not run as decnet-updater"
}

hwm_kib() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$DAEMON_PID/status"; }

now() { date +%s.%N; }
RESULTS=$WORK/results
echo "mount $(findmnt -no FSTYPE,OPTIONS -T "$WORK" | awk '{print $1 ":" $2}')" >"$RESULTS"
# push KIND FILE DIGEST: POST /update with curl as the master; appends one line to RESULTS:
#   KIND wall_s http_code upload_s reply_wait_s to_audit_s audit-durations-json
# upload_s is curl's start to "We are completely uploaded" and reply_wait_s from there to the
# status line (curl -v --trace-time); the durations are the daemon's audit line for it.
push() {
  local kind=$1 file=$2 digest=$3 t0 t1 code
  t0=$(now)
  code=$("${CURL[@]}" -v --trace-time -o "$WORK/body" -w '%{http_code}' \
    -F "tarball=@$file" -F "sha256=$digest" "$API/update" 2>"$WORK/curl.trace") || true
  t1=$(now)
  [[ $code == 200 ]] || { cat "$WORK/body" >&2; tail -n 5 "$WORK/curl.trace" >&2; die "push of $file answered $code"; }
  python3 - "$kind" "$t0" "$t1" "$code" "$WORK/curl.trace" \
    "$WORK/$PHASE-daemon-state/audit.jsonl" >>"$RESULTS" <<'PY'
import json, os, sys
kind, t0, t1, code, trace, audit = sys.argv[1:]
t0, t1 = float(t0), float(t1)
# The audit line is written (then fdatasync'ed) when the pipeline has finished: the release
# extracted, durable, activated and gated, before the prune and the reply.
to_audit = os.stat(audit).st_mtime_ns / 1e9 - t0
def secs(line):
    h, m, s = line.split()[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
first = uploaded = reply = None
for line in open(trace, errors="replace"):
    if not line[:1].isdigit():
        continue
    t = secs(line)
    first = t if first is None else first
    if "We are completely uploaded" in line:
        uploaded = t
    elif "< HTTP/" in line and " 100 " not in line and uploaded is not None and reply is None:
        reply = t
day = lambda d: d % 86400
last = json.loads(open(audit).read().splitlines()[-1])
print(kind, f"{t1 - t0:.4f}", code, f"{day(uploaded - first):.4f}", f"{day(reply - uploaded):.4f}",
      f"{to_audit:.4f}",
      json.dumps(last.get("durations_ms", {}), separators=(",", ":")))
PY
  tail -n 1 "$RESULTS" | sed 's/^/    /' >&2
}

# ------------------------------------------------------------------ 1 and 2
PHASE=a
"$AGENT" --port "$AGENT_PORT" --version bench --ca "$PKI/ca.crt" --cert "$PKI/agent.crt" \
  --key "$PKI/agent.key" >"$WORK/host-agent.log" 2>&1 &
HOST_AGENT_PID=$!
write_configs a '["decnet-bench.service"]' '[]' '[]' \
  '"keep_releases": 2, "max_upload_bytes": 2147483648, "settle_ms": 0, "update_deadline_ms": 900000,
   "probe": {"url": "https://127.0.0.1:'"$AGENT_PORT"'/health", "ca": "'"$PKI/ca.crt"'",
             "cert": "'"$PKI/worker.crt"'", "key": "'"$PKI/worker.key"'",
             "attempts": 20, "interval_ms": 100, "timeout_ms": 3000}'
start_updater a
log "benchmark 1: daemon pid $DAEMON_PID, API $API; warming up with two pushes ..."
digest() { cat "$cache/$1.sha256"; }
cat "$cache"/release-?.tar.gz >/dev/null  # every variant starts with the tarball in the page cache
push warmup "$cache/release-1.tar.gz" "$(digest release-1)"
push warmup "$cache/release-2.tar.gz" "$(digest release-2)"
# ext4 avoids inodes freed in the last ~30 s when allocating: a run right after the daemon's
# prune (10 001 files deleted) would be slowed by it, so every run starts QUIET_S after one.
quiet() { log "quiet ${quiet_s} s after a deletion ..."; sleep "$quiet_s"; }
n=0
floor_run() {  # FILE
  sync; n=$((n + 1)); local dest=$WORK/floor/$n t0 t1
  mkdir "$dest"
  t0=$(now); sha256sum "$1" >/dev/null && tar -xzf "$1" -C "$dest" && sync; t1=$(now)
  echo "floor $(echo "$t1 - $t0" | bc)" >>"$RESULTS"
  tail -n 1 "$RESULTS" | sed 's/^/    /' >&2
}
for ((i = 0; i < runs; i++)); do
  k=$(((i + 2) % 3 + 1))  # 3, 1, 2, 3, ...: never one of the two releases the store keeps
  f=$cache/release-$k.tar.gz
  log "run $((i + 1)) of $runs (release-$k)"
  if ((i % 2 == 0)); then
    floor_run "$f"; sync; push pipeline "$f" "$(digest release-$k)"; quiet
  else
    sync; push pipeline "$f" "$(digest release-$k)"; quiet; floor_run "$f"
  fi
done
echo "hwm_after_pipeline $(hwm_kib)" >>"$RESULTS"
# PERF=1: where the daemon's time goes, by perf (not part of the figures): one upload refused
# after spooling (a wrong digest: TLS, HTTP, multipart, spool, SHA-256 and nothing else), then
# one more whole push.
perf_during() {  # NAME COMMAND...: samples the daemon while COMMAND runs
  local name=$1 perf_pid
  shift
  perf record -F 1999 -g -o "$cache/perf-$name.data" -p "$DAEMON_PID" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 1
  "$@"
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  perf report -i "$cache/perf-$name.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
    grep -v '^#' | grep -v '^$' | head -n 60 >"$cache/perf-$name.txt" || true
  log "perf report: $cache/perf-$name.txt"
}
refused_upload() {  # FILE: pushed with a wrong digest, refused once the body is spooled
  local code
  code=$("${CURL[@]}" -v --trace-time -o "$WORK/body" -w '%{http_code}' -F "tarball=@$1" \
    -F "sha256=$(printf '0%.0s' $(seq 64))" "$API/update" 2>"$WORK/curl.trace") || true
  [[ $code == 400 ]] || die "a wrong digest answered $code"
  log "wrong digest refused ($code): $(grep -E 'Connected to|completely uploaded|< HTTP/1.1 400' "$WORK/curl.trace" |
    cut -d' ' -f1 | tr '\n' ' ')"
}
if [[ ${PERF:-0} == 1 ]] && command -v perf >/dev/null; then
  k=$(((runs + 2) % 3 + 1))
  perf_during upload refused_upload "$cache/release-$k.tar.gz"
  perf_during push push profiled "$cache/release-$k.tar.gz" "$(digest release-$k)"
  quiet
fi

log "benchmark 2: a fresh daemon receives the 1 GiB release"
stop_updater
start_updater a
echo "hwm_idle $(hwm_kib)" >>"$RESULTS"
push big "$cache/random-1g.tar.gz" "$(digest random-1g)"
echo "hwm_after_1g $(hwm_kib)" >>"$RESULTS"

# ------------------------------------------------------------------ 3
log "benchmark 3: small releases whose unit restarts at once"
stop_updater
kill "$HOST_AGENT_PID" 2>/dev/null || true; wait "$HOST_AGENT_PID" 2>/dev/null || true; HOST_AGENT_PID=""
find "$STORE" -mindepth 1 -delete  # phase B starts on an empty store
PHASE=b
write_configs b '["decnet-agent.service"]' \
  '[{"name": "decnet-test-agent", "target": "bin/decnet-test-agent"}]' \
  '[{"name": "decnet-test-agent", "target_prefix": "'"$STORE"'/current"}]' \
  '"keep_releases": 3,
   "probe": {"url": "https://127.0.0.1:'"$AGENT_PORT"'/health", "ca": "'"$PKI/ca.crt"'",
             "cert": "'"$PKI/worker.crt"'", "key": "'"$PKI/worker.key"'", "check_version": true}'
start_updater b
release() {  # VERSION: a tarball shipping the agent's unit and binary; sets TARBALL and DIGEST
  local version=$1 tree=$WORK/rel/$1
  install -d "$tree/bin" "$tree/etc/systemd/system"
  install -m 0755 "$AGENT" "$tree/bin/decnet-test-agent"
  printf '{"format":1,"version":"%s","kind":"service"}\n' "$version" >"$tree/.decnet-release.json"
  cat >"$tree/etc/systemd/system/decnet-agent.service" <<EOF
[Unit]
Description=DECNET test agent $version

[Service]
Type=exec
User=decnet
Group=decnet
NoNewPrivileges=yes
ExecStart=/opt/decnet/current/bin/decnet-test-agent --port $AGENT_PORT --version $version --ca /etc/decnet/agent/ca.crt --cert /etc/decnet/agent/agent.crt --key /etc/decnet/agent/agent.key
EOF
  TARBALL=$WORK/rel/decnet-$version.tar.gz
  tar -C "$tree" --owner=0 --group=0 -czf "$TARBALL" .decnet-release.json bin etc
  DIGEST=$(sha256sum "$TARBALL" | cut -d' ' -f1)
}
release 1.0.0
push warmup "$TARBALL" "$DIGEST"  # the first install
for ((i = 0; i < gate_runs; i++)); do
  release "2.0.$i"
  push gate "$TARBALL" "$DIGEST"
done
echo "small_release_bytes $(stat -c %s "$TARBALL")" >>"$RESULTS"
stop_updater

# ------------------------------------------------------------------ report
cp "$RESULTS" "$cache/last-results.txt"
report "$RESULTS"
