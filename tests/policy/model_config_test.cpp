// ModelConfig against Hugging Face config.json files: the fixtures written by
// tools/make_fixtures.py (transformers 5 layout) and hand-written older layouts.
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
                "model_type: unsupported model type \"gpt2\" (supported: llama, qwen2)"),
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

}  // namespace
}  // namespace r1kit
