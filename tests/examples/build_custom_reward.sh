#!/usr/bin/env bash
# What a user does to write a reward in C++: install r1kit, build
# examples/custom_reward against the installed package (find_package(r1kit)),
# and score completions with the plug-in's `keywords` reward through the
# installed `r1kit reward --plugin`. Prints r1kit's report; exit 0 = it worked.
# Run by tests/apps/custom_reward_example_test.cpp.
#   usage: tests/examples/build_custom_reward.sh BUILD_DIR WORK_DIR [R1KIT]
# R1KIT runs another `r1kit` command than the installed one (a build tree's).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$2"
rm -rf "$work"
mkdir -p "$work"

# Show a step's log only when it fails.
step() {
  local log="$work/$1.log"
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "build_custom_reward.sh: '$*' failed:" >&2
    cat "$log" >&2
    exit 1
  fi
}

step install cmake --install "$build" --prefix "$work/prefix"
options=(-DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release)
if command -v ninja >/dev/null; then options+=(-G Ninja); fi
if command -v ccache >/dev/null; then options+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
step configure cmake -S "$root/examples/custom_reward" -B "$work/example" "${options[@]}"
step build cmake --build "$work/example" -j 2

cat >"$work/completions.jsonl" <<'JSONL'
{"prompt": "Name the capital of France and its river.", "completion": "Paris, on the Seine.", "metadata": {"keywords": ["paris", "seine"]}}
{"prompt": "Name the capital of France and its river.", "completion": "Paris, on the Loire.", "metadata": {"keywords": ["paris", "seine"]}}
{"prompt": "Capital of Italy?", "completion": "Lyon", "keywords": ["rome"]}
{"prompt": "Say hi", "completion": "hi"}
JSONL
"${3:-$work/prefix/bin/r1kit}" reward "$work/completions.jsonl" --plugin "$work/example/libmy_reward.so" \
  --reward keywords --output "$work/scores.jsonl"
