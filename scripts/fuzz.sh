#!/usr/bin/env bash
# Builds the libFuzzer targets (the `asan` preset: clang, ASan+UBSan, the same build as the
# sanitizer unit tests) and runs each one for SECONDS seconds (default 20), starting from its
# seed corpus in tests/fuzz/corpus/<target>.
# As many targets run at once as the machine has CPUs, each logging to
# build/fuzz/logs/<target>.log (shown in full when it fails). New inputs go to
# build/fuzz/corpus-work/<target>, never into the source tree; a crash leaves its reproducer
# in build/fuzz/artifacts/ and makes the script fail.
#
#   scripts/fuzz.sh          # a short run, as the test command does
#   scripts/fuzz.sh 600      # a longer run: ten minutes per target
#   scripts/fuzz.sh --build  # only build the targets (the test command does it in advance)
set -euo pipefail

build_only=0
if [ "${1:-}" = --build ]; then build_only=1; shift; fi
seconds="${1:-20}"
case "$seconds" in (*[!0-9]*|'') echo "usage: $0 [--build] [SECONDS]" >&2; exit 2;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/fuzz"    # logs, inputs found, reproducers
binaries="$root/build/asan/tests"
targets=(unit_policy request release_auth multipart extract http_session)

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/setup.sh)" >&2; exit 1; }

cd "$root"
cmake --preset asan >/dev/null
cmake --build --preset asan --target fuzzers
[ "$build_only" = 1 ] && exit 0

# One target: its seeds (and, for the unit policy, the unit fixtures), its own log.
fuzz_one() {
  local t="$1" work="$build/corpus-work/$1" seeds="$root/tests/fuzz/corpus/$1"
  [ -d "$seeds" ] || seeds="$root/tests/daemon/corpus/$t"
  [ -d "$seeds" ] || seeds="$root/tests/daemon/${t}_corpus"
  mkdir -p "$work"
  local extra=() flags=()
  [ "$t" = unit_policy ] && extra=("$root/tests/fixtures/units/accepted" "$root/tests/fixtures/units/refused")
  # A whole HTTP session runs a lot of code per input: the entropic schedule's bookkeeping
  # would take two thirds of its time.
  [ "$t" = http_session ] && flags=(-entropic=0)
  "$binaries/${t}_fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/${t}-" "${flags[@]}" \
    "$work" "$seeds" "${extra[@]}" >"$build/logs/$t.log" 2>&1
}

mkdir -p "$build/artifacts" "$build/logs"
slots="$(nproc)"
declare -A running=()
failed=()
# Waits for one running target and reports it.
reap() {
  local pid t
  wait -n -p pid "${!running[@]}" && rc=0 || rc=$?
  t="${running[$pid]}"
  unset "running[$pid]"
  if [ "$rc" = 0 ]; then
    echo "== $t: $(grep -E '^stat::number_of_executed_units' "$build/logs/$t.log" | awk '{print $2}') inputs in ${seconds}s, no crash"
  else
    echo "== $t: FAILED (exit $rc); its log:"
    cat "$build/logs/$t.log"
    failed+=("$t")
  fi
}
for t in "${targets[@]}"; do
  [ "${#running[@]}" -ge "$slots" ] && reap
  echo "== fuzzing $t for ${seconds}s"
  fuzz_one "$t" &
  running[$!]="$t"
done
while [ "${#running[@]}" -gt 0 ]; do reap; done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: ${failed[*]} failed; reproducers in $build/artifacts/" >&2
  exit 1
fi
echo "fuzz.sh: no crashes in ${#targets[@]} targets"
