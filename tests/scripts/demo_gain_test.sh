#!/usr/bin/env bash
# The default demo end to end (scripts/demo.sh, seed 1) in a temporary folder:
# it must finish and GRPO must raise held-out greedy accuracy by at least 25
# points over the SFT checkpoint, the gain the demo promises. About 2.5 minutes
# on 2 cores; registered with RUN_SERIAL so no other test shares the cores.
# Usage: demo_gain_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir="$1"
build_dir="$(cd "$2" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cd "$source_dir"
OUT="$out" SEED=1 bash scripts/demo.sh "$build_dir" > "$out/demo.log" 2>&1 || {
  tail -n 30 "$out/demo.log"; echo "FAIL: scripts/demo.sh exited with an error"; exit 1; }
last="$(tail -n 1 "$out/demo.log")"
tail -n 9 "$out/demo.log"
gain="${last#grpo_accuracy_gain: }"
if [[ "$last" != grpo_accuracy_gain:* ]]; then echo "FAIL: last line is not grpo_accuracy_gain: $last"; exit 1; fi
if awk -v gain="$gain" 'BEGIN { exit !(gain >= 0.25) }'; then
  echo "PASS: grpo_accuracy_gain $gain >= 0.25"
else
  echo "FAIL: grpo_accuracy_gain $gain < 0.25"; exit 1
fi
