#!/usr/bin/env bash
# `make bench-rollout`: r1kit's rollout engine and transformers' generate on the
# same ~20M-parameter weights, prompts, batch sizes, lengths and greedy
# decoding, on this CPU, in float32 and in bfloat16, in one command; every
# timing on both sides is the median of REPEATS alternating pairs of a
# one-token and a full run (default 3). Prints the prefill and decode ratio of
# each batch and dtype (same dtype on both sides) and r1kit's bfloat16 /
# float32 decode ratio; the last line compares r1kit's fastest dtype with
# transformers in that same dtype.
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

def rate(result, key="decode_tokens_per_second"):
    return result.get(key)  # None when no pair of runs could time the decode

def text(value):
    return "n/a" if value is None else f"{value:.0f}"

ratios = {}
for dtype, peer in peers.items():
    for batch in (1, 8, 64):
        mine = next((r for r in ours if r["size"] == "20m" and r["batch"] == batch and r["dtype"] == dtype), None)
        theirs = next((r for r in peer if r["batch"] == batch), None)
        if mine is None or theirs is None:
            continue
        for what, key in (("prefill", "prefill_tokens_per_second"), ("decode", "decode_tokens_per_second")):
            a, b = rate(mine, key), rate(theirs, key)
            ratio = f"{a / b:.2f}" if a is not None and b is not None else "n/a"
            print(f"batch {batch:2d} {what:7s} {dtype}: r1kit {text(a)} tok/s, transformers {text(b)} tok/s, ratio {ratio}")
            if batch == 64 and what == "decode":
                ratios[dtype] = (a, b)
for dtype in ("float32", "bfloat16"):
    mine = {r["batch"]: rate(r) for r in ours if r["size"] == "100m" and r["dtype"] == dtype}
    if 64 in mine:
        print(f"batch 64 decode ~100M {dtype}: r1kit {text(mine[64])} tok/s")
own = {size: {r["dtype"]: rate(r) for r in ours if r["size"] == size and r["batch"] == 64} for size in ("20m", "100m")}
for size, by_dtype in own.items():
    if by_dtype.get("float32") and by_dtype.get("bfloat16"):
        print(f"r1kit batch 64 decode {size}: bfloat16 / float32 = {by_dtype['bfloat16'] / by_dtype['float32']:.2f}")
if all(a is not None and b is not None for a, b in ratios.values()) and "float32" in ratios:
    print(f"decode_speedup_vs_transformers_float32: {ratios['float32'][0] / ratios['float32'][1]:.2f}")
    fastest = max(ratios, key=lambda dtype: ratios[dtype][0])
    print(f"fastest r1kit dtype: {fastest} (compared with transformers in {fastest})")
    print(f"decode_speedup_vs_transformers: {ratios[fastest][0] / ratios[fastest][1]:.2f}")
PY
