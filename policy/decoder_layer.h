// The blocks of a Llama/Qwen2/Qwen3 decoder (Touvron et al. 2023, "LLaMA"): RMSNorm,
// rotary position embedding, grouped-query attention and the SwiGLU MLP, each a
// module whose parameter names are Hugging Face's so a checkpoint loads by
// name. Built and owned by Transformer; not thread-safe during forward.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <functional>
#include <tuple>
#include <utility>

#include "policy/model_config.h"

namespace r1kit {

// RMSNorm (Zhang & Sennrich 2019) as Hugging Face's LlamaRMSNorm: normalised
// in float32, scaled by weight in x's dtype. x (..., H), weight (H).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// RMSNorm (Zhang & Sennrich 2019): x / rms(x) * weight, computed in float32.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t size, double eps);
  at::Tensor forward(const at::Tensor& x);  // (..., H) -> (..., H)

  at::Tensor weight;  // (H)

 private:
  double eps_;
};
TORCH_MODULE(RmsNorm);

// Rotary position embedding (Su et al. 2021, RoFormer) with Llama 3's frequency
// scaling: cos and sin for given positions, shared by all layers.
class RotaryEmbedding {
 public:
  explicit RotaryEmbedding(const ModelConfig& config);
  // positions (B, T) int64 -> {cos, sin}, each (B, T, D) in `dtype`.
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions, at::ScalarType dtype);

 private:
  at::Tensor inv_freq_;  // (D / 2) float32, on the device last used
};

// Applies the rotation to x (B, heads, T, D) with cos/sin (B, T, D).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Turns off cuDNN's fused attention for the whole process, once. The pinned
// torch puts it first for bfloat16 on Hopper (sm90) and Blackwell (sm100), and
// it builds an execution graph per distinct shape (40-900 ms each on an H200),
// while r1kit's attention shapes change on nearly every call (a KV cache that
// grows each decode step, ragged micro-batches). Measured on an H200: bfloat16
// decoding at 480 tokens/s with it and 10,600 without; GRPO's first learner
// step 2.4 s with it, 0.5 s without. Flash and memory-efficient attention serve
// the same calls with no per-shape set-up. Called wherever r1kit puts a model on CUDA.
void disable_cudnn_attention();

// Grouped-query attention (Ainslie et al. 2023) through
// at::scaled_dot_product_attention.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const ModelConfig& config);

  // x (B, T, H) -> projected q (B, nh, T, D), k and v (B, nkv, T, D), rotated.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> project(const at::Tensor& x, const at::Tensor& cos,
                                                         const at::Tensor& sin);
  // Qwen3's RMSNorm of every head of q (..., nh, D) and k (..., nkv, D), applied
  // after the projection and before RoPE; q and k as they are without qk_norm.
  std::pair<at::Tensor, at::Tensor> apply_qk_norm(const at::Tensor& q, const at::Tensor& k);
  // Attention over keys/values (B, nkv, S, D) for queries (B, nh, T, D) with a
  // boolean mask (B, 1, T, S) (true = attend) or, when undefined, causal; returns
  // (B, T, H) after o_proj. `fold_groups` computes GQA by folding each group's
  // query heads into the query length instead of repeating keys and values.
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& mask, bool fold_groups);

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};  // weight (D) each; registered only with qk_norm

 private:
  int64_t num_heads_;
  int64_t num_kv_heads_;
  int64_t head_dim_;
};
TORCH_MODULE(Attention);

// The SwiGLU feed-forward block (Shazeer 2020): down(silu(gate(x)) * up(x)).
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& config);
  at::Tensor forward(const at::Tensor& x);  // (B, T, H) -> (B, T, H)

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

// One pre-norm decoder layer: x + attn(norm(x)), then x + mlp(norm(x)).
class DecoderLayerImpl : public torch::nn::Module {
 public:
  // Given this layer's new keys and values (B, nkv, T, D), returns those to
  // attend to (B, nkv, S, D): the KV cache stores them and hands back the rows.
  using ExtendKeysValues =
      std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&)>;

  explicit DecoderLayerImpl(const ModelConfig& config);
  // x (B, T, H) -> (B, T, H); mask and fold_groups as in Attention::attend.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, bool fold_groups = false,
                     const ExtendKeysValues& extend = nullptr);

  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RmsNorm input_layernorm{nullptr};
  RmsNorm post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace r1kit
