// Hugging Face model folders in and out: config.json, model.safetensors or
// shards with model.safetensors.index.json, generation_config.json, and a
// reward/value head when there is one. Also the random initialisation of a
// model from a config for from-scratch pretraining. Functions only; a folder
// must not be written by two callers at once.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "policy/model_config.h"
#include "policy/scalar_head.h"
#include "policy/transformer.h"

namespace r1kit {

// A backbone and, for reward and value models, its scalar head.
struct PretrainedWithHead {
  Transformer model{nullptr};
  ScalarHead head{nullptr};
  bool head_is_new = false;  // the folder had no head: it was freshly initialised
};

// parameter.copy_(source) for a weight `name` read from `file`, refusing NaN
// and infinity: Error(kData) naming the file, the tensor and how many values
// are NaN and infinite. The values are checked as they are copied (one pass)
// for contiguous CPU float32, bfloat16 and float16, and by one read-only
// reduction after copy_ otherwise; integer tensors pass.
void copy_finite_weight(const at::Tensor& parameter, const at::Tensor& source,
                        const std::filesystem::path& file, const std::string& name);

// Reads config.json (+ generation_config.json, kept in config().generation_config)
// and the weights of `folder` into a model on `device` in `dtype`. Every
// parameter must be present with its shape; a tied model ignores lm_head.weight.
// Throws Error(kData) listing missing, misshapen and unexpected tensors or
// naming a tensor with NaN or infinite values, or Error(kIo) when files are missing.
Transformer load_pretrained(const std::filesystem::path& folder, at::Device device = at::kCPU,
                            at::ScalarType dtype = at::kFloat);

// As load_pretrained, plus the head of `kind` (score.* or v_head.summary.*). A
// folder without the head (a policy starting a value model) gets a new one. The
// model has an lm_head only when the folder has one (or ties it).
PretrainedWithHead load_pretrained_with_head(const std::filesystem::path& folder,
                                             ScalarHeadKind kind, at::Device device = at::kCPU,
                                             at::ScalarType dtype = at::kFloat);

struct SaveOptions {
  // Weights above this many bytes are split into model-0000i-of-0000n.safetensors
  // shards with an index; Hugging Face's default is 5 GB.
  int64_t max_shard_bytes = 5'000'000'000;
  // A head saved with the model: a reward head makes the folder an
  // *ForSequenceClassification model (num_labels 1, no lm_head); a value head
  // adds v_head.summary.* beside the causal LM.
  ScalarHead head{nullptr};
  // When set, tokenizer files found there (tokenizer.json, tokenizer_config.json,
  // special_tokens_map.json, chat_template.jinja, vocab.json, merges.txt) are
  // copied; it must hold at least tokenizer.json.
  std::filesystem::path tokenizer_source;
};

// Writes `model` (any device or dtype; saved in its dtype) to `folder`, created
// when absent: config.json, the weights, generation_config.json. Weight files of
// an earlier save in a different layout are removed so the folder loads as one.
void save_pretrained(Transformer& model, const std::filesystem::path& folder,
                     const SaveOptions& options = {});

// A model of `config` initialised like Hugging Face's _init_weights: Linear and
// Embedding weights normal(0, std), biases zero, norms one; deterministic for a
// seed and independent of torch's global generator.
Transformer make_random_transformer(const ModelConfig& config, uint64_t seed, double std = 0.02,
                                    at::Device device = at::kCPU,
                                    at::ScalarType dtype = at::kFloat);

}  // namespace r1kit
