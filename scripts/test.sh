#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test: the source format check, the
# release build with all tests (unit, real-systemd integration, confinement, packaging, end to
# end), the ASan+UBSan build of the unit tests, and a short run of every fuzz target. Run as
# root on Debian 12. Prints how long each phase took at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

phases=()
background=()
phase_start=$SECONDS
# Busy and total jiffies of all CPUs, from /proc/stat, to show how much of the machine a phase
# used: a phase well under 100% leaves room the others could take.
cpu_jiffies() {
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ < /proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((user + nice + system + idle + iowait + irq + softirq + steal))"
}
read -r cpu_busy cpu_total <<< "$(cpu_jiffies)"
phase() {
  local now=$SECONDS busy total
  read -r busy total <<< "$(cpu_jiffies)"
  if [ -n "${current:-}" ]; then
    local used=$(( (busy - cpu_busy) * 100 / ((total - cpu_total) > 0 ? (total - cpu_total) : 1) ))
    phases+=("$(printf '%6ds  %3d%% cpu  %s' $((now - phase_start)) "$used" "$current")")
  fi
  current="$1"
  phase_start=$now
  cpu_busy=$busy
  cpu_total=$total
  if [ -n "$current" ]; then echo "== $current"; fi
}
summary() {
  # A build still running beside failed tests is stopped with its compilers (own session).
  local pid
  for pid in "${background[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
  done
  phase ""
  echo "== time per phase"
  printf '%s\n' "${phases[@]}"
  echo "$(printf '%6ds' "$SECONDS")  total"
}
trap summary EXIT

phase "setup (packages)"
bash scripts/setup.sh

phase "source format (.clang-format)"
bash scripts/check-format.sh

phase "release build"
cmake --preset release >/dev/null
cmake --build --preset release

# Most release tests wait on a container's systemd, a daemon or a socket, one container at a
# time, leaving a CPU idle: the sanitizer build (clang: the unit tests and the fuzz targets
# alike) runs beside them at the lowest priority and takes only what the tests leave. Its
# output goes to build/asan-build.log, shown if it fails.
background_build() {
  local log="$1"
  shift
  setsid nice -n 19 "$@" >"$log" 2>&1 &
  background+=("$!")
}
finish_build() {
  local pid="$1" log="$2"
  if ! wait "$pid"; then
    tail -n 60 "$log"
    echo "test.sh: a build failed; whole log in $log" >&2
    exit 1
  fi
}
phase "tests (release), the ASan + UBSan build beside them"
cmake --preset asan >/dev/null
mkdir -p build
background=()
background_build build/asan-build.log cmake --build --preset asan --target unit-tests fuzzers
ctest --preset release -j2 --timeout 900

phase "ASan + UBSan build (the rest of it)"
finish_build "${background[0]}" build/asan-build.log

phase "unit tests under ASan + UBSan"
ctest --preset asan -L unit -LE external -j2

phase "fuzz targets (short run; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh 15
