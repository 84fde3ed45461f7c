// The shape of a Llama/Qwen2/Qwen3-family transformer, mirroring Hugging
// Face's config.json (model_type "llama", "qwen2" and "qwen3"), read from and
// written back to that JSON so a checkpoint moves between r1kit and
// transformers unchanged.
// A plain value type: validated once when read, read-only afterwards.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace r1kit {

// RoPE frequency scaling (rope_scaling in config.json).
struct RopeScaling {
  std::string rope_type;                            // "" = none; "linear" or "llama3"
  double factor = 1.0;                              // context extension factor
  double low_freq_factor = 1.0;                     // llama3 only
  double high_freq_factor = 4.0;                    // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only: pretraining context
};

struct ModelConfig {
  std::string model_type = "llama";        // "llama", "qwen2" or "qwen3"
  int64_t vocab_size = 32000;              // rows of the embedding and lm_head
  int64_t hidden_size = 4096;              // H, the residual width
  int64_t intermediate_size = 11008;       // the SwiGLU inner width
  int64_t num_hidden_layers = 32;          // decoder layers
  int64_t num_attention_heads = 32;        // query heads
  int64_t num_key_value_heads = 32;        // key/value heads (GQA); divides the query heads
  int64_t head_dim = 0;                    // 0 = hidden_size / num_attention_heads
  int64_t max_position_embeddings = 2048;  // the longest sequence the model was trained on
  double rms_norm_eps = 1e-6;              // RMSNorm epsilon
  double rope_theta = 10000.0;             // RoPE base
  RopeScaling rope_scaling;                // none by default
  bool attention_bias = false;             // bias on q/k/v projections (qwen2: always true)
  bool attention_output_bias = false;      // bias on o_proj (qwen2: false; else attention_bias)
  bool qk_norm = false;                    // RMSNorm on each q and k head before RoPE (qwen3)
  bool mlp_bias = false;                   // bias on gate/up/down (llama's mlp_bias)
  bool tie_word_embeddings = false;        // lm_head shares the embedding matrix
  int64_t bos_token_id = -1;               // -1 = none
  std::vector<int64_t> eos_token_ids;      // config's eos_token_id (int or list); may be empty
  int64_t pad_token_id = -1;               // -1 = none
  std::string torch_dtype = "float32";     // the dtype the weights were saved in
  // Keys of the source config.json that r1kit does not interpret, written back unchanged.
  nlohmann::json extra = nlohmann::json::object();
  // The source folder's generation_config.json (null when it had none), kept
  // so save_pretrained writes it back; not part of config.json.
  nlohmann::json generation_config;

  // The effective per-head width.
  int64_t head_size() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }

  // Checks sizes and divisibility; throws Error(kConfig) naming `source`.
  void validate(const std::string& source) const;

  // Reads a Hugging Face config.json object (transformers 4 or 5 layout).
  // `source` (usually the file path) names the file in errors, which also name
  // the key. Unsupported features (another model_type, mixture-of-experts keys,
  // sliding-window attention, unknown rope_scaling, an activation other than
  // silu) are errors, never silently ignored.
  static ModelConfig from_hf_json(const nlohmann::json& json, const std::string& source);

  // The transformers class for this model_type with `suffix`:
  // hf_architecture("ForSequenceClassification") = "Qwen3ForSequenceClassification".
  std::string hf_architecture(const std::string& suffix = "ForCausalLM") const;

  // The config.json that transformers loads as hf_architecture() (or
  // `architecture` when given, e.g. "LlamaForSequenceClassification"); older
  // transformers and vLLM read it too.
  nlohmann::json to_hf_json(const std::string& architecture = "") const;
};

// Free-function spellings of the two above, for callers that prefer them.
inline ModelConfig model_config_from_hf_json(const nlohmann::json& json,
                                             const std::string& source) {
  return ModelConfig::from_hf_json(json, source);
}
inline nlohmann::json model_config_to_hf_json(const ModelConfig& config,
                                              const std::string& architecture = "") {
  return config.to_hf_json(architecture);
}

}  // namespace r1kit
