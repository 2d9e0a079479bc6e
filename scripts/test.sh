#!/usr/bin/env bash
# Installs what the tests need, builds, and runs every test: the release build with all
# tests (unit, real-systemd integration, confinement, end to end), the ASan+UBSan build of
# the unit tests, and a short run of every fuzz target. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== release build"
cmake --preset release >/dev/null
cmake --build --preset release

echo "== tests (release)"
ctest --preset release -j2 --timeout 900

echo "== unit tests under ASan + UBSan"
cmake --preset asan >/dev/null
cmake --build --preset asan
ctest --preset asan -L unit -j2

echo "== fuzz targets (short run; scripts/fuzz.sh 600 for a long one)"
bash scripts/fuzz.sh 15
