#!/usr/bin/env bash
# `make bench-rollout`: r1kit's rollout engine and transformers' generate on the
# same ~20M-parameter weights, prompts, batch sizes, lengths and greedy
# decoding, on this CPU, in float32 and in bfloat16, in one command; every
# timing on both sides is the median of REPEATS runs (default 3). Prints the
# batch-64 decode ratio of each dtype (same dtype on both sides); the last line
# compares r1kit's fastest dtype with transformers in that same dtype.
set -euo pipefail
build="${1:-build}"
python="${R1KIT_VENV:-$HOME/.cache/r1kit/venv}/bin/python"
out="$build/bench/rollout"
mkdir -p "$out"
new_tokens="${NEW_TOKENS:-64}"
repeats="${REPEATS:-3}"  # timed runs per measurement on both sides; the median counts
"$build/r1kit" bench rollout --sizes "${SIZES:-20m,100m}" --batches 1,8,64 --new-tokens "$new_tokens" \
  --dtypes float32,bfloat16 --repeats "$repeats" --export "$out/model-20m" --json "$out/r1kit.json"
for dtype in float32 bfloat16; do
  "$python" bench/peers/transformers_generate.py "$out/model-20m" --batches 1,8,64 --new-tokens "$new_tokens" \
    --dtype "$dtype" --repeats "$repeats" --json "$out/transformers-$dtype.json"
done
"$python" - "$out/r1kit.json" "$out/transformers-float32.json" "$out/transformers-bfloat16.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["results"]
peers = {path.rsplit("-", 1)[1][:-5]: json.load(open(path))["results"] for path in sys.argv[2:]}
ratios = {}
for dtype, peer in peers.items():
    ours64 = next(r for r in ours if r["size"] == "20m" and r["batch"] == 64 and r["dtype"] == dtype)
    peer64 = next(r for r in peer if r["batch"] == 64)
    ratios[dtype] = (ours64["decode_tokens_per_second"], peer64["decode_tokens_per_second"])
    print(f"batch 64 decode {dtype}: r1kit {ratios[dtype][0]:.0f} tok/s, transformers {ratios[dtype][1]:.0f} tok/s, "
          f"ratio {ratios[dtype][0] / ratios[dtype][1]:.2f}")
print(f"decode_speedup_vs_transformers_float32: {ratios['float32'][0] / ratios['float32'][1]:.2f}")
fastest = max(ratios, key=lambda dtype: ratios[dtype][0])
print(f"fastest r1kit dtype: {fastest} (compared with transformers in {fastest})")
print(f"decode_speedup_vs_transformers: {ratios[fastest][0] / ratios[fastest][1]:.2f}")
PY
