#!/usr/bin/env bash
# `make bench-code-exec`: sandboxed executions per second of the code_exec
# reward on a trivial Python program (read a number, print it plus one; one
# stdin/stdout test per completion), scored by `r1kit reward` with 1 and 2
# threads. Each rate is the difference of a run of SMALL and one of
# SMALL+COUNT completions, so the command's start-up cancels out.
set -euo pipefail
build="${1:-build}"
count="${COUNT:-200}"
small="${SMALL:-20}"
out="$build/bench/code_exec"
mkdir -p "$out"

write_completions() {  # $1 = lines, $2 = file
  local line='{"completion": "```python\nprint(int(input()) + 1)\n```", "tests": [{"input": "41\n", "output": "42\n"}]}'
  : >"$2"
  for ((i = 0; i < $1; ++i)); do printf "%s\n" "$line" >>"$2"; done
}
write_completions "$small" "$out/small.jsonl"
write_completions "$((small + count))" "$out/large.jsonl"

seconds_of() {  # $1 = file, $2 = threads; prints the wall seconds of one scoring run
  local start end
  start=$(date +%s.%N)
  "$build/r1kit" reward "$1" --reward code_exec --threads "$2" --batch-size 64 >"$out/report-$2.txt"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
}

echo "code_exec: $count executions of a trivial Python program; $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
for threads in 1 2; do
  small_seconds=$(seconds_of "$out/small.jsonl" "$threads")
  large_seconds=$(seconds_of "$out/large.jsonl" "$threads")
  awk -v n="$count" -v t="$threads" -v a="$small_seconds" -v b="$large_seconds" \
    'BEGIN { printf "threads %d: %.1f executions/s (%.1f ms of wall time each)\n", t, n / (b - a), 1000 * (b - a) / n }'
  # Every program must have run and passed (mean 1), or the rate means nothing.
  awk '$1 == "code_exec" && $3 != "1.0000" { print "bench: not every program passed:"; print; exit 1 }' \
    "$out/report-$threads.txt"
done
