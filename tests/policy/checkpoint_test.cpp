// Hugging Face folder import/export: round trips, shards, heads and the errors
// for folders that do not match their config. Fixtures: tools/make_fixtures.py.
// With R1KIT_EXPORT_DIR set, ExportsFoldersForTheTransformersCheck leaves
// folders there for `python tools/make_fixtures.py --check DIR`.
#include "policy/checkpoint.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/config.h"
#include "common/error.h"
#include "common/safetensors.h"
#include "tests/policy/policy_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::expected_values;
using testing::fixture;
using testing::kTinyModels;
using testing::temp_folder;

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

// A copy of a fixture whose weights went through `edit`.
fs::path edited_copy(const std::string& model,
                     const std::function<void(std::map<std::string, at::Tensor>&)>& edit) {
  const fs::path folder = temp_folder("edited");
  fs::copy_file(fixture(model) / "config.json", folder / "config.json");
  auto tensors = read_safetensors(fixture(model) / "model.safetensors").tensors;
  edit(tensors);
  write_safetensors(folder / "model.safetensors", tensors);
  return folder;
}

TEST(Checkpoint, LoadSaveLoadIsBitIdentical) {
  for (const char* name : kTinyModels) {
    Transformer first = load_pretrained(fixture(name));
    const fs::path folder = temp_folder("roundtrip");
    save_pretrained(first, folder);
    Transformer second = load_pretrained(folder);
    expect_same_parameters(*first, *second);
    // The saved weights are the fixture's weights, tensor for tensor.
    const auto original = read_safetensors(fixture(name) / "model.safetensors").tensors;
    const auto saved = read_safetensors(folder / "model.safetensors").tensors;
    ASSERT_EQ(original.size(), saved.size()) << name;
    for (const auto& [key, tensor] : original) EXPECT_TRUE(at::equal(tensor, saved.at(key))) << key;
    EXPECT_EQ(second->config().generation_config, first->config().generation_config);
    EXPECT_TRUE(fs::exists(folder / "generation_config.json"));
  }
}

TEST(Checkpoint, ShardedSaveLoads) {
  Transformer model = load_pretrained(fixture("tiny-llama"));
  const fs::path folder = temp_folder("sharded");
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
  Transformer model = load_pretrained(fixture("tiny-llama"));
  const fs::path folder = temp_folder("missing-shard");
  save_pretrained(model, folder, {.max_shard_bytes = 150'000});
  fs::remove(folder / "model-00002-of-00004.safetensors");
  EXPECT_NE(load_error(folder).find("shard model-00002-of-00004.safetensors is missing"),
            std::string::npos)
      << load_error(folder);
}

TEST(Checkpoint, MissingTensorIsNamed) {
  const fs::path folder = edited_copy("tiny-llama", [](auto& tensors) {
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
  const fs::path folder = edited_copy("tiny-qwen2", [](auto& tensors) {
    tensors["model.layers.0.self_attn.k_proj.bias"] = at::zeros({31});
  });
  const std::string error = load_error(folder);
  EXPECT_NE(
      error.find("wrong shape: model.layers.0.self_attn.k_proj.bias [31] (model expects [32])"),
      std::string::npos)
      << error;
}

TEST(Checkpoint, UnexpectedTensorIsNamed) {
  const fs::path folder = edited_copy(
      "tiny-llama", [](auto& tensors) { tensors["model.extra.weight"] = at::zeros({2}); });
  EXPECT_NE(load_error(folder).find("unexpected: model.extra.weight"), std::string::npos)
      << load_error(folder);
}

TEST(Checkpoint, TiedModelIgnoresAStoredLmHead) {
  const fs::path folder = edited_copy("tiny-qwen2", [](auto& tensors) {
    tensors["lm_head.weight"] = tensors.at("model.embed_tokens.weight").clone();
  });
  EXPECT_NO_THROW(load_pretrained(folder));
}

TEST(Checkpoint, FolderWithoutConfigIsAnIoError) {
  try {
    load_pretrained(temp_folder("empty"));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("no config.json"), std::string::npos);
  }
}

TEST(Checkpoint, SavesInTheModelDtypeAndCopiesTokenizerFiles) {
  Transformer model = load_pretrained(fixture("tiny-qwen2"), at::kCPU, at::kBFloat16);
  const fs::path folder = temp_folder("bf16");
  save_pretrained(model, folder, {.tokenizer_source = fixture("tiny-qwen2")});
  const auto config = read_json_file((folder / "config.json").string());
  EXPECT_EQ(config["torch_dtype"], "bfloat16");
  EXPECT_EQ(config["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(
      read_safetensors(folder / "model.safetensors").tensors.at("model.norm.weight").scalar_type(),
      at::kBFloat16);
  EXPECT_TRUE(fs::exists(folder / "tokenizer.json"));
  EXPECT_THROW(save_pretrained(model, temp_folder("no-tokenizer"),
                               {.tokenizer_source = temp_folder("nothing")}),
               Error);
}

TEST(Checkpoint, RandomInitIsSeededAndScaledLikeHuggingFace) {
  ModelConfig config = load_pretrained(fixture("tiny-llama"))->config();
  Transformer a = make_random_transformer(config, 7), b = make_random_transformer(config, 7);
  Transformer c = make_random_transformer(config, 8);
  expect_same_parameters(*a, *b);
  EXPECT_FALSE(at::equal(a->model->embed_tokens->weight, c->model->embed_tokens->weight));
  const double std = a->model->embed_tokens->weight.std().item<double>();
  EXPECT_NEAR(std, 0.02, 0.002);
  EXPECT_TRUE(at::equal(a->model->norm->weight, at::ones({config.hidden_size})));
}

TEST(Checkpoint, RewardHeadRoundTripsAsSequenceClassifier) {
  Transformer model = load_pretrained(fixture("tiny-llama"));
  ScalarHead head(ScalarHeadKind::kReward, model->config().hidden_size);
  const fs::path folder = temp_folder("reward");
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
      load_pretrained_with_head(fixture("tiny-qwen2"), ScalarHeadKind::kValue);
  EXPECT_TRUE(fresh.head_is_new);
  const fs::path folder = temp_folder("value");
  save_pretrained(fresh.model, folder, {.head = fresh.head});
  const auto saved = read_safetensors(folder / "model.safetensors").tensors;
  EXPECT_EQ(saved.count("v_head.summary.weight"), 1u);
  EXPECT_EQ(saved.count("v_head.summary.bias"), 1u);
  PretrainedWithHead loaded = load_pretrained_with_head(folder, ScalarHeadKind::kValue);
  EXPECT_FALSE(loaded.head_is_new);
  expect_same_parameters(*fresh.head, *loaded.head);
  expect_same_parameters(*fresh.model, *loaded.model);
}

// Leaves r1kit-written folders plus r1kit's own outputs for
// `python tools/make_fixtures.py --check DIR/<name>` (see its docstring).
TEST(Checkpoint, ExportsFoldersForTheTransformersCheck) {
  const char* export_dir = std::getenv("R1KIT_EXPORT_DIR");
  const fs::path root = export_dir ? fs::path(export_dir) : temp_folder("export");
  at::InferenceMode inference;
  for (const char* name : kTinyModels) {
    // A model that is not the fixture itself: r1kit's random init, saved, reloaded.
    Transformer source = load_pretrained(fixture(name));
    Transformer model = make_random_transformer(source->config(), 42, 0.1);
    const fs::path folder = root / name;
    save_pretrained(model, folder, {.max_shard_bytes = 200'000});
    const auto expected = expected_values(name);
    const at::Tensor tokens = expected.at("tokens_left"), mask = expected.at("mask_left");
    const at::Tensor logits = load_pretrained(folder)->forward(tokens, mask);
    write_safetensors(folder / "expected_logits.safetensors",
                      {{"tokens", tokens}, {"attention_mask", mask}, {"logits", logits}});
    EXPECT_TRUE(logits.isfinite().all().item<bool>());
  }
  // A reward model: right padding with pad_token_id, the score at the last real token.
  Transformer model =
      make_random_transformer(load_pretrained(fixture("tiny-qwen2"))->config(), 43, 0.1);
  ScalarHead head(ScalarHeadKind::kReward, model->config().hidden_size);
  const fs::path folder = root / "tiny-qwen2-reward";
  save_pretrained(model, folder, {.head = head});
  const auto expected = expected_values("tiny-qwen2");
  const at::Tensor tokens = expected.at("tokens_right"), mask = expected.at("mask_right");
  const at::Tensor scores = head->at_last_token(model->forward_hidden(tokens, mask), mask);  // (B)
  write_safetensors(folder / "expected_logits.safetensors",
                    {{"tokens", tokens}, {"attention_mask", mask}, {"scores", scores}});
}

}  // namespace
}  // namespace r1kit
