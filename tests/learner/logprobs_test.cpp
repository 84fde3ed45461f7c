// token_logprobs / token_entropy against the direct formulas: log_softmax of
// logits / temperature gathered at the target, entropy -sum p log p.
#include "learner/logprobs.h"

#include <gtest/gtest.h>

#include <cmath>

namespace r1kit {
namespace {

TEST(TokenLogprobs, EqualsLogSoftmaxOfScaledLogitsAtTheTarget) {
  at::manual_seed(3);
  at::Tensor logits = at::randn({2, 3, 7}) * 4.0;
  at::Tensor targets = at::randint(0, 7, {2, 3});
  for (double temperature : {1.0, 0.7, 1.3}) {
    at::Tensor expected =
        (logits / temperature).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
    EXPECT_TRUE(at::allclose(token_logprobs(logits, targets, temperature), expected, 1e-5, 1e-6))
        << temperature;
  }
  // Greedy decoding (temperature 0) reports the unscaled log-probs, as the sampler does.
  EXPECT_TRUE(
      at::equal(token_logprobs(logits, targets, 0.0), token_logprobs(logits, targets, 1.0)));
}

TEST(TokenLogprobs, HandComputedTwoTokenVocabulary) {
  // logits [0, log 3] at T = 1: p = [0.25, 0.75]. At T = 2: [0, log 3 / 2] -> p1 = sqrt 3 / (1 +
  // sqrt 3).
  at::Tensor logits = at::tensor({0.0f, static_cast<float>(std::log(3.0))}).view({1, 1, 2});
  at::Tensor target = at::ones({1, 1}, at::kLong);
  EXPECT_NEAR(token_logprobs(logits, target, 1.0).item<double>(), std::log(0.75), 1e-6);
  EXPECT_NEAR(token_logprobs(logits, target, 2.0).item<double>(),
              std::log(std::sqrt(3.0) / (1 + std::sqrt(3.0))), 1e-6);
  EXPECT_NEAR(token_entropy(logits, 1.0).item<double>(),
              -(0.25 * std::log(0.25) + 0.75 * std::log(0.75)), 1e-6);
}

TEST(TokenEntropy, MatchesMinusSumPLogPAndIsDifferentiable) {
  at::manual_seed(5);
  at::Tensor logits = (at::randn({2, 4, 9}) * 3.0).requires_grad_(true);
  at::Tensor entropy = token_entropy(logits, 0.8);
  at::Tensor log_p = (logits / 0.8).log_softmax(-1);
  at::Tensor expected = -(log_p.exp() * log_p).sum(-1);
  EXPECT_TRUE(at::allclose(entropy, expected, 1e-5, 1e-6));
  entropy.sum().backward();
  EXPECT_TRUE(logits.grad().defined());
  EXPECT_TRUE(logits.grad().isfinite().all().item<bool>());
  // Uniform logits: log V nats.
  EXPECT_NEAR(token_entropy(at::zeros({1, 1, 9}), 1.0).item<double>(), std::log(9.0), 1e-6);
}

}  // namespace
}  // namespace r1kit
