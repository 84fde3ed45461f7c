// PEFT's LoRA adapter folders in and out: adapter_config.json (peft_type
// "LORA", r, lora_alpha, target_modules, ...) and adapter_model.safetensors
// with keys base_model.model.<parameter name> (the adapter name "default"
// dropped, as PEFT saves). Functions only; a folder must not be written by two
// callers at once.
#pragma once

#include <filesystem>

#include "policy/lora.h"
#include "policy/transformer.h"

namespace r1kit {

inline constexpr char kAdapterConfigFile[] = "adapter_config.json";
inline constexpr char kAdapterWeightsFile[] = "adapter_model.safetensors";

// True when `folder` holds an adapter_config.json.
bool is_peft_adapter_folder(const std::filesystem::path& folder);

// `config` with the settings of the adapter in `folder` (r, lora_alpha,
// lora_dropout, target_modules, modules_to_save, use_rslora) and path =
// folder. A missing file is an I/O error; a peft_type other than "LORA" or a
// setting r1kit does not implement (DoRA, fan_in_fan_out, bias, rank_pattern,
// ...) is a data error naming the file and the key.
LoraConfig with_adapter_config(LoraConfig config, const std::filesystem::path& folder);

// Copies the adapter weights (and modules_to_save) of `folder` into `model`,
// whose adapters attach_lora made from the same adapter_config.json. A missing,
// misshapen (another base model's adapter) or unexpected tensor is a data
// error naming the file, the tensor key and both shapes; so is a tensor with
// NaN or infinite values (copy_finite_weight).
void load_peft_adapter_into(TransformerImpl& model, const std::filesystem::path& folder);

// Writes the adapters and modules_to_save of `model` (which must have LoRA)
// as a PEFT folder that PeftModel.from_pretrained loads: adapter_config.json
// and adapter_model.safetensors, in the parameters' dtype.
void save_peft_adapter(TransformerImpl& model, const std::filesystem::path& folder);

}  // namespace r1kit
