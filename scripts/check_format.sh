#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what .clang-format makes of it.
#   scripts/check_format.sh          check every tracked C++ file
#   scripts/check_format.sh --fix    rewrite them in place
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "format: the files above differ from .clang-format; run scripts/check_format.sh --fix" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
