#!/usr/bin/env bash
# decnet-rollout against a fleet on one machine: up to 20 workers, each the real helper forking
# the real daemon beside a real systemd container, in a network namespace of its own; the
# master in a hub namespace (bench/fleet_bench.cc, tests/integration/fleet_net.h).
#
# 1. Rollouts to 5, 10 and 20 workers with --max-parallel 5 (the canary alone, then the rest
#    in one batch, five in flight), against the sum of the single-host update times of the
#    same workers measured in the same run (`push --host wK`, one after the other).
#    Goal: wall time within 1.2x of that sum divided by 5.
# 2. The master's peak RSS (wait4's ru_maxrss of decnet-rollout) while it pushes a small and
#    a large tarball (incompressible padding) to five workers. Goal: flat.
#
# Run as root, after scripts/setup.sh. Writes nothing into the source tree unless --write-doc,
# which replaces the fleet-bench section of docs/performance.md.
#
# usage: bench/fleet_bench.sh [--write-doc]
# env:   FLEET_BENCH_BUILD (default build/release: an existing configured build dir),
#        SIZES (5,10,20), SMALL_MIB (5), LARGE_MIB (50), SETTLE_MS (1000: each worker's
#        settle window, the same for single and fleet pushes), REPORT_FROM=FILE (no
#        measuring: the section from a results file; each run leaves /tmp/fleet-bench.json)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
write_doc=0
[[ "${1:-}" == "--write-doc" ]] && write_doc=1
build=${FLEET_BENCH_BUILD:-build/release}
results=${REPORT_FROM:-}

log() { echo "fleet_bench: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z $results ]]; then
  [[ $(id -u) == 0 ]] || die "run as root (it boots containers and starts the root helper)"
  id decnet-updater >/dev/null 2>&1 || die "no user decnet-updater (scripts/setup.sh creates it)"
  [[ -f $build/CMakeCache.txt ]] || die "$build is not a configured build dir"
  cmake --build "$build" -j2 --target fleet_bench >/dev/null
  bash "$repo/scripts/testbed/container.sh" reap
  bash "$repo/scripts/testbed/rootfs.sh" >/dev/null
  results=/tmp/fleet-bench.json
  # Each container's systemd takes several inotify instances; the default of 128 per user
  # (all of them are root's) runs out near 15 containers. Raised for the run, put back after.
  inotify=/proc/sys/fs/inotify/max_user_instances
  old_inotify=$(cat "$inotify")
  if ((old_inotify < 1024)); then
    trap 'echo "$old_inotify" >"$inotify"' EXIT
    echo 1024 >"$inotify"
  fi
  "$build/bench/fleet_bench" --sizes "${SIZES:-5,10,20}" --small-mib "${SMALL_MIB:-5}" \
    --large-mib "${LARGE_MIB:-50}" --settle-ms "${SETTLE_MS:-1000}" >"$results.tmp"
  mv "$results.tmp" "$results"
fi

BENCH_DIR="$repo/bench" python3 - "$write_doc" "$repo/docs/performance.md" "$results" "$(nproc)" <<'PY'
import datetime, json, os, re, sys
write_doc, doc, results, cpus = sys.argv[1] == "1", sys.argv[2], sys.argv[3], sys.argv[4]
r = json.load(open(results))
rows = []
for x in r["rollouts"]:
    n, wall, total = x["workers"], x["wall_ms"] / 1000, x["sum_single_ms"] / 1000
    single = x["single_ms"]
    # The plan's own floor: the canary alone, then the other n-1 five at a time.
    plan = single[0] / 1000 + sum(single[1:]) / 1000 / 5
    rows.append(f"| {n} | {total:.1f} s | {total / 5:.1f} s | {wall:.1f} s | "
                f"**{wall / (total / 5):.2f}×** | {wall / plan:.2f}× | {x['max_rss_kib'] / 1024:.1f} MiB |")
mem = [f"| {m['tarball_bytes'] / 2**20:.1f} MiB | {m['workers']} | {m['wall_ms'] / 1000:.1f} s | "
       f"**{m['max_rss_kib'] / 1024:.1f} MiB** |" for m in r["memory"]]
ratio = r["memory"][-1]["max_rss_kib"] / r["memory"][0]["max_rss_kib"]
size_ratio = r["memory"][-1]["tarball_bytes"] / r["memory"][0]["tarball_bytes"]
small = r["rollouts"][0]["tarball_bytes"] / 2**20
grown = (r["memory"][-1]["max_rss_kib"] - r["memory"][0]["max_rss_kib"]) / 1024
grown_tar = (r["memory"][-1]["tarball_bytes"] - r["memory"][0]["tarball_bytes"]) / 2**20
verdict = ("flat." if ratio <= 1.2 else
           f"**not flat**: {grown:.0f} MiB more for a tarball {grown_tar:.0f} MiB larger, about one "
           "copy of the tarball (not one per host in flight).")
section = f"""<!-- fleet-bench:start -->
## Rollouts to a fleet (decnet-rollout, bench/fleet_bench.sh)

Measured {datetime.date.today()} on {cpus} CPUs shared by the master and every worker: up to
{r['workers_started']} workers on one machine, each the real helper and daemon beside its own
systemd container, in a network namespace of its own, reached over a bridge from the master's
namespace ({r['boot_s']:.0f} s to boot them). Each push is a new version of a {small:.1f} MiB
release (the test agent, its unit, incompressible padding); every worker restarts the unit and
gates on the agent's health after a settle window of {r['settle_ms']} ms. Single-host times are
`push --host wK` to each worker in turn, measured in the same run just before the rollout to all
of them (`--batch N --max-parallel 5`: the canary alone, then the rest five at a time).

| workers | sum of single-host updates | sum / 5 | rollout wall time | ratio to sum / 5 (goal ≤ 1.2×) | ratio to canary + rest / 5 | master peak RSS |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The canary runs alone by design, so a rollout cannot beat one host's time plus the rest
divided by five: the second ratio is against that floor. All the workers share {cpus} CPUs with
the master, so five updates in flight also compete for CPU (hashing, extraction, the agents'
start), which a real fleet does not.

The master's memory against the tarball's size (five workers, five in flight). The peak is
decnet-rollout's own high-water mark (VmHWM of its image, sampled until it exits), not wait4's
maxrss, which would also count the benchmark driver it was forked from:

| tarball | workers | wall time | master peak RSS |
|---|---|---|---|
{chr(10).join(mem)}

{size_ratio:.1f}× the tarball, {ratio:.2f}× the peak RSS (goal: flat): {verdict}

Reproduce (as root, after `scripts/setup.sh` and a `build/release` build):
`bash bench/fleet_bench.sh` (`--write-doc` rewrites this section; `SIZES`, `SMALL_MIB`,
`LARGE_MIB`, `SETTLE_MS` in the environment).
<!-- fleet-bench:end -->
"""
print(section)
if write_doc:
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from doc_section import write_section
    write_section(doc, "fleet-bench", section)
PY
