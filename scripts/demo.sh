#!/usr/bin/env bash
# The default demo (`make demo`): the r1_arith pipeline of DeepSeek-R1 at toy
# scale on CPU, from nothing to an evaluated RL policy.
#   1. a pretraining corpus of 2-digit addition problems in the R1 format
#      (<think> steps </think><answer>..</answer>): 15% of the problems drawn
#      show their column sums, the rest answer at once with an empty <think>
#      (about 35% and 65% of the documents left after de-duplication)
#   2. pretrain a small Llama-style model (0.8M parameters) from random weights
#   3. SFT "cold start" on a small labelled set of the same mix
#   4. GRPO on unlabelled problems with verifiable rewards (math_answer + think_format):
#      answering at once is usually wrong, showing the steps usually right, and
#      RL finds that out; completions grow longer as the policy learns to think
#   5. held-out greedy accuracy before and after GRPO, reward curve, plots
# Usage: scripts/demo.sh [BUILD_DIR]   (SEED=1 by default; OUT=runs/r1_arith/seed-$SEED)
set -euo pipefail
build="${1:-build}"
r1kit="$build/r1kit"
seed="${SEED:-1}"
out="${OUT:-runs/r1_arith/seed-$seed}"
mkdir -p "$out"
start=$(date +%s)
stamp() { echo "[demo $(( $(date +%s) - start ))s] $*"; }

tasks='{"digits": 2, "eval_size": 200, "worked_steps": true, "solution_style": "compact", "worked_fraction": 0.15}'
stamp "1/5 corpus: 40000 addition problems, 15% with worked steps"
"$r1kit" data generate --environment addition --options "$tasks" --template plain --format text \
  --count 40000 --seed "$seed" -o "$out/corpus.jsonl"
"$r1kit" data prepare --input "$out/corpus.jsonl" --output "$out/shards" \
  --tokenizer configs/r1_arith/tokenizer.json > "$out/prepare_manifest.json"

stamp "2/5 pretrain"
"$r1kit" train configs/r1_arith/pretrain.json --set seed="$seed" --set output_dir="$out/pretrain" \
  --set pretrain.data="$out/shards"

stamp "3/5 SFT cold start on 500 labelled solutions of the same mix"
"$r1kit" data generate --environment addition --options "$tasks" --template plain \
  --format sft --count 500 --seed $((seed + 1000)) -o "$out/sft_small.jsonl"
"$r1kit" train configs/r1_arith/sft.json --set seed="$seed" --set output_dir="$out/sft" \
  --set model.path="$out/pretrain/final" --set sft.train_file="$out/sft_small.jsonl"

stamp "4/5 GRPO on unlabelled problems"
"$r1kit" train configs/r1_arith/grpo.json --set seed="$seed" --set output_dir="$out/grpo" \
  --set model.path="$out/sft/final"

stamp "5/5 summary and plots"
"$r1kit" plot "$out/grpo" --out "$out/plots" > /dev/null
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
lines = [json.loads(l) for l in open(f"{out}/grpo/metrics.jsonl")]
evals = [l for l in lines if "eval/accuracy" in l]
steps = [l for l in lines if "reward" in l]
before, after = evals[0]["eval/accuracy"], evals[-1]["eval/accuracy"]
k = max(1, min(5, len(steps) // 4))
reward_start = sum(l["reward"] for l in steps[:k]) / k
reward_end = sum(l["reward"] for l in steps[-k:]) / k
print()
print(f"{'':32}{'value':>10}")
print(f"{'held-out greedy accuracy, SFT':32}{before:>10.3f}   (step 0, {evals[0]['eval/tasks']:.0f} tasks)")
print(f"{'held-out greedy accuracy, GRPO':32}{after:>10.3f}   (step {evals[-1]['step']})")
print(f"{'train reward, first steps':32}{reward_start:>10.3f}")
print(f"{'train reward, last steps':32}{reward_end:>10.3f}")
print(f"plots: {out}/plots/   run folders: {out}/{{pretrain,sft,grpo}}")
print(f"grpo_accuracy_gain: {after - before:.3f}")
PY
