// The policy and value losses against hand computations on small tensors:
// clipping (clip-higher, dual clip) and its metrics, the three aggregations with
// a global normaliser, micro-batches adding up to the whole batch, GSPO's
// sequence ratio, the KL estimators, the entropy bonus and the clipped value loss.
#include "learner/policy_loss.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace r1kit {
namespace {

// logp = old + log(ratios): the ratios are exact by construction.
PolicyLossInputs inputs_with_ratios(const std::vector<std::vector<float>>& ratios,
                                    std::vector<float> advantages) {
  const int64_t rows = static_cast<int64_t>(ratios.size());
  const int64_t cols = static_cast<int64_t>(ratios[0].size());
  std::vector<float> flat;
  for (const auto& row : ratios) flat.insert(flat.end(), row.begin(), row.end());
  PolicyLossInputs in;
  in.old_logprobs = at::full({rows, cols}, -1.0f);
  in.logprobs =
      (in.old_logprobs + at::tensor(flat).view({rows, cols}).log()).detach().requires_grad_(true);
  in.advantages = at::tensor(advantages);
  in.mask = at::ones({rows, cols});
  return in;
}

GrpoConfig clip_higher_config() {
  GrpoConfig config;
  config.epsilon = 0.2;
  config.epsilon_high = 0.28;
  config.clip_ratio_c = 3.0;
  config.loss_type = "dapo";
  return config;
}

TEST(PolicyLoss, ClipHigherAndDualClip) {
  // Row 0, A = +1, ratios [1.1, 1.4]: -1.1 (inside), -min(1.4, 1.28) = -1.28 (high clip).
  // Row 1, A = -1, ratios [0.7, 4.0]: max(0.7, 0.8) = 0.8 (low clip);
  //   max(4.0, 1.28) = 4.0, dual clip min(4.0, 3.0) = 3.0.
  // token_mean over 4 tokens: (-1.1 - 1.28 + 0.8 + 3.0) / 4 = 0.355.
  PolicyLossInputs in = inputs_with_ratios({{1.1f, 1.4f}, {0.7f, 4.0f}}, {1.0f, -1.0f});
  GrpoConfig config = clip_higher_config();
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  EXPECT_NEAR(out.loss.item<double>(), 0.355, 1e-6);
  EXPECT_DOUBLE_EQ(out.clip_ratio_low, 0.25);
  EXPECT_DOUBLE_EQ(out.clip_ratio_high, 0.25);
  EXPECT_DOUBLE_EQ(out.clip_ratio, 0.5);
  EXPECT_DOUBLE_EQ(out.dual_clip_ratio, 0.25);
  EXPECT_NEAR(out.ratio_mean, (1.1 + 1.4 + 0.7 + 4.0) / 4, 1e-6);
  EXPECT_DOUBLE_EQ(out.sums.tokens, 4.0);
  // Only the unclipped token moves: d(-A r)/d logp = -A r = -1.1, over 4 tokens.
  out.loss.backward();
  at::Tensor grad = in.logprobs.grad();
  EXPECT_NEAR(grad[0][0].item<double>(), -1.1 / 4, 1e-6);
  EXPECT_EQ(grad[0][1].item<double>(), 0.0);
  EXPECT_EQ(grad[1][0].item<double>(), 0.0);
  EXPECT_EQ(grad[1][1].item<double>(), 0.0);
}

TEST(PolicyLoss, SymmetricClipAndNoDualClip) {
  PolicyLossInputs in = inputs_with_ratios({{1.1f, 1.4f}, {0.7f, 4.0f}}, {1.0f, -1.0f});
  GrpoConfig config = clip_higher_config();
  config.epsilon_high = -1.0;  // = epsilon
  config.clip_ratio_c = 0.0;
  // (-1.1 - 1.2 + 0.8 + 4.0) / 4 = 0.625
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  EXPECT_NEAR(out.loss.item<double>(), 0.625, 1e-6);
  EXPECT_DOUBLE_EQ(out.dual_clip_ratio, 0.0);
  // The 4.0 token is no longer bounded: its gradient is -A r = 4.0 / 4.
  out.loss.backward();
  EXPECT_NEAR(in.logprobs.grad()[1][1].item<double>(), 1.0, 1e-6);
}

TEST(PolicyLoss, AggregationsUseTheGlobalNormalizer) {
  at::Tensor loss = at::tensor({1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}).view({2, 3});
  at::Tensor mask = at::tensor({1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f}).view({2, 3});
  LossNormalizer local = count_loss_normalizer(mask, 4);
  EXPECT_EQ(local.tokens, 4.0);
  EXPECT_EQ(local.sequences, 2.0);
  EXPECT_NEAR(aggregate_loss(loss, mask, "token_mean", local).item<double>(), 10.0 / 4, 1e-6);
  EXPECT_NEAR(aggregate_loss(loss, mask, "seq_mean_token_mean", local).item<double>(),
              (6.0 / 3 + 4.0 / 1) / 2, 1e-6);
  EXPECT_NEAR(aggregate_loss(loss, mask, "seq_mean_token_sum_norm", local).item<double>(),
              10.0 / (2 * 4), 1e-6);
  // A normaliser counted over a larger (global) batch divides by its counts.
  LossNormalizer global{10.0, 5.0, 4};
  EXPECT_NEAR(aggregate_loss(loss, mask, "token_mean", global).item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(aggregate_loss(loss, mask, "seq_mean_token_mean", global).item<double>(), 6.0 / 5,
              1e-6);
  EXPECT_NEAR(aggregate_loss(loss, mask, "seq_mean_token_sum_norm", global).item<double>(),
              10.0 / 20, 1e-6);
  EXPECT_THROW(aggregate_loss(loss, mask, "sum", local), Error);
}

TEST(PolicyLoss, MicroBatchesAddUpToTheWholeBatch) {
  at::manual_seed(7);
  const int64_t rows = 6, cols = 5;
  at::Tensor old_logprobs = -at::rand({rows, cols}) * 3.0;
  at::Tensor start = old_logprobs + 0.3 * at::randn({rows, cols});
  at::Tensor ref = old_logprobs + 0.2 * at::randn({rows, cols});
  at::Tensor entropy_values = at::rand({rows, cols});
  at::Tensor advantages = at::randn({rows});
  at::Tensor mask = (at::rand({rows, cols}) > 0.3).to(at::kFloat);
  mask.select(1, 0).fill_(1.0);
  mask[4].zero_();  // a fully masked row (a truncated completion) still counts as a sequence

  for (std::string loss_type : {"dapo", "grpo", "dr_grpo"}) {
    for (std::string level : {"token", "sequence"}) {
      GrpoConfig config;
      config.loss_type = loss_type;
      config.importance_sampling_level = level;
      config.beta = 0.04;
      config.entropy_coeff = 0.01;
      config.epsilon_high = 0.28;

      auto run = [&](int64_t begin, int64_t count, const LossNormalizer& normalizer,
                     at::Tensor& leaf) {
        PolicyLossInputs in;
        in.logprobs = leaf.narrow(0, begin, count);
        in.old_logprobs = old_logprobs.narrow(0, begin, count);
        in.ref_logprobs = ref.narrow(0, begin, count);
        in.advantages = advantages.narrow(0, begin, count);
        in.mask = mask.narrow(0, begin, count);
        in.entropy = entropy_values.narrow(0, begin, count);
        return policy_loss(in, config, normalizer);
      };
      LossNormalizer whole = count_loss_normalizer(mask, cols);
      LossNormalizer summed = count_loss_normalizer(mask.narrow(0, 0, 2), cols);
      summed += count_loss_normalizer(mask.narrow(0, 2, 4), cols);
      EXPECT_EQ(summed.tokens, whole.tokens);
      EXPECT_EQ(summed.sequences, whole.sequences);

      at::Tensor one = start.clone().requires_grad_(true);
      PolicyLossOutput full = run(0, rows, whole, one);
      full.loss.backward();

      at::Tensor two = start.clone().requires_grad_(true);
      PolicyLossOutput first = run(0, 2, summed, two);
      PolicyLossOutput second = run(2, 4, summed, two);
      (first.loss + second.loss).backward();

      SCOPED_TRACE(loss_type + " / " + level);
      EXPECT_NEAR((first.loss + second.loss).item<double>(), full.loss.item<double>(), 1e-6);
      EXPECT_TRUE(at::allclose(one.grad(), two.grad(), 1e-5, 1e-7));
      PolicyLossSums sums = first.sums;
      sums += second.sums;
      EXPECT_NEAR(sums.mean(sums.kl), full.kl_mean, 1e-9);
      EXPECT_NEAR(sums.mean(sums.clipped), full.clip_ratio, 1e-9);
      EXPECT_NEAR(sums.mean(sums.entropy), full.entropy_mean, 1e-9);
    }
  }
}

TEST(PolicyLoss, GspoUsesTheSequenceRatio) {
  // Ratios [1.2, 0.8]: s = exp(mean log) = sqrt(0.96), A = +1, inside the clip range.
  PolicyLossInputs in = inputs_with_ratios({{1.2f, 0.8f}}, {1.0f});
  GrpoConfig config;
  config.importance_sampling_level = "sequence";
  config.loss_type = "dapo";
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  const double s = std::sqrt(0.96);
  EXPECT_NEAR(out.loss.item<double>(), -s, 1e-6);
  EXPECT_NEAR(out.ratio_mean, s, 1e-6);
  out.loss.backward();
  // TRL's form -exp(mean_t(logp - old)) broadcast to both tokens, token_mean:
  // d/d logp_t = -s / 2 for each token; the stop-gradient form gives the same.
  at::Tensor trl_leaf = in.logprobs.detach().clone().requires_grad_(true);
  at::Tensor trl_loss =
      -((trl_leaf - in.old_logprobs).mean(-1, true).exp().expand({1, 2})).sum() / 2.0;
  trl_loss.backward();
  EXPECT_NEAR(in.logprobs.grad()[0][0].item<double>(), -s / 2, 1e-6);
  EXPECT_TRUE(at::allclose(in.logprobs.grad(), trl_leaf.grad(), 1e-6, 1e-7));
}

TEST(PolicyLoss, GspoClipsWholeSequences) {
  // Per-token ratios [1.0, 1.69] would clip one token; the sequence ratio
  // sqrt(1.69) = 1.3 > 1.28 clips both, and neither gets a gradient.
  PolicyLossInputs in = inputs_with_ratios({{1.0f, 1.69f}}, {1.0f});
  GrpoConfig config = clip_higher_config();
  config.importance_sampling_level = "sequence";
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  EXPECT_NEAR(out.loss.item<double>(), -1.28, 1e-6);
  EXPECT_DOUBLE_EQ(out.clip_ratio_high, 1.0);
  out.loss.backward();
  EXPECT_EQ(in.logprobs.grad().abs().sum().item<double>(), 0.0);
}

TEST(PolicyLoss, KlEstimators) {
  // pi = 0.5, ref = 0.25 at the token: d = log(ref / pi) = -log 2.
  at::Tensor logp = at::full({1, 1}, std::log(0.5f));
  at::Tensor ref = at::full({1, 1}, std::log(0.25f));
  const double d = -std::log(2.0);
  EXPECT_NEAR(kl_penalty(logp, ref, "k1").item<double>(), -d, 1e-6);
  EXPECT_NEAR(kl_penalty(logp, ref, "k2").item<double>(), 0.5 * d * d, 1e-6);
  EXPECT_NEAR(kl_penalty(logp, ref, "k3").item<double>(), std::exp(d) - d - 1.0, 1e-6);
  EXPECT_THROW(kl_penalty(logp, ref, "k4"), Error);
  // k3 is never negative, k1 can be.
  EXPECT_LT(kl_penalty(ref, logp, "k1").item<double>(), 0.0);
  EXPECT_GE(kl_penalty(ref, logp, "k3").item<double>(), 0.0);
}

TEST(PolicyLoss, KlPenaltyEntersTheLossWithBeta) {
  for (std::string estimator : {"k1", "k2", "k3"}) {
    PolicyLossInputs in = inputs_with_ratios({{1.0f, 1.0f}}, {0.0f});  // no policy-gradient term
    in.ref_logprobs = in.old_logprobs + std::log(0.5f);                // d = -log 2 at every token
    GrpoConfig config;
    config.beta = 0.1;
    config.kl_loss_type = estimator;
    PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
    const double d = -std::log(2.0);
    const double kl = estimator == "k1"   ? -d
                      : estimator == "k2" ? 0.5 * d * d
                                          : std::exp(d) - d - 1.0;
    SCOPED_TRACE(estimator);
    EXPECT_NEAR(out.loss.item<double>(), 0.1 * kl, 1e-6);
    EXPECT_NEAR(out.kl_mean, kl, 1e-6);
    // d kl / d logp: k1 = 1, k2 = -d, k3 = 1 - exp(d); each times beta / 2 tokens.
    const double slope = estimator == "k1" ? 1.0 : estimator == "k2" ? -d : 1.0 - std::exp(d);
    out.loss.backward();
    EXPECT_NEAR(in.logprobs.grad()[0][0].item<double>(), 0.1 * slope / 2, 1e-6);
  }
  // beta > 0 needs the reference log-probs.
  PolicyLossInputs in = inputs_with_ratios({{1.0f}}, {1.0f});
  GrpoConfig config;
  config.beta = 0.1;
  EXPECT_THROW(policy_loss(in, config, count_loss_normalizer(in.mask, 1)), c10::Error);
}

TEST(PolicyLoss, EntropyBonusLowersTheLoss) {
  PolicyLossInputs in = inputs_with_ratios({{1.0f, 1.0f}}, {0.0f});
  in.entropy = at::tensor({1.0f, 2.0f}).view({1, 2}).requires_grad_(true);
  GrpoConfig config;
  config.entropy_coeff = 0.01;
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  EXPECT_NEAR(out.loss.item<double>(), -0.01 * 1.5, 1e-7);
  EXPECT_NEAR(out.entropy_mean, 1.5, 1e-7);
  out.loss.backward();
  EXPECT_NEAR(in.entropy.grad()[0][1].item<double>(), -0.01 / 2, 1e-8);
}

TEST(PolicyLoss, PerTokenAdvantagesAndMaskedTokens) {
  // GAE-style (B, T) advantages; the masked second token contributes nothing.
  PolicyLossInputs in = inputs_with_ratios({{1.0f, 1.0f, 1.0f}}, {0.0f});
  in.advantages = at::tensor({2.0f, 5.0f, -1.0f}).view({1, 3});
  in.mask = at::tensor({1.0f, 0.0f, 1.0f}).view({1, 3});
  GrpoConfig config;
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 3));
  EXPECT_NEAR(out.loss.item<double>(), (-2.0 + 1.0) / 2, 1e-6);
  out.loss.backward();
  EXPECT_EQ(in.logprobs.grad()[0][1].item<double>(), 0.0);
}

TEST(ValueLoss, ClipsAroundTheRolloutValues) {
  // values [1.0, 2.0, 0.0], old [0.5, 2.1, 0.0], returns [2, 2, 1], clip 0.2:
  // t0: clipped value 0.7: max(1, 1.69) = 1.69 (clipped); t1: 0; t2: max(1, 1) = 1.
  at::Tensor values = at::tensor({1.0f, 2.0f, 0.0f}).view({1, 3}).requires_grad_(true);
  at::Tensor old_values = at::tensor({0.5f, 2.1f, 0.0f}).view({1, 3});
  at::Tensor returns = at::tensor({2.0f, 2.0f, 1.0f}).view({1, 3});
  at::Tensor mask = at::ones({1, 3});
  GrpoConfig config;
  config.cliprange_value = 0.2;
  config.vf_coef = 0.5;
  ValueLossOutput out =
      value_loss(values, old_values, returns, mask, config, count_loss_normalizer(mask, 3));
  EXPECT_NEAR(out.loss.item<double>(), 0.5 * 2.69 / 3, 1e-6);
  EXPECT_NEAR(out.clip_fraction, 1.0 / 3, 1e-9);
  out.loss.backward();
  // The clipped token gets no gradient; t2: 2 (v - R) = -2, times 0.5 / 3.
  EXPECT_EQ(values.grad()[0][0].item<double>(), 0.0);
  EXPECT_NEAR(values.grad()[0][2].item<double>(), -2.0 * 0.5 / 3, 1e-6);
}

}  // namespace
}  // namespace r1kit
