// The policy objective registry and CISPO: CISPO's loss and gradient against a
// plain re-computation (TRL's loss_type "cispo"), grpo.loss_type "cispo" naming
// the objective and its aggregation, and one registration line in a test file
// making a new objective usable through grpo.policy_objective.
#include "learner/policy_objective.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/config.h"
#include "common/error.h"
#include "learner/grpo_config.h"
#include "learner/policy_loss.h"
#include "tests/learner/grpo_section.h"

namespace r1kit {
namespace {

// Plain REINFORCE: -A * logp per token, no ratio.
PolicyObjectiveTerms test_reinforce(const PolicyObjectiveInputs& in) {
  return {.per_token_loss = -in.advantages * in.logprobs};
}
REGISTER_POLICY_OBJECTIVE("test_reinforce", test_reinforce);

using testing::grpo_error;
using testing::read_grpo;

// logp = old + log(ratios), so the ratios are exact; rows with A = +1 and -1.
PolicyLossInputs inputs_with_ratios(const std::vector<float>& ratios) {
  PolicyLossInputs in;
  in.old_logprobs = at::tensor({-1.0f, -2.0f, -0.5f, -1.5f, -3.0f, -0.7f}).view({2, 3});
  in.logprobs =
      (in.old_logprobs + at::tensor(ratios).view({2, 3}).log()).detach().requires_grad_(true);
  in.advantages = at::tensor({1.0f, -2.0f});
  in.mask = at::tensor({1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f}).view({2, 3});
  return in;
}

TEST(PolicyObjective, CispoMatchesAPlainRecomputation) {
  GrpoConfig config = read_grpo({{"loss_type", "cispo"}, {"epsilon_high", 5.0}});
  EXPECT_EQ(config.objective(), "cispo");
  EXPECT_EQ(config.loss_aggregation(), "token_mean");
  // Ratios 0.5, 1.0 and 7.0 (weight 5) with A = +1; 0.2 and 6.0 (weight 5) with
  // A = -2: TRL clips from above only, at epsilon_high. The last token is padding.
  PolicyLossInputs in = inputs_with_ratios({0.5f, 1.0f, 7.0f, 0.2f, 6.0f, 9.0f});
  const LossNormalizer normalizer = count_loss_normalizer(in.mask, 3);
  PolicyLossOutput out = policy_loss(in, config, normalizer);
  out.loss.backward();

  const std::vector<double> ratios = {0.5, 1.0, 7.0, 0.2, 6.0};
  const std::vector<double> advantages = {1, 1, 1, -2, -2};
  const at::Tensor logp = in.logprobs.detach();
  double loss = 0;
  for (size_t k = 0; k < ratios.size(); ++k) {
    const double weight = std::min(ratios[k], 5.0);  // sg(clip(r, max = epsilon_high))
    loss += -weight * advantages[k] * logp.view(-1)[k].item<double>();
  }
  loss /= 5.0;  // token_mean over the 5 loss tokens
  EXPECT_NEAR(out.loss.item<double>(), loss, 1e-5);
  // d/d logp = -sg(weight) * A / tokens: every token keeps its gradient.
  const at::Tensor grad = in.logprobs.grad().view(-1);
  for (size_t k = 0; k < ratios.size(); ++k) {
    EXPECT_NEAR(grad[k].item<double>(), -std::min(ratios[k], 5.0) * advantages[k] / 5.0, 1e-5) << k;
  }
  EXPECT_EQ(grad[5].item<double>(), 0.0);
  // TRL's cispo_clip_ratio: r > epsilon_high with A > 0.
  EXPECT_DOUBLE_EQ(out.clip_ratio_high, 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(out.clip_ratio_low, 0.0);
}

TEST(PolicyObjective, CispoNeedsAnExplicitEpsilonHigh) {
  const std::string error = grpo_error({{"loss_type", "cispo"}});
  EXPECT_TRUE(error.starts_with("recipe.json: grpo.epsilon_high: the cispo objective")) << error;
  EXPECT_EQ(read_grpo({{"policy_objective", "cispo"}, {"epsilon_high", 4.0}}).objective(), "cispo");
}

TEST(PolicyObjective, RegistryNamesAndTheDefault) {
  const std::vector<std::string> names = policy_objective_registry().names();
  for (const char* name : {"cispo", "clipped_surrogate", "test_reinforce"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  for (const char* loss_type : {"dapo", "grpo", "bnpo", "dr_grpo", "token_mean"})
    EXPECT_EQ(read_grpo({{"loss_type", loss_type}}).objective(), "clipped_surrogate") << loss_type;
  const std::string error = grpo_error({{"policy_objective", "cispoo"}});
  EXPECT_TRUE(
      error.starts_with("recipe.json: grpo.policy_objective: unknown policy objective "
                        "\"cispoo\" (did you mean \"cispo\"?); known: cispo, "
                        "clipped_surrogate"))
      << error;
}

TEST(PolicyObjective, RegistrationLineMakesAnObjectiveUsable) {
  GrpoConfig config = read_grpo({{"policy_objective", "test_reinforce"}, {"loss_type", "grpo"}});
  EXPECT_EQ(config.objective(), "test_reinforce");
  PolicyLossInputs in = inputs_with_ratios({0.5f, 1.0f, 7.0f, 0.2f, 6.0f, 9.0f});
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 3));
  // grpo aggregation: row means of -A logp, then the mean over the 2 rows.
  const at::Tensor logp = in.logprobs.detach();
  const double row0 = -(logp[0].sum().item<double>()) / 3.0;
  const double row1 = 2.0 * (logp[1][0].item<double>() + logp[1][1].item<double>()) / 2.0;
  EXPECT_NEAR(out.loss.item<double>(), (row0 + row1) / 2.0, 1e-5);
  EXPECT_EQ(out.clip_ratio, 0.0);  // no clip masks: nothing clipped
}

// The clipped surrogate through the registry is the loss the policy-loss tests
// pin down; here its clip masks: one token clipped high, one low, one dual.
TEST(PolicyObjective, ClippedSurrogateReportsItsClips) {
  GrpoConfig config;
  config.epsilon_high = 0.28;
  PolicyLossInputs in = inputs_with_ratios({1.1f, 1.4f, 0.9f, 0.7f, 4.0f, 1.0f});
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 3));
  EXPECT_DOUBLE_EQ(out.clip_ratio_high, 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(out.clip_ratio_low, 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(out.dual_clip_ratio, 1.0 / 5.0);
}

}  // namespace
}  // namespace r1kit
