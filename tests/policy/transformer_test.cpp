// Parity of the transformer with Hugging Face transformers on the tiny fixture
// models (golden values from tools/make_fixtures.py), and of the cached
// generation path with the full forward.
#include "policy/transformer.h"

#include <gtest/gtest.h>

#include "policy/checkpoint.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_expected_values;
using testing::fixture_path;
using testing::kFixtureModels;

using testing::max_difference;

class TransformerParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    model_ = load_pretrained(fixture_path(GetParam()));
    model_->eval();
    expected_ = fixture_expected_values(GetParam());
  }
  Transformer model_{nullptr};
  std::map<std::string, at::Tensor> expected_;
  at::InferenceMode inference_;
};

TEST_P(TransformerParity, LogitsMatchTransformersWithRightPadding) {
  const at::Tensor logits = model_->forward(expected_["tokens_right"], expected_["mask_right"]);
  EXPECT_EQ(logits.scalar_type(), at::kFloat);
  EXPECT_LT(max_difference(logits, expected_["logits_right"], expected_["mask_right"]), 1e-4);
}

TEST_P(TransformerParity, LogitsMatchTransformersWithLeftPadding) {
  const at::Tensor logits = model_->forward(expected_["tokens_left"], expected_["mask_left"]);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());  // padding rows stay finite
  EXPECT_LT(max_difference(logits, expected_["logits_left"], expected_["mask_left"]), 1e-4);
}

TEST_P(TransformerParity, UnpaddedRowTakesTheCausalPathAndMatches) {
  const at::Tensor tokens = expected_["tokens_right"].narrow(0, 0, 1);  // the full-length row
  const at::Tensor mask = expected_["mask_right"].narrow(0, 0, 1);
  ASSERT_TRUE(mask.all().item<bool>());
  const at::Tensor logits = model_->forward(tokens, mask);
  EXPECT_LT(max_difference(logits, expected_["logits_right"].narrow(0, 0, 1), mask), 1e-4);
}

TEST_P(TransformerParity, GreedyContinuationsMatchTransformers) {
  // Both prompts in one batch: prefill with right padding, then decode with the
  // rows at different cache lengths.
  const at::Tensor prompt_0 = expected_["prompt_0"], prompt_1 = expected_["prompt_1"];
  const int64_t new_tokens = expected_["greedy_0"].numel();
  const int64_t width = std::max(prompt_0.numel(), prompt_1.numel());
  at::Tensor tokens = at::zeros({2, width}, at::kLong);
  tokens[0].narrow(0, 0, prompt_0.numel()).copy_(prompt_0);
  tokens[1].narrow(0, 0, prompt_1.numel()).copy_(prompt_1);
  KvCache cache(model_->config(), 2, width + new_tokens);
  const at::Tensor rows = at::arange(2, at::kLong);
  at::Tensor logits =
      model_->forward_cached(tokens, cache, rows, at::tensor({prompt_0.numel(), prompt_1.numel()}),
                             /*last_only=*/true);  // (2, V)
  std::vector<at::Tensor> generated;
  for (int64_t step = 0; step < new_tokens; ++step) {
    const at::Tensor next = logits.argmax(-1);  // (2)
    generated.push_back(next);
    logits = model_->forward_cached(next.unsqueeze(1), cache, rows, at::ones({2}, at::kLong), true);
  }
  const at::Tensor greedy = at::stack(generated, 1);  // (2, new_tokens)
  EXPECT_TRUE(at::equal(greedy[0], expected_["greedy_0"])) << greedy[0] << expected_["greedy_0"];
  EXPECT_TRUE(at::equal(greedy[1], expected_["greedy_1"])) << greedy[1] << expected_["greedy_1"];
  EXPECT_EQ(cache.lengths(),
            (std::vector<int64_t>{prompt_0.numel() + new_tokens, prompt_1.numel() + new_tokens}));
}

TEST_P(TransformerParity, CachedPrefillAndDecodeEqualFullForward) {
  // Rows of lengths 10, 7, 4 (right-padded); prefill 3, 5, 2 tokens, then decode
  // the rest one token at a time with only the unfinished rows in each batch.
  const at::Tensor tokens = expected_["tokens_right"], mask = expected_["mask_right"];
  const at::Tensor full = model_->forward(tokens, mask);  // (3, 10, V)
  const std::vector<int64_t> lengths = {10, 7, 4}, prefill = {3, 5, 2};
  // Cache rows 4, 1, 2: a non-contiguous set exercises the gather path.
  const std::vector<int64_t> cache_rows = {4, 1, 2};
  KvCache cache(model_->config(), 5, 16);
  at::Tensor prefill_tokens = at::zeros({3, 5}, at::kLong);
  for (int b = 0; b < 3; ++b)
    prefill_tokens[b].narrow(0, 0, prefill[b]).copy_(tokens[b].narrow(0, 0, prefill[b]));
  const at::Tensor logits =
      model_->forward_cached(prefill_tokens, cache, at::tensor(cache_rows), at::tensor(prefill),
                             /*last_only=*/false);  // (3, 5, V)
  for (int b = 0; b < 3; ++b) {
    const double difference =
        (logits[b].narrow(0, 0, prefill[b]) - full[b].narrow(0, 0, prefill[b]))
            .abs()
            .max()
            .item<double>();
    EXPECT_LT(difference, 1e-5) << "prefill row " << b;
  }
  for (int64_t step = 0;; ++step) {
    std::vector<int64_t> batch, rows, next;
    for (int b = 0; b < 3; ++b) {
      const int64_t position = prefill[b] + step;
      if (position >= lengths[b]) continue;
      batch.push_back(b);
      rows.push_back(cache_rows[b]);
      next.push_back(tokens[b][position].item<int64_t>());
    }
    if (batch.empty()) break;
    const auto count = static_cast<int64_t>(batch.size());
    const at::Tensor step_logits =
        model_->forward_cached(at::tensor(next).unsqueeze(1), cache, at::tensor(rows),
                               at::ones({count}, at::kLong), true);  // (n, V)
    for (int64_t i = 0; i < count; ++i) {
      const int64_t b = batch[i];
      const double difference =
          (step_logits[i] - full[b][prefill[b] + step]).abs().max().item<double>();
      EXPECT_LT(difference, 1e-5) << "row " << b << " position " << prefill[b] + step;
    }
  }
  EXPECT_EQ(cache.length(4), 10);
  EXPECT_EQ(cache.length(1), 7);
  EXPECT_EQ(cache.length(2), 4);
  EXPECT_EQ(cache.length(0), 0);
}

TEST_P(TransformerParity, CopyRowFansOutOnePrefill) {
  const at::Tensor prompt = expected_["prompt_1"];  // (8)
  const int64_t n = prompt.numel();
  KvCache cache(model_->config(), 4, 16);
  model_->forward_cached(prompt.unsqueeze(0), cache, at::tensor({int64_t{0}}), at::tensor({n}),
                         true);
  cache.copy_row(0, {1, 2, 3});
  EXPECT_EQ(cache.lengths(), (std::vector<int64_t>{n, n, n, n}));
  const at::Tensor next = at::tensor({int64_t{7}, int64_t{100}, int64_t{300}});
  const at::Tensor logits = model_->forward_cached(next.unsqueeze(1), cache,
                                                   at::tensor({int64_t{1}, int64_t{2}, int64_t{3}}),
                                                   at::ones({3}, at::kLong), true);  // (3, V)
  const at::Tensor full_tokens =
      at::cat({prompt.unsqueeze(0).expand({3, n}), next.unsqueeze(1)}, 1);  // (3, n + 1)
  const at::Tensor full = model_->forward(full_tokens, at::ones_like(full_tokens));
  EXPECT_LT((logits - full.select(1, n)).abs().max().item<double>(), 1e-5);
  // Resetting a row frees it: a new sequence there matches a fresh forward.
  cache.reset_row(2);
  const at::Tensor again =
      model_->forward_cached(prompt.narrow(0, 0, 3).unsqueeze(0), cache, at::tensor({int64_t{2}}),
                             at::tensor({int64_t{3}}), false);
  const at::Tensor fresh =
      model_->forward(prompt.narrow(0, 0, 3).unsqueeze(0), at::ones({1, 3}, at::kLong));
  EXPECT_LT((again - fresh).abs().max().item<double>(), 1e-5);
}

TEST_P(TransformerParity, CachedForwardRejectsOverflowAndRepeatedRows) {
  KvCache cache(model_->config(), 2, 4);
  const at::Tensor tokens = at::ones({2, 3}, at::kLong);
  EXPECT_THROW(model_->forward_cached(tokens, cache, at::tensor({int64_t{0}, int64_t{0}}),
                                      at::tensor({3, 3}), true),
               c10::Error);
  model_->forward_cached(tokens, cache, at::tensor({int64_t{0}, int64_t{1}}),
                         at::tensor({int64_t{3}, int64_t{2}}), true);
  EXPECT_THROW(model_->forward_cached(tokens, cache, at::tensor({int64_t{0}, int64_t{1}}),
                                      at::tensor({int64_t{2}, int64_t{2}}), true),
               c10::Error);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, TransformerParity, ::testing::ValuesIn(kFixtureModels),
                         [](const auto& info) { return testing::fixture_test_name(info.param); });

TEST(Transformer, ParameterNamesAreHuggingFaceNames) {
  ModelConfig config = load_pretrained(fixture_path("tiny-qwen2"))->config();
  Transformer model(config);
  const auto parameters = model->named_parameters();
  for (const char* name :
       {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.o_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.norm.weight"}) {
    EXPECT_NE(parameters.find(name), nullptr) << name;
  }
  EXPECT_EQ(parameters.find("model.layers.0.self_attn.o_proj.bias"),
            nullptr);                                     // qwen2: no o_proj bias
  EXPECT_EQ(parameters.find("lm_head.weight"), nullptr);  // tied
}

TEST(Transformer, DecayGroupsSplitEveryParameterOnce) {
  for (const char* name : kFixtureModels) {
    Transformer model = load_pretrained(fixture_path(name));
    const auto decay = model->decay_parameters();
    const auto no_decay = model->no_decay_parameters();
    const int64_t layers = model->config().num_hidden_layers;
    const int64_t biases = model->config().attention_bias ? 3 * layers : 0;
    const int64_t qk_norms = model->config().qk_norm ? 2 * layers : 0;
    EXPECT_EQ(static_cast<int64_t>(no_decay.size()), 2 * layers + 1 + biases + qk_norms) << name;
    EXPECT_EQ(decay.size() + no_decay.size(), model->parameters().size()) << name;
    for (const at::Tensor& tensor : no_decay) EXPECT_EQ(tensor.dim(), 1) << name;
    for (const at::Tensor& tensor : decay) EXPECT_EQ(tensor.dim(), 2) << name;
  }
}

TEST(Transformer, TiedHeadUsesTheEmbedding) {
  Transformer model = load_pretrained(fixture_path("tiny-qwen2"));
  EXPECT_TRUE(model->output_weight().is_same(model->model->embed_tokens->weight));
}

TEST(Transformer, BackwardReachesEveryParameter) {
  Transformer model = load_pretrained(fixture_path("tiny-llama"));
  const auto expected = fixture_expected_values("tiny-llama");
  const at::Tensor logits = model->forward(expected.at("tokens_left"), expected.at("mask_left"));
  logits.logsumexp(-1).mean().backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
  }
}

TEST(Transformer, BFloat16PathStaysCloseToFloat32) {
  // The CUDA dtype, run on CPU: catches dtype mismatches in RoPE, norms and cache.
  at::InferenceMode inference;
  const auto expected = fixture_expected_values("tiny-qwen2");
  Transformer model = load_pretrained(fixture_path("tiny-qwen2"), at::kCPU, at::kBFloat16);
  const at::Tensor tokens = expected.at("tokens_left"), mask = expected.at("mask_left");
  const at::Tensor logits = model->forward(tokens, mask);
  EXPECT_EQ(logits.scalar_type(), at::kFloat);
  const at::Tensor reference = expected.at("logits_left");
  const double scale = reference.abs().max().item<double>();
  EXPECT_LT(max_difference(logits, reference, mask), 0.05 * scale);
  KvCache cache(model->config(), 1, 16, at::TensorOptions().dtype(at::kBFloat16));
  const at::Tensor row = tokens.narrow(0, 0, 1);  // the full-length row
  const at::Tensor cached = model->forward_cached(row, cache, at::tensor({int64_t{0}}),
                                                  at::tensor({row.size(1)}), /*last_only=*/true);
  EXPECT_LT((cached[0] - reference[0][-1]).abs().max().item<double>(), 0.05 * scale);
}

TEST(KvCache, CopyRowChecksItsRows) {
  const ModelConfig config = load_pretrained(fixture_path("tiny-llama"))->config();
  KvCache cache(config, 3, 8);
  EXPECT_EQ(cache.num_layers(), 2);
  EXPECT_EQ(cache.keys(0).sizes(), (std::vector<int64_t>{3, 2, 8, 16}));
  EXPECT_THROW(cache.copy_row(0, {1, 0}), c10::Error);
  EXPECT_THROW(cache.copy_row(0, {3}), c10::Error);
  cache.advance(0, 5);
  cache.copy_row(0, {2});
  EXPECT_EQ(cache.lengths(), (std::vector<int64_t>{5, 0, 5}));
  EXPECT_THROW(cache.advance(2, 4), c10::Error);
  cache.reset();
  EXPECT_EQ(cache.lengths(), (std::vector<int64_t>{0, 0, 0}));
}

}  // namespace
}  // namespace r1kit
