#!/usr/bin/env bash
# `make bench-real`: GRPO at the size people train, r1kit and TRL's GRPOTrainer
# side by side. Random float32 weights in the published shapes of
# Qwen2.5-0.5B and Qwen3-0.6B (151936-row padded vocabulary) with a 32k
# byte-level BPE tokenizer (tools/make_real_stand_in.py), chat-formatted
# addition tasks, 4 prompts x 4 completions x up to 128 new tokens, beta 0.04
# (the reference model is live), STEPS steps (default 3); full fine-tuning and
# LoRA r=16 on every linear layer. Both sides use the same prompt ids, lengths,
# learning rate and gradient checkpointing (GRADIENT_CHECKPOINTING, default
# true: TRL's default). Seconds per step are the mean over steps 2..N; the
# peak resident memory is each process's own. The last lines are the ratios of
# the first model.
#   MODELS="qwen2.5-0.5b qwen3-0.6b"  MODES="full lora"  STEPS=3
set -euo pipefail
build="${1:-build}"
python="${R1KIT_VENV:-$HOME/.cache/r1kit/venv}/bin/python"
out="$build/bench/real"
steps="${STEPS:-3}"
models="${MODELS:-qwen2.5-0.5b qwen3-0.6b}"
modes="${MODES:-full lora}"
checkpointing="${GRADIENT_CHECKPOINTING:-true}"
mkdir -p "$out"
if ! "$python" -c 'import trl, peft, datasets' 2>/dev/null; then
  echo "bench-real: installing the Python packages of tools/ (trl, peft)"
  "$python" -m pip install -q --disable-pip-version-check -r tools/requirements-tools.txt
fi

# (a) The stand-in models (built once, then reused) and the tasks.
for model in $models; do
  [[ -f "$out/$model/config.json" ]] || "$python" tools/make_real_stand_in.py "$out/$model" --model "$model"
done
"$build/r1kit" data generate --environment addition --options '{"digits": 3}' --template chatml \
  --format tasks --count 500 -o "$out/tasks.jsonl"

# (b) One r1kit recipe per model and mode.
write_recipe() {  # model mode -> $out/<model>-<mode>.json
  "$python" - "$out" "$1" "$2" "$steps" "$checkpointing" <<'PY'
import json, sys
out, model, mode, steps, checkpointing = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
recipe = {
    "stage": "grpo", "seed": 1, "output_dir": f"{out}/r1kit-{model}-{mode}",
    "model": {"path": f"{out}/{model}", "dtype": "float32"},
    "environment": {"name": "jsonl",
                    "options": {"path": f"{out}/tasks.jsonl", "format": "prompt", "prompt_key": "prompt",
                                "answer_key": "answer", "eval_fraction": 0.01},
                    "prompt_template": "plain"},
    "rewards": [{"name": "math_answer"}],
    "grpo": {"num_generations": 4, "max_prompt_length": 128, "max_completion_length": 128, "temperature": 1.0,
             "beta": 0.04, "epsilon": 0.2, "epsilon_high": 0.2, "loss_type": "dapo", "scale_rewards": "group",
             "skip_zero_advantage": False},
    "optimizer": {"learning_rate": 1e-6, "lr_scheduler_type": "constant", "max_grad_norm": 1.0},
    "trainer": {"max_steps": steps, "prompts_per_step": 4, "eval_samples": 1, "log_completions": 0,
                "tensorboard": False, "gradient_checkpointing": checkpointing == "true"},
}
if mode == "lora":
    recipe["model"]["lora"] = {"r": 16, "alpha": 32, "target_modules": "all-linear"}
    recipe["optimizer"]["learning_rate"] = 1e-5
json.dump(recipe, open(f"{out}/{model}-{mode}.json", "w"), indent=1)
PY
}

# (c) Each pair in fresh processes, r1kit then TRL.
for model in $models; do
  for mode in $modes; do
    write_recipe "$model" "$mode"
    echo "bench-real: r1kit $model $mode"
    "$build/r1kit" train "$out/$model-$mode.json" > "$out/r1kit-$model-$mode.log" 2>&1 ||
      { tail -20 "$out/r1kit-$model-$mode.log"; exit 1; }
    echo "bench-real: trl $model $mode"
    lora=0 learning_rate=1e-6
    [[ "$mode" == lora ]] && lora=16 learning_rate=1e-5
    trl_flags=()
    [[ "$checkpointing" == true ]] && trl_flags+=(--gradient-checkpointing)
    "$python" bench/peers/trl_grpo.py "$out/$model" "$out/tasks.jsonl" --output-dir "$out/trl-run" \
      --steps "$steps" --prompts-per-step 4 --num-generations 4 --max-completion-length 128 \
      --beta 0.04 --learning-rate "$learning_rate" --lora-r "$lora" \
      "${trl_flags[@]}" --json "$out/trl-$model-$mode.json" > "$out/trl-$model-$mode.log" 2>&1 ||
      { tail -20 "$out/trl-$model-$mode.log"; exit 1; }
  done
done

# (d) The shipped real-size recipes run two steps on the stand-ins, with
# GSM8K-style lines ("question", "answer" ending in "#### n") in place of GSM8K.
"$python" - "$out/gsm8k-style.jsonl" <<'PY'
import json, random, sys
rng = random.Random(0)
with open(sys.argv[1], "w") as f:
    for _ in range(64):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        question = f"Ann has {a} apples and buys {b} more. How many apples does she have now?"
        total = a + b
        f.write(json.dumps({"question": question, "answer": f"{a} + {b} = {total}\n#### {total}"}) + "\n")
PY
for config in qwen2.5-0.5b-gsm8k:qwen2.5-0.5b qwen3-0.6b-lora-gsm8k:qwen3-0.6b; do
  recipe="${config%%:*}" model="${config##*:}"
  [[ " $models " == *" $model "* ]] || continue
  echo "bench-real: configs/$recipe.json, two steps on the $model stand-in"
  "$build/r1kit" train "configs/$recipe.json" --set output_dir="$out/config-$recipe" \
    --set model.path="$out/$model" --set environment.options.path="$out/gsm8k-style.jsonl" \
    --set environment.options.eval_path="$out/gsm8k-style.jsonl" --set trainer.max_steps=2 \
    --set trainer.prompts_per_step=2 --set grpo.num_generations=4 --set grpo.max_completion_length=64 \
    --set trainer.eval_samples=2 --set trainer.save_steps=0 > "$out/config-$recipe.log" 2>&1 ||
    { tail -20 "$out/config-$recipe.log"; exit 1; }
  grep -c '"time/step"' "$out/config-$recipe/metrics.jsonl" | sed "s|^|  steps logged: |"
done

# (e) The table and the ratios.
"$python" - "$out" "$models" "$modes" <<'PY'
import json, sys
out, models, modes = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")
print("model          mode  side   step_s  generate_s  learn_s  peak_rss_gb")
results = {}
for model in models:
    for mode in modes:
        lines = [json.loads(l) for l in open(f"{out}/r1kit-{model}-{mode}/metrics.jsonl") if l.strip()]
        train = [l for l in lines if "time/step" in l]
        later = train[1:] or train
        ours = {"step": mean([l["time/step"] for l in later]), "generate": mean([l["time/generate"] for l in later]),
                "peak": max(l["memory/peak_rss_gb"] for l in lines)}
        ours["learn"] = mean([l["time/learn"] for l in later])
        peer = json.load(open(f"{out}/trl-{model}-{mode}.json"))
        steps, generate = peer["step_seconds"], peer["generate_seconds"]
        theirs = {"step": mean(steps[1:] or steps), "generate": mean(generate[1:] or generate),
                  "peak": peer["peak_rss_gb"]}
        theirs["learn"] = theirs["step"] - theirs["generate"]
        results[(model, mode)] = (ours, theirs)
        for side, r in (("r1kit", ours), ("trl", theirs)):
            print(f"{model:<14} {mode:<5} {side:<5} {r['step']:7.2f}  {r['generate']:10.2f}  {r['learn']:7.2f}  "
                  f"{r['peak']:11.2f}")
first = models[0]
if (first, "full") in results:
    ours, theirs = results[(first, "full")]
    print(f"real_size_step_speedup_vs_trl: {theirs['step'] / ours['step']:.2f}")
    print(f"real_size_peak_memory_vs_trl: {ours['peak'] / theirs['peak']:.2f}")
if (first, "lora") in results:
    ours, theirs = results[(first, "lora")]
    print(f"real_size_lora_step_speedup_vs_trl: {theirs['step'] / ours['step']:.2f}")
    print(f"real_size_lora_peak_memory_vs_trl: {ours['peak'] / theirs['peak']:.2f}")
PY
