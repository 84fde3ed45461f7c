#!/usr/bin/env python3
"""TRL's GRPOTrainer on the policy folder and the task JSONL that bench/grpo.sh
or bench/real.sh gave r1kit: the same prompts per step, group size, completion
length, temperature, beta, loss type (TRL's default) and learning rate, on the
CPU, fully fine-tuned or with a peft LoRA adapter. Each optimizer step is timed
with a TrainerCallback and each generate call by wrapping the model's
generate; the JSON output holds the seconds of every step, the generation
seconds of every step, the reward of every step and the process's peak
resident memory.

    python bench/peers/trl_grpo.py MODEL_DIR TASKS_JSONL --steps 10 --json out.json
"""
import argparse
import json
import re
import resource
import time
import warnings

import torch
from datasets import Dataset
from tokenizers import processors
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import GRPOConfig, GRPOTrainer

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def final_answer(text):
    """The answer r1kit's math_answer would extract, in its priority: the last
    \\boxed{..}, the last <answer>..</answer>, a "#### x" line, "the answer is x".
    A simplified port of rewards/answer_extraction.cpp (no nested braces)."""
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    if boxed:
        return boxed[-1]
    tags = re.findall(r"<answer>(.*?)</answer>", text, flags=re.S)
    if tags:
        return tags[-1]
    hashes = re.findall(r"####\s*([^\n]*)", text)
    if hashes:
        return hashes[-1]
    said = re.findall(r"(?:answer is|final answer:)\s*([^\n]*)", text, flags=re.I)
    if said:
        return said[-1]
    return None


def math_answer(prompts, completions, completion_ids, answer, tokenizer, **_):
    """1.0 when the final answer's last number equals the reference, else 0.0.
    Decodes the ids itself with the special tokens kept (TRL's `completions`
    drop them, and <answer> is a special token of this tokenizer)."""
    scores = []
    for ids, reference in zip(completion_ids, answer):
        text = tokenizer.decode(ids, skip_special_tokens=False)
        found = final_answer(text)
        numbers = NUMBER.findall(found) if found is not None else []
        scores.append(1.0 if numbers and float(numbers[-1]) == float(reference) else 0.0)
    return scores


class StepTimer(TrainerCallback):
    """Seconds of every optimizer step and, of those, seconds spent in generate."""

    def __init__(self):
        self.seconds = []
        self.generate_seconds = []
        self._start = None
        self._generating = 0.0

    def wrap_generate(self, model):
        generate = model.generate

        def timed_generate(*args, **kwargs):
            start = time.perf_counter()
            try:
                return generate(*args, **kwargs)
            finally:
                self._generating += time.perf_counter() - start
        model.generate = timed_generate

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        self._generating = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)
        self.generate_seconds.append(self._generating)


def main():
    warnings.filterwarnings("ignore", category=FutureWarning)
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("tasks")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--lora-r", type=int, default=0, help="0 = full fine-tuning")
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--keep-post-processor", action="store_true",
                        help="leave tokenizer.json's post-processor on (special tokens as transformers adds them)")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    with open(args.tasks) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    # r1kit's plain prompt template encodes the prompt text as it is, without the
    # tokenizer.json post-processor (no <bos>); TRL would add it. Same ids on both
    # sides: drop the post-processor here.
    if not args.keep_post_processor:
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    if args.lora_r > 0:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.0,
                                                 target_modules="all-linear", task_type="CAUSAL_LM"))

    completions_per_step = args.prompts_per_step * args.num_generations
    config = GRPOConfig(
        output_dir=args.output_dir,
        # One optimizer step = one generation round of prompts_per_step x num_generations.
        per_device_train_batch_size=completions_per_step,
        gradient_accumulation_steps=1,
        steps_per_generation=1,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=1.0,
        beta=args.beta,
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_steps=args.steps,
        use_cpu=True,
        bf16=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        seed=args.seed,
        log_completions=False,
        # TRL turns activation checkpointing on by default (memory for compute); r1kit's default is off,
        # so the benches choose it for both sides.
        gradient_checkpointing=args.gradient_checkpointing,
        disable_tqdm=True,
    )

    def reward(prompts, completions, completion_ids, answer, **kwargs):
        return math_answer(prompts, completions, completion_ids, answer, tokenizer, **kwargs)
    reward.__name__ = "math_answer"

    timer = StepTimer()
    timer.wrap_generate(model)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # bench/grpo.sh prints the per-step table itself
    trainer.remove_callback(ProgressCallback)
    print(f"trl, threads {torch.get_num_threads()}, loss_type {config.loss_type}, "
          f"{completions_per_step} completions per step", flush=True)
    trainer.train()
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    with open(args.json, "w") as f:
        json.dump({"step_seconds": timer.seconds, "generate_seconds": timer.generate_seconds,
                   "reward": rewards, "loss_type": config.loss_type, "threads": torch.get_num_threads(),
                   "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9},
                  f, indent=1)


if __name__ == "__main__":
    main()
