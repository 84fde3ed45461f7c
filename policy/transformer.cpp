#include "policy/transformer.h"

#include <set>

#include "policy/activation_checkpoint.h"

namespace r1kit {

using at::indexing::Slice;

BackboneImpl::BackboneImpl(const ModelConfig& config) {
  embed_tokens =
      register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) layers->push_back(DecoderLayer(config));
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps));
}

TransformerImpl::TransformerImpl(ModelConfig config, bool with_lm_head)
    : config_(std::move(config)), rotary_(config_) {
  config_.validate("model config");
  model = register_module("model", Backbone(config_));
  if (!config_.tie_word_embeddings && with_lm_head) {
    lm_head = register_module(
        "lm_head",
        torch::nn::Linear(
            torch::nn::LinearOptions(config_.hidden_size, config_.vocab_size).bias(false)));
  }
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  return (attention_mask.to(at::kLong).cumsum(-1) - 1).clamp_min(0);
}

at::Tensor TransformerImpl::forward_hidden(const at::Tensor& tokens,
                                           const at::Tensor& attention_mask,
                                           const at::Tensor& positions) {
  TORCH_CHECK(tokens.dim() == 2, "forward_hidden: tokens must be (B, T), got ", tokens.sizes());
  TORCH_CHECK(attention_mask.sizes() == tokens.sizes(), "forward_hidden: attention_mask ",
              attention_mask.sizes(), " does not match tokens ", tokens.sizes());
  const int64_t length = tokens.size(1);
  const at::Tensor real = attention_mask.to(at::kBool);  // (B, T)
  // Without padding plain causal attention takes the fused kernels' fast path.
  const bool padded = !real.all().item<bool>();
  at::Tensor mask;  // (B, 1, T, T), true = attend; undefined = causal
  if (padded) {
    const auto options = at::TensorOptions().dtype(at::kBool).device(tokens.device());
    const at::Tensor causal = at::ones({length, length}, options).tril();
    const at::Tensor diagonal = at::eye(length, options);
    // A padding query also sees itself, so no softmax row is empty (NaN would
    // leak into real rows through 0 * NaN).
    mask = (causal.unsqueeze(0) & real.unsqueeze(1)) | diagonal.unsqueeze(0);
    mask = mask.unsqueeze(1);
  }
  const at::Tensor position_ids =
      positions.defined() ? positions : positions_from_mask(attention_mask);
  at::Tensor x = model->embed_tokens(tokens);  // (B, T, H)
  auto [cos, sin] = rotary_.cos_sin(position_ids, x.scalar_type());
  for (const auto& layer : *model->layers) {
    if (!gradient_checkpointing_) {
      x = layer->as<DecoderLayerImpl>()->forward(x, cos, sin, mask);
      continue;
    }
    // Captured by value: the backward runs the layer again after this returns.
    auto block = [layer, cos = cos, sin = sin, mask](const at::Tensor& input) {
      return layer->as<DecoderLayerImpl>()->forward(input, cos, sin, mask);
    };
    x = checkpointed(block, x, layer->parameters());
  }
  return model->norm(x);
}

at::Tensor TransformerImpl::output_weight() const {
  if (config_.tie_word_embeddings) return model->embed_tokens->weight;
  TORCH_CHECK(!lm_head.is_empty(),
              "this model was built without lm_head (a reward model backbone)");
  return lm_head->weight;
}

at::Tensor TransformerImpl::logits_from_hidden(const at::Tensor& hidden) {
  return at::linear(hidden, output_weight()).to(at::kFloat);
}

at::Tensor TransformerImpl::forward(const at::Tensor& tokens, const at::Tensor& attention_mask,
                                    const at::Tensor& positions) {
  return logits_from_hidden(forward_hidden(tokens, attention_mask, positions));
}

at::Tensor TransformerImpl::forward_cached(const at::Tensor& tokens, KvCache& cache,
                                           const at::Tensor& rows, const at::Tensor& lengths,
                                           bool last_only) {
  TORCH_CHECK(tokens.dim() == 2, "forward_cached: tokens must be (B, T), got ", tokens.sizes());
  const int64_t batch = tokens.size(0), length = tokens.size(1);
  TORCH_CHECK(rows.numel() == batch && lengths.numel() == batch, "forward_cached: rows (",
              rows.numel(), ") and lengths (", lengths.numel(),
              ") must have one entry per batch row (", batch, ")");
  TORCH_CHECK(cache.num_layers() == config_.num_hidden_layers, "forward_cached: cache has ",
              cache.num_layers(), " layers, model ", config_.num_hidden_layers);
  const at::Tensor rows_host = rows.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor lengths_host = lengths.to(at::kCPU, at::kLong).contiguous();
  const int64_t* row_ids = rows_host.data_ptr<int64_t>();
  const int64_t* new_tokens = lengths_host.data_ptr<int64_t>();

  // Host-side bookkeeping: where each real token goes, and the keys each row sees.
  std::vector<int64_t> starts(batch), write_batch, write_step, write_row, write_position;
  std::set<int64_t> seen;
  int64_t key_length = 0;  // S: the longest row after this step
  bool contiguous_rows = true;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t row = row_ids[b], count = new_tokens[b];
    TORCH_CHECK(seen.insert(row).second, "forward_cached: row ", row,
                " appears twice in one batch");
    TORCH_CHECK(count >= 1 && count <= length, "forward_cached: lengths[", b, "] = ", count,
                " outside [1, ", length, "]");
    starts[b] = cache.length(row);
    TORCH_CHECK(starts[b] + count <= cache.max_length(), "forward_cached: row ", row, " holds ",
                starts[b], " tokens; ", count, " more exceed the cache's max_length ",
                cache.max_length());
    key_length = std::max(key_length, starts[b] + count);
    contiguous_rows = contiguous_rows && row == row_ids[0] + b;
    for (int64_t t = 0; t < count; ++t) {
      write_batch.push_back(b);
      write_step.push_back(t);
      write_row.push_back(row);
      write_position.push_back(starts[b] + t);
    }
  }
  const at::Device device = tokens.device();
  const auto long_options = at::TensorOptions().dtype(at::kLong);
  auto to_device = [&](const std::vector<int64_t>& values) {
    return at::tensor(values, long_options).to(device);
  };
  const at::Tensor starts_device = to_device(starts);  // (B)
  const at::Tensor positions =
      starts_device.unsqueeze(1) + at::arange(length, long_options.device(device));  // (B, T)
  const at::Tensor index_batch = to_device(write_batch), index_step = to_device(write_step);  // (N)
  const at::Tensor index_row = to_device(write_row),
                   index_position = to_device(write_position);  // (N)
  const at::Tensor rows_device = rows_host.to(device);
  // Key j is visible to query t of row b when j <= start[b] + t: the row's past
  // and its own new tokens up to t. Padding queries see stale but finite slots.
  const at::Tensor mask =
      (at::arange(key_length, long_options.device(device)).view({1, 1, key_length}) <=
       positions.unsqueeze(-1))
          .unsqueeze(1);  // (B, 1, T, S)

  at::Tensor x = model->embed_tokens(tokens);  // (B, T, H)
  auto [cos, sin] = rotary_.cos_sin(positions, x.scalar_type());
  int64_t layer_index = 0;
  for (const auto& layer : *model->layers) {
    at::Tensor& keys = cache.keys(layer_index);                    // (R, nkv, L, D)
    at::Tensor& values = cache.values(layer_index);                // (R, nkv, L, D)
    auto extend = [&](const at::Tensor& k, const at::Tensor& v) {  // k, v (B, nkv, T, D)
      // Advanced indices around a slice put N first: (N, nkv, D).
      keys.index_put_({index_row, Slice(), index_position},
                      k.index({index_batch, Slice(), index_step}));
      values.index_put_({index_row, Slice(), index_position},
                        v.index({index_batch, Slice(), index_step}));
      if (contiguous_rows) {  // the common case: a view, no copy
        return std::pair(keys.narrow(0, row_ids[0], batch).narrow(2, 0, key_length),
                         values.narrow(0, row_ids[0], batch).narrow(2, 0, key_length));
      }
      return std::pair(keys.narrow(2, 0, key_length).index_select(0, rows_device),
                       values.narrow(2, 0, key_length).index_select(0, rows_device));
    };
    x = layer->as<DecoderLayerImpl>()->forward(x, cos, sin, mask, /*fold_groups=*/true, extend);
    ++layer_index;
  }
  for (int64_t b = 0; b < batch; ++b) cache.advance(row_ids[b], new_tokens[b]);

  if (last_only) {
    const at::Tensor last = lengths_host.to(device) - 1;                  // (B)
    x = x.index({at::arange(batch, long_options.device(device)), last});  // (B, H)
  }
  return logits_from_hidden(model->norm(x));
}

std::vector<at::Tensor> TransformerImpl::decay_parameters() {
  std::vector<at::Tensor> out;
  for (const auto& item : named_parameters()) {
    const std::string& name = item.key();
    if (!item.value().requires_grad()) continue;
    if (name.find("norm.") == std::string::npos && !name.ends_with(".bias"))
      out.push_back(item.value());
  }
  return out;
}

std::vector<at::Tensor> TransformerImpl::no_decay_parameters() {
  std::vector<at::Tensor> out;
  for (const auto& item : named_parameters()) {
    const std::string& name = item.key();
    if (!item.value().requires_grad()) continue;
    if (name.find("norm.") != std::string::npos || name.ends_with(".bias"))
      out.push_back(item.value());
  }
  return out;
}

}  // namespace r1kit
