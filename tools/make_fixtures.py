#!/usr/bin/env python3
"""Regenerates r1kit's test fixtures under tests/fixtures/ (or checks an export).

    python tools/make_fixtures.py                # write tests/fixtures/*
    python tools/make_fixtures.py --check DIR    # load an r1kit-written folder in transformers

    python tools/make_fixtures.py --only qwen3 qwen3-untied   # just those models

Writes four tiny random Hugging Face models (float32; the tokenizer fixtures
come from tools/fixtures_tokenizer.py when it exists, and each model folder
gets a copy of tokenizers/bpe512):
  tiny-llama/         LlamaForCausalLM, untied lm_head, Llama-3 rope scaling
  tiny-qwen2/         Qwen2ForCausalLM, q/k/v bias, tied embeddings
  tiny-qwen3/         Qwen3ForCausalLM, q_norm/k_norm, head_dim 32 != hidden / heads,
                      tied embeddings (as Qwen3 0.6B to 4B)
  tiny-qwen3-untied/  the same with an untied lm_head (as Qwen3 8B), one key/value
                      head for four query heads and linear rope scaling
each with expected.safetensors holding
  tokens_right, mask_right, logits_right   (3, 10) padded on the right, (3, 10, V) logits
  tokens_left,  mask_left,  logits_left    the same sequences padded on the left
  prompt_0, prompt_1, greedy_0, greedy_1   two prompts and their 12 greedy tokens
Logits use position_ids = cumsum(mask) - 1 clamped at 0 (r1kit's default).
Then the PEFT LoRA adapters on both models, tiny-*-lora/ (tools/make_peft_fixture.py).

--check handshake: build/export_for_transformers_check OUT
(tools/export_for_transformers_check.cpp) saves model folders OUT/<name>, each
with expected_logits.safetensors = {tokens (B,T), attention_mask (B,T), logits
(B,T,V)} computed by r1kit, and for a reward model (architecture
*ForSequenceClassification) also scores (B). This mode loads one such folder
DIR with transformers, recomputes them, prints the largest difference at real positions
and exits non-zero when it exceeds --tolerance.
"""
import argparse
import importlib.util
import pathlib
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
VOCAB = 512  # the tokenizer fixtures' BPE vocabulary fits this
NEW_TOKENS = 12


def positions_from_mask(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


# The fixture models and the seed of each.
MODELS = {"llama": 1234, "qwen2": 5678, "qwen3": 9012, "qwen3-untied": 3456}


def tiny_config(kind):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0, initializer_range=0.1,
    )
    if kind == "llama":
        return LlamaConfig(
            **common, tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 64},
        )
    if kind == "qwen2":
        return Qwen2Config(**common, tie_word_embeddings=True,
                           rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    # Qwen3: head_dim set apart from hidden_size / heads (16 here), as in the released models.
    if kind == "qwen3":
        return Qwen3Config(**common, head_dim=32, tie_word_embeddings=True,
                           rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    common["num_key_value_heads"] = 1
    return Qwen3Config(**common, head_dim=32, tie_word_embeddings=False,
                       rope_parameters={"rope_type": "linear", "rope_theta": 1000000.0, "factor": 2.0})


def build_model(kind, seed):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(kind), dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        # Non-trivial norms and biases, so loading them wrongly shows in the logits.
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * torch.randn_like(parameter))
            elif name.endswith(".bias"):
                parameter.copy_(0.1 * torch.randn_like(parameter))
    return model.eval()


def padded_batch(generator):
    lengths = [10, 7, 4]
    width = max(lengths)
    sequences = [torch.randint(3, VOCAB, (n,), generator=generator) for n in lengths]
    right = torch.zeros(len(lengths), width, dtype=torch.long)
    left = torch.zeros_like(right)
    mask_right = torch.zeros_like(right)
    mask_left = torch.zeros_like(right)
    for i, sequence in enumerate(sequences):
        n = len(sequence)
        right[i, :n], mask_right[i, :n] = sequence, 1
        left[i, width - n:], mask_left[i, width - n:] = sequence, 1
    return right, mask_right, left, mask_left


@torch.no_grad()
def logits_of(model, tokens, mask):
    return model(input_ids=tokens, attention_mask=mask, position_ids=positions_from_mask(mask)).logits.float()


@torch.no_grad()
def greedy(model, prompt):
    """Greedy tokens from transformers.generate, checked against a plain loop."""
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=NEW_TOKENS, eos_token_id=None, pad_token_id=0)
    generated = model.generate(prompt[None], attention_mask=torch.ones_like(prompt)[None],
                               generation_config=config)[0, len(prompt):]
    sequence, margins = prompt.clone(), []
    for _ in range(NEW_TOKENS):
        last = model(input_ids=sequence[None]).logits[0, -1]
        top = last.topk(2).values
        margins.append((top[0] - top[1]).item())
        sequence = torch.cat([sequence, last.argmax()[None]])
    assert torch.equal(sequence[len(prompt):], generated), "generate disagrees with the plain greedy loop"
    return generated, min(margins)


def write_model_fixture(kind, seed):
    folder = FIXTURES / f"tiny-{kind}"
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(kind, seed)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer = FIXTURES / "tokenizers" / "bpe512"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (tokenizer / name).exists():
            shutil.copyfile(tokenizer / name, folder / name)
    generator = torch.Generator().manual_seed(seed + 1)
    right, mask_right, left, mask_left = padded_batch(generator)
    expected = {
        "tokens_right": right, "mask_right": mask_right, "logits_right": logits_of(model, right, mask_right),
        "tokens_left": left, "mask_left": mask_left, "logits_left": logits_of(model, left, mask_left),
    }
    margins = []
    for i, n in enumerate([5, 8]):
        prompt = torch.randint(3, VOCAB, (n,), generator=generator)
        tokens, margin = greedy(model, prompt)
        expected[f"prompt_{i}"], expected[f"greedy_{i}"] = prompt, tokens
        margins.append(margin)
    save_file({k: v.contiguous() for k, v in expected.items()}, str(folder / "expected.safetensors"))
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"{folder.relative_to(ROOT)}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{size / 1e6:.2f} MB, smallest greedy top-1 margin {min(margins):.4f}")


def write_tokenizer_fixtures_if_present():
    path = ROOT / "tools" / "fixtures_tokenizer.py"
    if not path.exists():
        print("tools/fixtures_tokenizer.py not present; tokenizer fixtures skipped")
        return
    spec = importlib.util.spec_from_file_location("fixtures_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_tokenizer_fixtures(FIXTURES)


def write_peft_fixtures():
    """The LoRA adapter fixtures on the models above (tools/make_peft_fixture.py)."""
    spec = importlib.util.spec_from_file_location("make_peft_fixture", ROOT / "tools" / "make_peft_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_fixtures()


@torch.no_grad()
def check(folder, tolerance):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    folder = pathlib.Path(folder)
    expected = load_file(str(folder / "expected_logits.safetensors"))
    config = AutoConfig.from_pretrained(folder)
    architecture = (config.architectures or ["?"])[0]
    reward = architecture.endswith("ForSequenceClassification")
    loader = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
    model = loader.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    tokens, mask = expected["tokens"], expected["attention_mask"]
    output = model(input_ids=tokens, attention_mask=mask, position_ids=positions_from_mask(mask)).logits.float()
    ok = True
    if reward:
        difference = (output[:, 0] - expected["scores"]).abs().max().item()
        print(f"{folder}: {architecture} scores {tuple(expected['scores'].shape)}: "
              f"max |transformers - r1kit| = {difference:.3g}")
        ok = difference <= tolerance
    else:
        real = mask.bool()
        difference = (output - expected["logits"]).abs()[real].max().item()
        agree = (output.argmax(-1) == expected["logits"].argmax(-1))[real].float().mean().item()
        print(f"{folder}: {architecture} logits {tuple(output.shape)}: max |transformers - r1kit| = "
              f"{difference:.3g} over real positions, argmax agreement {agree:.3f}")
        ok = difference <= tolerance
    print("PASS" if ok else f"FAIL (tolerance {tolerance})")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", metavar="DIR", help="compare an r1kit-written model folder with transformers")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--only", nargs="+", choices=sorted(MODELS), metavar="MODEL",
                        help=f"write only these models (of {', '.join(MODELS)}), not the tokenizers")
    args = parser.parse_args()
    if args.check:
        return check(args.check, args.tolerance)
    torch.set_num_threads(1)
    for kind in args.only or MODELS:
        write_model_fixture(kind, seed=MODELS[kind])
    if not args.only:
        write_tokenizer_fixtures_if_present()
        write_peft_fixtures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
