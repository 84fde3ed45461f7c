#!/usr/bin/env python3
"""Writes the committed seed corpora fuzz/corpus/<target>/ from the test
fixtures and the cases of the unit tests, and the dictionaries
fuzz/dictionaries/<target>.dict from the string literals of each parser's
sources. Standard library only; rerun after a fixture or parser changes:
python3 fuzz/make_seeds.py"""
import json
import pathlib
import re
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "fuzz" / "corpus"
DICTIONARIES = ROOT / "fuzz" / "dictionaries"

# The parser sources whose string literals (keys, names, LaTeX commands) make
# each target's dictionary; JSON punctuation is added to all but the text ones.
DICTIONARY_SOURCES = {
    "safetensors": ["common/safetensors.cpp"],
    "model_config": ["policy/model_config.cpp", "rollout/generation_config.cpp"],
    "tokenizer_json": ["policy/tokenizer.cpp", "policy/tokenizer_json.cpp", "policy/bpe_pretokenizer.cpp",
                       "policy/bpe_tokenizer.cpp", "policy/char_tokenizer.cpp"],
    "recipe": ["learner/recipe.cpp", "learner/pipeline.cpp", "learner/grpo_config.cpp", "learner/optimizer.cpp",
               "policy/model_source.cpp", "rewards/reward_set.cpp", "environments/environment.cpp",
               "data/stage_configs.cpp", "common/config.cpp"],
    "config_override": ["common/config.cpp"],
    "jsonl_tasks": ["environments/jsonl_dataset.cpp"],
    "answer_extraction": ["rewards/answer_extraction.cpp"],
    "math_equivalence": ["rewards/math_equivalence.cpp"],
    "countdown": ["common/arithmetic_expression.cpp"],
    "reward_reply": ["rewards/reward_protocol.cpp"],
}
JSON_TOKENS = ['{', '}', '[', ']', ':', ',', '""', 'null', 'true', 'false', '-1', '1e308', '1e999', '0.5', '18446744073709551616']
TEXT_TARGETS = {"answer_extraction", "math_equivalence", "countdown"}


def c_literal_bytes(literal):
    """The bytes of a C++ string literal's body (simple escapes only)."""
    escapes = {"n": b"\n", "t": b"\t", "r": b"\r", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}
    out, i = b"", 0
    while i < len(literal):
        if literal[i] == "\\" and i + 1 < len(literal):
            if literal[i + 1] == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", literal[i + 2:i + 4]):
                out += bytes([int(literal[i + 2:i + 4], 16)])
                i += 4
                continue
            out += escapes.get(literal[i + 1], literal[i + 1].encode())
            i += 2
        else:
            out += literal[i].encode()
            i += 1
    return out


def dictionary_entry(word):
    """`word` in libFuzzer's dictionary syntax: quoted, \\, \" and \xAB escapes."""
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\x{b:02X}"
                         for b in word) + '"'


def write_dictionary(target, sources):
    words = set()
    for source in sources:
        for literal in re.findall(r'"((?:[^"\\\n]|\\.){2,24})"', (ROOT / source).read_text()):
            if " + " in literal or literal.startswith((" ", ",")):
                continue  # the text between two literals, not one
            if " " in literal and target not in TEXT_TARGETS:
                continue
            words.add(c_literal_bytes(literal))
    if target not in TEXT_TARGETS:
        words.update(token.encode() for token in JSON_TOKENS)
    DICTIONARIES.mkdir(parents=True, exist_ok=True)
    lines = [dictionary_entry(word) for word in sorted(words)]
    (DICTIONARIES / f"{target}.dict").write_text("\n".join(lines) + "\n")


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, payload) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def small_tokenizer(path, keep=80):
    """A fixture's tokenizer.json cut to its first `keep` ids and the merges among them."""
    document = json.loads(path.read_text())
    model = document["model"]
    vocab = {token: i for token, i in model["vocab"].items() if i < keep}
    model["vocab"] = vocab
    merges = []
    for merge in model.get("merges", []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        if left in vocab and right in vocab and left + right in vocab:
            merges.append(merge)
    model["merges"] = merges
    document["added_tokens"] = [t for t in document.get("added_tokens", []) if t["id"] < keep + 64]
    return json.dumps(document, ensure_ascii=False)


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    shutil.rmtree(DICTIONARIES, ignore_errors=True)
    for target, sources in DICTIONARY_SOURCES.items():
        write_dictionary(target, sources)

    write("safetensors", "one_f32", safetensors({"w": ("F32", [2, 2], bytes(16))}))
    write("safetensors", "mixed_metadata", safetensors(
        {"a": ("BF16", [3], bytes(6)), "b": ("I64", [1, 1], bytes(8)), "e": ("U8", [0], b"")},
        {"format": "pt"}))
    write("safetensors", "empty", safetensors({}))
    qwen = (FIXTURES / "tiny-qwen2" / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", qwen[:8])[0]
    write("safetensors", "tiny_qwen2_header_only", qwen[:8 + min(size, 3000)])

    for model in ("tiny-qwen2", "tiny-llama", "tiny-qwen3"):
        folder = FIXTURES / model
        write("model_config", model, (folder / "config.json").read_text() + "\0" +
              (folder / "generation_config.json").read_text())

    config = json.loads((FIXTURES / "tiny-llama" / "config.json").read_text())
    write("model_config", "generation_top_k_float", json.dumps(config) + "\0" +
          json.dumps({"do_sample": False, "top_k": 1e300, "temperature": 0.6, "eos_token_id": [1, 2]}))

    for name in ("bpe512", "bpe_llama3", "bpe512_gpt2", "char"):
        folder = FIXTURES / "tokenizers" / name
        config = folder / "tokenizer_config.json"
        write("tokenizer_json", name, small_tokenizer(folder / "tokenizer.json") +
              ("\0" + config.read_text() if config.exists() else ""))
    # Findings kept as seeds: ids that are floats.
    document = json.loads(small_tokenizer(FIXTURES / "tokenizers" / "bpe512" / "tokenizer.json"))
    document["model"]["vocab"][next(iter(document["model"]["vocab"]))] = 1e300
    document["added_tokens"] = [{"id": 2.5, "content": "<x>"}]
    write("tokenizer_json", "float_ids", json.dumps(document))
    write("tokenizer_json", "tiny_qwen2", small_tokenizer(FIXTURES / "tiny-qwen2" / "tokenizer.json") +
          "\0" + (FIXTURES / "tiny-qwen2" / "tokenizer_config.json").read_text())

    texts = set()
    for expected in (FIXTURES / "tokenizers").glob("*/expected.json"):
        for case in json.loads(expected.read_text())["cases"]:
            texts.add(bytes.fromhex(case["text_hex"]))
    for i, text in enumerate(sorted(texts, key=lambda t: (len(t), t))[:12]):
        write("bpe_encode", f"case{i:02d}", bytes([i]) + text)
    for i, ids in enumerate(([1, 2, 3, 4], [300, 301, 65, 66], [0, 255, 511, 70], [7, 8, 9])):
        write("bpe_decode", f"ids{i}", bytes([i]) + b"".join(struct.pack("<H", x) for x in ids))

    recipes = sorted((ROOT / "configs").glob("*.json")) + sorted((ROOT / "configs" / "r1_arith").glob("*.json"))
    for path in recipes:
        if path.name == "tokenizer.json":
            continue
        write("recipe", path.stem, path.read_text())
    write("recipe", "overrides", (ROOT / "configs" / "sft_only.json").read_text() +
          "\0optimizer.learning_rate=1e-5\ntrainer.max_steps=3\nrewards=[{\"name\":\"math\"}]")
    write("config_override", "recipe", '{"stage": "grpo", "seed": 1, "ids": [1, 2], "section": '
          '{"steps": 5, "mode": "float32"}, "items": [{"name": "a", "weight": 0.5}]}'
          "\0section.rate=0.25\nitems=[{\"name\":\"b\"}]\nnames=[\"x\",\"y\"]\nsection.flag=true")
    write("config_override", "bad_path", "{}\0a..b=1\n=3\nsection.steps.x=2\nstage=grpo")

    write("jsonl", "mixed", b"\x00" + b'{"a": 1}\n\n[1,2]\n{"broken\n"text"\n')
    write("jsonl", "filtered", b"\x23" + b'{"x": 1}\n{"x": 2}\n{"x": 3}\r\n  \n{"x":')
    tasks = [
        '{"question": "Natalia sold 48 clips...", "answer": "48/2 = 24\\n48+24 = 72\\n#### 72"}',
        '{"problem": "Find x.", "solution": "So $x = \\\\boxed{\\\\frac{1}{2}}$."}',
        '{"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello"}], "answer": "Hello"}',
        '{"prompt": "2+2?", "answer": 4, "metadata": {"level": 1}}',
        '{"question": "q3", "answer": "no hashes"}',
    ]
    write("jsonl_tasks", "all_formats", b"\x00" + "\n".join(tasks).encode() + b"\n")
    write("jsonl_tasks", "gsm8k_held_out", b"\x09" + "\n".join([tasks[0], tasks[4], tasks[0]]).encode())
    write("jsonl_tasks", "chat_strict", b"\x13" + tasks[2].encode() + b"\nnot json\n")

    completions = [
        "<think>2+2</think><answer>4</answer>",
        "So the result is \\boxed{\\frac{1}{2}} and \\fbox{3}.",
        "48/2 = 24\n#### 72",
        "The answer is 42.",
        "Final answer: \\boxed 5",
        "\\boxed{\\boxed{1}",
    ]
    for i, text in enumerate(completions):
        write("answer_extraction", f"completion{i}", bytes([0x0f | (i << 4)]) + text.encode())

    pairs = [("0.5", "\\frac{1}{2}"), ("\\sqrt{8}", "2\\sqrt{2}"), ("(1, 2]", "(1,2]"),
             ("\\{1, 2\\}", "\\{2,1\\}"), ("x = 3", "3"), ("\\frac{x+1}{2}", "\\frac{1+x}{2}"),
             ("30^\\circ", "30"), ("1,234,567", "1234567"), ("\\pi r^2", "\\pi r^{2}"),
             ("9^{9^{9}}", "1"), ("\\sqrt[3]{-8}", "-2")]
    for i, (prediction, reference) in enumerate(pairs):
        write("math_equivalence", f"pair{i:02d}", prediction + "\0" + reference)

    expressions = [("(25 - 1) * 1", [25, 1, 1], 24), ("3 / (1 - 7/8)", [3, 1, 7, 8], 24),
                   ("-2^3 + 2.5 * 4", [2, 3, 2, 4], 1), ("(5-3)*5", [5, 3, 5], 10), ("1/0", [1, 0], 0)]
    for i, (expression, numbers, target) in enumerate(expressions):
        write("countdown", f"expression{i}", expression.encode() + b"\0" +
              bytes([(target // 7) & 0xff]) + bytes(numbers))

    replies = ['{"reward": 1.0, "components": {"format": 0.5}, "info": {"answer": "4"}}',
               '{"reward": null}', '{"reward": "1"}',
               '{"results": [{"reward": 0.5}, {"reward": null, "components": null}]}']
    for i, reply in enumerate(replies):
        write("reward_reply", f"reply{i}", reply)


if __name__ == "__main__":
    main()
