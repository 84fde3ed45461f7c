#include "policy/shared_prefix.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "policy/activation_checkpoint.h"
#include "policy/lora.h"
#include "policy/training_kernels.h"

namespace r1kit {
namespace {

// Attention of queries (R, T, nh, D) over keys/values (R, S, nkv, D) under a
// boolean mask (R, 1, T, S); returns (R * T, nh * D).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& mask, int64_t num_heads, int64_t num_kv_heads) {
  const int64_t rows = q.size(0), length = q.size(1), keys = k.size(1), head_dim = q.size(3);
  at::Tensor queries = q.transpose(1, 2);  // (R, nh, T, D)
  at::Tensor full_k = k.transpose(1, 2), full_v = v.transpose(1, 2);
  const int64_t groups = num_heads / num_kv_heads;
  if (groups > 1) {  // Hugging Face's repeat_kv
    full_k = full_k.unsqueeze(2)
                 .expand({rows, num_kv_heads, groups, keys, head_dim})
                 .reshape({rows, num_heads, keys, head_dim});
    full_v = full_v.unsqueeze(2)
                 .expand({rows, num_kv_heads, groups, keys, head_dim})
                 .reshape({rows, num_heads, keys, head_dim});
  }
  at::Tensor out =
      at::scaled_dot_product_attention(queries, full_k, full_v, mask);  // (R, nh, T, D)
  return out.transpose(1, 2).reshape({rows * length, num_heads * head_dim});
}

}  // namespace

bool same_prompt(const PromptAndCompletion& a, const PromptAndCompletion& b) {
  return a.prompt_length == b.prompt_length &&
         std::equal(a.tokens.begin(), a.tokens.begin() + a.prompt_length, b.tokens.begin());
}

SharedPrefixBatch SharedPrefixBatch::to(const at::Device& device) const {
  SharedPrefixBatch moved = *this;
  for (at::Tensor* tensor :
       {&moved.tokens, &moved.positions, &moved.prompt_index, &moved.prompt_attend,
        &moved.prompt_slots, &moved.predecessor_index, &moved.targets, &moved.completion_mask})
    *tensor = tensor->to(device);
  for (CompletionBucket& bucket : moved.buckets) {
    for (at::Tensor* tensor :
         {&bucket.query_index, &bucket.key_index, &bucket.attend, &bucket.slots})
      *tensor = tensor->to(device);
  }
  return moved;
}

SharedPrefixBatch make_shared_prefix_batch(const std::vector<PromptAndCompletion>& rows) {
  const int64_t batch = static_cast<int64_t>(rows.size());
  if (batch == 0) throw std::invalid_argument("make_shared_prefix_batch: no rows");
  std::vector<int64_t> group_of(batch);
  std::vector<int64_t> group_row;  // the first row of each group
  int64_t prompt_width = 0, completion_width = 0;
  for (int64_t b = 0; b < batch; ++b) {
    const PromptAndCompletion& row = rows[b];
    const int64_t length = static_cast<int64_t>(row.tokens.size());
    if (row.prompt_length < 1 || row.prompt_length >= length)
      throw std::invalid_argument(
          "make_shared_prefix_batch: row " + std::to_string(b) + " has prompt_length " +
          std::to_string(row.prompt_length) + " of " + std::to_string(length) +
          " tokens; a row needs at least one prompt and one completion token");
    if (group_row.empty() || !same_prompt(rows[group_row.back()], row)) group_row.push_back(b);
    group_of[b] = static_cast<int64_t>(group_row.size()) - 1;
    prompt_width = std::max(prompt_width, row.prompt_length);
    completion_width = std::max(completion_width, length - row.prompt_length);
  }
  const int64_t groups = static_cast<int64_t>(group_row.size());
  const int64_t P = prompt_width, C = completion_width;

  // A completion's last token is a target only: no later token reads it, so it
  // is never an input. The inputs of a row are its completion but the last.
  auto completion_length = [&](int64_t b) {
    return static_cast<int64_t>(rows[b].tokens.size()) - rows[b].prompt_length;
  };
  auto inputs_of = [&](int64_t b) { return completion_length(b) - 1; };
  // Rows with inputs by their count, longest first (stable), cut into buckets.
  std::vector<int64_t> order;
  for (int64_t b = 0; b < batch; ++b)
    if (inputs_of(b) > 0) order.push_back(b);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return inputs_of(a) > inputs_of(b); });
  std::vector<std::vector<int64_t>> bucket_rows;
  for (int64_t b : order) {
    const bool new_bucket =
        bucket_rows.empty() || (2 * inputs_of(b) <= inputs_of(bucket_rows.back().front()) &&
                                static_cast<int64_t>(bucket_rows.size()) < kMaxCompletionBuckets);
    if (new_bucket) bucket_rows.emplace_back();
    bucket_rows.back().push_back(b);
  }

  std::vector<int64_t> prompt_start(groups), completion_start(batch);
  int64_t packed = 0;
  for (int64_t g = 0; g < groups; ++g) {
    prompt_start[g] = packed;
    packed += rows[group_row[g]].prompt_length;
  }
  for (const auto& members : bucket_rows) {
    for (int64_t b : members) {
      completion_start[b] = packed;
      packed += inputs_of(b);
    }
  }

  SharedPrefixBatch out;
  out.groups = groups;
  out.tokens = at::empty({packed}, at::kLong);
  out.positions = at::empty({packed}, at::kLong);
  out.prompt_index = at::zeros({groups, P}, at::kLong);
  out.prompt_attend = at::zeros({groups, 1, P, P}, at::kBool);
  out.predecessor_index = at::zeros({batch, C}, at::kLong);
  out.targets = at::zeros({batch, C}, at::kLong);
  out.completion_mask = at::zeros({batch, C}, at::kFloat);
  std::vector<int64_t> prompt_slots;
  int64_t* tokens = out.tokens.data_ptr<int64_t>();
  int64_t* positions = out.positions.data_ptr<int64_t>();
  int64_t* prompt_index = out.prompt_index.data_ptr<int64_t>();
  bool* prompt_attend = out.prompt_attend.data_ptr<bool>();
  for (int64_t g = 0; g < groups; ++g) {
    const PromptAndCompletion& row = rows[group_row[g]];
    for (int64_t p = 0; p < P; ++p) {
      bool* attend_row = prompt_attend + (g * P + p) * P;
      if (p >= row.prompt_length) {  // a padding query sees the first key: no empty softmax row
        attend_row[0] = true;
        continue;
      }
      tokens[prompt_start[g] + p] = row.tokens[p];
      positions[prompt_start[g] + p] = p;
      prompt_index[g * P + p] = prompt_start[g] + p;
      prompt_slots.push_back(g * P + p);
      std::fill(attend_row, attend_row + p + 1, true);
    }
  }
  out.prompt_slots = at::tensor(prompt_slots, at::kLong);

  // Targets: every completion token, predicted from the token before it.
  int64_t* predecessor = out.predecessor_index.data_ptr<int64_t>();
  int64_t* targets = out.targets.data_ptr<int64_t>();
  float* completion_mask = out.completion_mask.data_ptr<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const PromptAndCompletion& row = rows[b];
    const int64_t g = group_of[b], prompt = row.prompt_length;
    for (int64_t c = 0; c < completion_length(b); ++c) {
      predecessor[b * C + c] = c == 0 ? prompt_start[g] + prompt - 1 : completion_start[b] + c - 1;
      targets[b * C + c] = row.tokens[prompt + c];
      completion_mask[b * C + c] = 1.0f;
    }
  }
  // Inputs: the packed completion tokens, bucket by bucket.
  for (const auto& members : bucket_rows) {
    const int64_t count = static_cast<int64_t>(members.size());
    const int64_t width = inputs_of(members.front());  // Cb
    int64_t prompt_keys = 0;                           // Pb
    for (int64_t b : members) prompt_keys = std::max(prompt_keys, rows[b].prompt_length);
    const int64_t keys = prompt_keys + width;
    CompletionBucket bucket;
    bucket.query_index = at::zeros({count, width}, at::kLong);
    bucket.key_index = at::zeros({count, keys}, at::kLong);
    bucket.attend = at::zeros({count, 1, width, keys}, at::kBool);
    std::vector<int64_t> slots;
    int64_t* query_index = bucket.query_index.data_ptr<int64_t>();
    int64_t* key_index = bucket.key_index.data_ptr<int64_t>();
    bool* attend = bucket.attend.data_ptr<bool>();
    for (int64_t r = 0; r < count; ++r) {
      const int64_t b = members[r];
      const PromptAndCompletion& row = rows[b];
      const int64_t g = group_of[b], prompt = row.prompt_length, inputs = inputs_of(b);
      for (int64_t p = 0; p < prompt; ++p) key_index[r * keys + p] = prompt_start[g] + p;
      for (int64_t c = 0; c < inputs; ++c)
        key_index[r * keys + prompt_keys + c] = completion_start[b] + c;
      for (int64_t c = 0; c < width; ++c) {
        bool* attend_row = attend + (r * width + c) * keys;
        std::fill(attend_row, attend_row + prompt,
                  true);  // every query sees the prompt (padding ones too)
        if (c >= inputs) continue;
        std::fill(attend_row + prompt_keys, attend_row + prompt_keys + c + 1, true);
        const int64_t at = completion_start[b] + c;
        tokens[at] = row.tokens[prompt + c];
        positions[at] = prompt + c;
        query_index[r * width + c] = at;
        slots.push_back(r * width + c);
      }
    }
    bucket.slots = at::tensor(slots, at::kLong);
    out.buckets.push_back(std::move(bucket));
  }
  return out;
}

at::Tensor shared_prefix_hidden(TransformerImpl& model, const SharedPrefixBatch& batch) {
  const ModelConfig& config = model.config();
  const int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  const int64_t head_dim = config.head_size();
  const int64_t groups = batch.prompt_index.size(0), P = batch.prompt_index.size(1);
  const int64_t rows = batch.predecessor_index.size(0), C = batch.predecessor_index.size(1);
  const at::Tensor prompt_index = batch.prompt_index.flatten();

  at::Tensor x = model.model->embed_tokens(batch.tokens);  // (N, H)
  const int64_t packed = x.size(0);
  auto rotary = model.rotary_cos_sin(batch.positions.unsqueeze(0), x.scalar_type());
  const at::Tensor cos = rotary.first.squeeze(0);  // (N, D)
  const at::Tensor sin = rotary.second.squeeze(0);
  const double eps = config.rms_norm_eps;
  // One decoder layer over the packed tokens. Everything is captured by value:
  // with activation checkpointing the backward runs it again after this returns.
  auto layer_forward = [=, &config](DecoderLayerImpl& layer, const at::Tensor& x) {
    // (N, heads, D) normalised per head when the model has qk_norm (Qwen3), then
    // rotated at each token's own position.
    auto rotate = [&](const at::Tensor& projected, int64_t count, const RmsNorm& norm) {
      at::Tensor heads_of = projected.reshape({packed, count, head_dim});
      if (!norm.is_empty()) heads_of = rms_norm_trainable(heads_of, norm->weight, eps);
      return rotary_trainable(heads_of, cos, sin);
    };
    AttentionImpl& attention = *layer.self_attn;
    const at::Tensor normed = rms_norm_trainable(x, layer.input_layernorm->weight, eps);
    // q, k and v in one matmul over the concatenated weights: the input is read once.
    at::Tensor qkv = at::linear(
        normed,
        at::cat({attention.q_proj->weight, attention.k_proj->weight, attention.v_proj->weight}),
        config.attention_bias
            ? at::cat({attention.q_proj->bias, attention.k_proj->bias, attention.v_proj->bias})
            : at::Tensor());
    const at::Tensor qkv_lora =
        lora_fused_delta({&attention.q_proj, &attention.k_proj, &attention.v_proj}, normed);
    if (qkv_lora.defined()) qkv = qkv + qkv_lora;
    // One split (its backward is one cat), not three narrows (three zero-filled full-size
    // gradients).
    const std::vector<at::Tensor> parts =
        qkv.split_with_sizes({heads * head_dim, kv_heads * head_dim, kv_heads * head_dim}, 1);
    const at::Tensor q = rotate(parts[0], heads, attention.q_norm);
    const at::Tensor k = rotate(parts[1], kv_heads, attention.k_norm);
    const at::Tensor v = parts[2].reshape({packed, kv_heads, head_dim});
    const at::Tensor prompt_out =
        attend(q.index_select(0, prompt_index).view({groups, P, heads, head_dim}),
               k.index_select(0, prompt_index).view({groups, P, kv_heads, head_dim}),
               v.index_select(0, prompt_index).view({groups, P, kv_heads, head_dim}),
               batch.prompt_attend, heads, kv_heads);
    std::vector<at::Tensor> outputs = {prompt_out.index_select(0, batch.prompt_slots)};
    for (const CompletionBucket& bucket : batch.buckets) {
      const int64_t count = bucket.query_index.size(0), width = bucket.query_index.size(1);
      const int64_t keys = bucket.key_index.size(1);
      const at::Tensor query_index = bucket.query_index.flatten(),
                       key_index = bucket.key_index.flatten();
      outputs.push_back(attend(q.index_select(0, query_index).view({count, width, heads, head_dim}),
                               k.index_select(0, key_index).view({count, keys, kv_heads, head_dim}),
                               v.index_select(0, key_index).view({count, keys, kv_heads, head_dim}),
                               bucket.attend, heads, kv_heads)
                            .index_select(0, bucket.slots));
    }
    const at::Tensor mixed =
        at::cat(outputs);  // (N, nh * D): prompts, then the buckets, as N is packed
    const at::Tensor h = x + lora_project(attention.o_proj, mixed);
    MlpImpl& mlp = *layer.mlp;
    const at::Tensor normed_h = rms_norm_trainable(h, layer.post_attention_layernorm->weight, eps);
    const int64_t inner = mlp.gate_proj->weight.size(0);
    at::Tensor gate_up = at::linear(
        normed_h, at::cat({mlp.gate_proj->weight, mlp.up_proj->weight}),
        config.mlp_bias ? at::cat({mlp.gate_proj->bias, mlp.up_proj->bias}) : at::Tensor());
    const at::Tensor gate_up_lora = lora_fused_delta({&mlp.gate_proj, &mlp.up_proj}, normed_h);
    if (gate_up_lora.defined()) gate_up = gate_up + gate_up_lora;
    const std::vector<at::Tensor> halves = gate_up.split(inner, 1);
    return h + lora_project(mlp.down_proj, swiglu_trainable(halves[0], halves[1]));
  };
  for (const auto& module : *model.model->layers) {
    auto& layer = *module->as<DecoderLayerImpl>();
    if (!model.gradient_checkpointing()) {
      x = layer_forward(layer, x);
      continue;
    }
    x = checkpointed(
        [module, layer_forward](const at::Tensor& input) {
          return layer_forward(*module->as<DecoderLayerImpl>(), input);
        },
        x, module->parameters());
  }
  const at::Tensor hidden = rms_norm_trainable(x.index_select(0, batch.predecessor_index.flatten()),
                                               model.model->norm->weight, eps);
  return hidden.view({rows, C, -1});
}

at::Tensor shared_prefix_logits(TransformerImpl& model, const SharedPrefixBatch& batch) {
  const at::Tensor hidden = shared_prefix_hidden(model, batch);  // (B, C, H)
  return model.logits_from_hidden(hidden);
}

}  // namespace r1kit
