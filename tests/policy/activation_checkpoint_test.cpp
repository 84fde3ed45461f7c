// Activation checkpointing (policy/activation_checkpoint.h) gives the
// gradients of the plain forward: for a block on its own (with dropout, whose
// mask the recomputation draws again), for the padded forward of both fixture
// models, and for the learner's shared-prompt forward.
#include "policy/activation_checkpoint.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "policy/checkpoint.h"
#include "policy/shared_prefix.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

using testing::fixture_path;
using testing::kFixtureModels;

using Gradients = std::map<std::string, at::Tensor>;

Gradients gradients_of(TransformerImpl& model) {
  Gradients gradients;
  for (const auto& item : model.named_parameters()) {
    EXPECT_TRUE(item.value().grad().defined()) << item.key();
    gradients[item.key()] = item.value().grad().clone();
  }
  return gradients;
}

void expect_same_gradients(const Gradients& actual, const Gradients& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, gradient] : expected) {
    const double scale = std::max(gradient.abs().max().item<double>(), 1.0);
    EXPECT_LT((actual.at(name) - gradient).abs().max().item<double>(), 1e-6 * scale) << name;
  }
}

TEST(ActivationCheckpoint, BlockWithDropoutGetsThePlainGradients) {
  const at::Tensor weight = at::randn({8, 8}).requires_grad_(true);
  auto block = [weight](const at::Tensor& x) {
    return at::dropout(at::tanh(at::matmul(x, weight)), 0.5, /*train=*/true);
  };
  const at::Tensor input = at::randn({4, 8});
  const at::Tensor plain_input = input.clone().requires_grad_(true);
  at::manual_seed(11);
  block(plain_input).square().sum().backward();
  const at::Tensor plain_weight_gradient = weight.grad().clone();
  weight.mutable_grad().zero_();

  const at::Tensor checkpointed_input = input.clone().requires_grad_(true);
  at::manual_seed(11);
  const at::Tensor output = checkpointed(block, checkpointed_input, {weight});
  at::randn({100});  // the generator moves on before the backward
  output.square().sum().backward();
  EXPECT_TRUE(at::equal(weight.grad(), plain_weight_gradient));
  EXPECT_TRUE(at::equal(checkpointed_input.grad(), plain_input.grad()));
}

TEST(ActivationCheckpoint, OutsideGradModeIsThePlainBlock) {
  const at::Tensor weight = at::randn({4, 4}).requires_grad_(true);
  at::NoGradGuard no_grad;
  const at::Tensor output = checkpointed(
      [weight](const at::Tensor& x) { return at::matmul(x, weight); }, at::randn({2, 4}), {weight});
  EXPECT_FALSE(output.requires_grad());
}

class CheckpointedModel : public ::testing::TestWithParam<const char*> {};

TEST_P(CheckpointedModel, PaddedForwardGradientsEqualThePlainOnes) {
  const at::Tensor tokens =
      at::tensor({11, 12, 13, 14, 15, 16, 21, 22, 23, 0, 0, 0}, at::kLong).view({2, 6});
  const at::Tensor mask = (tokens != 0).to(at::kLong);
  auto run = [&](bool checkpointing) {
    Transformer model = load_pretrained(fixture_path(GetParam()));
    model->set_gradient_checkpointing(checkpointing);
    const at::Tensor logits = model->forward(tokens, mask);
    (logits.log_softmax(-1).select(-1, 5) * mask).sum().backward();
    return std::pair(logits.detach(), gradients_of(*model));
  };
  const auto [plain_logits, plain] = run(false);
  const auto [checkpointed_logits, checkpointed_gradients] = run(true);
  EXPECT_TRUE(at::equal(checkpointed_logits, plain_logits));
  expect_same_gradients(checkpointed_gradients, plain);
}

TEST_P(CheckpointedModel, SharedPromptForwardGradientsEqualThePlainOnes) {
  const std::vector<std::vector<int64_t>> tokens = {
      {11, 12, 13, 14, 40, 41, 42}, {11, 12, 13, 14, 50, 51}, {21, 22, 60, 61, 62}};
  std::vector<PromptAndCompletion> rows = {{tokens[0], 4}, {tokens[1], 4}, {tokens[2], 2}};
  const SharedPrefixBatch batch = make_shared_prefix_batch(rows);
  auto run = [&](bool checkpointing) {
    Transformer model = load_pretrained(fixture_path(GetParam()));
    model->set_gradient_checkpointing(checkpointing);
    const at::Tensor logits = shared_prefix_logits(*model, batch);
    const at::Tensor logprobs =
        logits.log_softmax(-1).gather(-1, batch.targets.unsqueeze(-1)).squeeze(-1);
    (logprobs * batch.completion_mask).sum().backward();
    return gradients_of(*model);
  };
  expect_same_gradients(run(true), run(false));
}

INSTANTIATE_TEST_SUITE_P(TinyModels, CheckpointedModel, ::testing::ValuesIn(kFixtureModels),
                         [](const auto& info) { return testing::fixture_test_name(info.param); });

}  // namespace
}  // namespace r1kit
