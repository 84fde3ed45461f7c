#include "rollout/decode_plan.h"

#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "policy/lora.h"
#include "rollout/amx_linear.h"
#include "rollout/avx512_bf16_linear.h"
#include "rollout/decode_attention.h"
#include "rollout/fused_ops.h"

namespace r1kit {
namespace {

// (N) -> a tensor of int64 on `device`.
at::Tensor long_tensor(const std::vector<int64_t>& values, const at::Device& device) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong)).to(device);
}

at::Tensor fused(std::initializer_list<at::Tensor> parts) {
  std::vector<at::Tensor> defined;
  for (const auto& part : parts) {
    if (part.defined() && part.numel() > 0) defined.push_back(part);
  }
  return defined.size() == parts.size() ? at::cat(defined, 0) : at::Tensor();
}

at::Tensor bias_of(const torch::nn::Linear& linear) {
  return linear->options.bias() ? linear->bias : at::Tensor();
}

// Writes the new keys or values (N, nkv, D) into cache storage (R, nkv, L, D)
// at (row_of[n], :, position_of[n]). On CPU a copy per (token, head) avoids
// index_put's index tensors and dispatch.
void write_cache(at::Tensor& storage, const at::Tensor& fresh, const std::vector<int64_t>& row_of,
                 const std::vector<int64_t>& position_of) {
  const int64_t count = fresh.size(0), heads = fresh.size(1), width = fresh.size(2);
  if (storage.device().is_cpu() && storage.is_contiguous() &&
      storage.scalar_type() == fresh.scalar_type()) {
    // `fresh` is usually a strided slice of the fused qkv output: read it in
    // place (each head's D values are contiguous) rather than copying it first.
    const at::Tensor source = fresh.stride(2) == 1 ? fresh : fresh.contiguous();
    const int64_t length = storage.size(2);
    const size_t element = storage.element_size();
    const int64_t token_stride = source.stride(0), head_stride = source.stride(1);
    const auto* from = static_cast<const char*>(source.data_ptr());
    auto* to = static_cast<char*>(storage.data_ptr());
    for (int64_t n = 0; n < count; ++n) {
      for (int64_t h = 0; h < heads; ++h) {
        std::memcpy(to + ((row_of[n] * heads + h) * length + position_of[n]) * width * element,
                    from + (n * token_stride + h * head_stride) * element, width * element);
      }
    }
    return;
  }
  using at::indexing::Slice;
  storage.index_put_(
      {long_tensor(row_of, storage.device()), Slice(), long_tensor(position_of, storage.device())},
      fresh);
}

// oneDNN's linear with a weight packed once (the ops torch.compile's CPU
// freezing uses): bfloat16 matmuls at decode shapes skip a per-call reorder of
// the weight, and the residual add rides along as a post-op.
at::Tensor onednn_pack(const at::Tensor& weight, int64_t rows_hint) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("mkldnn::_reorder_linear_weight", "")
                             .typed<at::Tensor(const at::Tensor&, std::optional<int64_t>)>();
  return op.call(weight, rows_hint);
}

at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& bias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            c10::string_view, c10::List<std::optional<at::Scalar>>,
                            std::optional<c10::string_view>)>();
  return op.call(x, packed, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, "none",
                 c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

at::Tensor onednn_linear_add(const at::Tensor& x, const at::Tensor& residual,
                             const at::Tensor& packed, const at::Tensor& bias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("mkldnn::_linear_pointwise", "binary")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                            const std::optional<at::Tensor>&, c10::string_view)>();
  return op.call(x, residual, packed,
                 bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, "add");
}

}  // namespace

// The AMX kernel takes decode steps (up to kAmxMaxRows rows; a prefill goes to
// oneDNN, which blocks large matmuls better) of single-threaded engines, the
// default on CPU: there it beats oneDNN, whose fixed cost per call dominates
// at these sizes. It does not yet scale over threads (the weights stream at
// one core's rate), so an engine with several threads keeps oneDNN.
constexpr int64_t kAmxMaxRows = 128;

static bool use_amx(const at::Tensor& amx, const at::Tensor& x) {
  return amx.defined() && x.size(0) <= kAmxMaxRows && at::get_num_threads() == 1;
}

// On CPUs with AVX512-BF16 and no AMX the pair-layout kernel takes every
// bfloat16 matmul, decode steps and prefills, on any number of threads: it
// matches oneDNN's packed linear from 64 rows up (measured at the bench
// models' shapes, up to 2048 rows) and beats it below, up to 3-4x at one row.
at::Tensor DecodePlan::Projection::apply(const at::Tensor& x) const {
  if (use_amx(amx, x)) return amx_linear(x, amx, at::Tensor());
  if (bf16_pairs.defined()) return avx512_bf16_linear(x, bf16_pairs, out_features, bias, {});
  if (packed.defined()) return onednn_linear(x, packed, bias);
  return bias.defined() ? at::addmm(bias, x, weight.t()) : at::mm(x, weight.t());
}

at::Tensor DecodePlan::Projection::apply_add(const at::Tensor& x,
                                             const at::Tensor& residual) const {
  if (use_amx(amx, x)) return amx_linear(x, amx, residual.contiguous());
  if (bf16_pairs.defined())
    return avx512_bf16_linear(x, bf16_pairs, out_features, bias, residual.contiguous());
  if (packed.defined()) return onednn_linear_add(x, residual, packed, bias);
  return at::addmm(bias.defined() ? residual + bias : residual, x, weight.t());
}

at::ScalarType rollout_dtype_from_name(const std::string& name, const std::string& key) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  throw_usage_error(key + ": unknown rollout compute dtype \"" + name +
                    "\"; expected float32 or bfloat16");
}

DecodePlan::DecodePlan(TransformerImpl& model, at::ScalarType dtype)
    : config_(model.config()),
      dtype_(dtype),
      device_(model.model->embed_tokens->weight.device()),
      rotary_(model.config()) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16,
              "DecodePlan: compute dtype must be float32 or bfloat16, got ", dtype);
  TORCH_CHECK(model.has_lm_head(), "DecodePlan needs a model with an output projection");
  at::NoGradGuard no_grad;
  // LoRA adapters are merged into their weights here, once per weight version.
  // Folding works in float32 and casts once, so bfloat16 rounds each weight once.
  auto prepare = [&](const at::Tensor& weight, const at::Tensor& norm = {}) {
    at::Tensor w = weight.detach().to(at::kFloat);
    if (norm.defined()) w = w * norm.detach().to(at::kFloat).unsqueeze(0);  // W diag(norm)
    return w.to(dtype_).contiguous();
  };
  // oneDNN's packed bfloat16 matmuls where the CPU has native bfloat16 dot
  // products (AVX512-BF16 / AMX); MKL through at::mm otherwise.
  bool pack = dtype_ == at::kBFloat16 && device_.is_cpu() && at::hasMKLDNN();
#if defined(__x86_64__) && defined(__GNUC__)
  pack = pack && __builtin_cpu_supports("avx512bf16");
#else
  pack = false;
#endif
  // Without AMX, the pair-layout kernel of avx512_bf16_linear instead.
  const bool pairs = dtype_ == at::kBFloat16 && device_.is_cpu() && !amx_available() &&
                     avx512_bf16_available() && std::getenv("R1KIT_NO_AVX512_BF16") == nullptr;
  auto project = [&](const at::Tensor& weight, const at::Tensor& bias,
                     const at::Tensor& norm = {}) {
    Projection projection;
    projection.weight = prepare(weight, norm);
    if (bias.defined()) projection.bias = bias.detach().to(dtype_);
    if (pack && !bias.defined() && amx_fits(projection.weight) && amx_available() &&
        std::getenv("R1KIT_NO_AMX") == nullptr) {
      projection.amx = amx_pack(projection.weight);
    }
    projection.out_features = projection.weight.size(0);
    if (pairs) {
      projection.bf16_pairs = avx512_bf16_pack(projection.weight);
      projection.weight = at::Tensor();  // the pair layout is the only copy
      return projection;
    }
    if (pack) {
      try {
        projection.packed = onednn_pack(projection.weight, /*rows_hint=*/64);
      } catch (const std::exception&) {
        pack = false;  // this build lacks the ops or oneDNN refuses: MKL for every matmul
      }
    }
    // Packed, the plain copy is never read again: one copy of the weights, not two.
    if (projection.packed.defined()) projection.weight = at::Tensor();
    return projection;
  };
  // The model's own table: forward casts the rows it looks up, so no copy of
  // the (V, H) table exists (a publish never runs while an engine reads it).
  embedding_ = model.model->embed_tokens->weight.detach();
  for (const auto& module : *model.model->layers) {
    auto& layer = *module->as<DecoderLayerImpl>();
    const AttentionImpl& attention = *layer.self_attn;
    const MlpImpl& mlp = *layer.mlp;
    const at::Tensor input_norm = layer.input_layernorm->weight;
    const at::Tensor post_norm = layer.post_attention_layernorm->weight;
    Layer packed;
    packed.qkv = project(
        at::cat({lora_merged_weight(attention.q_proj), lora_merged_weight(attention.k_proj),
                 lora_merged_weight(attention.v_proj)},
                0),
        fused({bias_of(attention.q_proj), bias_of(attention.k_proj), bias_of(attention.v_proj)}),
        input_norm);
    packed.o = project(lora_merged_weight(attention.o_proj), bias_of(attention.o_proj));
    packed.gate_up =
        project(at::cat({lora_merged_weight(mlp.gate_proj), lora_merged_weight(mlp.up_proj)}, 0),
                fused({bias_of(mlp.gate_proj), bias_of(mlp.up_proj)}), post_norm);
    packed.down = project(lora_merged_weight(mlp.down_proj), bias_of(mlp.down_proj));
    if (!attention.q_norm.is_empty()) {
      const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
      packed.qk_norm = at::cat({attention.q_norm->weight.detach().expand({heads, -1}),
                                attention.k_norm->weight.detach().expand({kv_heads, -1})})
                           .to(dtype_)
                           .contiguous();
    }
    layers_.push_back(std::move(packed));
  }
  lm_head_ = project(model.output_weight(), at::Tensor(), model.model->norm->weight);
  const int64_t half = config_.head_size() / 2;
  rotary_sign_ = at::cat({at::full({half}, -1.0), at::full({half}, 1.0)}).to(device_, dtype_);
  rotary_.cos_sin(at::zeros({1, 1}, at::TensorOptions().dtype(at::kLong).device(device_)),
                  dtype_);  // places inv_freq
}

at::Tensor DecodePlan::normalize(const at::Tensor& x) const {
  return rms_normalize(x, config_.rms_norm_eps);
}

at::Tensor DecodePlan::forward(const at::Tensor& tokens, KvCache& cache,
                               const std::vector<int64_t>& rows,
                               const std::vector<int64_t>& lengths) const {
  TORCH_CHECK(tokens.dim() == 2, "DecodePlan::forward: tokens must be (B, T), got ",
              tokens.sizes());
  const int64_t batch = tokens.size(0), length = tokens.size(1);
  TORCH_CHECK(
      static_cast<int64_t>(rows.size()) == batch && static_cast<int64_t>(lengths.size()) == batch,
      "DecodePlan::forward: rows (", rows.size(), ") and lengths (", lengths.size(),
      ") must have one entry per batch row (", batch, ")");
  TORCH_CHECK(cache.num_layers() == static_cast<int64_t>(layers_.size()),
              "DecodePlan::forward: cache has ", cache.num_layers(), " layers, model ",
              layers_.size());
  TORCH_CHECK(cache.keys(0).scalar_type() == dtype_, "DecodePlan::forward: cache dtype ",
              cache.keys(0).scalar_type(), " differs from the compute dtype ", dtype_);
  const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
  const int64_t head_dim = config_.head_size(), groups = heads / kv_heads;

  // Host bookkeeping: the position of every token (padding included) and where
  // each real token goes in the cache.
  std::vector<int64_t> starts(batch), positions(batch * length), token_index, row_of, position_of,
      last_index(batch);
  std::vector<bool> seen(cache.rows(), false);
  int64_t key_length = 0;  // S: the longest row after this step
  bool contiguous_rows = true;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t row = rows[b], count = lengths[b];
    TORCH_CHECK(row >= 0 && row < cache.rows() && !seen[row], "DecodePlan::forward: row ", row,
                " is out of range or appears twice");
    seen[row] = true;
    TORCH_CHECK(count >= 1 && count <= length, "DecodePlan::forward: lengths[", b, "] = ", count,
                " outside [1, ", length, "]");
    starts[b] = cache.length(row);
    TORCH_CHECK(starts[b] + count <= cache.max_length(), "DecodePlan::forward: row ", row,
                " holds ", starts[b], " tokens; ", count, " more exceed the cache's max_length ",
                cache.max_length());
    key_length = std::max(key_length, starts[b] + count);
    contiguous_rows = contiguous_rows && row == rows[0] + b;
    for (int64_t t = 0; t < length; ++t) positions[b * length + t] = starts[b] + t;
    for (int64_t t = 0; t < count; ++t) {
      token_index.push_back(b * length + t);
      row_of.push_back(row);
      position_of.push_back(starts[b] + t);
    }
    last_index[b] = b * length + count - 1;
  }
  const int64_t tokens_total = batch * length;  // N
  const bool all_real = static_cast<int64_t>(token_index.size()) == tokens_total;
  const at::Tensor real_index = all_real ? at::Tensor() : long_tensor(token_index, device_);

  const auto long_options = at::TensorOptions().dtype(at::kLong).device(device_);
  const at::Tensor position_tensor =
      long_tensor(positions, device_).view({batch, length});   // (B, T)
  auto [cos, sin] = rotary_.cos_sin(position_tensor, dtype_);  // (B, T, D) each
  cos = cos.view({tokens_total, head_dim});
  sin = (sin * rotary_sign_).view({tokens_total, head_dim});
  // One new token per row over a CPU cache: the hand-written kernel, which
  // needs neither a mask nor gathered rows.
  const bool decode_kernel = length == 1 && decode_attention_supported(cache.keys(0));
  std::vector<int64_t> visible(batch);
  for (int64_t b = 0; b < batch; ++b) visible[b] = starts[b] + 1;
  at::Tensor folded_mask, rows_tensor;
  if (!decode_kernel) {
    // Key j is visible to query t of row b when j <= start[b] + t.
    const at::Tensor mask = (at::arange(key_length, long_options).view({1, 1, key_length}) <=
                             position_tensor.unsqueeze(-1))
                                .unsqueeze(1);  // (B, 1, T, S)
    // Query heads of one group share a key head: fold them into the query length.
    folded_mask = length == 1 ? mask
                              : mask.unsqueeze(2)
                                    .expand({batch, 1, groups, length, key_length})
                                    .reshape({batch, 1, groups * length, key_length});
    if (!contiguous_rows) rows_tensor = long_tensor(rows, device_);
  }

  at::Tensor x = embedding_.index_select(0, tokens.reshape({-1}).to(device_)).to(dtype_);  // (N, H)
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    const at::Tensor h = normalize(x);
    const at::Tensor qkv = layer.qkv.apply(h);  // (N, (nh + 2 nkv) D)
    // Rotary embedding (RoFormer) on q and k together: x cos + rotate_half(x) sin,
    // with rotate_half(x) = swap_halves(x) * [-1, +1].
    at::Tensor qk = qkv.narrow(1, 0, (heads + kv_heads) * head_dim)
                        .view({tokens_total, heads + kv_heads, head_dim});
    if (layer.qk_norm.defined()) {  // Qwen3, as its RMSNorm: normalised, rounded, then scaled
      qk = normalize(qk.reshape({-1, head_dim})).view({tokens_total, heads + kv_heads, head_dim}) *
           layer.qk_norm;
    }
    const at::Tensor rotated = rotate(qk, cos, sin);  // (N, nh + nkv, D)
    at::Tensor k_new = rotated.narrow(1, heads, kv_heads);
    at::Tensor v_new = qkv.narrow(1, (heads + kv_heads) * head_dim, kv_heads * head_dim)
                           .view({tokens_total, kv_heads, head_dim});
    if (!all_real) {
      k_new = k_new.index_select(0, real_index);
      v_new = v_new.index_select(0, real_index);
    }
    at::Tensor& keys = cache.keys(static_cast<int64_t>(l));      // (R, nkv, L, D)
    at::Tensor& values = cache.values(static_cast<int64_t>(l));  // (R, nkv, L, D)
    write_cache(keys, k_new, row_of, position_of);
    write_cache(values, v_new, row_of, position_of);
    at::Tensor attended;  // (N, nh * D)
    if (decode_kernel) {
      attended = decode_attention(rotated.narrow(1, 0, heads), keys, values, rows, visible);
    } else {
      at::Tensor k, v;  // (B, nkv, S, D)
      if (contiguous_rows) {
        k = keys.narrow(0, rows[0], batch).narrow(2, 0, key_length);
        v = values.narrow(0, rows[0], batch).narrow(2, 0, key_length);
      } else {
        k = keys.narrow(2, 0, key_length).index_select(0, rows_tensor);
        v = values.narrow(2, 0, key_length).index_select(0, rows_tensor);
      }
      // q (N, nh, D) -> (B, nkv, g * T, D): a view when T = 1.
      const at::Tensor q = rotated.narrow(1, 0, heads)
                               .view({batch, length, heads, head_dim})
                               .transpose(1, 2)
                               .reshape({batch, kv_heads, groups * length, head_dim});
      // reshape, not view: CUDA's memory-efficient kernel returns (B, g * T, nkv, D)
      // memory transposed to (B, nkv, g * T, D), which no view can regroup.
      attended = at::scaled_dot_product_attention(q, k, v, folded_mask)  // (B, nkv, g * T, D)
                     .reshape({batch, heads, length, head_dim})
                     .transpose(1, 2)
                     .reshape({tokens_total, heads * head_dim});
    }
    x = layer.o.apply_add(attended, x);                                        // x + o_proj(attn)
    const at::Tensor activated = silu_mul(layer.gate_up.apply(normalize(x)));  // (N, I)
    x = layer.down.apply_add(activated, x);  // x + down(silu(gate) * up)
  }
  for (int64_t b = 0; b < batch; ++b) cache.advance(rows[b], lengths[b]);
  const at::Tensor last =
      length == 1 ? x : x.index_select(0, long_tensor(last_index, device_));  // (B, H)
  // (B, V) in the compute dtype: the sampler widens bfloat16 exactly, or reads it as it is.
  return lm_head_.apply(normalize(last));
}

}  // namespace r1kit
