#!/usr/bin/env bash
# Runs every `r1kit` command example of the user documentation (the lines of
# README.md's, docs/*.md's and examples/*/README.md's code blocks that start
# with r1kit) and the examples in the --help texts, against a small world made
# here: a one-step GRPO run of a small random policy (its final model stands
# in for the docs' run folders), a LoRA run (for export), completions, a
# corpus. A training example runs with --check added (real training is what
# the other tests and `make demo` do); synopsis lines (with [...], | or ...)
# and the benchmarks are listed as skipped. Exit 0 = every example ran.
#   usage: tests/examples/run_documented_commands.sh BUILD_DIR WORK_DIR
# Run by tests/apps/documented_commands_test.cpp.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$2"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
ln -s "$root/configs" configs
ln -s "$root/examples" examples
export PATH="$build:$PATH"  # `r1kit launch -- r1kit train ...` finds the same binary

fail() { echo "run_documented_commands.sh: $*" >&2; exit 1; }

# --- the world ---------------------------------------------------------------
cat >recipe.json <<JSON
{"stage": "grpo", "seed": 1, "output_dir": "runs/x",
 "model": {"tokenizer": "configs/r1_arith/tokenizer.json",
           "config": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                      "max_position_embeddings": 256, "tie_word_embeddings": true,
                      "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}},
 "environment": {"name": "addition", "options": {"digits": 1}, "prompt_template": "plain"},
 "rewards": [{"name": "math_answer"}, {"name": "think_format", "weight": 0.1}],
 "grpo": {"num_generations": 4, "max_completion_length": 8},
 "trainer": {"max_steps": 1, "prompts_per_step": 2, "eval_steps": 0, "eval_samples": 4,
             "save_steps": 1}}
JSON
r1kit train recipe.json >world.log 2>&1 || { cat world.log; fail "the world's training run failed"; }
r1kit train recipe.json --set output_dir=runs/lora --set model.lora.r=4 --set model.path=runs/x/final \
  --set model.config=null --set model.tokenizer= >>world.log 2>&1 ||
  { cat world.log; fail "the world's LoRA run failed"; }
cp -r runs/x runs/a
cp -r runs/x runs/b
cat >completions.jsonl <<'JSONL'
{"prompt": "What is 1 + 2?", "completion": "<think>1 + 2 = 3</think><answer>3</answer>", "answer": "3"}
{"prompt": "What is 2 + 2?", "completion": "<answer>5</answer>", "answer": "4"}
JSONL
r1kit data generate --environment addition --format text --count 50 -o corpus.jsonl >>world.log 2>&1 ||
  { cat world.log; fail "the world's corpus failed"; }
cp configs/r1_arith/tokenizer.json tok.json

# What the documentation names, in this world.
substitute() {
  sed -E \
    -e 's#RECIPE\.json#recipe.json#g' \
    -e 's#my_recipe\.json#recipe.json#g' \
    -e 's#--adapter runs/x/final#--adapter runs/lora/final#g' \
    -e 's#runs/(r1_arith/seed-1|N)/(sft|grpo|pretrain)/final#runs/x/final#g' \
    -e 's#seed=N#seed=2#g; s#\$SEED#2#g; s#\$OUT#runs/demo#g'
}

ran=0
skipped=0
failed=0
run_example() {  # run_example WHERE COMMAND
  local where="$1" command="$2"
  if [[ "$command" =~ ^r1kit\ train || "$command" =~ --\ r1kit\ train ]] &&
     [[ "$command" != *--check* ]]; then
    command="$command --check"
  fi
  if timeout 300 bash -c "$command" >example.log 2>&1; then
    ran=$((ran + 1))
  else
    failed=$((failed + 1))
    echo "FAILED ($where): $command" >&2
    tail -5 example.log >&2
  fi
}
skip() {  # skip WHERE COMMAND REASON
  skipped=$((skipped + 1))
  echo "skipped ($1): $2  [$3]"
}

# --- the documentation's examples -----------------------------------------------
examples="$(cd "$root" && awk '
  FNR == 1 { inside = 0; joined = "" }
  /^```/ { inside = !inside; next }
  inside {
    line = $0
    if (joined != "") { sub(/^[[:space:]]+/, "", line); line = joined " " line; joined = "" }
    if (line ~ /\\$/) { sub(/[[:space:]]*\\$/, "", line); joined = line; next }
    if (line ~ /^[[:space:]]*(\$ )?(~\/r1kit\/bin\/|\.\/build\/|build\/)?r1kit [a-z]/)
      print FILENAME "\t" line
  }' README.md docs/*.md examples/*/README.md)"
while IFS=$'\t' read -r where line; do
  [[ -z "$where" ]] && continue
  command="$(sed -E -e 's/^[[:space:]]*(\$ )?//' -e 's/[[:space:]]+#.*$//' <<<"$line")"
  if [[ "$command" == "~/r1kit/bin/"* ]]; then
    skip "$where" "$command" "the installed package: tests/examples/build_custom_reward.sh"
    continue
  fi
  command="$(sed -E 's#^(\./)?build/r1kit#r1kit#' <<<"$command")"
  if [[ "$command" == *" ["* || "$command" == *"..."* || "$command" == *"|"* ]]; then
    skip "$where" "$command" "synopsis"
    continue
  fi
  if [[ "$command" == "r1kit bench"* ]]; then
    skip "$where" "$command" "a benchmark of minutes: make bench-rollout"
    continue
  fi
  run_example "$where" "$(substitute <<<"$command")"
done <<<"$examples"

# --- the --help texts' examples ---------------------------------------------------
# `--set key=value` examples of any subcommand's help, tried on a training recipe.
for sub in train eval generate reward data plot export launch; do
  while read -r assignment; do
    run_example "r1kit $sub --help" "r1kit train recipe.json --set $assignment"
  done < <(r1kit "$sub" --help 2>&1 | grep -oE -- '--set [a-z_.]+=[^ ,;)]+' | sed 's/^--set //' | sort -u)
done
# `--reward NAME[:WEIGHT]` examples of `r1kit reward --help`.
while read -r reward; do
  run_example "r1kit reward --help" "r1kit reward completions.jsonl --reward $reward"
done < <(r1kit reward --help 2>&1 | grep -oE -- '--reward [a-z_]+:[0-9.]+' | sed 's/^--reward //' |
         sort -u)

echo "documented examples: $ran ran, $skipped skipped, $failed failed"
((failed == 0))
