#!/usr/bin/env python3
"""TRL's GRPOTrainer on the tiny policy folder and the task JSONL that
bench/grpo.sh gave r1kit: the same prompts per step, group size, completion
length, temperature, beta, loss type (TRL's default) and learning rate, on the
CPU. Each optimizer step is timed with a TrainerCallback; the JSON output holds
the seconds of every step and the reward of every step.

    python bench/peers/trl_grpo.py MODEL_DIR TASKS_JSONL --steps 10 --json out.json
"""
import argparse
import json
import re
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
    def __init__(self):
        self.seconds = []
        self._start = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._start)


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
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    with open(args.tasks) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    # r1kit's plain prompt template encodes the prompt text as it is, without the
    # tokenizer.json post-processor (no <bos>); TRL would add it. Same ids on both
    # sides: drop the post-processor here.
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)

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
        beta=0.0,
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
        # TRL turns activation checkpointing on by default (memory for compute); off here, r1kit's default.
        gradient_checkpointing=False,
        disable_tqdm=True,
    )

    def reward(prompts, completions, completion_ids, answer, **kwargs):
        return math_answer(prompts, completions, completion_ids, answer, tokenizer, **kwargs)
    reward.__name__ = "math_answer"

    timer = StepTimer()
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[timer])
    trainer.remove_callback(PrinterCallback)  # bench/grpo.sh prints the per-step table itself
    trainer.remove_callback(ProgressCallback)
    print(f"trl, threads {torch.get_num_threads()}, loss_type {config.loss_type}, "
          f"{completions_per_step} completions per step", flush=True)
    trainer.train()
    rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    with open(args.json, "w") as f:
        json.dump({"step_seconds": timer.seconds, "reward": rewards, "loss_type": config.loss_type,
                   "threads": torch.get_num_threads()}, f, indent=1)


if __name__ == "__main__":
    main()
