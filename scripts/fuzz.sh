#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) in build-fuzz/
# and runs each for FUZZ_SECONDS (default 60) from its committed seeds in
# fuzz/corpus/<target>; new inputs go to build-fuzz/corpus/<target>. A crash,
# sanitizer report, leak or timeout makes it exit 1 after the other targets
# ran, naming each reproducer. See docs/fuzzing.md.
#   scripts/fuzz.sh [MAIN_BUILD_DIR] [TARGET...]
#   FUZZ_SECONDS=20 FUZZ_JOBS=2 scripts/fuzz.sh build
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
main_build="$(realpath -m "${1:-build}")"
shift || true
out="${FUZZ_BUILD:-build-fuzz}"
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-$(nproc)}"

start=$(date +%s)
if [[ ! -f "$out/build.ninja" ]]; then
  CXX=clang++ cmake -S fuzz -B "$out" -G Ninja -DR1KIT_MAIN_BUILD="$main_build" >/dev/null
fi
cmake --build "$out" -j "$jobs"
echo "fuzz: built in $(($(date +%s) - start)) s"

targets=("$@")
if ((${#targets[@]} == 0)); then
  for binary in "$out"/*_fuzzer; do targets+=("$(basename "${binary%_fuzzer}")"); done
fi

# LSan on: a parser that leaks on bad input is a finding too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
printf '%-20s %10s %8s %8s\n' target runs exec/s corpus >"$out/summary.txt"
for target in "${targets[@]}"; do
  corpus="$out/corpus/$target"
  findings="$out/findings/$target/"
  mkdir -p "$corpus" "$findings"
  dictionary=()
  [[ -f "fuzz/dictionaries/$target.dict" ]] && dictionary=("-dict=fuzz/dictionaries/$target.dict")
  log="$out/logs/$target.log"
  mkdir -p "$out/logs"
  echo "fuzz: $target for ${seconds} s"
  status=0
  "$out/${target}_fuzzer" "${dictionary[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -artifact_prefix="$findings" \
    "$corpus" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  printf '%-20s %10s %8s %8s\n' "$target" "${runs:-?}" "${rate:-?}" \
    "$(find "$corpus" -type f | wc -l)" >>"$out/summary.txt"
  if ((status != 0)); then
    failed+=("$target")
    grep -E 'ERROR: |runtime error|SUMMARY|Test unit written|uncaught exception|terminate called' "$log" | head -20 || true
    for reproducer in "$findings"*; do
      [[ -f "$reproducer" ]] || continue
      echo "fuzz: $target: reproducer $reproducer"
      echo "fuzz:   reproduce with: $out/${target}_fuzzer $reproducer"
    done
    echo "fuzz: $target: full log $log"
  fi
done
cat "$out/summary.txt"
echo "fuzz: done in $(($(date +%s) - start)) s"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
