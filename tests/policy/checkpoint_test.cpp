// Hugging Face folder import/export: round trips, shards, heads and the errors
// for folders that do not match their config. Fixtures: tools/make_fixtures.py.
// That a folder r1kit writes loads in transformers is checked outside the
// suite: tools/export_for_transformers_check.cpp writes the folders and
// `python tools/make_fixtures.py --check DIR` reads them.
#include "policy/checkpoint.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/error.h"
#include "common/safetensors.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::fixture_path;
using testing::kFixtureModels;
using testing::TempFolder;

void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  const auto left = a.named_parameters(), right = b.named_parameters();
  ASSERT_EQ(left.size(), right.size());
  for (const auto& item : left) {
    const at::Tensor* other = right.find(item.key());
    ASSERT_NE(other, nullptr) << item.key();
    EXPECT_TRUE(at::equal(item.value(), *other)) << item.key();
  }
}

std::string load_error(const fs::path& folder) {
  try {
    load_pretrained(folder);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Writes into `folder` a copy of a fixture whose weights went through `edit`.
void write_edited_copy(const fs::path& folder, const std::string& model,
                       const std::function<void(std::map<std::string, at::Tensor>&)>& edit) {
  fs::copy_file(fixture_path(model) / "config.json", folder / "config.json");
  auto tensors = read_safetensors(fixture_path(model) / "model.safetensors").tensors;
  edit(tensors);
  write_safetensors(folder / "model.safetensors", tensors);
}

TEST(Checkpoint, LoadSaveLoadIsBitIdentical) {
  for (const char* name : kFixtureModels) {
    Transformer first = load_pretrained(fixture_path(name));
    const TempFolder temp;
    const fs::path& folder = temp.path();
    save_pretrained(first, folder);
    Transformer second = load_pretrained(folder);
    expect_same_parameters(*first, *second);
    // The saved weights are the fixture's weights, tensor for tensor.
    const auto original = read_safetensors(fixture_path(name) / "model.safetensors").tensors;
    const auto saved = read_safetensors(folder / "model.safetensors").tensors;
    ASSERT_EQ(original.size(), saved.size()) << name;
    for (const auto& [key, tensor] : original) EXPECT_TRUE(at::equal(tensor, saved.at(key))) << key;
    EXPECT_EQ(second->config().generation_config, first->config().generation_config);
    EXPECT_TRUE(fs::exists(folder / "generation_config.json"));
  }
}

TEST(Checkpoint, ShardedSaveLoads) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  const TempFolder temp;
  const fs::path& folder = temp.path();
  save_pretrained(model, folder);  // a single file first: the sharded save must replace it
  save_pretrained(model, folder, {.max_shard_bytes = 150'000});
  EXPECT_FALSE(fs::exists(folder / "model.safetensors"));
  ASSERT_TRUE(fs::exists(folder / "model.safetensors.index.json"));
  int shards = 0;
  for (const auto& entry : fs::directory_iterator(folder))
    shards += entry.path().filename().string().starts_with("model-");
  EXPECT_GE(shards, 3);
  EXPECT_TRUE(
      fs::exists(folder / ("model-00001-of-0000" + std::to_string(shards) + ".safetensors")));
  Transformer reloaded = load_pretrained(folder);
  expect_same_parameters(*model, *reloaded);
}

TEST(Checkpoint, MissingShardIsAnIoError) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  const TempFolder temp;
  const fs::path& folder = temp.path();
  save_pretrained(model, folder, {.max_shard_bytes = 150'000});
  fs::remove(folder / "model-00002-of-00004.safetensors");
  EXPECT_NE(load_error(folder).find("shard model-00002-of-00004.safetensors is missing"),
            std::string::npos)
      << load_error(folder);
}

TEST(Checkpoint, MissingTensorIsNamed) {
  const TempFolder temp;
  const fs::path& folder = temp.path();
  write_edited_copy(folder, "tiny-llama", [](auto& tensors) {
    tensors.erase("model.layers.1.mlp.up_proj.weight");
    tensors.erase("lm_head.weight");
  });
  const std::string error = load_error(folder);
  EXPECT_NE(error.find("missing: model.layers.1.mlp.up_proj.weight, lm_head.weight"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find(folder.string()), std::string::npos) << error;
}

TEST(Checkpoint, WrongShapeIsNamedWithBothShapes) {
  const TempFolder temp;
  const fs::path& folder = temp.path();
  write_edited_copy(folder, "tiny-qwen2", [](auto& tensors) {
    tensors["model.layers.0.self_attn.k_proj.bias"] = at::zeros({31});
  });
  const std::string error = load_error(folder);
  EXPECT_NE(
      error.find("wrong shape: model.layers.0.self_attn.k_proj.bias [31] (model expects [32])"),
      std::string::npos)
      << error;
}

TEST(Checkpoint, UnexpectedTensorIsNamed) {
  const TempFolder temp;
  const fs::path& folder = temp.path();
  write_edited_copy(folder, "tiny-llama",
                    [](auto& tensors) { tensors["model.extra.weight"] = at::zeros({2}); });
  EXPECT_NE(load_error(folder).find("unexpected: model.extra.weight"), std::string::npos)
      << load_error(folder);
}

TEST(Checkpoint, TiedModelIgnoresAStoredLmHead) {
  const TempFolder temp;
  const fs::path& folder = temp.path();
  write_edited_copy(folder, "tiny-qwen2", [](auto& tensors) {
    tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight").clone();
  });
  EXPECT_NO_THROW(load_pretrained(folder));
}

TEST(Checkpoint, FolderWithoutConfigIsAnIoError) {
  const TempFolder empty;
  try {
    load_pretrained(empty.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("no config.json"), std::string::npos);
  }
}

TEST(Checkpoint, SavesInTheModelDtypeAndCopiesTokenizerFiles) {
  Transformer model = load_pretrained(fixture_path("tiny-qwen2"), at::kCPU, at::kBFloat16);
  const TempFolder temp;
  const fs::path& folder = temp.path();
  save_pretrained(model, folder, {.tokenizer_source = fixture_path("tiny-qwen2")});
  const auto config = read_json_file((folder / "config.json").string());
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_EQ(config["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(
      read_safetensors(folder / "model.safetensors").tensors.at("model.norm.weight").scalar_type(),
      at::kBFloat16);
  EXPECT_TRUE(fs::exists(folder / "tokenizer.json"));
  const TempFolder no_tokenizer, nothing;
  EXPECT_THROW(save_pretrained(model, no_tokenizer.path(), {.tokenizer_source = nothing.path()}),
               Error);
}

TEST(Checkpoint, RandomInitIsSeededAndScaledLikeHuggingFace) {
  ModelConfig config = load_pretrained(fixture_path("tiny-llama"))->config();
  Transformer a = make_random_transformer(config, 7), b = make_random_transformer(config, 7);
  Transformer c = make_random_transformer(config, 8);
  expect_same_parameters(*a, *b);
  EXPECT_FALSE(at::equal(a->model->embed_tokens->weight, c->model->embed_tokens->weight));
  const double std = a->model->embed_tokens->weight.std().item<double>();
  EXPECT_NEAR(std, 0.02, 0.002);
  EXPECT_TRUE(at::equal(a->model->norm->weight, at::ones({config.hidden_size})));
}

TEST(Checkpoint, RewardHeadRoundTripsAsSequenceClassifier) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  ScalarHead head(ScalarHeadKind::kReward, model->config().hidden_size);
  const TempFolder temp;
  const fs::path& folder = temp.path();
  save_pretrained(model, folder, {.head = head});
  const auto config = read_json_file((folder / "config.json").string());
  EXPECT_EQ(config["architectures"][0], "LlamaForSequenceClassification");
  const auto saved = read_safetensors(folder / "model.safetensors").tensors;
  EXPECT_EQ(saved.count("lm_head.weight"), 0u);
  EXPECT_EQ(saved.at("score.weight").sizes(), (std::vector<int64_t>{1, 64}));
  PretrainedWithHead loaded = load_pretrained_with_head(folder, ScalarHeadKind::kReward);
  EXPECT_FALSE(loaded.head_is_new);
  EXPECT_FALSE(loaded.model->has_lm_head());
  EXPECT_TRUE(at::equal(loaded.head->linear->weight, head->linear->weight));
  // A causal-LM load of a reward model fails clearly: it has no lm_head.
  EXPECT_NE(load_error(folder).find("missing: lm_head.weight"), std::string::npos);
}

TEST(Checkpoint, ValueHeadUsesTrlNamesAndStartsFreshFromAPolicy) {
  PretrainedWithHead fresh =
      load_pretrained_with_head(fixture_path("tiny-qwen2"), ScalarHeadKind::kValue);
  EXPECT_TRUE(fresh.head_is_new);
  const TempFolder temp;
  const fs::path& folder = temp.path();
  save_pretrained(fresh.model, folder, {.head = fresh.head});
  const auto saved = read_safetensors(folder / "model.safetensors").tensors;
  EXPECT_EQ(saved.count("v_head.summary.weight"), 1u);
  EXPECT_EQ(saved.count("v_head.summary.bias"), 1u);
  PretrainedWithHead loaded = load_pretrained_with_head(folder, ScalarHeadKind::kValue);
  EXPECT_FALSE(loaded.head_is_new);
  expect_same_parameters(*fresh.head, *loaded.head);
  expect_same_parameters(*fresh.model, *loaded.model);
}

}  // namespace
}  // namespace r1kit
