#!/usr/bin/env bash
# What a user does to write a reward in C++: install r1kit, build
# examples/custom_reward against the installed package (find_package(r1kit)),
# score completions with the plug-in's `keywords` reward through the installed
# `r1kit reward --plugin`, train with it (through --plugin and through a
# recipe's "plugins" key) and evaluate with it. Prints r1kit's report and one
# line per training or evaluation; exit 0 = it worked.
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

# The same plug-in in training: two GRPO steps of a small random policy on
# one-digit additions, scored by `keywords`, loaded once through --plugin and
# once through the recipe's "plugins" key (relative to the recipe's folder,
# run from another folder); then `r1kit eval` of the first run's model.
r1kit="${3:-$work/prefix/bin/r1kit}"
write_recipe() {  # write_recipe FILE OUTPUT_DIR PLUGINS_JSON
  cat >"$1" <<JSON
{"stage": "grpo", "seed": 1, "output_dir": "$2", "plugins": $3,
 "model": {"tokenizer": "$root/configs/r1_arith/tokenizer.json",
           "config": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                      "max_position_embeddings": 128, "tie_word_embeddings": true,
                      "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}},
 "environment": {"name": "addition", "options": {"digits": 1}, "prompt_template": "plain"},
 "rewards": [{"name": "keywords", "options": {"keywords": ["1"]}}],
 "grpo": {"num_generations": 4, "max_completion_length": 8, "max_prompt_length": 32},
 "trainer": {"max_steps": 2, "prompts_per_step": 2, "eval_steps": 0, "eval_samples": 4,
             "save_steps": 0}}
JSON
}
steps_logged() { grep -c '"rewards/keywords/mean"' "$1/metrics.jsonl"; }
write_recipe "$work/grpo_flag.json" "$work/run-flag" '[]'
step train-flag "$r1kit" train "$work/grpo_flag.json" --plugin "$work/example/libmy_reward.so"
echo "trained with --plugin: $(steps_logged "$work/run-flag") steps"
write_recipe "$work/grpo_key.json" "$work/run-key" '["example/libmy_reward.so"]'
(cd / && step train-key "$r1kit" train "$work/grpo_key.json")
echo "trained with the plugins key: $(steps_logged "$work/run-key") steps"
step eval "$r1kit" eval "$work/grpo_flag.json" --plugin "$work/example/libmy_reward.so" \
  --model "$work/run-flag/final"
echo "evaluated: $(grep -c '"eval/reward"' "$work/eval.log") report"
