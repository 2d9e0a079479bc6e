#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan+UBSan) and runs each one for
# SECONDS seconds (default 20), starting from its seed corpus in tests/fuzz/corpus/<target>.
# New inputs go to build/fuzz/corpus-work/<target>, never into the source tree; a crash
# leaves its reproducer in build/fuzz/artifacts/ and makes the script fail.
#
#   scripts/fuzz.sh          # a short run, as the test command does
#   scripts/fuzz.sh 600      # a longer run: ten minutes per target
set -euo pipefail

seconds="${1:-20}"
case "$seconds" in (*[!0-9]*|'') echo "usage: $0 [SECONDS]" >&2; exit 2;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build/fuzz"
targets=(unit_policy request release_auth multipart extract http_session)

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/setup.sh)" >&2; exit 1; }

cd "$root"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz --target "${targets[@]/%/_fuzzer}"

mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  work="$build/corpus-work/$t"
  seeds="$root/tests/fuzz/corpus/$t"
  [ -d "$seeds" ] || seeds="$root/tests/daemon/corpus/$t"
  [ -d "$seeds" ] || seeds="$root/tests/daemon/${t}_corpus"
  mkdir -p "$work"
  extra=()
  [ "$t" = unit_policy ] && extra=("$root/tests/fixtures/units/accepted" "$root/tests/fixtures/units/refused")
  flags=()
  # A whole HTTP session runs a lot of code per input: the entropic schedule's bookkeeping
  # would take two thirds of its time.
  [ "$t" = http_session ] && flags=(-entropic=0)
  echo "== fuzzing $t for ${seconds}s"
  "$build/tests/${t}_fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/${t}-" "${flags[@]}" \
    "$work" "$seeds" "${extra[@]}"
done
echo "fuzz.sh: no crashes in ${#targets[@]} targets"
