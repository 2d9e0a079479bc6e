#!/usr/bin/env bash
# Runs the helper benchmarks and writes their results into docs/performance.md.
# usage: bench/run.sh [BUILD_DIR]   (default build/release; builds helper_bench first)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
cmake --build "$build" --target helper_bench >/dev/null
out=$(mktemp)
# The helper logs every request to stderr (the journal in production): sent to /dev/null here
# so the terminal is not the bottleneck.
"$build/bench/helper_bench" --benchmark_repetitions=7 --benchmark_min_time=0.3 \
  --benchmark_format=json >"$out" 2>/dev/null
python3 - "$out" docs/performance.md <<'PY'
import json, sys, platform, datetime
data = json.load(open(sys.argv[1]))
med = {b["run_name"].split("/")[0]: b for b in data["benchmarks"] if b.get("aggregate_name") == "median"}
def us(name):
    b = med[name]
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
    return b["real_time"] * scale
echo, path, write = us("BM_BareEcho"), us("BM_HelperProtocolPath"), us("BM_WriteUnitWithFsync")
ctx = data["context"]
section = f"""<!-- helper-bench:start -->
## Helper protocol path (bench/helper_bench.cc)

Measured {datetime.date.today()} on {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz,
median of 7 repetitions, both sides in one run over the same kind of `SOCK_SEQPACKET` socketpair.

| benchmark | median per request |
|---|---|
| bare echo of the same bytes | {echo:.2f} µs |
| helper: frame, strict parse, dispatch, refuse `unit_status ssh.service` before D-Bus, record, log, reply | {path:.2f} µs |
| **ratio, helper / bare echo** | **{path/echo:.2f}×** (target ≤ 2×) |
| `write_unit` (policy check, temp file, fsync, rename, fsync dir, record) | {write:.1f} µs |

Reproduce: `bash bench/run.sh` (after the README's test command has built `build/release`).
<!-- helper-bench:end -->
"""
sys.path.insert(0, "bench")
from doc_section import write_section
write_section(sys.argv[2], "helper-bench", section)
print(section)
PY
rm -f "$out"
# The daemon end to end (as root; boots a systemd container): bash bench/daemon_bench.sh [--write-doc]
# The HTTP server under a connection flood (loopback, ~75 s): "$build/bench/flood_bench" [MAX]
# decnet-rollout against 5, 10 and 20 workers on one machine (as root): bash bench/fleet_bench.sh [--write-doc]
