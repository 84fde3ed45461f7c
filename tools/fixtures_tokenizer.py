#!/usr/bin/env python3
"""Regenerates the tokenizer fixtures of tests/policy/tokenizer_test.cpp.

Trains two small byte-level BPE tokenizers (vocab exactly 512, specials
included) with Hugging Face `tokenizers` on a generated English + code + math
corpus: `bpe512` uses the Qwen2 split pattern, `bpe512_gpt2` the plain GPT-2
ByteLevel pre-tokenizer. Variants are derived by editing their JSON (Llama-3
pattern with ignore_merges and "a b" string merges, GPT-2 without the prefix
space). For every tokenizer it writes the ids `tokenizers` gives for a list of
hard strings (stored as hex so invalid UTF-8 survives) and their decodes; it
also writes the character tokenizer that r1kit's CharTokenizer saves, checked
here to load and agree in `tokenizers`. `bpe512` is copied into the tiny model
folders. Deterministic: rerunning gives the same files.

    python tools/fixtures_tokenizer.py [fixtures_dir]   # default tests/fixtures
"""
import copy
import json
import random
import shutil
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

VOCAB_SIZE = 512
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")

# The character tokenizer of toy tasks, as r1kit's CharTokenizer builds it.
CHAR_ALPHABET = "0123456789+-*/=()., ?\nabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:é"
CHAR_SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHAR_EXTRAS = ["<think>", "</think>", "<answer>", "</answer>"]


def corpus():
    """A few hundred KB of English, code and math, fixed by the seed."""
    rng = random.Random(1234)
    words = ("the a an of to in is was it that for on with as by at from this be are we you they he she "
             "model reward policy token value train step learning reasoning answer question number sum "
             "prove because therefore let find compute result group sample gradient loss it's don't "
             "we're they've I'm you'll she'd").split()
    lines = []
    for _ in range(1500):
        n = rng.randint(5, 18)
        sentence = " ".join(rng.choice(words) for _ in range(n))
        lines.append(sentence[0].upper() + sentence[1:] + rng.choice([".", "?", "!", ":", ";"]))
    for _ in range(600):
        a, b = rng.randint(0, 9999), rng.randint(0, 999)
        op = rng.choice("+-*")
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        lines.append(f"What is {a} {op} {b}? <think>{a}{op}{b}={value}</think> The answer is {value}.")
        lines.append(f"$\\frac{{{a}}}{{{b + 1}}} + \\sqrt{{{b}}} = x^{{2}}$")
    code = [
        "def add(a, b):\n    return a + b\n",
        "for i in range(10):\n\tprint(i * i)\n",
        "class Policy:\n    def __init__(self, size):\n        self.size = size\n",
        "int main() {\n  std::vector<int> xs = {1, 2, 3};\n  return 0;\n}\n",
        "if (x == nullptr) { throw std::runtime_error(\"null\"); }\n",
        "import numpy as np\nx = np.zeros((3, 4))\n",
    ]
    for _ in range(200):
        lines.append(rng.choice(code))
    lines.append("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n")
    lines.append("Größe café naïve — “quotes” 日本語のテキスト 中文 😀 👍🏽")
    return lines


def train(pre_tokenizer):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    assert tok.get_vocab_size() == VOCAB_SIZE, tok.get_vocab_size()
    return json.loads(tok.to_str())


def hard_strings():
    """(name, bytes) pairs; the bytes may be invalid UTF-8."""
    text = [
        ("empty", ""), ("space", " "), ("spaces", "     "), ("tabs_newlines", "\t\t\n\n\r\n \n  \n\t x"),
        ("leading_trailing", "  hello world  "), ("trailing_newline", "end\n"),
        ("english", "The quick brown fox jumps over the lazy dog."),
        ("contractions", "It's, I'm, you're, we've, they'll, he'd, don't, IT'S, We'RE"),
        ("digits", "0 12 345 6789 1234567890 3.14159 -42 1e10"),
        ("long_number", "123456789012345678901234567890"),
        ("accents", "Größe café naïve résumé Ångström"),
        ("combining", "e\u0301 a\u0308 n\u0303o\u0327 Z\u0351\u0352\u0353"),
        ("cjk", "日本語のテキスト、中文字符和한국어"),
        ("emoji", "😀 👍🏽 ❤️ 🇫🇷"),
        ("emoji_zwj", "👨‍👩‍👧‍👦 and 👩🏽‍💻 and 🏳️‍🌈"),
        ("unicode_spaces", "a\u00a0b\u2003c\u3000d\u0085e\u2028f"),
        ("special_inside", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>4</think>"),
        ("special_adjacent", "<think></think><|endoftext|><|endoftext|>x<|im_end|>"),
        ("special_partial", "<think <|im_sta <|endoftext|"),
        ("code_python", "def f(x):\n    return x ** 2  # square\n\tpass\n"),
        ("code_cpp", "if (a != b && c <= d) { std::cout << \"hi\\n\"; }"),
        ("latex", "$\\int_0^1 x^2\\,dx = \\frac{1}{3}$ and \\(\\alpha_{i,j}\\)"),
        ("punctuation", "!!! ??? ... --- *** ((( ))) '' \"\" ``` ~~~"),
        ("mixed", "Step 1: 12+34=46. Step 2: √2≈1.414; ∑ᵢ xᵢ → ∞"),
        ("repeated", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa abababababababab"),
        ("apostrophes", "'s 't 're 've 'm 'll 'd ' s''s"),
        ("control", "a\x00b\x01c\x7fd\x1b[0m"),
    ]
    cases = [(name, s.encode("utf-8")) for name, s in text]
    cases += [
        ("invalid_lone_continuation", b"ab\x80cd"),
        ("invalid_truncated", b"caf\xc3"),
        ("invalid_overlong", b"\xc0\xaf x \xe0\x80\xaf"),
        ("invalid_surrogate", b"\xed\xa0\x80 ok"),
        ("invalid_mixed", b"\xff\xfe hello \xf0\x9f\x98 world \xf4\x90\x80\x80"),
    ]
    return cases


def expectations(tok_json, specials_flag):
    tok = Tokenizer.from_str(json.dumps(tok_json))
    cases = []
    for name, data in hard_strings():
        # `tokenizers` only takes str: invalid bytes become U+FFFD (maximal subparts), as in r1kit.
        text = data.decode("utf-8", errors="replace")
        ids = tok.encode(text, add_special_tokens=False).ids
        case = {
            "name": name, "text_hex": data.hex(), "ids": ids,
            "decoded_hex": tok.decode(ids, skip_special_tokens=False).encode("utf-8").hex(),
            "decoded_skip_hex": tok.decode(ids, skip_special_tokens=True).encode("utf-8").hex(),
        }
        if specials_flag:
            case["ids_with_special"] = tok.encode(text, add_special_tokens=True).ids
        cases.append(case)
    # Decoding ids that split a multi-byte character gives U+FFFD, as r1kit must.
    split = tok.encode("😀é", add_special_tokens=False).ids
    partial = [{"ids": split[:k], "decoded_hex": tok.decode(split[:k]).encode("utf-8").hex()}
               for k in range(len(split) + 1)]
    return {"cases": cases, "partial_decodes": partial}


def variants(qwen2, gpt2):
    out = {"bpe512": qwen2, "bpe512_gpt2": gpt2}

    llama3 = copy.deepcopy(qwen2)
    llama3["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = LLAMA3_PATTERN
    llama3["model"]["ignore_merges"] = True
    llama3["model"]["merges"] = [" ".join(m) for m in llama3["model"]["merges"]]  # the legacy form
    begin = next(t for t in llama3["added_tokens"] if t["content"] == "<|endoftext|>")
    llama3["post_processor"] = json.loads(processors.TemplateProcessing(
        single="<|endoftext|> $A", pair="<|endoftext|> $A <|endoftext|> $B:1",
        special_tokens=[("<|endoftext|>", begin["id"])]).__getstate__())
    tok = Tokenizer.from_str(json.dumps(llama3))
    tok.add_tokens(["<tool_call>"])  # added but not special: never skipped on decode
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken("<|mask|>", lstrip=True, rstrip=True)])
    out["bpe_llama3"] = json.loads(tok.to_str())

    # Post-processors as real checkpoints ship them: Llama-3's is a Sequence of
    # ByteLevel and a TemplateProcessing that puts the BOS in front; Qwen2's is a
    # lone ByteLevel that adds no token.
    sequence = copy.deepcopy(out["bpe_llama3"])
    sequence["post_processor"] = {"type": "Sequence", "processors": [
        json.loads(processors.ByteLevel(trim_offsets=False).__getstate__()),
        llama3["post_processor"]]}
    out["bpe_llama3_sequence"] = json.loads(Tokenizer.from_str(json.dumps(sequence)).to_str())
    bytelevel = copy.deepcopy(qwen2)
    bytelevel["post_processor"] = json.loads(processors.ByteLevel(trim_offsets=False).__getstate__())
    out["bpe512_bytelevel"] = json.loads(Tokenizer.from_str(json.dumps(bytelevel)).to_str())

    noprefix = copy.deepcopy(gpt2)
    noprefix["pre_tokenizer"]["add_prefix_space"] = False
    out["bpe_gpt2_noprefix"] = noprefix
    return out


def char_tokenizer_json():
    """Exactly what CharTokenizer::save writes (the C++ test compares the JSON)."""
    vocab = {}
    for token in CHAR_SPECIALS + CHAR_EXTRAS + list(dict.fromkeys(CHAR_ALPHABET)):
        vocab.setdefault(token, len(vocab))
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in CHAR_SPECIALS + CHAR_EXTRAS]
    bos = vocab["<bos>"]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": None, "pre_tokenizer": None,
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [bos], "tokens": ["<bos>"]}},
        },
        "decoder": {"type": "Fuse"},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    }


def char_cases(tok_json):
    tok = Tokenizer.from_str(json.dumps(tok_json))
    texts = ["", "12+34=46", "What is 7*8? <think>7*8=56</think><answer>56</answer>",
             "unknown ∑ and ü and \t tab", "<bos>(1+2)*3 = 9.<eos><pad><pad>", "ÉéE"]
    cases = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text_hex": text.encode().hex(), "ids": ids,
                      "ids_with_special": tok.encode(text, add_special_tokens=True).ids,
                      "decoded_hex": tok.decode(ids, skip_special_tokens=False).encode().hex(),
                      "decoded_skip_hex": tok.decode(ids, skip_special_tokens=True).encode().hex()})
    # Round trip through the library proves the JSON is canonical for it.
    assert json.loads(tok.to_str())["model"]["vocab"] == tok_json["model"]["vocab"]
    return cases


def write_json(path, value, indent=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def write_tokenizer_fixtures(fixtures_dir):
    fixtures_dir = Path(fixtures_dir)
    root = fixtures_dir / "tokenizers"
    qwen2 = train(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]))
    gpt2 = train(pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True))
    for name, tok_json in variants(qwen2, gpt2).items():
        write_json(root / name / "tokenizer.json", tok_json)
        write_json(root / name / "expected.json",
                   expectations(tok_json, (tok_json.get("post_processor") or {}).get("type") in
                                ("TemplateProcessing", "Sequence", "ByteLevel")))
    config = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
              "unk_token": None, "chat_template": CHAT_TEMPLATE, "model_max_length": 4096,
              "tokenizer_class": "PreTrainedTokenizerFast"}
    write_json(root / "bpe512" / "tokenizer_config.json", config, indent=2)
    for model in ("tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-untied"):
        (fixtures_dir / model).mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copyfile(root / "bpe512" / name, fixtures_dir / model / name)

    char_json = char_tokenizer_json()
    write_json(root / "char" / "tokenizer.json", char_json, indent=2)
    write_json(root / "char" / "expected.json", {
        "alphabet_hex": CHAR_ALPHABET.encode().hex(), "extra_tokens": CHAR_EXTRAS, "cases": char_cases(char_json)})


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests" / "fixtures"
    write_tokenizer_fixtures(target)
    print(f"wrote tokenizer fixtures under {target}")
