#!/usr/bin/env python3
"""Hugging Face transformers' generate() on the model folder `r1kit bench rollout
--export` wrote, with the same prompts, batch sizes, lengths and greedy
decoding, timed the same way (decode time = full run minus a one-token run,
each the median of --repeats runs), in float32 or bfloat16 (the weights cast at
load, as torch_dtype=torch.bfloat16).

    python bench/peers/transformers_generate.py MODEL_DIR --batches 1,8,64 --new-tokens 64 --dtype bfloat16 --json out.json
"""
import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM


def timed(model, prompts, new_tokens):
    ids = torch.tensor(prompts, dtype=torch.long)
    start = time.perf_counter()
    with torch.inference_mode():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--batches", default="1,8,64")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the median counts")
    parser.add_argument("--json")
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    with open(f"{args.model_dir}/bench_prompts.json") as f:
        all_prompts = json.load(f)
    results = []
    print(f"transformers {args.dtype}, threads {torch.get_num_threads()}")
    print("batch  prefill_tok/s  decode_tok/s  ms/decode_step")
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = all_prompts[:batch]
        timed(model, prompts, 2)  # warm-up
        prefill = statistics.median(timed(model, prompts, 1) for _ in range(args.repeats))
        total = statistics.median(timed(model, prompts, args.new_tokens) for _ in range(args.repeats))
        decode = max(total - prefill, 1e-9)
        decode_rate = batch * (args.new_tokens - 1) / decode
        prefill_rate = batch * len(prompts[0]) / prefill
        print(f"{batch:5d} {prefill_rate:14.0f} {decode_rate:13.0f} {1000 * decode / (args.new_tokens - 1):15.2f}")
        results.append({"batch": batch, "dtype": args.dtype, "prefill_tokens_per_second": prefill_rate,
                        "decode_tokens_per_second": decode_rate})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results}, f, indent=2)


if __name__ == "__main__":
    main()
