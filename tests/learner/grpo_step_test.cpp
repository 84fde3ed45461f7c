// One GRPO update on a tiny random transformer and a hand-made batch: the
// completions with positive advantage become more likely and those with
// negative advantage less likely, the loss checked end to end through the
// model and the optimiser; the same under bf16 autocast on the CPU, whose loss
// stays close to float32's.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <iostream>

#include "learner/advantages.h"
#include "learner/autocast.h"
#include "learner/grpo_config.h"
#include "learner/logprobs.h"
#include "learner/optimizer.h"
#include "learner/policy_loss.h"
#include "policy/checkpoint.h"
#include "tests/support/tiny_model.h"

namespace r1kit {
namespace {

// Half the width of the shared tiny model, which keeps one step's logprob
// changes and the bf16 error bounds below as measured.
ModelConfig tiny_config() {
  ModelConfig config = testing::tiny_model_config(/*vocab_size=*/32);
  config.hidden_size = 16;
  config.intermediate_size = 32;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  return config;
}

constexpr int64_t kPromptLength = 3;

// Log-probs of tokens[:, 1:] under the model: (B, T - 1).
at::Tensor sequence_logprobs(Transformer& model, const at::Tensor& tokens, double temperature) {
  at::Tensor logits = model->forward(tokens, at::ones_like(tokens));  // (B, T, V)
  const int64_t steps = tokens.size(1) - 1;
  return token_logprobs(logits.narrow(1, 0, steps), tokens.narrow(1, 1, steps), temperature);
}

TEST(GrpoStep, RaisesLogprobsOfPositiveAdvantageSamples) {
  Transformer model = make_random_transformer(tiny_config(), /*seed=*/11);
  // One prompt [1, 2, 3], four completions of 5 tokens (G = 4).
  at::Tensor tokens = at::tensor({1, 2, 3, 5,  9, 14, 20, 7, 1, 2, 3, 11, 4,  27, 8, 16,
                                  1, 2, 3, 30, 6, 12, 19, 2, 1, 2, 3, 17, 25, 10, 3, 22},
                                 at::kLong)
                          .view({4, 8});
  at::Tensor rewards = at::tensor({1.0f, 1.0f, 0.0f, 0.0f});
  GrpoConfig config;
  config.num_generations = 4;
  config.temperature = 0.9;
  config.loss_type = "grpo";
  config.scale_rewards = "none";
  at::Tensor advantages =
      group_advantages(rewards, 4, config.adv_estimator, config.scale_rewards) * 2.0;
  ASSERT_TRUE(at::equal(advantages, at::tensor({1.0f, 1.0f, -1.0f, -1.0f})));

  // Completion tokens are predicted from position kPromptLength - 1 on.
  at::Tensor mask = at::zeros({4, 7});
  mask.narrow(1, kPromptLength - 1, 5).fill_(1.0);

  at::Tensor before;
  {
    at::NoGradGuard no_grad;
    before = (sequence_logprobs(model, tokens, config.temperature) * mask).sum(-1);  // (B)
  }

  OptimizerConfig optimizer_config;
  optimizer_config.learning_rate = 1e-3;
  optimizer_config.lr_scheduler_type = "constant";
  Optimizer optimizer(model->decay_parameters(), model->no_decay_parameters(), optimizer_config, 1);

  PolicyLossInputs inputs;
  inputs.logprobs = sequence_logprobs(model, tokens, config.temperature);
  inputs.old_logprobs = inputs.logprobs.detach();  // on-policy: the rollout's log-probs
  inputs.advantages = advantages;
  inputs.mask = mask;
  PolicyLossOutput out =
      policy_loss(inputs, config, count_loss_normalizer(mask, config.max_completion_length));
  EXPECT_NEAR(out.ratio_mean, 1.0, 1e-6);
  EXPECT_EQ(out.clip_ratio, 0.0);
  out.loss.backward();
  OptimizerStepStats stats = optimizer.step();
  ASSERT_FALSE(stats.skipped);
  EXPECT_GT(stats.grad_norm, 0.0);

  at::Tensor after;
  {
    at::NoGradGuard no_grad;
    after = (sequence_logprobs(model, tokens, config.temperature) * mask).sum(-1);
  }
  at::Tensor change = after - before;
  EXPECT_GT(change[0].item<double>(), 0.0) << "before " << before << " after " << after;
  EXPECT_GT(change[1].item<double>(), 0.0) << "before " << before << " after " << after;
  EXPECT_LT(change[2].item<double>(), 0.0) << "before " << before << " after " << after;
  EXPECT_LT(change[3].item<double>(), 0.0) << "before " << before << " after " << after;
}

// The policy forward under bf16 autocast (trainer.bf16) on the CPU: the
// token log-probs stay within 4e-3 nats of float32's and the loss within 1e-3
// (measured: 3.9e-4 and 5.8e-5, about 10x inside), and the step still raises
// the log-probs of the positive-advantage samples.
TEST(GrpoStep, Bf16AutocastStepIsCloseToFloat32AndStillLearns) {
  at::Tensor tokens = at::tensor({1, 2, 3, 5,  9, 14, 20, 7, 1, 2, 3, 11, 4,  27, 8, 16,
                                  1, 2, 3, 30, 6, 12, 19, 2, 1, 2, 3, 17, 25, 10, 3, 22},
                                 at::kLong)
                          .view({4, 8});
  at::Tensor advantages = at::tensor({1.0f, 1.0f, -1.0f, -1.0f});
  at::Tensor mask = at::zeros({4, 7});
  mask.narrow(1, kPromptLength - 1, 5).fill_(1.0);
  GrpoConfig config;
  config.num_generations = 4;
  config.loss_type = "grpo";
  LossNormalizer normalizer = count_loss_normalizer(mask, config.max_completion_length);

  Transformer reference = make_random_transformer(tiny_config(), /*seed=*/11);
  at::Tensor old_logprobs;
  {
    at::NoGradGuard no_grad;
    old_logprobs =
        sequence_logprobs(reference, tokens, config.temperature);  // (4, 7): the rollout's
  }
  // One step from the same weights, the forward in float32 or under bf16 autocast.
  auto step = [&](bool bf16, at::Tensor* logprobs_out) {
    Transformer model = make_random_transformer(tiny_config(), /*seed=*/11);
    OptimizerConfig optimizer_config;
    optimizer_config.learning_rate = 1e-3;
    optimizer_config.lr_scheduler_type = "constant";
    Optimizer optimizer(model->decay_parameters(), model->no_decay_parameters(), optimizer_config,
                        1);
    at::Tensor logits;
    {
      AutocastGuard autocast(at::kCPU, at::kBFloat16, bf16);
      logits = model->forward(tokens, at::ones_like(tokens));  // (B, T, V)
    }
    PolicyLossInputs inputs;
    inputs.logprobs =
        token_logprobs(logits.narrow(1, 0, 7), tokens.narrow(1, 1, 7), config.temperature);
    inputs.old_logprobs = old_logprobs;
    inputs.advantages = advantages;
    inputs.mask = mask;
    *logprobs_out = inputs.logprobs.detach();
    PolicyLossOutput out = policy_loss(inputs, config, normalizer);
    out.loss.backward();
    EXPECT_FALSE(optimizer.step().skipped);
    at::NoGradGuard no_grad;
    at::Tensor after =
        (sequence_logprobs(model, tokens, config.temperature) * mask).sum(-1);  // (B)
    return std::pair{out.loss.item<double>(), after};
  };
  at::Tensor logprobs32, logprobs16;
  auto [loss32, after32] = step(false, &logprobs32);
  auto [loss16, after16] = step(true, &logprobs16);
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU)) << "the guard left autocast on";
  const double logprob_error = (logprobs16 - logprobs32).abs().max().item<double>();
  EXPECT_GT(logprob_error, 0.0) << "autocast changed nothing: is it on?";
  EXPECT_LT(logprob_error, 4e-3);
  EXPECT_NEAR(loss16, loss32, 1e-3);
  at::Tensor before = (old_logprobs * mask).sum(-1);  // (B)
  at::Tensor change = after16 - before;
  EXPECT_GT(change[0].item<double>(), 0.0) << change;
  EXPECT_GT(change[1].item<double>(), 0.0) << change;
  EXPECT_LT(change[2].item<double>(), 0.0) << change;
  EXPECT_LT(change[3].item<double>(), 0.0) << change;
  std::cout << "bf16 autocast vs float32: max log-prob difference " << logprob_error << ", loss "
            << loss16 << " vs " << loss32 << "\n";
}

}  // namespace
}  // namespace r1kit
