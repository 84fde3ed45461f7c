#include "policy/decoder_layer.h"

#include <ATen/Context.h>

#include <cmath>
#include <mutex>

#include "policy/lora.h"

namespace r1kit {

void disable_cudnn_attention() {
  static std::once_flag once;
  std::call_once(once, [] { at::globalContext().setSDPUseCuDNN(false); });
}

RmsNormImpl::RmsNormImpl(int64_t size, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({size}));
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  const at::Tensor x32 = x.to(at::kFloat);
  const at::Tensor normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor RmsNormImpl::forward(const at::Tensor& x) { return rms_norm(x, weight, eps_); }

RotaryEmbedding::RotaryEmbedding(const ModelConfig& config) {
  const int64_t dim = config.head_size();
  at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  at::Tensor inv_freq = 1.0 / at::pow(config.rope_theta, exponents);  // (D / 2)
  const RopeScaling& scaling = config.rope_scaling;
  if (scaling.rope_type == "linear") {
    inv_freq = inv_freq / scaling.factor;
  } else if (scaling.rope_type == "llama3") {
    // Llama 3.1: keep high frequencies, divide low ones by `factor`, blend between.
    const double old_context = static_cast<double>(scaling.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / scaling.low_freq_factor;
    const double high_freq_wavelen = old_context / scaling.high_freq_factor;
    const at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / scaling.factor, inv_freq);
    const at::Tensor smooth = (old_context / wavelen - scaling.low_freq_factor) /
                              (scaling.high_freq_factor - scaling.low_freq_factor);
    const at::Tensor smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
    const at::Tensor medium =
        (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = at::where(medium, smoothed, scaled);
  }
  inv_freq_ = inv_freq.to(at::kFloat).contiguous();
}

std::pair<at::Tensor, at::Tensor> RotaryEmbedding::cos_sin(const at::Tensor& positions,
                                                           at::ScalarType dtype) {
  if (inv_freq_.device() != positions.device()) inv_freq_ = inv_freq_.to(positions.device());
  const at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // (B, T, D / 2)
  const at::Tensor angles = at::cat({freqs, freqs}, -1);                        // (B, T, D)
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

AttentionImpl::AttentionImpl(const ModelConfig& config)
    : num_heads_(config.num_attention_heads),
      num_kv_heads_(config.num_key_value_heads),
      head_dim_(config.head_size()) {
  const int64_t hidden = config.hidden_size;
  using torch::nn::LinearOptions;
  q_proj = register_module(
      "q_proj",
      torch::nn::Linear(LinearOptions(hidden, num_heads_ * head_dim_).bias(config.attention_bias)));
  k_proj = register_module(
      "k_proj", torch::nn::Linear(
                    LinearOptions(hidden, num_kv_heads_ * head_dim_).bias(config.attention_bias)));
  v_proj = register_module(
      "v_proj", torch::nn::Linear(
                    LinearOptions(hidden, num_kv_heads_ * head_dim_).bias(config.attention_bias)));
  o_proj = register_module(
      "o_proj",
      torch::nn::Linear(
          LinearOptions(num_heads_ * head_dim_, hidden).bias(config.attention_output_bias)));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", RmsNorm(head_dim_, config.rms_norm_eps));
    k_norm = register_module("k_norm", RmsNorm(head_dim_, config.rms_norm_eps));
  }
}

std::pair<at::Tensor, at::Tensor> AttentionImpl::apply_qk_norm(const at::Tensor& q,
                                                               const at::Tensor& k) {
  if (q_norm.is_empty()) return {q, k};
  return {q_norm(q), k_norm(k)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> AttentionImpl::project(const at::Tensor& x,
                                                                      const at::Tensor& cos,
                                                                      const at::Tensor& sin) {
  const int64_t batch = x.size(0), length = x.size(1);
  auto [q, k] =
      apply_qk_norm(lora_project(q_proj, x).view({batch, length, num_heads_, head_dim_}),
                    lora_project(k_proj, x).view({batch, length, num_kv_heads_, head_dim_}));
  q = q.transpose(1, 2);  // (B, nh, T, D)
  k = k.transpose(1, 2);  // (B, nkv, T, D)
  at::Tensor v = lora_project(v_proj, x)
                     .view({batch, length, num_kv_heads_, head_dim_})
                     .transpose(1, 2);  // (B, nkv, T, D)
  return {apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v};
}

at::Tensor AttentionImpl::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& mask, bool fold_groups) {
  const int64_t batch = q.size(0), length = q.size(2), keys = k.size(2);
  const int64_t groups = num_heads_ / num_kv_heads_;
  const bool causal = !mask.defined();
  at::Tensor out;  // (B, T, nh * D)
  if (groups > 1 && fold_groups && !causal) {
    // Query heads of one group share a key head: attend as one longer query.
    const at::Tensor folded_q = q.reshape({batch, num_kv_heads_, groups * length, head_dim_});
    const at::Tensor folded_mask = mask.unsqueeze(2)
                                       .expand({batch, 1, groups, length, keys})
                                       .reshape({batch, 1, groups * length, keys});
    out = at::scaled_dot_product_attention(folded_q, k, v, folded_mask)  // (B, nkv, g * T, D)
              .reshape({batch, num_heads_, length, head_dim_});
  } else {
    at::Tensor full_k = k, full_v = v;
    if (groups > 1) {  // Hugging Face's repeat_kv: (B, nkv, S, D) -> (B, nh, S, D)
      full_k = k.unsqueeze(2)
                   .expand({batch, num_kv_heads_, groups, keys, head_dim_})
                   .reshape({batch, num_heads_, keys, head_dim_});
      full_v = v.unsqueeze(2)
                   .expand({batch, num_kv_heads_, groups, keys, head_dim_})
                   .reshape({batch, num_heads_, keys, head_dim_});
    }
    out = causal ? at::scaled_dot_product_attention(q, full_k, full_v, {}, 0.0, /*is_causal=*/true)
                 : at::scaled_dot_product_attention(q, full_k, full_v, mask);  // (B, nh, T, D)
  }
  return lora_project(o_proj, out.transpose(1, 2).reshape({batch, length, num_heads_ * head_dim_}));
}

MlpImpl::MlpImpl(const ModelConfig& config) {
  using torch::nn::LinearOptions;
  const int64_t hidden = config.hidden_size, inner = config.intermediate_size;
  gate_proj = register_module(
      "gate_proj", torch::nn::Linear(LinearOptions(hidden, inner).bias(config.mlp_bias)));
  up_proj = register_module("up_proj",
                            torch::nn::Linear(LinearOptions(hidden, inner).bias(config.mlp_bias)));
  down_proj = register_module(
      "down_proj", torch::nn::Linear(LinearOptions(inner, hidden).bias(config.mlp_bias)));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  return lora_project(down_proj, at::silu(lora_project(gate_proj, x)) * lora_project(up_proj, x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& config) {
  self_attn = register_module("self_attn", Attention(config));
  mlp = register_module("mlp", Mlp(config));
  input_layernorm =
      register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos,
                                     const at::Tensor& sin, const at::Tensor& mask,
                                     bool fold_groups, const ExtendKeysValues& extend) {
  auto [q, k, v] = self_attn->project(input_layernorm(x), cos, sin);
  if (extend) std::tie(k, v) = extend(k, v);
  const at::Tensor h = x + self_attn->attend(q, k, v, mask, fold_groups);
  return h + mlp(post_attention_layernorm(h));
}

}  // namespace r1kit
