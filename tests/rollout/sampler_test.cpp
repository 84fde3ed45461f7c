// The sampling filters of the default processor chain on hand-made
// distributions, greedy and top_k = 1, and the sampled frequencies against
// softmax(logits / T) by a chi-square bound.
#include "rollout/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace r1kit {
namespace {

at::Tensor logits_of(std::vector<float> values) { return at::tensor(values).view({1, -1}); }

// The default chain at temperature 1: the top_k, top_p and min_p filters.
at::Tensor apply_filters(const at::Tensor& logits, const SamplingParams& params) {
  return LogitsProcessorChain(params).apply(logits, {});
}

std::vector<bool> kept(const at::Tensor& filtered) {
  std::vector<bool> out;
  for (int64_t i = 0; i < filtered.size(-1); ++i)
    out.push_back(std::isfinite(filtered[0][i].item<float>()));
  return out;
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplingParams params;
  params.top_k = 2;
  auto filtered = apply_filters(logits_of({1.0f, 3.0f, 2.0f, 0.5f}), params);
  EXPECT_EQ(kept(filtered), (std::vector<bool>{false, true, true, false}));
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  // probabilities 0.5, 0.3, 0.15, 0.05
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams params;
  params.top_p = 0.8;  // 0.5 + 0.3 reaches 0.8: the third is not needed
  EXPECT_EQ(kept(apply_filters(logits_of(logits), params)),
            (std::vector<bool>{true, true, false, false}));
  params.top_p = 0.81;
  EXPECT_EQ(kept(apply_filters(logits_of(logits), params)),
            (std::vector<bool>{true, true, true, false}));
  params.top_p = 0.1;  // the most likely token always stays
  EXPECT_EQ(kept(apply_filters(logits_of(logits), params)),
            (std::vector<bool>{true, false, false, false}));
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMax) {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams params;
  params.min_p = 0.2;  // threshold 0.1
  EXPECT_EQ(kept(apply_filters(logits_of(logits), params)),
            (std::vector<bool>{true, true, true, false}));
  params.min_p = 0.7;  // threshold 0.35
  EXPECT_EQ(kept(apply_filters(logits_of(logits), params)),
            (std::vector<bool>{true, false, false, false}));
}

TEST(Sampler, GreedyAndTopKOneAgree) {
  at::manual_seed(3);
  at::Tensor logits = at::randn({16, 50});
  SamplingParams greedy;
  greedy.temperature = 0;
  SamplingParams top1;
  top1.top_k = 1;
  at::Tensor uniforms = at::rand({16}, at::kDouble);
  auto a = sample_tokens(logits, greedy, uniforms);
  auto b = sample_tokens(logits, top1, uniforms);
  EXPECT_TRUE(at::equal(a.tokens, logits.argmax(-1)));
  EXPECT_TRUE(at::equal(a.tokens, b.tokens));
  EXPECT_TRUE(at::allclose(a.logprobs,
                           logits.log_softmax(-1).gather(-1, a.tokens.unsqueeze(-1)).squeeze(-1)));
}

// The fast greedy path reads bfloat16 logits as they are (the bf16 decode plan
// returns them) and float32 rows of a vocabulary that is not a multiple of 16:
// the same tokens and logprobs as ATen's argmax and log_softmax on the
// float32 values, ties going to the first index.
TEST(Sampler, GreedyOnBfloat16AndRaggedVocabMatchesArgmaxAndLogSoftmax) {
  at::manual_seed(5);
  for (int64_t vocab : {8192, 103, 7}) {
    at::Tensor logits = at::randn({9, vocab}) * 4;
    logits[2].fill_(1.5);  // all tied: token 0
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor typed = logits.to(dtype);
      at::Tensor wide = typed.to(at::kFloat);
      SamplingParams greedy;
      greedy.temperature = 0;
      auto sampled = sample_tokens(typed, greedy, at::rand({9}, at::kDouble));
      EXPECT_TRUE(at::equal(sampled.tokens, wide.argmax(-1))) << vocab << " " << dtype;
      EXPECT_EQ(sampled.tokens[2].item<int64_t>(), 0);
      at::Tensor expected =
          wide.log_softmax(-1).gather(-1, sampled.tokens.unsqueeze(-1)).squeeze(-1);
      EXPECT_LT((sampled.logprobs - expected).abs().max().item<double>(), 1e-5)
          << vocab << " " << dtype;
      EXPECT_EQ(sampled.logprobs.scalar_type(), at::kFloat);
    }
  }
}

TEST(Sampler, LogprobIsTakenAfterTemperatureBeforeFilters) {
  at::Tensor logits = logits_of({2.0f, 1.0f, 0.0f, -1.0f});
  SamplingParams params;
  params.temperature = 0.5;
  params.top_k = 2;
  auto sampled = sample_tokens(logits, params, at::tensor({0.3}, at::kDouble));
  int64_t token = sampled.tokens[0].item<int64_t>();
  float expected = (logits / 0.5).log_softmax(-1)[0][token].item<float>();
  EXPECT_NEAR(sampled.logprobs[0].item<float>(), expected, 1e-6);
}

TEST(Sampler, TenThousandDrawsMatchSoftmaxByChiSquare) {
  const std::vector<float> values = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, -1.0f};
  const int64_t draws = 10000;
  const double temperature = 0.8;
  at::Tensor logits = logits_of(values).expand({draws, -1}).contiguous();
  SamplingParams params;
  params.temperature = temperature;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  at::Tensor uniforms = at::empty({draws}, at::kDouble);
  for (int64_t i = 0; i < draws; ++i) uniforms[i] = uniform(rng);
  at::Tensor tokens = sample_tokens(logits, params, uniforms).tokens;
  at::Tensor counts = at::bincount(tokens, {}, static_cast<int64_t>(values.size())).to(at::kDouble);
  at::Tensor expected = (logits_of(values).to(at::kDouble) / temperature).softmax(-1)[0] * draws;
  double chi_square = ((counts - expected).pow(2) / expected).sum().item<double>();
  // 5 degrees of freedom: P(chi2 > 20.5) = 0.001.
  EXPECT_LT(chi_square, 20.5) << counts << expected;
}

TEST(Sampler, ZeroProbabilityTokensAreNeverDrawn) {
  SamplingParams params;
  params.top_k = 2;
  at::Tensor logits = logits_of({0.0f, 5.0f, 4.0f, 0.0f}).expand({1000, -1}).contiguous();
  at::Tensor uniforms = at::linspace(0.0, 0.999999, 1000, at::kDouble);
  at::Tensor tokens = sample_tokens(logits, params, uniforms).tokens;
  EXPECT_TRUE(((tokens == 1) | (tokens == 2)).all().item<bool>());
}

}  // namespace
}  // namespace r1kit
