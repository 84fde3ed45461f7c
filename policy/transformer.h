// The policy network: a Llama/Qwen2-family decoder-only transformer with
// Hugging Face parameter names (model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., model.norm.weight, lm_head.weight)
// so checkpoints load by lookup. Full-sequence forward for the learner, cached
// forward for generation. A module: one thread at a time; float32 on CPU,
// bfloat16 on CUDA after ->to(device, dtype).
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "policy/decoder_layer.h"
#include "policy/kv_cache.h"
#include "policy/model_config.h"

namespace r1kit {

// The decoder stack without the output projection, registered as "model".
class BackboneImpl : public torch::nn::Module {
 public:
  explicit BackboneImpl(const ModelConfig& config);

  torch::nn::Embedding embed_tokens{nullptr};  // weight (V, H)
  torch::nn::ModuleList layers{nullptr};       // DecoderLayer each
  RmsNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

class TransformerImpl : public torch::nn::Module {
 public:
  // Builds the modules with torch's default initialisation; see
  // make_random_transformer (checkpoint.h) for Hugging Face's init. Without
  // `with_lm_head` an untied model has no lm_head (a reward model's backbone);
  // forward and logits_from_hidden then fail.
  explicit TransformerImpl(ModelConfig config, bool with_lm_head = true);

  // tokens (B, T) int64, attention_mask (B, T) 1 = real token (padding on either
  // side), positions (B, T) defaulting to cumsum(mask) - 1 clamped at 0.
  // Returns the final-normed hidden states (B, T, H); values at padding
  // positions are finite but meaningless.
  at::Tensor forward_hidden(const at::Tensor& tokens, const at::Tensor& attention_mask,
                            const at::Tensor& positions = {});
  // As forward_hidden, then the output projection: logits (B, T, V) float32.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& attention_mask,
                     const at::Tensor& positions = {});
  // hidden (..., H) -> logits (..., V) float32.
  at::Tensor logits_from_hidden(const at::Tensor& hidden);
  // The rotary cos and sin (B, T, D) in `dtype` for positions (B, T): for
  // forwards outside this class (policy/shared_prefix.h).
  std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& positions,
                                                   at::ScalarType dtype) {
    return rotary_.cos_sin(positions, dtype);
  }

  // Generation step. tokens (B, T) right-padded with lengths (B) real tokens per
  // row (1..T); rows (B) distinct cache rows. Each row's real tokens are appended
  // at that row's cache length (positions continue from it) and attend causally
  // to everything the row holds; the row's length then grows by lengths[b].
  // Rows may hold different lengths. rows and lengths may live on any device
  // (they are read on the host). Returns logits float32: (B, V) of each row's
  // last real token when `last_only`, else (B, T, V).
  at::Tensor forward_cached(const at::Tensor& tokens, KvCache& cache, const at::Tensor& rows,
                            const at::Tensor& lengths, bool last_only);

  const ModelConfig& config() const { return config_; }
  // Activation checkpointing per decoder layer for the training forwards
  // (forward_hidden, shared_prefix_hidden): each layer keeps only its input and
  // runs again in the backward (policy/activation_checkpoint.h). Hugging
  // Face's gradient_checkpointing; off by default. No effect without grad mode.
  void set_gradient_checkpointing(bool enabled) { gradient_checkpointing_ = enabled; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }
  bool has_lm_head() const { return config_.tie_word_embeddings || !lm_head.is_empty(); }
  // The output projection's weight (V, H): lm_head's, or the embedding when tied.
  at::Tensor output_weight() const;

  // Trainable parameters (frozen ones, e.g. a LoRA base, left out) for AdamW's
  // weight decay, split as Hugging Face's Trainer does:
  // decayed = every Linear and Embedding weight (embeddings included; a tied
  // lm_head is the embedding, listed once); not decayed = RMSNorm weights and
  // all biases.
  std::vector<at::Tensor> decay_parameters();
  std::vector<at::Tensor> no_decay_parameters();

  Backbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // weight (V, H); empty when tied or absent

 private:
  ModelConfig config_;
  RotaryEmbedding rotary_;
  bool gradient_checkpointing_ = false;
};
TORCH_MODULE(Transformer);

// The default positions for a mask (B, T): cumsum(mask) - 1 clamped at 0, so
// real tokens count 0, 1, 2, ... whichever side the padding is on.
at::Tensor positions_from_mask(const at::Tensor& attention_mask);

}  // namespace r1kit
