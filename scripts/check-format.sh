#!/usr/bin/env bash
# Fails if any C++ source tracked by git differs from what .clang-format asks for, and names
# each such file. `scripts/check-format.sh --fix` rewrites them in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."

fmt=${CLANG_FORMAT:-clang-format}
if ! command -v "$fmt" >/dev/null; then
  echo "check-format: $fmt not found (scripts/setup.sh installs it)" >&2
  exit 1
fi

mapfile -t files < <(git ls-files -- '*.cc' '*.h' '*.cpp' '*.hpp')
if [ "${1:-}" = --fix ]; then
  "$fmt" -i -- "${files[@]}"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! "$fmt" --dry-run --Werror -- "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [ "${#bad[@]}" -gt 0 ]; then
  echo "check-format: ${#bad[@]} file(s) not formatted as .clang-format asks:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "check-format: run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format asks"
