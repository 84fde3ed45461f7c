#include "policy/model_config.h"

#include <set>

#include "common/error.h"

namespace r1kit {
namespace {

using json = nlohmann::json;

// Reads typed keys of one JSON object, naming file and key in every error.
class KeyReader {
 public:
  KeyReader(const json& object, std::string source, std::string prefix = "")
      : object_(object), source_(std::move(source)), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  int64_t integer(const char* key, std::optional<int64_t> fallback = std::nullopt) {
    used_.insert(key);
    if (!has(key)) return fallback ? *fallback : missing(key);
    const json& value = object_[key];
    if (!value.is_number_integer()) wrong(key, "an integer", value);
    return value.get<int64_t>();
  }
  double number(const char* key, std::optional<double> fallback = std::nullopt) {
    used_.insert(key);
    if (!has(key)) return fallback ? *fallback : missing(key);
    const json& value = object_[key];
    if (!value.is_number()) wrong(key, "a number", value);
    return value.get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    used_.insert(key);
    if (!has(key)) return fallback;
    const json& value = object_[key];
    if (!value.is_boolean()) wrong(key, "true or false", value);
    return value.get<bool>();
  }
  std::string text(const char* key, const std::string& fallback) {
    used_.insert(key);
    if (!has(key)) return fallback;
    const json& value = object_[key];
    if (!value.is_string()) wrong(key, "a string", value);
    return value.get<std::string>();
  }
  // An integer or a list of integers (eos_token_id).
  std::vector<int64_t> integers(const char* key) {
    used_.insert(key);
    if (!has(key)) return {};
    const json& value = object_[key];
    if (value.is_number_integer()) return {value.get<int64_t>()};
    std::vector<int64_t> out;
    if (!value.is_array()) wrong(key, "an integer or a list of integers", value);
    for (const json& item : value) {
      if (!item.is_number_integer()) wrong(key, "an integer or a list of integers", value);
      out.push_back(item.get<int64_t>());
    }
    return out;
  }
  const json* object(const char* key) {
    used_.insert(key);
    if (!has(key)) return nullptr;
    if (!object_[key].is_object()) wrong(key, "an object", object_[key]);
    return &object_[key];
  }
  void mark_used(const char* key) { used_.insert(key); }
  bool used(const std::string& key) const { return used_.count(key) > 0; }

  [[noreturn]] void fail(const char* key, const std::string& message) const {
    throw_config_error(source_ + ": " + prefix_ + key + ": " + message);
  }

 private:
  [[noreturn]] int64_t missing(const char* key) const { fail(key, "required key is missing"); }
  [[noreturn]] void wrong(const char* key, const char* expected, const json& value) const {
    fail(key, std::string("expected ") + expected + ", got " + value.dump());
  }

  const json& object_;
  std::string source_;
  std::string prefix_;
  std::set<std::string> used_;
};

RopeScaling read_rope_scaling(const json& object, const std::string& source,
                              const std::string& prefix) {
  KeyReader reader(object, source, prefix);
  RopeScaling scaling;
  // Old configs say "type", newer ones "rope_type".
  std::string type = reader.text("rope_type", reader.text("type", "default"));
  if (type == "default") return scaling;
  if (type != "linear" && type != "llama3") {
    reader.fail("rope_type",
                "unsupported rope scaling \"" + type + "\" (supported: default, linear, llama3)");
  }
  scaling.rope_type = type;
  scaling.factor = reader.number("factor");
  if (type == "llama3") {
    scaling.low_freq_factor = reader.number("low_freq_factor");
    scaling.high_freq_factor = reader.number("high_freq_factor");
    scaling.original_max_position_embeddings = reader.integer("original_max_position_embeddings");
    if (scaling.high_freq_factor <= scaling.low_freq_factor) {
      reader.fail("high_freq_factor", "must exceed low_freq_factor");
    }
  }
  return scaling;
}

// The model_type values r1kit builds.
const std::set<std::string> kModelTypes = {"llama", "qwen2", "qwen3"};
// Mixture-of-experts model types whose name does not say "moe".
const std::set<std::string> kMixtureOfExpertsTypes = {"mixtral", "deepseek_v2", "deepseek_v3",
                                                      "dbrx",    "jamba",       "qwen3_next"};
// Keys that give a mixture-of-experts layer its expert count (Qwen-MoE,
// Mixtral, DeepSeek), refused even under a dense model_type.
constexpr const char* kExpertCountKeys[] = {"num_experts", "num_local_experts", "n_routed_experts"};

}  // namespace

void ModelConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t value) {
    if (value <= 0)
      throw_config_error(source + ": " + key + ": must be positive, got " + std::to_string(value));
  };
  positive("vocab_size", vocab_size);
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0) {
    throw_config_error(source + ": num_key_value_heads: " + std::to_string(num_key_value_heads) +
                       " does not divide num_attention_heads " +
                       std::to_string(num_attention_heads));
  }
  if (head_dim <= 0 && hidden_size % num_attention_heads != 0) {
    throw_config_error(source + ": hidden_size: " + std::to_string(hidden_size) +
                       " is not a multiple of num_attention_heads " +
                       std::to_string(num_attention_heads));
  }
  if (head_size() % 2 != 0) {
    throw_config_error(source + ": head_dim: RoPE needs an even head size, got " +
                       std::to_string(head_size()));
  }
  if (!(rms_norm_eps > 0)) throw_config_error(source + ": rms_norm_eps: must be positive");
  if (!(rope_theta > 0)) throw_config_error(source + ": rope_theta: must be positive");
}

ModelConfig ModelConfig::from_hf_json(const json& object, const std::string& source) {
  if (!object.is_object()) throw_config_error(source + ": expected a JSON object");
  KeyReader reader(object, source);
  ModelConfig config;
  config.model_type = reader.text("model_type", "");
  if (!kModelTypes.count(config.model_type)) {
    const bool experts = config.model_type.find("moe") != std::string::npos ||
                         kMixtureOfExpertsTypes.count(config.model_type);
    reader.fail("model_type", "unsupported model type \"" + config.model_type + "\"" +
                                  (experts ? ": mixture-of-experts models are not supported" : "") +
                                  " (supported: llama, qwen2, qwen3)");
  }
  for (const char* key : kExpertCountKeys) {
    if (reader.has(key) && object[key] != 0)
      reader.fail(key, "mixture-of-experts layers are not supported (a dense " + config.model_type +
                           " model has no expert count)");
  }
  const bool qwen2 = config.model_type == "qwen2";
  const bool qwen3 = config.model_type == "qwen3";
  config.vocab_size = reader.integer("vocab_size");
  config.hidden_size = reader.integer("hidden_size");
  config.intermediate_size = reader.integer("intermediate_size");
  config.num_hidden_layers = reader.integer("num_hidden_layers");
  config.num_attention_heads = reader.integer("num_attention_heads");
  config.num_key_value_heads = reader.integer("num_key_value_heads", config.num_attention_heads);
  // transformers' Qwen3Config defaults head_dim to 128, not hidden_size / heads.
  config.head_dim = reader.integer("head_dim", qwen3 ? 128 : 0);
  config.max_position_embeddings =
      reader.integer("max_position_embeddings", qwen2 || qwen3 ? 32768 : 2048);
  config.rms_norm_eps = reader.number("rms_norm_eps", 1e-6);
  const std::string activation = reader.text("hidden_act", "silu");
  if (activation != "silu")
    reader.fail("hidden_act", "unsupported activation \"" + activation + "\" (supported: silu)");

  // transformers >= 5 writes rope_parameters {rope_type, rope_theta, ...};
  // older configs write rope_theta and rope_scaling.
  config.rope_theta = reader.number("rope_theta", 10000.0);
  if (const json* parameters = reader.object("rope_parameters")) {
    KeyReader rope(*parameters, source, "rope_parameters.");
    config.rope_theta = rope.number("rope_theta", config.rope_theta);
    config.rope_scaling = read_rope_scaling(*parameters, source, "rope_parameters.");
  }
  if (const json* scaling = reader.object("rope_scaling")) {
    config.rope_scaling = read_rope_scaling(*scaling, source, "rope_scaling.");
  }

  if (qwen2 || qwen3) {
    // Qwen2 has q/k/v biases and none on o_proj; Qwen3 one attention_bias for
    // all four (false in the released models) and RMSNorm on q and k heads.
    config.attention_bias = qwen2 || reader.boolean("attention_bias", false);
    config.attention_output_bias = qwen3 && config.attention_bias;
    config.qk_norm = qwen3;
    if (reader.boolean("use_sliding_window", false)) {
      reader.fail("use_sliding_window", "sliding-window attention is not supported");
    }
    reader.mark_used("sliding_window");
    reader.mark_used("max_window_layers");
    reader.mark_used("layer_types");
  } else {
    config.attention_bias = reader.boolean("attention_bias", false);
    config.attention_output_bias = config.attention_bias;
    config.mlp_bias = reader.boolean("mlp_bias", false);
    if (reader.integer("pretraining_tp", 1) != 1)
      reader.fail("pretraining_tp", "only 1 is supported");
  }
  config.tie_word_embeddings = reader.boolean("tie_word_embeddings", false);
  config.bos_token_id = reader.integer("bos_token_id", -1);
  config.eos_token_ids = reader.integers("eos_token_id");
  config.pad_token_id = reader.integer("pad_token_id", -1);
  // transformers >= 5 writes "dtype", older versions "torch_dtype".
  config.torch_dtype = reader.text("torch_dtype", reader.text("dtype", "float32"));

  // Keys written by to_hf_json itself are regenerated, not kept.
  static const std::set<std::string> kRegenerated = {
      "architectures",   "attention_bias", "mlp_bias", "rope_scaling",
      "rope_parameters", "rope_theta",     "dtype",    "torch_dtype"};
  for (const auto& [key, value] : object.items()) {
    if (!reader.used(key) && !kRegenerated.count(key)) config.extra[key] = value;
  }
  config.validate(source);
  return config;
}

std::string ModelConfig::hf_architecture(const std::string& suffix) const {
  if (model_type == "qwen2") return "Qwen2" + suffix;
  if (model_type == "qwen3") return "Qwen3" + suffix;
  return "Llama" + suffix;
}

json ModelConfig::to_hf_json(const std::string& architecture) const {
  const ModelConfig& config = *this;
  const bool qwen2 = config.model_type == "qwen2";
  const bool qwen3 = config.model_type == "qwen3";
  // Neither config.json spelling can say otherwise: transformers would build another model.
  TORCH_CHECK(config.qk_norm == qwen3, "qk_norm is ", config.qk_norm, " for model_type ",
              config.model_type, "; transformers has it for qwen3 only");
  json out = config.extra.is_object() ? config.extra : json::object();
  out["architectures"] = {architecture.empty() ? config.hf_architecture() : architecture};
  out["model_type"] = config.model_type;
  out["vocab_size"] = config.vocab_size;
  out["hidden_size"] = config.hidden_size;
  out["intermediate_size"] = config.intermediate_size;
  out["num_hidden_layers"] = config.num_hidden_layers;
  out["num_attention_heads"] = config.num_attention_heads;
  out["num_key_value_heads"] = config.num_key_value_heads;
  out["head_dim"] = config.head_size();
  out["max_position_embeddings"] = config.max_position_embeddings;
  out["rms_norm_eps"] = config.rms_norm_eps;
  out["rope_theta"] = config.rope_theta;
  out["hidden_act"] = "silu";
  if (config.rope_scaling.rope_type.empty()) {
    out["rope_scaling"] = nullptr;
  } else {
    json scaling = {{"rope_type", config.rope_scaling.rope_type},
                    {"factor", config.rope_scaling.factor}};
    if (config.rope_scaling.rope_type == "llama3") {
      scaling["low_freq_factor"] = config.rope_scaling.low_freq_factor;
      scaling["high_freq_factor"] = config.rope_scaling.high_freq_factor;
      scaling["original_max_position_embeddings"] =
          config.rope_scaling.original_max_position_embeddings;
    }
    out["rope_scaling"] = scaling;
  }
  if (qwen2) {
    out["use_sliding_window"] = false;
  } else {
    TORCH_CHECK(config.attention_output_bias == config.attention_bias, config.model_type,
                " configs have one attention_bias for q/k/v and o_proj");
    out["attention_bias"] = config.attention_bias;
    if (qwen3) {
      TORCH_CHECK(!config.mlp_bias, "qwen3 configs have no mlp_bias");
      out["use_sliding_window"] = false;
    } else {
      out["mlp_bias"] = config.mlp_bias;
    }
  }
  out["tie_word_embeddings"] = config.tie_word_embeddings;
  out["bos_token_id"] = config.bos_token_id >= 0 ? json(config.bos_token_id) : json(nullptr);
  if (config.eos_token_ids.empty()) {
    out["eos_token_id"] = nullptr;
  } else if (config.eos_token_ids.size() == 1) {
    out["eos_token_id"] = config.eos_token_ids[0];
  } else {
    out["eos_token_id"] = config.eos_token_ids;
  }
  out["pad_token_id"] = config.pad_token_id >= 0 ? json(config.pad_token_id) : json(nullptr);
  out["torch_dtype"] = config.torch_dtype;
  return out;
}

}  // namespace r1kit
