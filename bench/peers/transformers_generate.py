#!/usr/bin/env python3
"""Hugging Face transformers' generate() on the model folder `r1kit bench rollout
--export` wrote, with the same prompts, batch sizes, lengths and greedy
decoding, timed the same way: --repeats alternating pairs of a one-token run
(prefill) and a full run, a pair's decode time the difference (pairs whose
full run is not longer are dropped; none left reports n/a), the median and
the best of the pairs; in float32 or bfloat16 (the weights cast at load, as
torch_dtype=torch.bfloat16).

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
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating pairs of a one-token and a full run; the median counts")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.new_tokens < 2:
        parser.error("--new-tokens must be at least 2 to time decode steps")
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    with open(f"{args.model_dir}/bench_prompts.json") as f:
        all_prompts = json.load(f)
    results = []
    steps = args.new_tokens - 1
    print(f"transformers {args.dtype}, threads {torch.get_num_threads()}; median (best) over {args.repeats} pairs")
    print("batch  prefill_tok/s      decode_tok/s  ms/decode_step")
    for batch in [int(b) for b in args.batches.split(",")]:
        prompts = all_prompts[:batch]
        timed(model, prompts, 2)  # warm-up
        prefills, decodes = [], []
        for _ in range(args.repeats):
            prefill = timed(model, prompts, 1)
            total = timed(model, prompts, args.new_tokens)
            prefills.append(prefill)
            if total > prefill:
                decodes.append(total - prefill)
        prefill_rate = batch * len(prompts[0]) / statistics.median(prefills)
        result = {"batch": batch, "dtype": args.dtype, "prefill_tokens_per_second": prefill_rate,
                  "prefill_tokens_per_second_best": batch * len(prompts[0]) / min(prefills),
                  "dropped_pairs": args.repeats - len(decodes), "decode_tokens_per_second": None}
        if decodes:
            decode = statistics.median(decodes)
            result["decode_tokens_per_second"] = batch * steps / decode
            result["decode_tokens_per_second_best"] = batch * steps / min(decodes)
            print(f"{batch:5d} {prefill_rate:14.0f} {result['decode_tokens_per_second']:8.0f} "
                  f"({result['decode_tokens_per_second_best']:6.0f}) {1000 * decode / steps:15.2f}")
        else:
            print(f"{batch:5d} {prefill_rate:14.0f}  n/a: no run was longer than its one-token run")
        results.append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results}, f, indent=2)


if __name__ == "__main__":
    main()
