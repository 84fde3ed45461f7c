// LoRA adapters (policy/lora.h) and PEFT adapter folders (policy/peft_adapter.h):
// logits of a base model with a PEFT-written adapter equal PEFT's (golden values
// from tools/make_peft_fixture.py, tests/fixtures/tiny-*-lora), through the
// padded, cached, shared-prompt and merged paths; new adapters leave the model
// unchanged and alone receive gradients; r1kit's adapter folder has PEFT's keys
// and config fields; bad adapters and targets fail with one line naming them.
#include "policy/lora.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/config.h"
#include "common/error.h"
#include "common/safetensors.h"
#include "policy/checkpoint.h"
#include "policy/peft_adapter.h"
#include "policy/shared_prefix.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_path;
using testing::TempFolder;

// The PEFT fixture on each base: the adapter folder and the base it was made on.
struct AdapterFixture {
  const char* adapter;
  const char* base;
};
const AdapterFixture kAdapterFixtures[] = {{"tiny-qwen2-lora", "tiny-qwen2"},
                                           {"tiny-llama-lora", "tiny-llama"}};

using testing::max_difference;

Transformer with_adapter(const AdapterFixture& fixture) {
  Transformer model = load_pretrained(fixture_path(fixture.base));
  LoraConfig config;
  config.path = fixture_path(fixture.adapter).string();
  attach_lora(*model, config, 0, "test: model.lora");
  return model;
}

std::map<std::string, at::Tensor> expected_of(const AdapterFixture& fixture) {
  return read_safetensors(fixture_path(fixture.adapter) / "expected.safetensors").tensors;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A tiny Llama (width 32) with adapters of rank 4 on every linear layer, B random.
Transformer tiny_lora_model(double b_scale = 0.1, std::vector<std::string> modules_to_save = {}) {
  Transformer model = make_random_transformer(testing::tiny_model_config(40), 7, 0.2);
  LoraConfig config;
  config.r = 4;
  config.alpha = 16;
  config.target_modules = "all-linear";
  config.modules_to_save = std::move(modules_to_save);
  attach_lora(*model, config, 11, "test: model.lora");
  if (b_scale != 0.0) {
    at::NoGradGuard no_grad;
    for (const auto& item : model->named_parameters()) {
      if (item.key().find(".lora_B.") != std::string::npos)
        item.value().copy_(b_scale * at::randn_like(item.value()));
    }
  }
  return model;
}

class PeftFixture : public ::testing::TestWithParam<AdapterFixture> {};

TEST_P(PeftFixture, LogitsMatchPeft) {
  Transformer model = with_adapter(GetParam());
  auto expected = expected_of(GetParam());
  at::NoGradGuard no_grad;
  const at::Tensor logits = model->forward(expected["tokens"], expected["mask"]);
  EXPECT_LT(max_difference(logits, expected["logits"], expected["mask"]), 1e-4);
}

TEST_P(PeftFixture, AdaptersOffGiveTheBase) {
  Transformer model = with_adapter(GetParam());
  auto expected = expected_of(GetParam());
  auto base = testing::fixture_expected_values(GetParam().base);
  at::NoGradGuard no_grad;
  LoraDisabled off;
  const at::Tensor logits = model->forward(expected["tokens"], expected["mask"]);
  if (std::string(GetParam().adapter) == "tiny-llama-lora") {
    // lm_head is a module to save: trained in place, so "off" keeps the trained head.
    EXPECT_GT(max_difference(logits, base["logits_right"], expected["mask"]), 1e-3);
  } else {
    EXPECT_LT(max_difference(logits, base["logits_right"], expected["mask"]), 1e-4);
  }
}

TEST_P(PeftFixture, CachedForwardMatchesPeft) {
  Transformer model = with_adapter(GetParam());
  auto expected = expected_of(GetParam());
  at::NoGradGuard no_grad;
  const at::Tensor tokens = expected["tokens"], mask = expected["mask"];
  const int64_t rows = tokens.size(0);
  KvCache cache(model->config(), rows, tokens.size(1));
  const at::Tensor lengths = mask.sum(1);
  const at::Tensor logits = model->forward_cached(tokens, cache, at::arange(rows, at::kLong),
                                                  lengths, /*last_only=*/false);
  EXPECT_LT(max_difference(logits, expected["logits"], mask), 1e-4);
}

TEST_P(PeftFixture, MergedWeightsMatchPeft) {
  Transformer model = with_adapter(GetParam());
  auto expected = expected_of(GetParam());
  merge_lora(*model);
  EXPECT_FALSE(has_lora(*model));
  for (const auto& item : model->named_parameters())
    EXPECT_EQ(item.key().find("lora_"), std::string::npos) << item.key();
  at::NoGradGuard no_grad;
  const at::Tensor logits = model->forward(expected["tokens"], expected["mask"]);
  EXPECT_LT(max_difference(logits, expected["logits"], expected["mask"]), 1e-4);
}

TEST_P(PeftFixture, SavedAdapterHasPeftsKeysAndLoadsBack) {
  Transformer model = with_adapter(GetParam());
  TempFolder folder;
  save_peft_adapter(*model, folder / "adapter");
  const auto peft = read_safetensors_header(fixture_path(GetParam().adapter) / kAdapterWeightsFile);
  const auto ours = read_safetensors_header(folder / "adapter" / kAdapterWeightsFile);
  std::set<std::string> peft_keys, our_keys;
  for (const auto& [key, entry] : peft) peft_keys.insert(key);
  for (const auto& [key, entry] : ours) our_keys.insert(key);
  EXPECT_EQ(our_keys, peft_keys);

  const nlohmann::json peft_config =
      read_json(fixture_path(GetParam().adapter) / kAdapterConfigFile);
  const nlohmann::json our_config = read_json(folder / "adapter" / kAdapterConfigFile);
  for (const char* key : {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "bias",
                          "fan_in_fan_out", "use_rslora", "use_dora", "modules_to_save"})
    EXPECT_EQ(our_config.at(key), peft_config.at(key)) << key;
  // PEFT writes the short names it was given, or the module paths "all-linear" matched.
  std::set<std::string> peft_targets, our_targets;
  for (const auto& name : peft_config["target_modules"]) {
    const std::string path = name.get<std::string>();
    peft_targets.insert(path.substr(path.rfind('.') + 1));
  }
  for (const auto& name : our_config["target_modules"]) our_targets.insert(name.get<std::string>());
  EXPECT_EQ(our_targets, peft_targets);

  Transformer reloaded = load_pretrained(fixture_path(GetParam().base));
  LoraConfig config;
  config.path = (folder / "adapter").string();
  attach_lora(*reloaded, config, 5, "test: model.lora");
  auto original = model->named_parameters();
  for (const auto& item : reloaded->named_parameters())
    EXPECT_TRUE(at::equal(item.value(), original[item.key()])) << item.key();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PeftFixture, ::testing::ValuesIn(kAdapterFixtures),
                         [](const auto& info) {
                           std::string name = info.param.base;
                           return name.substr(name.find('-') + 1);
                         });

TEST(Lora, NewAdaptersLeaveTheModelUnchanged) {
  Transformer model = make_random_transformer(testing::tiny_model_config(40), 7, 0.2);
  const at::Tensor tokens = at::randint(0, 40, {2, 9}, at::kLong);
  const at::Tensor mask = at::ones({2, 9}, at::kLong);
  at::Tensor before;
  {
    at::NoGradGuard no_grad;
    before = model->forward(tokens, mask);
  }
  LoraConfig config;
  config.r = 8;
  config.target_modules = "all-linear";
  attach_lora(*model, config, 1, "test: model.lora");
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(model->forward(tokens, mask), before));
  int64_t adapters = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.key().ends_with(".lora_B.weight")) {
      EXPECT_TRUE(at::equal(item.value(), at::zeros_like(item.value())));
      ++adapters;
    }
    if (item.key().ends_with(".lora_A.weight")) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(item.value().size(1)));
      EXPECT_LE(item.value().abs().max().item<double>(), bound);
      EXPECT_GT(item.value().abs().max().item<double>(), 0.5 * bound);
    }
  }
  EXPECT_EQ(adapters, 2 * 7);  // two layers of q, k, v, o, gate, up, down
}

TEST(Lora, OnlyAdaptersAndModulesToSaveTrain) {
  Transformer model = tiny_lora_model(0.0, {"embed_tokens"});
  std::set<std::string> trainable;
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) trainable.insert(item.key());
  }
  EXPECT_EQ(trainable.size(), 2 * 7 * 2 + 1);
  EXPECT_TRUE(trainable.count("model.embed_tokens.weight"));
  EXPECT_TRUE(trainable.count("model.layers.1.mlp.down_proj.lora_A.weight"));
  EXPECT_FALSE(trainable.count("model.layers.1.mlp.down_proj.weight"));
  EXPECT_EQ(model->decay_parameters().size() + model->no_decay_parameters().size(),
            trainable.size());

  const at::Tensor tokens = at::randint(0, 40, {2, 9}, at::kLong);
  model->forward(tokens, at::ones({2, 9}, at::kLong)).logsumexp(-1).sum().backward();
  for (const auto& item : model->named_parameters()) {
    const at::Tensor& grad = item.value().grad();
    if (!trainable.count(item.key())) {
      EXPECT_FALSE(grad.defined()) << item.key();
    } else if (item.key().find(".lora_A.") != std::string::npos) {
      // B = 0: no gradient reaches A yet (PEFT's init makes the first step train B only).
      EXPECT_TRUE(at::equal(grad, at::zeros_like(grad))) << item.key();
    } else {
      EXPECT_GT(grad.abs().max().item<double>(), 0.0) << item.key();
    }
  }
}

TEST(Lora, SharedPrefixForwardEqualsPaddedForward) {
  Transformer model = tiny_lora_model();
  const std::vector<std::vector<int64_t>> tokens = {
      {1, 2, 3, 4, 5, 6, 7}, {1, 2, 3, 4, 8, 9}, {11, 12, 13, 14, 15}};
  const std::vector<PromptAndCompletion> rows = {{tokens[0], 4}, {tokens[1], 4}, {tokens[2], 2}};
  std::vector<at::Tensor> expected;
  for (const auto& row : rows) {
    const int64_t length = static_cast<int64_t>(row.tokens.size());
    const at::Tensor ids = at::tensor(std::vector<int64_t>(row.tokens.begin(), row.tokens.end()));
    const at::Tensor logits =
        model->forward(ids.view({1, -1}), at::ones({1, length}, at::kLong));  // (1, L, V)
    expected.push_back(logits[0].narrow(0, row.prompt_length - 1, length - row.prompt_length));
  }
  const SharedPrefixBatch batch = make_shared_prefix_batch(rows);
  const at::Tensor packed = shared_prefix_logits(*model, batch);  // (B, C, V)
  for (size_t b = 0; b < rows.size(); ++b) {
    const at::Tensor actual = packed[b].narrow(0, 0, expected[b].size(0));
    EXPECT_LT((actual - expected[b]).abs().max().item<double>(), 1e-5) << "row " << b;
  }
  LoraDisabled off;
  at::NoGradGuard no_grad;
  const at::Tensor base = shared_prefix_logits(*model, batch);
  EXPECT_GT((base - packed).abs().max().item<double>(), 1e-4);
}

TEST(Lora, MergedWeightIsWeightPlusScaledProduct) {
  Transformer model = tiny_lora_model();
  auto& attention = *model->model->layers[0]->as<DecoderLayerImpl>()->self_attn;
  const auto children = attention.q_proj->named_children();
  const at::Tensor a = children["lora_A"]->named_parameters()["weight"];
  const at::Tensor b = children["lora_B"]->named_parameters()["weight"];
  const at::Tensor expected = attention.q_proj->weight + (16.0 / 4.0) * b.mm(a);
  EXPECT_TRUE(at::allclose(lora_merged_weight(attention.q_proj), expected, 1e-6, 1e-6));
  EXPECT_TRUE(at::equal(lora_merged_weight(model->lm_head), model->lm_head->weight));
}

TEST(Lora, RecipeSectionReadsAndRejectsBadTargets) {
  const nlohmann::json json = {
      {"r", 16}, {"alpha", 32}, {"target_modules", "all-linear"}, {"use_rslora", true}};
  LoraConfig config = read_config<LoraConfig>(json, "recipe.json");
  EXPECT_EQ(config.r, 16);
  EXPECT_DOUBLE_EQ(config.scale(), 32.0 / 4.0);
  EXPECT_TRUE(config.enabled());
  const LoraConfig defaults = read_config<LoraConfig>(nlohmann::json::object(), "recipe.json");
  EXPECT_FALSE(defaults.enabled());
  EXPECT_DOUBLE_EQ(defaults.alpha, 8.0);  // PEFT's lora_alpha
  EXPECT_EQ(defaults.target_modules, nlohmann::json::array({"q_proj", "v_proj"}));
  try {
    read_config<LoraConfig>({{"target_modules", 3}}, "recipe.json");
    FAIL() << "a number as target_modules was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("recipe.json: target_modules: expected a list"),
              std::string::npos)
        << error.what();
  }
}

TEST(Lora, UnknownTargetNamesTheKeyAndTheModelsLayers) {
  Transformer model = make_random_transformer(testing::tiny_model_config(40), 7, 0.2);
  LoraConfig config;
  config.r = 4;
  config.target_modules = {"q_proj", "foo"};
  try {
    attach_lora(*model, config, 0, "recipe.json: model.lora");
    FAIL() << "an unknown target was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_EQ(std::string(error.what()),
              "recipe.json: model.lora.target_modules: \"foo\" matches no module of the model "
              "(its linear layers: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, "
              "lm_head)");
  }
  EXPECT_FALSE(has_lora(*model));
}

TEST(Lora, AdapterOfAnotherBaseNamesTheTensorAndBothShapes) {
  // The tiny test model is 32 wide; the fixture adapter was made on a 64-wide model.
  ModelConfig small = testing::tiny_model_config(512);
  small.model_type = "qwen2";
  small.attention_bias = true;
  small.tie_word_embeddings = true;
  Transformer model = make_random_transformer(small, 7, 0.2);
  LoraConfig config;
  config.path = fixture_path("tiny-qwen2-lora").string();
  try {
    attach_lora(*model, config, 0, "recipe.json: model.lora");
    FAIL() << "an adapter for another base was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kData);
    const std::string file = (fixture_path("tiny-qwen2-lora") / kAdapterWeightsFile).string();
    EXPECT_EQ(std::string(error.what()),
              file +
                  ": base_model.model.model.layers.0.mlp.down_proj.lora_A.weight has shape [4, "
                  "128] but the model expects [4, 64] (an adapter for another base model?)");
  }
}

TEST(Lora, UnknownPeftTypeNamesTheFileAndKey) {
  TempFolder folder;
  nlohmann::json config = read_json(fixture_path("tiny-qwen2-lora") / kAdapterConfigFile);
  config["peft_type"] = "IA3";
  folder.write_file(kAdapterConfigFile, config.dump());
  try {
    with_adapter_config(LoraConfig{}, folder.path());
    FAIL() << "an IA3 adapter was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), (folder / kAdapterConfigFile).string() +
                                             ": peft_type: \"IA3\" is not supported; r1kit "
                                             "loads LORA adapters");
  }
}

}  // namespace
}  // namespace r1kit
