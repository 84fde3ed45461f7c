#!/usr/bin/env bash
# `make bench-grpo`: r1kit's GRPO and TRL's GRPOTrainer on the same tiny Llama
# policy (char tokenizer of configs/r1_arith; see (a)), the same addition
# tasks, prompt token ids, prompts per step, group size, lengths, temperature,
# beta, loss type and learning rate, on this CPU, for a fixed number of steps.
# Seconds per step are the mean over steps 2..N (step 1 warms up), the median
# over REPEATS runs of each (default 3). The last line is the ratio.
# SKIP_ZERO_ADVANTAGE=false makes r1kit run the forward and backward of
# equal-reward groups too, as TRL does.
set -euo pipefail
build="${1:-build}"
python="${R1KIT_VENV:-$HOME/.cache/r1kit/venv}/bin/python"
out="$build/bench/grpo"
steps="${STEPS:-10}"
rm -rf "$out" && mkdir -p "$out"
if ! "$python" -c 'import trl, datasets' 2>/dev/null; then
  echo "bench-grpo: installing the Python packages of tools/ (trl)"
  "$python" -m pip install -q --disable-pip-version-check -r tools/requirements-tools.txt
fi

# (a) The policy. By default the SFT checkpoint of configs/r1_arith.json's
# first steps (built once, then reused): a policy that solves some of the tasks,
# so rewards differ within groups as in a real run. POLICY=random: a random
# ~0.8M-parameter Llama with the same 104-token char tokenizer (every reward 0;
# use it with SKIP_ZERO_ADVANTAGE=false); POLICY=random-25m: the same with
# hidden 512, 8 layers, 8 heads, 4 KV heads, intermediate 1536 (~25M).
# POLICY=<folder>: that Hugging Face folder.
# ASYNC=1 also runs r1kit with asynchronous rollouts (trainer.max_staleness 1)
# in every repeat and prints its seconds per step beside the synchronous loop's.
policy="${POLICY:-sft}"
if [[ "$policy" == sft ]]; then
  "$build/r1kit" train configs/r1_arith.json --set seed=1 --set output_dir="$build/bench/grpo-policy" \
    --until sft --resume
  cp -r "$build/bench/grpo-policy/sft/final" "$out/model"
elif [[ "$policy" != random && "$policy" != random-25m ]]; then
  cp -r "$policy" "$out/model"
else
"$python" - "$out/model" configs/r1_arith/tokenizer.json "$policy" <<'PY'
import json, shutil, sys
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
folder, tokenizer_file, size = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(1)
shape = {"random": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                        intermediate_size=384),
         "random-25m": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4,
                            intermediate_size=1536)}[size]
config = LlamaConfig(vocab_size=104, max_position_embeddings=256, tie_word_embeddings=True, pad_token_id=0,
                     bos_token_id=1, eos_token_id=2, **shape)
LlamaForCausalLM(config).save_pretrained(folder)
shutil.copy(tokenizer_file, f"{folder}/tokenizer.json")
with open(f"{folder}/tokenizer_config.json", "w") as f:
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
               "pad_token": "<pad>", "unk_token": "<unk>", "model_max_length": 256}, f, indent=1)
tokenizer = AutoTokenizer.from_pretrained(folder)
assert tokenizer.eos_token_id == 2 and tokenizer.pad_token_id == 0, tokenizer
print(f"policy: {sum(p.numel() for p in LlamaForCausalLM(config).parameters()) / 1e6:.2f}M parameters, "
      f"vocab {len(tokenizer)}, written to {folder}")
PY
fi

# (b) The tasks, one {"prompt", "answer"} line each, for both trainers.
"$build/r1kit" data generate --environment addition --options '{"digits": 2}' --template plain \
  --format tasks --count 2000 -o "$out/tasks.jsonl"

# (c) r1kit's GRPO recipe. TRL's defaults where TRL has one: loss dapo, epsilon 0.2 both sides.
"$python" - "$out" "$steps" "${SKIP_ZERO_ADVANTAGE:-true}" <<'PY'
import json, sys
out, steps = sys.argv[1], int(sys.argv[2])
skip_zero_advantage = {"true": True, "false": False}[sys.argv[3]]
recipe = {
    "stage": "grpo", "seed": 1, "output_dir": f"{out}/r1kit-run",
    "model": {"path": f"{out}/model"},
    "environment": {"name": "jsonl",
                    "options": {"path": f"{out}/tasks.jsonl", "format": "prompt", "prompt_key": "prompt",
                                "answer_key": "answer", "eval_fraction": 0.05},
                    "prompt_template": "plain"},
    "rewards": [{"name": "math_answer"}],
    "grpo": {"num_generations": 8, "max_prompt_length": 64, "max_completion_length": 32, "temperature": 1.0,
             "beta": 0.0, "epsilon": 0.2, "epsilon_high": 0.2, "loss_type": "dapo", "scale_rewards": "group",
             "skip_zero_advantage": skip_zero_advantage},
    "optimizer": {"learning_rate": 1e-5, "lr_scheduler_type": "constant", "max_grad_norm": 1.0},
    "trainer": {"max_steps": steps, "prompts_per_step": 8, "eval_samples": 8, "log_completions": 0,
                "tensorboard": False},
}
json.dump(recipe, open(f"{out}/grpo_recipe.json", "w"), indent=1)
PY
# (d) Both trainers REPEATS times (default 3), alternating, each run in a fresh
# process: the host's load moves timings by 10-30%, so the medians count.
repeats="${REPEATS:-3}"
for ((run = 1; run <= repeats; run++)); do
  "$build/r1kit" train "$out/grpo_recipe.json" --set output_dir="$out/r1kit-run-$run"
  if [[ "${ASYNC:-0}" == 1 ]]; then
    "$build/r1kit" train "$out/grpo_recipe.json" --set output_dir="$out/r1kit-async-run-$run" \
      --set trainer.max_staleness=1
  fi
  "$python" bench/peers/trl_grpo.py "$out/model" "$out/tasks.jsonl" --output-dir "$out/trl-run" \
    --steps "$steps" --prompts-per-step 8 --num-generations 8 --max-completion-length 32 \
    --learning-rate 1e-5 --json "$out/trl-$run.json"
done

# (e) Seconds per step and reward curves side by side (the last run's), then
# each run's mean over steps 2..N and the medians.
"$python" - "$out" "$repeats" "${ASYNC:-0}" <<'PY'
import json, statistics, sys
out, repeats, with_async = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
mean = lambda xs: sum(xs) / len(xs)
def timings(folder):
    lines = [json.loads(l) for l in open(f"{folder}/metrics.jsonl") if l.strip()]
    train = [l for l in lines if "time/step" in l]
    later = train[1:] or train
    return train, later, {"step": mean([l["time/step"] for l in later]),
                          "generate": mean([l["time/generate"] for l in later]),
                          "learn": mean([l["time/learn"] for l in later]),
                          "learner_idle": mean([l.get("time/learner_idle", 0.0) for l in later])}
ours_runs, peer_runs, skipped, async_runs = [], [], [], []
for run in range(1, repeats + 1):
    train, later, ours_run = timings(f"{out}/r1kit-run-{run}")
    ours_runs.append(ours_run)
    if with_async:
        async_runs.append(timings(f"{out}/r1kit-async-run-{run}")[2])
    skipped.append(mean([l.get("learner/skipped_completions", 0.0) for l in later]))
    peer = json.load(open(f"{out}/trl-{run}.json"))
    peer_runs.append(mean(peer["step_seconds"][1:] or peer["step_seconds"]))
ours_seconds = [l["time/step"] for l in train]
ours_reward = [l["reward"] for l in train]
peer_seconds, peer_reward = peer["step_seconds"], peer["reward"]
print(f"steps: r1kit {len(ours_seconds)}, trl {len(peer_seconds)}; 8 prompts x 8 completions, "
      f"completion <= 32 tokens; trl loss_type {peer['loss_type']}, trl threads {peer['threads']}")
print("step  r1kit_s  trl_s   r1kit_reward  trl_reward   (run %d)" % repeats)
for i in range(max(len(ours_seconds), len(peer_seconds))):
    cell = lambda xs, fmt: format(xs[i], fmt) if i < len(xs) else "-"
    print(f"{i + 1:>4}  {cell(ours_seconds, '7.3f'):>7}  {cell(peer_seconds, '6.3f'):>6}  "
          f"{cell(ours_reward, '.4f'):>12}  {cell(peer_reward, '.4f'):>10}")
print("seconds per step by run: r1kit " + ", ".join(f"{r['step']:.4f}" for r in ours_runs) +
      "; trl " + ", ".join(f"{t:.4f}" for t in peer_runs))
ours = statistics.median(r["step"] for r in ours_runs)
theirs = statistics.median(peer_runs)
print(f"r1kit per step (medians): generate {statistics.median(r['generate'] for r in ours_runs):.4f} s, "
      f"learn {statistics.median(r['learn'] for r in ours_runs):.4f} s; completions left out of the learner "
      f"(zero advantage): {mean(skipped):.3f}")
print(f"r1kit_seconds_per_step: {ours:.4f}")
print(f"trl_seconds_per_step: {theirs:.4f}")
print(f"grpo_step_speedup_vs_trl: {theirs / ours:.2f}")
if with_async:
    # Asynchronous rollouts: generation and learning overlap, each on its
    # share of the cores; the loop cannot beat the slower of the two.
    median = lambda key: statistics.median(r[key] for r in async_runs)
    step, bound = median("step"), statistics.median(max(r["generate"], r["learn"]) for r in async_runs)
    print("async seconds per step by run: " + ", ".join(f"{r['step']:.4f}" for r in async_runs))
    print(f"async per step (medians): generate {median('generate'):.4f} s, learn {median('learn'):.4f} s, "
          f"learner idle {median('learner_idle'):.4f} s, max(generate, learn) {bound:.4f} s")
    print(f"async_seconds_per_step: {step:.4f}")
    print(f"async_over_max_generate_learn: {step / bound:.2f}")
    print(f"async_speedup_vs_sync: {ours / step:.2f}")
    print(f"async_speedup_vs_trl: {theirs / step:.2f}")
PY
