// ModelConfig against Hugging Face config.json files: the fixtures written by
// tools/make_fixtures.py (transformers 5 layout) and hand-written older layouts,
// and the one-line errors for what r1kit does not build.
#include "policy/model_config.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using json = nlohmann::json;

json legacy_llama() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
    "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": true, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "torch_dtype": "bfloat16", "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
    "transformers_version": "4.45.0", "use_cache": true})");
}

std::string error_of(const json& config) {
  try {
    ModelConfig::from_hf_json(config, "some/config.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ReadsTheFixtures) {
  const auto llama = ModelConfig::from_hf_json(
      read_json_file((testing::fixture_path("tiny-llama") / "config.json").string()),
      "tiny-llama/config.json");
  EXPECT_EQ(llama.model_type, "llama");
  EXPECT_EQ(llama.vocab_size, 512);
  EXPECT_EQ(llama.head_size(), 16);
  EXPECT_EQ(llama.num_key_value_heads, 2);
  EXPECT_EQ(llama.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(llama.rope_scaling.original_max_position_embeddings, 64);
  EXPECT_FALSE(llama.tie_word_embeddings);
  EXPECT_EQ(llama.eos_token_ids, (std::vector<int64_t>{2}));
  const auto qwen = ModelConfig::from_hf_json(
      read_json_file((testing::fixture_path("tiny-qwen2") / "config.json").string()),
      "tiny-qwen2/config.json");
  EXPECT_TRUE(qwen.attention_bias);
  EXPECT_FALSE(qwen.attention_output_bias);
  EXPECT_TRUE(qwen.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(qwen.rope_theta, 1e6);
  EXPECT_TRUE(qwen.rope_scaling.rope_type.empty());
}

TEST(ModelConfig, ReadsOlderLayoutsAndWritesThemBack) {
  const ModelConfig config = ModelConfig::from_hf_json(legacy_llama(), "llama/config.json");
  EXPECT_DOUBLE_EQ(config.rope_theta, 500000.0);
  EXPECT_DOUBLE_EQ(config.rope_scaling.factor, 32.0);
  EXPECT_EQ(config.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(config.torch_dtype, "bfloat16");
  const json written = config.to_hf_json();
  EXPECT_EQ(written["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(written["transformers_version"], "4.45.0");  // unknown keys survive
  EXPECT_EQ(written["rope_scaling"]["rope_type"], "llama3");
  const ModelConfig again = ModelConfig::from_hf_json(written, "written");
  EXPECT_EQ(again.to_hf_json(), written);
}

TEST(ModelConfig, ErrorsNameTheFileAndKey) {
  json config = legacy_llama();
  config.erase("hidden_size");
  EXPECT_EQ(error_of(config), "some/config.json: hidden_size: required key is missing");
  config = legacy_llama();
  config["num_hidden_layers"] = "16";
  EXPECT_EQ(error_of(config),
            "some/config.json: num_hidden_layers: expected an integer, got \"16\"");
  config = legacy_llama();
  config["model_type"] = "gpt2";
  EXPECT_NE(error_of(config).find(
                "model_type: unsupported model type \"gpt2\" (supported: llama, qwen2, qwen3)"),
            std::string::npos);
  config = legacy_llama();
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of(config).find("rope_scaling.rope_type: unsupported rope scaling \"yarn\""),
            std::string::npos);
  config = legacy_llama();
  config["num_key_value_heads"] = 7;
  EXPECT_NE(error_of(config).find("num_key_value_heads: 7 does not divide num_attention_heads 32"),
            std::string::npos);
  config = legacy_llama();
  config["model_type"] = "qwen2";
  config["use_sliding_window"] = true;
  EXPECT_NE(error_of(config).find("use_sliding_window"), std::string::npos);
  config = legacy_llama();
  config["hidden_act"] = "gelu";
  EXPECT_NE(error_of(config).find("hidden_act"), std::string::npos);
}

ModelConfig read_fixture_config(const std::string& model) {
  return ModelConfig::from_hf_json(
      read_json_file((testing::fixture_path(model) / "config.json").string()),
      model + "/config.json");
}

// A dense Qwen3 config as the released checkpoints write it (Qwen3-0.6B's shape).
json qwen3_json() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936,
    "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
    "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000,
    "rope_scaling": null, "attention_bias": false, "attention_dropout": 0.0,
    "use_sliding_window": false, "sliding_window": null, "max_window_layers": 28,
    "tie_word_embeddings": true, "bos_token_id": 151643, "eos_token_id": 151645,
    "torch_dtype": "bfloat16", "hidden_act": "silu", "transformers_version": "4.51.0",
    "use_cache": true})");
}

TEST(ModelConfig, ReadsTheQwen3FixturesTiedAndUntied) {
  const ModelConfig tied = read_fixture_config("tiny-qwen3");
  EXPECT_EQ(tied.model_type, "qwen3");
  EXPECT_TRUE(tied.qk_norm);
  EXPECT_EQ(tied.head_size(), 32);  // not hidden_size / heads = 16
  EXPECT_FALSE(tied.attention_bias);
  EXPECT_FALSE(tied.attention_output_bias);
  EXPECT_TRUE(tied.tie_word_embeddings);
  EXPECT_TRUE(tied.rope_scaling.rope_type.empty());
  const ModelConfig untied = read_fixture_config("tiny-qwen3-untied");
  EXPECT_FALSE(untied.tie_word_embeddings);
  EXPECT_EQ(untied.num_key_value_heads, 1);
  EXPECT_EQ(untied.rope_scaling.rope_type, "linear");
  EXPECT_FALSE(read_fixture_config("tiny-qwen2").qk_norm);
  EXPECT_FALSE(read_fixture_config("tiny-llama").qk_norm);
}

TEST(ModelConfig, WritesQwen3BackAsTransformersReadsIt) {
  const ModelConfig config = ModelConfig::from_hf_json(qwen3_json(), "qwen3/config.json");
  EXPECT_EQ(config.max_position_embeddings, 40960);
  const json written = config.to_hf_json();
  EXPECT_EQ(written["architectures"][0], "Qwen3ForCausalLM");
  EXPECT_EQ(written["model_type"], "qwen3");
  EXPECT_EQ(written["head_dim"], 128);
  EXPECT_EQ(written["attention_bias"], false);
  EXPECT_EQ(written["use_sliding_window"], false);
  EXPECT_FALSE(written.contains("mlp_bias"));    // Qwen3Config has no such key
  EXPECT_EQ(written["attention_dropout"], 0.0);  // unknown keys survive
  EXPECT_EQ(ModelConfig::from_hf_json(written, "written").to_hf_json(), written);
  EXPECT_EQ(config.hf_architecture("ForSequenceClassification"), "Qwen3ForSequenceClassification");
  EXPECT_EQ(read_fixture_config("tiny-qwen2").hf_architecture(), "Qwen2ForCausalLM");
  EXPECT_EQ(read_fixture_config("tiny-llama").hf_architecture(), "LlamaForCausalLM");
}

TEST(ModelConfig, Qwen3DefaultsAreTransformersDefaults) {
  json object = qwen3_json();
  object.erase("head_dim");
  object.erase("max_position_embeddings");
  object["attention_bias"] = true;
  const ModelConfig config = ModelConfig::from_hf_json(object, "qwen3/config.json");
  EXPECT_EQ(config.head_size(), 128);  // Qwen3Config's default, not 1024 / 16
  EXPECT_EQ(config.max_position_embeddings, 32768);
  EXPECT_TRUE(config.attention_bias);
  EXPECT_TRUE(config.attention_output_bias);  // Qwen3's o_proj follows attention_bias
}

TEST(ModelConfig, QkNormOutsideQwen3CannotBeWritten) {
  ModelConfig config = read_fixture_config("tiny-llama");
  config.qk_norm = true;
  EXPECT_THROW(config.to_hf_json(), c10::Error);
  config = read_fixture_config("tiny-qwen3");
  config.qk_norm = false;
  EXPECT_THROW(config.to_hf_json(), c10::Error);
}

TEST(ModelConfig, MixtureOfExpertsAndSlidingWindowAreOneLineErrors) {
  json config = qwen3_json();
  config["model_type"] = "qwen3_moe";
  EXPECT_EQ(error_of(config),
            "some/config.json: model_type: unsupported model type \"qwen3_moe\": "
            "mixture-of-experts models are not supported (supported: llama, qwen2, qwen3)");
  for (const char* type : {"qwen2_moe", "mixtral", "deepseek_v3"}) {
    config["model_type"] = type;
    EXPECT_NE(error_of(config).find("mixture-of-experts models are not supported"),
              std::string::npos)
        << type;
  }
  config["model_type"] = "mistral";
  EXPECT_EQ(error_of(config),
            "some/config.json: model_type: unsupported model type \"mistral\" "
            "(supported: llama, qwen2, qwen3)");
  config = qwen3_json();
  config["num_experts"] = 128;
  EXPECT_EQ(error_of(config),
            "some/config.json: num_experts: mixture-of-experts layers are not supported (a "
            "dense qwen3 model has no expert count)");
  config = legacy_llama();
  config["num_local_experts"] = 8;
  EXPECT_NE(error_of(config).find("some/config.json: num_local_experts: mixture-of-experts"),
            std::string::npos);
  config = qwen3_json();
  config["num_experts"] = 0;  // a dense model that spells out "no experts"
  EXPECT_EQ(error_of(config), "");
  config = qwen3_json();
  config["use_sliding_window"] = true;
  EXPECT_EQ(error_of(config),
            "some/config.json: use_sliding_window: sliding-window attention is not supported");
}

}  // namespace
}  // namespace r1kit
