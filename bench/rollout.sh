#!/usr/bin/env bash
# `make bench-rollout`: r1kit's rollout engine and transformers' generate on the
# same ~20M-parameter weights, prompts, batch sizes, lengths and greedy
# decoding, on this CPU, in one command. The last line is the batch-64 ratio.
set -euo pipefail
build="${1:-build}"
python="${R1KIT_VENV:-$HOME/.cache/r1kit/venv}/bin/python"
out="$build/bench/rollout"
mkdir -p "$out"
new_tokens="${NEW_TOKENS:-64}"
"$build/r1kit" bench rollout --sizes "${SIZES:-20m,100m}" --batches 1,8,64 --new-tokens "$new_tokens" \
  --export "$out/model-20m" --json "$out/r1kit.json"
"$python" bench/peers/transformers_generate.py "$out/model-20m" --batches 1,8,64 --new-tokens "$new_tokens" \
  --json "$out/transformers.json"
"$python" - "$out/r1kit.json" "$out/transformers.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["results"]
peer = json.load(open(sys.argv[2]))["results"]
ours64 = next(r for r in ours if r["size"] == "20m" and r["batch"] == 64)
peer64 = next(r for r in peer if r["batch"] == 64)
print(f"decode_speedup_vs_transformers: {ours64['decode_tokens_per_second'] / peer64['decode_tokens_per_second']:.2f}")
PY
