#!/usr/bin/env python3
"""Writes PEFT LoRA adapter fixtures for r1kit's tests (or checks an r1kit-written adapter).

    python tools/make_peft_fixture.py                        # write tests/fixtures/tiny-*-lora/
    python tools/make_peft_fixture.py --check-adapter DIR    # load an r1kit adapter folder in peft
        [--base tests/fixtures/tiny-qwen2] [--merged MERGED_DIR]

Fixtures (PEFT's own save_pretrained output, plus expected.safetensors):
  tiny-qwen2-lora/  on tests/fixtures/tiny-qwen2: r 4, lora_alpha 16, target_modules
                    "all-linear" (PEFT writes the matched module paths), init_lora_weights
                    False so B is nonzero
  tiny-llama-lora/  on tests/fixtures/tiny-llama: r 4, lora_alpha 8, ["q_proj", "v_proj"],
                    use_rslora, modules_to_save ["lm_head"] (perturbed)
expected.safetensors holds tokens (3, 10), mask (3, 10) (the base fixture's right-padded
batch) and logits (3, 10, V) of the base model with the adapter, float32, position_ids =
cumsum(mask) - 1 clamped at 0 as in tools/make_fixtures.py.

--check-adapter loads DIR with PeftModel.from_pretrained on the base, prints its tensor
keys and config fields beside what PEFT itself writes for the same settings, and fails
when they differ. With --merged (r1kit export --merge output) it also compares the
logits of base + adapter in peft with the merged folder in transformers.
"""
import argparse
import json
import pathlib
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
# adapter_config.json fields r1kit reads or writes with a fixed value.
CHECKED_FIELDS = ["peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "bias", "fan_in_fan_out",
                  "use_rslora", "use_dora", "modules_to_save", "target_modules"]


def positions_from_mask(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def load_base(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


@torch.no_grad()
def logits_of(model, tokens, mask):
    return model(input_ids=tokens, attention_mask=mask, position_ids=positions_from_mask(mask)).logits.float()


def write_fixture(name, base_name, seed, **lora):
    from peft import LoraConfig, get_peft_model

    base_folder = FIXTURES / base_name
    folder = FIXTURES / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = get_peft_model(load_base(base_folder),
                           LoraConfig(task_type="CAUSAL_LM", init_lora_weights=False, **lora))
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if "modules_to_save" in parameter_name:  # a trained module differs from the base
                parameter.add_(0.05 * torch.randn_like(parameter))
    model.eval()
    model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)  # peft's model card template
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = f"tests/fixtures/{base_name}"  # not this machine's path
    config["target_modules"] = sorted(config["target_modules"])  # peft writes a set's order
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    base_expected = load_file(str(base_folder / "expected.safetensors"))
    tokens, mask = base_expected["tokens_right"], base_expected["mask_right"]
    logits = logits_of(model, tokens, mask)
    save_file({"tokens": tokens, "mask": mask, "logits": logits.contiguous()}, str(folder / "expected.safetensors"))
    difference = (logits - base_expected["logits_right"]).abs()[mask.bool()].max().item()
    print(f"{folder.relative_to(ROOT)}: {len(load_file(str(folder / 'adapter_model.safetensors')))} tensors, "
          f"max |adapted - base| logits {difference:.3g}")


def write_fixtures():
    torch.set_num_threads(1)
    write_fixture("tiny-qwen2-lora", "tiny-qwen2", seed=91, r=4, lora_alpha=16, target_modules="all-linear")
    write_fixture("tiny-llama-lora", "tiny-llama", seed=92, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                  use_rslora=True, modules_to_save=["lm_head"])
    return 0


@torch.no_grad()
def check_adapter(folder, base, merged, tolerance):
    from peft import LoraConfig, PeftModel, get_peft_model

    folder = pathlib.Path(folder)
    written = json.loads((folder / "adapter_config.json").read_text())
    keys = set(load_file(str(folder / "adapter_model.safetensors")))
    base = base or written.get("base_model_name_or_path")
    if not base:
        print("no --base and no base_model_name_or_path in adapter_config.json")
        return 1
    ok = True
    # What PEFT itself writes for the same settings on the same base.
    reference = get_peft_model(load_base(base), LoraConfig(
        task_type="CAUSAL_LM", r=written["r"], lora_alpha=written["lora_alpha"],
        lora_dropout=written["lora_dropout"], target_modules=written["target_modules"],
        modules_to_save=written.get("modules_to_save"), use_rslora=written.get("use_rslora", False)))
    with tempfile.TemporaryDirectory() as scratch:
        reference.save_pretrained(scratch)
        peft_config = json.loads((pathlib.Path(scratch) / "adapter_config.json").read_text())
        peft_keys = set(load_file(str(pathlib.Path(scratch) / "adapter_model.safetensors")))
    if keys != peft_keys:
        ok = False
        print(f"keys differ: only r1kit {sorted(keys - peft_keys)[:5]}, only peft {sorted(peft_keys - keys)[:5]}")
    else:
        print(f"{len(keys)} tensor keys, the same as peft writes")
    for field in CHECKED_FIELDS:
        ours, theirs = written.get(field), peft_config.get(field)
        if isinstance(ours, list) and isinstance(theirs, list):
            ours, theirs = sorted(ours), sorted(theirs)
        if ours != theirs:
            ok = False
            print(f"adapter_config.json {field}: r1kit {ours!r}, peft {theirs!r}")
    missing = sorted(set(peft_config) - set(written))
    print(f"config fields peft writes that r1kit leaves to their defaults: {len(missing)}")
    model = PeftModel.from_pretrained(load_base(base), folder).eval()
    print(f"PeftModel.from_pretrained({folder}) loaded; r {written['r']}, "
          f"target_modules {written['target_modules']}")
    if merged:
        expected = load_file(str(pathlib.Path(base) / "expected.safetensors"))
        tokens, mask = expected["tokens_right"], expected["mask_right"]
        adapted = logits_of(model, tokens, mask)
        worst = (adapted - logits_of(load_base(merged), tokens, mask)).abs()[mask.bool()].max().item()
        with model.disable_adapter():
            moved = (adapted - logits_of(model, tokens, mask)).abs()[mask.bool()].max().item()
        print(f"max |peft base + adapter - r1kit merged| logits {worst:.3g} "
              f"(the adapter moves them by up to {moved:.3g})")
        ok = ok and worst <= tolerance
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-adapter", metavar="DIR", help="check an r1kit-written PEFT adapter folder")
    parser.add_argument("--base", help="the base model folder (default: the adapter's base_model_name_or_path)")
    parser.add_argument("--merged", help="r1kit export --merge output to compare logits with")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    if args.check_adapter:
        return check_adapter(args.check_adapter, args.base, args.merged, args.tolerance)
    return write_fixtures()


if __name__ == "__main__":
    sys.exit(main())
