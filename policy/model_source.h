// The recipe's `model` section: where a run's policy and tokenizer come from
// (a Hugging Face folder, or a fresh random model described by HF config.json
// fields for pretraining) and the device and dtype it runs in.
// load_policy() is called once per stage; the result is owned by the caller.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "common/config.h"
#include "policy/lora.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"

namespace r1kit {

struct ModelSource {
  std::string path;  // HF folder (config.json, *.safetensors, tokenizer.json); "" = from `config`
  nlohmann::json config;  // HF config.json fields of a new random model (used when path is "")
  std::string tokenizer;  // folder or tokenizer.json; "" = `path`
  std::string device = "auto";  // cpu, cuda or auto (cuda when available)
  std::string dtype = "auto";   // float32, bfloat16 or auto (float32 on CPU, bfloat16 on CUDA)
  LoraConfig lora;              // LoRA adapters (PEFT's LoraConfig); r = 0: the whole model trains

  void visit(ConfigVisitor& v);
};

struct LoadedPolicy {
  Transformer model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
};

// Loads (or, without a path, randomly initialises with `seed`) the policy and
// its tokenizer, with LoRA adapters when model.lora is on (base frozen). A config whose vocab_size
// is smaller than the tokenizer's is an error naming both. `source` names the recipe in errors.
LoadedPolicy load_policy(const ModelSource& model, uint64_t seed, const std::string& source);

// What load_policy checks before it loads anything, for `r1kit train --check`:
// the section is consistent, the model folder has a readable config.json of a
// supported architecture and its safetensors, the tokenizer path exists.
// Errors name `source` and the key.
void check_model_source(const ModelSource& model, const std::string& source);

at::Device resolve_device(const std::string& name);

// The CUDA device index of this process: LOCAL_RANK (torchrun, `r1kit launch`)
// when set, else 0. A usage error when there are fewer than LOCAL_RANK + 1
// devices (NCCL refuses two ranks on one GPU). `local_rank` is the variable's
// value or nullptr.
int64_t cuda_device_index(const char* local_rank, int64_t device_count);
at::ScalarType resolve_dtype(const std::string& name, at::Device device);

}  // namespace r1kit
