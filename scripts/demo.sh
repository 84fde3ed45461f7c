#!/usr/bin/env bash
# The default demo (`make demo`): the r1_arith pipeline of DeepSeek-R1 at toy
# scale on CPU, from nothing to an evaluated RL policy, as one pipeline file
# (configs/r1_arith.json) run by `r1kit train`:
#   1. a pretraining corpus of 2-digit addition problems in the R1 format
#      (<think> steps </think><answer>..</answer>): 15% of the problems drawn
#      show their column sums, the rest answer at once with an empty <think>
#      (about 35% and 65% of the documents left after de-duplication)
#   2. pretrain a small Llama-style model (0.8M parameters) from random weights
#   3. SFT "cold start" on a small labelled set of the same mix
#   4. GRPO on unlabelled problems with verifiable rewards (math_answer + think_format):
#      answering at once is usually wrong, showing the steps usually right, and
#      RL finds that out; completions grow longer as the policy learns to think
#   5. reward curves as plots; held-out greedy accuracy before and after GRPO
#      (the last line: grpo_accuracy_gain)
# Usage: scripts/demo.sh [BUILD_DIR]   (SEED=1 by default; OUT=runs/r1_arith/seed-$SEED)
set -euo pipefail
build="${1:-build}"
seed="${SEED:-1}"
out="${OUT:-runs/r1_arith/seed-$seed}"
"$build/r1kit" train configs/r1_arith.json --set seed="$seed" --set output_dir="$out" --overwrite
