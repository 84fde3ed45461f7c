// The rollout's own copy of the policy weights, laid out for generation: q/k/v
// and gate/up fused into one matrix each, every RMSNorm weight folded into the
// matmul that follows it, all in the rollout compute dtype (float32 or
// bfloat16). Built once per published weight version (PolicyWeights keeps it)
// and then read-only: forward() is const and safe from several engines at once.
// It holds at most one copy of each weight matrix (the plain matrix, its
// oneDNN packing or the pair layout of avx512_bf16_linear; CPUs with AMX also
// keep the tile layout) and reads the embedding table from the model, so it
// lives no longer than the version.
// forward() computes what Transformer::forward_cached computes, with a handful
// of large ATen calls and fused kernels per layer instead of dozens of small
// ones. bfloat16 matmuls on CPU: with AMX, the tile kernel for decode steps of
// single-threaded engines and oneDNN with pre-packed weights otherwise; with
// AVX512-BF16 and no AMX, avx512_bf16_linear for every matmul; at::mm on CPUs
// with neither.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/decoder_layer.h"
#include "policy/kv_cache.h"
#include "policy/transformer.h"

namespace r1kit {

// The rollout compute dtype named by a config value: "float32" or "bfloat16".
// Throws a usage error naming `key` for anything else.
at::ScalarType rollout_dtype_from_name(const std::string& name, const std::string& key);

class DecodePlan {
 public:
  // Copies (and casts) the weights of `model` into the fused layout. Run with
  // no writer on the model (PolicyWeights holds its lock).
  DecodePlan(TransformerImpl& model, at::ScalarType dtype);

  // tokens (B, T) int64 right-padded; rows (B) distinct cache rows; lengths (B)
  // real tokens per row in 1..T. Appends each row's real tokens to its cache
  // row (the cache must hold `dtype()` tensors), advances the row lengths and
  // returns the logits (B, V) of each row's last real token in `dtype()`.
  at::Tensor forward(const at::Tensor& tokens, KvCache& cache, const std::vector<int64_t>& rows,
                     const std::vector<int64_t>& lengths) const;

  at::ScalarType dtype() const { return dtype_; }
  const at::Device& device() const { return device_; }

 private:
  // One matmul: y = x W^T + b, optionally + a residual.
  struct Projection {
    at::Tensor weight;  // (out, in) contiguous, in the compute dtype; undefined once packed
    at::Tensor bias;    // (out) or undefined
    at::Tensor packed;  // weight pre-packed for oneDNN (bfloat16 on CPU), or undefined
    at::Tensor amx;  // weight in AMX tile layout (bfloat16 on CPUs with AMX, no bias), or undefined
    // weight in vdpbf16ps's pair layout (bfloat16 on CPUs with AVX512-BF16 and
    // no AMX; then weight and packed are undefined), or undefined.
    at::Tensor bf16_pairs;
    int64_t out_features = 0;  // the weight's rows

    at::Tensor apply(const at::Tensor& x) const;  // (N, in) -> (N, out)
    // residual (N, out) + apply(x), fused into the matmul where packed.
    at::Tensor apply_add(const at::Tensor& x, const at::Tensor& residual) const;
  };
  struct Layer {
    Projection qkv;      // (nh * D + 2 * nkv * D, H), input_layernorm folded in
    Projection o;        // (H, nh * D)
    Projection gate_up;  // (2 * I, H), post_attention_layernorm folded in
    Projection down;     // (H, I)
    // (nh + nkv, D): q_norm's weight for every query head, then k_norm's for
    // every key head, in the compute dtype; undefined without qk_norm. Applied
    // per head after qkv and before RoPE, so it cannot fold into a matmul.
    at::Tensor qk_norm;
  };

  // x (N, H) -> x / rms(x) in the compute dtype; the norm's weight is folded
  // into the next matmul.
  at::Tensor normalize(const at::Tensor& x) const;

  ModelConfig config_;
  at::ScalarType dtype_;
  at::Device device_;
  mutable RotaryEmbedding rotary_;  // caches inv_freq on the device it last saw
  at::Tensor rotary_sign_;          // (D): -1 for the first half, +1 for the second
  at::Tensor embedding_;            // (V, H): the model's table itself, any dtype
  std::vector<Layer> layers_;
  Projection lm_head_;  // (V, H), the final norm folded in
};

}  // namespace r1kit
