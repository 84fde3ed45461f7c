#!/usr/bin/env python3
"""Writes the character tokenizer of the toy recipes (configs/r1_arith/tokenizer.json):
the same layout as r1kit's CharTokenizer::save (<pad> <bos> <eos> <unk>, the R1 tags
as single tokens, then one token per printable ASCII character and newline), and
checks with Hugging Face `tokenizers` that it loads and round-trips.

    python tools/make_char_tokenizer.py configs/r1_arith/tokenizer.json
"""
import json
import sys

SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
EXTRAS = ["<think>", "</think>", "<answer>", "</answer>"]
ALPHABET = [chr(c) for c in range(32, 127)] + ["\n"]


def added(token_id, content):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def main(path):
    vocab = {token: i for i, token in enumerate(SPECIALS + EXTRAS + ALPHABET)}
    document = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(vocab[t], t) for t in SPECIALS + EXTRAS],
        "normalizer": None, "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [1], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }
    with open(path, "w") as f:
        json.dump(document, f, indent=2, ensure_ascii=False)
        f.write("\n")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print(f"wrote {path} ({len(vocab)} tokens); `tokenizers` not installed, not checked")
        return
    tokenizer = Tokenizer.from_file(path)
    text = "What is 12 + 34?\n<think>\n2+4=6</think>\n<answer>46</answer>"
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(ids, skip_special_tokens=False) == text, "round trip failed"
    print(f"wrote {path} ({len(vocab)} tokens); tokenizers round-trips it")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "configs/r1_arith/tokenizer.json")
