#!/usr/bin/env bash
# Extraction against its floor, side by side on the same tarball:
#   floor:      sha256sum F && tar -xzf F && sync
#   ours:       extract_tool F        (daemon/extract.cc, durable: syncfs before it returns)
#   ours+hash:  sha256sum F && extract_tool F   (the daemon hashes while uploading instead)
# The release is bench/make_release_tree.py's (10 001 files, 256 MiB), made once and
# cached. Runs alternate floor / ours / ours+hash, RUNS times (default 3); prints medians,
# ratios and extract_tool's peak RSS. Writes nothing into the source tree unless --write-doc,
# which replaces the extract-bench section of docs/performance.md.
#
# usage: bench/extract_bench.sh [--write-doc]
# env:   EXTRACT_BENCH_CACHE (default /tmp/decnet-extract-bench), EXTRACT_BENCH_BUILD (default
#        build/extract-bench), RUNS (default 3), MAKE_RELEASE_TREE (the generator script)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
write_doc=0
[[ "${1:-}" == "--write-doc" ]] && write_doc=1
cache=${EXTRACT_BENCH_CACHE:-/tmp/decnet-extract-bench}
build=${EXTRACT_BENCH_BUILD:-build/extract-bench}
runs=${RUNS:-3}
generator=${MAKE_RELEASE_TREE:-$repo/bench/make_release_tree.py}

mkdir -p "$cache"
tarball=$cache/release.tar.gz
if [[ ! -s $tarball ]]; then
  echo "generating the release tree and tarball in $cache ..." >&2
  rm -rf "$cache/tree"
  python3 "$generator" "$cache/tree" >&2
  tar -czf "$tarball.tmp" -C "$cache/tree" .
  mv "$tarball.tmp" "$tarball"
fi

if [[ ! -x $build/bench/extract_tool ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDECNET_BUILD_TESTS=OFF -DDECNET_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" --target extract_tool >/dev/null
tool=$build/bench/extract_tool

now() { date +%s.%N; }
# Every run extracts into its own new directory and nothing is deleted until the end: ext4
# skips inodes freed in the last ~30 s when allocating, so a run right after deleting 10 000
# files is slowed by the deletion (for tar and for us alike), which would blur the comparison.
out=$cache/runs
if [[ -e $out ]]; then
  rm -rf "$out"
  touch "$cache/last-delete"
fi
sync
if [[ -e $cache/last-delete ]]; then
  wait_s=$((35 - $(date +%s) + $(stat -c %Y "$cache/last-delete")))
  if ((wait_s > 0)); then
    echo "waiting ${wait_s} s for ext4's recently-deleted inode window to pass ..." >&2
    sleep "$wait_s"
  fi
fi
mkdir -p "$out"
n=0
fresh() { sync; n=$((n + 1)); dest=$out/$n; mkdir "$dest"; }

floor=() ours=() hashed=() hwm=()
cat "$tarball" >/dev/null  # every variant starts with the tarball in the page cache
for ((i = 0; i < runs; i++)); do
  fresh
  t0=$(now); sha256sum "$tarball" >/dev/null && tar -xzf "$tarball" -C "$dest" && sync; t1=$(now)
  floor+=("$(echo "$t1 - $t0" | bc)")
  fresh
  t0=$(now); line=$("$tool" "$tarball" "$dest"); t1=$(now)
  ours+=("$(echo "$t1 - $t0" | bc)")
  hwm+=("$(sed -n 's/.*vmhwm_kib=\([0-9]*\).*/\1/p' <<<"$line")")
  fresh
  t0=$(now); sha256sum "$tarball" >/dev/null && "$tool" "$tarball" "$dest" >/dev/null; t1=$(now)
  hashed+=("$(echo "$t1 - $t0" | bc)")
  echo "run $((i + 1)): floor ${floor[-1]} s, ours ${ours[-1]} s, ours+hash ${hashed[-1]} s, VmHWM ${hwm[-1]} KiB" >&2
done
fresh
t0=$(now); "$tool" "$tarball" "$dest" --fsync-each >/dev/null; t1=$(now)
fsync_each=$(echo "$t1 - $t0" | bc)
rm -rf "$out"
touch "$cache/last-delete"

BENCH_DIR="$repo/bench" python3 - "$write_doc" "$repo/docs/performance.md" "$fsync_each" \
  "${floor[*]}" "${ours[*]}" "${hashed[*]}" "${hwm[*]}" "$(nproc)" "$(stat -c %s "$tarball")" <<'PY'
import datetime, os, re, statistics, sys
write_doc, doc, fsync_each = sys.argv[1] == "1", sys.argv[2], float(sys.argv[3])
floor, ours, hashed = ([float(x) for x in a.split()] for a in sys.argv[4:7])
hwm = max(int(x) for x in sys.argv[7].split())
cpus, size = sys.argv[8], int(sys.argv[9])
mf, mo, mh = statistics.median(floor), statistics.median(ours), statistics.median(hashed)
section = f"""<!-- extract-bench:start -->
## Extraction (daemon/extract.cc, bench/extract_bench.sh)

Measured {datetime.date.today()} on {cpus} CPUs (shared with other work: compare within a run, not
across runs); the release of `bench/make_release_tree.py` (10 001 files, 256 MiB, {size / 1e6:.0f} MB
gzipped), tarball in the page cache, median of {len(floor)} alternating runs, each into a fresh
directory after a `sync`.

| variant | median | ratio to floor |
|---|---|---|
| floor: `sha256sum F && tar -xzf F && sync` | {mf:.2f} s | 1.00× |
| ours, extraction alone (durable: one `syncfs`) | {mo:.2f} s | **{mo / mf:.2f}×** |
| ours + `sha256sum F` first (as the floor hashes) | {mh:.2f} s | **{mh / mf:.2f}×** |
| ours with `fsync` of each file and directory instead of `syncfs` (one run) | {fsync_each:.2f} s | {fsync_each / mf:.2f}× |

Peak RSS (`VmHWM`) of the extracting process: {hwm / 1024:.1f} MiB (cap: well under 64 MiB).
Targets: ≤ 1.0× the floor, goal 0.8×. In the daemon the digest is computed while the upload
streams to the spool, so "extraction alone" is the figure the pipeline adds after the upload.
Reproduce: `bash bench/extract_bench.sh` (`--write-doc` rewrites this section).
<!-- extract-bench:end -->
"""
print(section)
if write_doc:
    sys.path.insert(0, os.environ["BENCH_DIR"])
    from doc_section import write_section
    write_section(doc, "extract-bench", section)
PY
