// Log-probs, entropies and the LM loss from hidden states in logit blocks
// (learner/hidden_logprobs.h, lm_loss_from_hidden) against the plain path
// that materialises the full logits: equal values and equal gradients for the
// hidden states and the output weight, whatever the blocking.
#include "learner/hidden_logprobs.h"

#include <gtest/gtest.h>

#include "learner/lm_loss.h"
#include "learner/logprobs.h"

namespace r1kit {
namespace {

struct Problem {
  at::Tensor hidden;   // (B, T, H), requires grad
  at::Tensor weight;   // (V, H), requires grad
  at::Tensor targets;  // (B, T)
};

Problem random_problem(int64_t vocabulary) {
  at::manual_seed(7);
  Problem problem;
  problem.hidden = (at::randn({3, 5, 16}) * 2).requires_grad_(true);
  problem.weight = at::randn({vocabulary, 16}).requires_grad_(true);
  problem.targets = at::randint(vocabulary, {3, 5}, at::kLong);
  return problem;
}

// A loss that mixes both outputs with unequal weights per token.
at::Tensor mixed_loss(const at::Tensor& logprobs, const at::Tensor& entropy) {
  const at::Tensor token_weights = at::linspace(-1.0, 2.0, logprobs.numel()).view(logprobs.sizes());
  return (logprobs * token_weights).sum() + 0.3 * (entropy * token_weights.flip(0)).sum();
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double tolerance) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(at::allclose(actual, expected, tolerance, tolerance))
      << "largest difference " << (actual - expected).abs().max().item<double>();
}

class HiddenLogprobsBlocking : public ::testing::TestWithParam<int64_t> {};

TEST_P(HiddenLogprobsBlocking, ValuesAndGradientsEqualTheFullLogits) {
  const int64_t block_values = GetParam();
  for (double temperature : {1.0, 0.7, 0.0}) {
    Problem plain = random_problem(50);
    const at::Tensor logits = at::matmul(plain.hidden, plain.weight.t());
    const at::Tensor expected_logprobs = token_logprobs(logits, plain.targets, temperature);
    const at::Tensor expected_entropy = token_entropy(logits, temperature);
    mixed_loss(expected_logprobs, expected_entropy).backward();

    Problem blocked = random_problem(50);
    HiddenLogprobs actual = hidden_logprobs(blocked.hidden, blocked.weight, blocked.targets,
                                            temperature, true, std::nullopt, block_values);
    expect_close(actual.logprobs, expected_logprobs, 1e-5);
    expect_close(actual.entropy, expected_entropy, 1e-5);
    mixed_loss(actual.logprobs, actual.entropy).backward();
    expect_close(blocked.hidden.grad(), plain.hidden.grad(), 1e-4);
    expect_close(blocked.weight.grad(), plain.weight.grad(), 1e-4);
  }
}

// One block for everything, token blocks over whole vocabularies, and blocks
// smaller than a vocabulary (online logsumexp across vocabulary slices).
INSTANTIATE_TEST_SUITE_P(Blockings, HiddenLogprobsBlocking,
                         ::testing::Values(kLogitBlockValues, 100, 7, 1));

TEST(HiddenLogprobs, LogprobsAloneLeaveTheEntropyOutOfTheGradient) {
  Problem plain = random_problem(30);
  token_logprobs(at::matmul(plain.hidden, plain.weight.t()), plain.targets, 1.0).sum().backward();
  Problem blocked = random_problem(30);
  HiddenLogprobs actual =
      hidden_logprobs(blocked.hidden, blocked.weight, blocked.targets, 1.0, false, std::nullopt, 8);
  EXPECT_FALSE(actual.entropy.defined());
  actual.logprobs.sum().backward();
  expect_close(blocked.hidden.grad(), plain.hidden.grad(), 1e-4);
  expect_close(blocked.weight.grad(), plain.weight.grad(), 1e-4);
}

TEST(HiddenLogprobs, FrozenWeightGetsNoGradient) {
  Problem problem = random_problem(30);
  problem.weight.requires_grad_(false);
  hidden_logprobs(problem.hidden, problem.weight, problem.targets, 1.0, false)
      .logprobs.sum()
      .backward();
  EXPECT_TRUE(problem.hidden.grad().defined());
  EXPECT_FALSE(problem.weight.grad().defined());
}

TEST(HiddenLogprobs, BfloatMatmulsStayCloseToFloat) {
  Problem problem = random_problem(40);
  const at::Tensor exact =
      hidden_logprobs(problem.hidden, problem.weight, problem.targets, 1.0, false).logprobs;
  const at::Tensor low = hidden_logprobs(problem.hidden, problem.weight, problem.targets, 1.0,
                                         false, at::kBFloat16, 64)
                             .logprobs;
  EXPECT_EQ(low.scalar_type(), at::kFloat);
  EXPECT_LT((low - exact).abs().max().item<double>(), 0.5);
  EXPECT_GT((low - exact).abs().max().item<double>(), 0.0);  // the matmuls did run in bfloat16
}

TEST(HiddenLogprobs, RejectsMismatchedShapes) {
  Problem problem = random_problem(20);
  EXPECT_THROW(
      hidden_logprobs(problem.hidden, problem.weight.narrow(1, 0, 8), problem.targets, 1.0, false),
      c10::Error);
  EXPECT_THROW(
      hidden_logprobs(problem.hidden, problem.weight, problem.targets.narrow(1, 0, 2), 1.0, false),
      c10::Error);
}

TEST(LmLossFromHidden, EqualsTheLossOfTheFullLogits) {
  Problem plain = random_problem(50);
  const at::Tensor weights = at::tensor({1, 1, 0, 1, 0}, at::kLong).repeat({3, 1});
  LmLoss expected = lm_loss(at::matmul(plain.hidden, plain.weight.t()), plain.targets, weights);
  expected.loss.backward();
  Problem blocked = random_problem(50);
  LmLoss actual = lm_loss_from_hidden(blocked.hidden, blocked.weight, blocked.targets, weights);
  actual.loss.backward();
  EXPECT_EQ(actual.tokens, expected.tokens);
  expect_close(actual.sum, expected.sum, 1e-4);
  expect_close(blocked.hidden.grad(), plain.hidden.grad(), 1e-5);
  expect_close(blocked.weight.grad(), plain.weight.grad(), 1e-5);
}

}  // namespace
}  // namespace r1kit
