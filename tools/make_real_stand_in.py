#!/usr/bin/env python3
"""Writes a random-weight stand-in for a real checkpoint, for `make bench-real`.

The model is built by transformers from the published config.json of the named
checkpoint (Qwen2.5-0.5B or Qwen3-0.6B: same shapes, the 151936-row padded
embedding included), with random weights in float32. The tokenizer is a
byte-level BPE of VOCAB tokens (default 32768) with the Qwen2 split pattern and
Qwen's chat special tokens, trained by the `tokenizers` library on Python's
standard library sources plus generated arithmetic text; it is built once and
shared by every model folder. The model's vocabulary stays padded beyond the
tokenizer's, as in every Qwen checkpoint. Deterministic for a given Python.

    python tools/make_real_stand_in.py OUT_DIR --model qwen2.5-0.5b [--vocab 32768]
"""
import argparse
import json
import random
import sys
import sysconfig
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# The published config.json of each checkpoint (Hugging Face hub, Qwen/<name>),
# without the keys that only name the hub files.
PUBLISHED_CONFIGS = {
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896,
        "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 32768,
        "max_window_layers": 24, "num_attention_heads": 14, "num_hidden_layers": 24,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
        "use_sliding_window": False, "vocab_size": 151936,
    },
    "qwen3-0.6b": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": False,
        "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 40960, "max_window_layers": 28, "num_attention_heads": 16,
        "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": None,
        "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
        "torch_dtype": "bfloat16", "use_cache": True, "use_sliding_window": False, "vocab_size": 151936,
    },
}


def corpus(seed=0):
    """Python's standard library sources (sorted, so the order is fixed) and
    arithmetic word problems like the bench's tasks."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        try:
            yield path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    rng = random.Random(seed)
    for _ in range(20000):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        yield (f"Question: what is {a} + {b}? Think step by step inside <think> </think>, then answer "
               f"inside <answer> </answer>.\n<think> {a} plus {b} is {a + b}. </think> <answer>{a + b}</answer>")


def make_tokenizer(folder, vocab):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    with open(folder / "tokenizer_config.json", "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "bos_token": None, "chat_template": CHAT_TEMPLATE,
                   "model_max_length": 32768}, f, indent=1)
    return tokenizer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--model", choices=sorted(PUBLISHED_CONFIGS), required=True)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--tokenizer-cache", default=None,
                        help="folder holding (or receiving) the trained tokenizer; default OUT_DIR/../tokenizer")
    args = parser.parse_args()
    out = Path(args.out_dir)
    cache = Path(args.tokenizer_cache) if args.tokenizer_cache else out.parent / f"tokenizer-{args.vocab}"
    if (cache / "tokenizer.json").exists():
        tokenizer = Tokenizer.from_file(str(cache / "tokenizer.json"))
    else:
        tokenizer = make_tokenizer(cache, args.vocab)
    assert tokenizer.get_vocab_size() >= 32000 or args.vocab < 32000, tokenizer.get_vocab_size()

    published = dict(PUBLISHED_CONFIGS[args.model])
    # The special ids are the stand-in tokenizer's; the embedding keeps its published size.
    published.update(bos_token_id=None, pad_token_id=tokenizer.token_to_id("<|endoftext|>"),
                     eos_token_id=tokenizer.token_to_id("<|im_end|>"), torch_dtype="float32")
    config = AutoConfig.for_model(**published)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (out / name).write_bytes((cache / name).read_bytes())
    parameters = sum(p.numel() for p in model.parameters())
    print(f"{args.model}: {parameters / 1e6:.0f}M parameters (vocabulary {config.vocab_size} rows, "
          f"tokenizer {tokenizer.get_vocab_size()} tokens) written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
