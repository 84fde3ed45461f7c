// LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
// Models") on a Transformer's linear layers, named and initialised as PEFT does:
// each adapted Linear holds lora_A (r, in) and lora_B (out, r) as submodules, so
// a parameter reads model.layers.N.self_attn.q_proj.lora_A.weight. Built once
// per model; the forward helpers are safe from several threads at once.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "policy/transformer.h"

namespace r1kit {

// The recipe's `model.lora` section; the names and defaults are PEFT's LoraConfig.
struct LoraConfig {
  int64_t r = 0;         // rank of every adapter; 0 = LoRA off (unless `path` is set)
  double alpha = 8.0;    // PEFT's lora_alpha: an adapter's output is scaled by alpha / r
  double dropout = 0.0;  // PEFT's lora_dropout: on the adapter's input, in gradient forwards only
  // Which Linear layers get adapters: a list of names, each matching a module
  // path exactly or as its last parts ("q_proj", "mlp.down_proj"); "all-linear"
  // (every linear layer but lm_head); or any other string as a regular
  // expression the whole module path must match. Default: PEFT's for Llama/Qwen.
  nlohmann::json target_modules = {"q_proj", "v_proj"};
  // Modules trained in full beside the adapters ("lm_head", "embed_tokens"),
  // matched like target_modules' names.
  std::vector<std::string> modules_to_save;
  bool use_rslora = false;  // scale by alpha / sqrt(r) (Kalajdzievski 2023, rsLoRA)
  // A PEFT adapter folder (adapter_config.json, adapter_model.safetensors) to
  // start from; its r, lora_alpha, lora_dropout, target_modules,
  // modules_to_save and use_rslora replace the keys above. "" = new adapters (B = 0).
  std::string path;

  bool enabled() const { return r > 0 || !path.empty(); }
  double scale() const;  // alpha / r, or alpha / sqrt(r) with use_rslora
  void visit(ConfigVisitor& v);
};

// lora_A of one adapted Linear: the down projection A (r, in) and the
// adapter's scale and dropout. lora_B (out, r) is a plain bias-free Linear.
class LoraDownImpl : public torch::nn::Module {
 public:
  LoraDownImpl(int64_t in_features, int64_t rank, double scale, double dropout);

  at::Tensor weight;  // (r, in)
  double scale;
  double dropout;
};
TORCH_MODULE(LoraDown);

// What attach_lora resolved, kept on the model (a parameterless child "peft"),
// so saving an adapter needs nothing but the model.
class LoraStateImpl : public torch::nn::Module {
 public:
  LoraConfig config;                      // as given, path included
  std::vector<std::string> target_names;  // short names of the adapted layers, sorted
  std::vector<std::string> adapted;       // module paths with adapters, model order
  std::vector<std::string> saved;         // module paths of modules_to_save, model order
  std::string base_model;                 // base_model_name_or_path for adapter_config.json
};
TORCH_MODULE(LoraState);

// Adds adapters to `model` (any device and dtype; the adapters follow it) as
// `config` says, freezes every other parameter but those of modules_to_save,
// and, when config.path is set, loads that PEFT adapter (see peft_adapter.h).
// A is drawn from a generator seeded with `seed` (PEFT's kaiming-uniform,
// a = sqrt(5)), B is zero. `key` names the section in errors
// ("recipe.json: model.lora"); a target or module to save that matches no
// module is a config error listing the model's linear layers.
void attach_lora(TransformerImpl& model, LoraConfig config, uint64_t seed, const std::string& key,
                 const std::string& base_model = "");

// The resolved LoRA state of `model`, or nullptr when it has no adapters.
LoraStateImpl* lora_state(TransformerImpl& model);
inline bool has_lora(TransformerImpl& model) { return lora_state(model) != nullptr; }

// linear(x), plus scale * lora_B(lora_A(dropout(x))) when `linear` has an
// adapter and adapters are on for this thread. x (..., in) -> (..., out).
at::Tensor lora_project(torch::nn::Linear& linear, const at::Tensor& x);

// For a fused matmul over the concatenated weights of `linears`: their adapter
// outputs for x (N, in) concatenated along the last dim (N, sum out), zeros for
// a layer without one; undefined when none of them has an adapter or adapters
// are off for this thread.
at::Tensor lora_fused_delta(std::initializer_list<torch::nn::Linear*> linears, const at::Tensor& x);

// W + scale * B A of `linear` in W's dtype (computed in float32), detached; the
// weight itself when it has no adapter. Not stored on the model.
at::Tensor lora_merged_weight(const torch::nn::Linear& linear);

// The base model's parameters by Hugging Face name, adapted weights merged
// (W + scale * B A) and adapter parameters left out: what a merged export holds.
std::vector<std::pair<std::string, at::Tensor>> merged_parameters(TransformerImpl& model);

// Adds each adapter into its weight (W += scale * B A) and removes the adapters
// and the LoRA state: `model` becomes a plain model (parameters still frozen).
void merge_lora(TransformerImpl& model);

// While alive, lora_project and lora_fused_delta on this thread ignore the
// adapters: the base model, e.g. GRPO's reference, with no copy of it.
class LoraDisabled {
 public:
  LoraDisabled();
  ~LoraDisabled();
  LoraDisabled(const LoraDisabled&) = delete;
  LoraDisabled& operator=(const LoraDisabled&) = delete;
};

}  // namespace r1kit
