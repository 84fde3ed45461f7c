// What Qwen3 adds to the decoder: q_norm and k_norm (an RMSNorm over each head
// of q and k, before RoPE) exist exactly when the config says so, change the
// numbers, hold up in bfloat16 and in the shared-prompt learner forward, and a
// Qwen3 reward model is written as transformers' Qwen3ForSequenceClassification.
// Parity with transformers runs in the fixture-parametrised suites
// (transformer_test.cpp, shared_prefix_test.cpp, checkpoint_test.cpp) over
// tests/fixtures/tiny-qwen3 and tiny-qwen3-untied from tools/make_fixtures.py.
#include <gtest/gtest.h>

#include "common/config.h"
#include "policy/checkpoint.h"
#include "policy/shared_prefix.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_expected_values;
using testing::fixture_path;
using testing::kFixtureModels;

using testing::max_difference;

TEST(Qwen3, HeadNormsAreParametersOnlyWhereTheConfigSaysSo) {
  for (const char* name : kFixtureModels) {
    Transformer model = load_pretrained(fixture_path(name));
    const auto parameters = model->named_parameters();
    const bool qk_norm = model->config().qk_norm;
    for (int64_t layer = 0; layer < model->config().num_hidden_layers; ++layer) {
      for (const char* norm : {"q_norm", "k_norm"}) {
        const std::string key =
            "model.layers." + std::to_string(layer) + ".self_attn." + norm + ".weight";
        const at::Tensor* weight = parameters.find(key);
        ASSERT_EQ(weight != nullptr, qk_norm) << name << " " << key;
        if (weight) EXPECT_EQ(weight->sizes(), (std::vector<int64_t>{32})) << key;  // (D)
      }
    }
  }
  EXPECT_TRUE(load_pretrained(fixture_path("tiny-qwen3"))->config().qk_norm);
}

TEST(Qwen3, HeadNormWeightsMoveTheLogits) {
  at::InferenceMode inference;
  const auto expected = fixture_expected_values("tiny-qwen3");
  const at::Tensor tokens = expected.at("tokens_right"), mask = expected.at("mask_right");
  for (const char* norm : {"q_norm", "k_norm"}) {
    Transformer model = load_pretrained(fixture_path("tiny-qwen3"));
    EXPECT_LT(max_difference(model->forward(tokens, mask), expected.at("logits_right"), mask),
              1e-4);
    for (const auto& item : model->named_parameters())
      if (item.key().find(norm) != std::string::npos) item.value().fill_(1.0);
    EXPECT_GT(max_difference(model->forward(tokens, mask), expected.at("logits_right"), mask), 1e-3)
        << norm << " weights are not used";
  }
}

TEST(Qwen3, BFloat16PathStaysCloseToFloat32) {
  // The CUDA dtype, run on CPU: the head norms normalise in float32 and scale in bfloat16.
  at::InferenceMode inference;
  for (const char* name : {"tiny-qwen3", "tiny-qwen3-untied"}) {
    const auto expected = fixture_expected_values(name);
    Transformer model = load_pretrained(fixture_path(name), at::kCPU, at::kBFloat16);
    const at::Tensor tokens = expected.at("tokens_left"), mask = expected.at("mask_left");
    const at::Tensor reference = expected.at("logits_left");
    const double scale = reference.abs().max().item<double>();
    EXPECT_LT(max_difference(model->forward(tokens, mask), reference, mask), 0.05 * scale) << name;
    KvCache cache(model->config(), 1, 16, at::TensorOptions().dtype(at::kBFloat16));
    const at::Tensor row = tokens.narrow(0, 0, 1);  // the full-length row
    const at::Tensor cached = model->forward_cached(row, cache, at::tensor({int64_t{0}}),
                                                    at::tensor({row.size(1)}), /*last_only=*/true);
    EXPECT_LT((cached[0] - reference[0][-1]).abs().max().item<double>(), 0.05 * scale) << name;
  }
}

TEST(Qwen3, SharedPrefixInBFloat16ReachesTheHeadNorms) {
  // bfloat16 takes the plain expressions instead of the fused float32 kernels.
  Transformer model = load_pretrained(fixture_path("tiny-qwen3"), at::kCPU, at::kBFloat16);
  const std::vector<int64_t> first = {11, 12, 13, 14, 40, 41, 42},
                             second = {11, 12, 13, 14, 50, 51};
  const SharedPrefixBatch batch = make_shared_prefix_batch({{first, 4}, {second, 4}});
  const at::Tensor shared = shared_prefix_logits(*model, batch);  // (2, 3, V)
  at::Tensor padded;
  {
    at::NoGradGuard no_grad;
    const at::Tensor tokens =
        at::tensor({11, 12, 13, 14, 40, 41, 42, 11, 12, 13, 14, 50, 51, 0}, at::kLong).view({2, 7});
    const at::Tensor mask = (tokens != 0).to(at::kLong);
    padded = model->forward(tokens, mask).narrow(1, 3, 3);  // the logits at the targets
  }
  const at::Tensor real = batch.completion_mask.to(at::kBool);
  const double scale = padded.abs().max().item<double>();
  EXPECT_LT((shared.detach() - padded).abs().index({real}).max().item<double>(), 0.05 * scale);
  shared.logsumexp(-1).index({real}).sum().backward();
  for (const auto& item : model->named_parameters()) {
    if (item.key().find("_norm.") == std::string::npos) continue;
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
    EXPECT_GT(item.value().grad().abs().max().item<double>(), 0.0) << item.key();
  }
}

TEST(Qwen3, RewardModelIsWrittenAsQwen3ForSequenceClassification) {
  PretrainedWithHead reward =
      load_pretrained_with_head(fixture_path("tiny-qwen3-untied"), ScalarHeadKind::kReward);
  const testing::TempFolder temp;
  save_pretrained(reward.model, temp.path(), {.head = reward.head});
  const nlohmann::json config = read_json_file((temp.path() / "config.json").string());
  EXPECT_EQ(config["architectures"][0], "Qwen3ForSequenceClassification");
  EXPECT_EQ(config["model_type"], "qwen3");
  PretrainedWithHead loaded = load_pretrained_with_head(temp.path(), ScalarHeadKind::kReward);
  EXPECT_FALSE(loaded.head_is_new);
  EXPECT_TRUE(loaded.model->config().qk_norm);
}

}  // namespace
}  // namespace r1kit
