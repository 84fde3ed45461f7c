// Advantage estimators against hand computations on small tensors: GRPO with
// each scale_rewards, RLOO, REINFORCE++, GAE (with a masked observation token),
// and the reward statistics. Expected numbers are worked out in the comments.
#include "learner/advantages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace r1kit {
namespace {

// Two groups of G = 4: one with spread, one all equal.
at::Tensor two_groups() { return at::tensor({1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 2.0f, 2.0f, 2.0f}); }

void expect_values(const at::Tensor& actual, const std::vector<double>& expected,
                   double tolerance = 1e-6) {
  ASSERT_EQ(actual.numel(), static_cast<int64_t>(expected.size()));
  at::Tensor flat = actual.to(at::kDouble).reshape({-1});
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(flat[i].item<double>(), expected[i], tolerance) << "index " << i;
  }
}

TEST(GroupAdvantages, GrpoGroupScaleDividesByUnbiasedGroupStd) {
  // Group 1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3). Group 2: std 0.
  const double a = 0.5 / (std::sqrt(1.0 / 3.0) + 1e-4);
  expect_values(group_advantages(two_groups(), 4, "grpo", "group"), {a, -a, -a, a, 0, 0, 0, 0});
}

TEST(GroupAdvantages, GrpoBatchScaleDividesByBatchStd) {
  // Batch mean 1.25; squared deviations 0.0625 + 1.5625 + 1.5625 + 0.0625 + 4 * 0.5625 = 5.5.
  const double batch_std = std::sqrt(5.5 / 7.0);
  const double a = 0.5 / (batch_std + 1e-4);
  expect_values(group_advantages(two_groups(), 4, "grpo", "batch"), {a, -a, -a, a, 0, 0, 0, 0});
}

TEST(GroupAdvantages, GrpoNoScaleOnlyCentres) {
  expect_values(group_advantages(two_groups(), 4, "grpo", "none"),
                {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0});
}

TEST(GroupAdvantages, EpsilonIsConfigurable) {
  const double a = 0.5 / (std::sqrt(1.0 / 3.0) + 0.5);
  expect_values(group_advantages(two_groups(), 4, "grpo", "group", 0.5),
                {a, -a, -a, a, 0, 0, 0, 0});
}

TEST(GroupAdvantages, RlooSubtractsTheMeanOfTheOthers) {
  // [1, 0, 0, 1]: 1 - 1/3, 0 - 2/3. [3, 1, 2, 6]: 3 - 9/3, 1 - 11/3, 2 - 10/3, 6 - 6/3.
  at::Tensor rewards = at::tensor({1.0f, 0.0f, 0.0f, 1.0f, 3.0f, 1.0f, 2.0f, 6.0f});
  expect_values(group_advantages(rewards, 4, "rloo", "group"),
                {2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3, 0.0, -8.0 / 3, -4.0 / 3, 4.0}, 1e-5);
  // An all-equal group gets no signal.
  expect_values(group_advantages(two_groups(), 4, "rloo", "none").narrow(0, 4, 4), {0, 0, 0, 0});
}

TEST(GroupAdvantages, ReinforcePlusPlusWhitensOverTheBatch) {
  const double batch_std = std::sqrt(5.5 / 7.0) + 1e-4;
  std::vector<double> expected;
  for (double r : {1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0})
    expected.push_back((r - 1.25) / batch_std);
  expect_values(group_advantages(two_groups(), 4, "reinforce_plus_plus", "group"), expected);
}

TEST(GroupAdvantages, UnknownEstimatorListsKnownOnes) {
  try {
    group_advantages(two_groups(), 4, "reinforce_pp", "group");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("rloo"), std::string::npos) << e.what();
  }
  EXPECT_THROW(group_advantages(two_groups(), 4, "grpo", "groups"), Error);
  EXPECT_THROW(group_advantages(two_groups(), 3, "grpo", "group"),
               c10::Error);  // 8 is not whole groups of 3
}

TEST(GroupAdvantages, RegisteredEstimatorsAreNamedLikeBuiltIns) {
  // A custom estimator: the best completion of each group gets +1, the rest 0.
  if (!advantage_estimator_registry().contains("argmax_test")) {  // --gtest_repeat
    register_group_advantage_estimator("argmax_test",
                                       [](const at::Tensor& r, const std::string&, double) {
                                         return (r == r.amax(1, /*keepdim=*/true)).to(at::kDouble);
                                       });
  }
  at::Tensor rewards = at::tensor({0.1f, 0.7f, 0.3f, 2.0f, 1.0f, 0.0f});
  expect_values(group_advantages(rewards, 3, "argmax_test", "group"), {0, 1, 0, 1, 0, 0});
  auto names = advantage_estimator_registry().names();
  for (const char* name : {"argmax_test", "gae", "grpo", "reinforce_plus_plus", "rloo"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_THROW(register_group_advantage_estimator("rloo", nullptr), Error);
  EXPECT_THROW(register_group_advantage_estimator("argmax_test", nullptr), Error);
  EXPECT_THROW(register_group_advantage_estimator("gae", nullptr), Error);
}

TEST(AdvantageEstimator, GroupRelativeAssignsThisRanksKeptSamples) {
  // Two ranks' rewards of one round, G = 2: rank 0 [1, 0 | 3, 3], rank 1 [0, 2 | 5, 1].
  // This is rank 1 (first completion 4); DAPO kept its second group only.
  AdvantageRound round;
  round.rewards = at::tensor({1.0f, 0.0f, 3.0f, 3.0f, 0.0f, 2.0f, 5.0f, 1.0f});
  round.group_size = 2;
  round.first = 4;
  round.begin = 1;
  round.kept = {2, 3};
  std::vector<TrainingSample> samples(3);
  samples[0].advantage = 9.0f;  // an earlier round's sample stays as it is
  auto estimator = advantage_estimator_registry().get("grpo")({.scale_rewards = "none"});
  estimator->assign(round, samples);
  EXPECT_EQ(samples[0].advantage, 9.0f);
  EXPECT_FLOAT_EQ(samples[1].advantage, 2.0f);  // 5 - mean(5, 1)
  EXPECT_FLOAT_EQ(samples[2].advantage, -2.0f);
}

TEST(AdvantageEstimator, GaeWithoutAValueModelIsAConfigError) {
  try {
    advantage_estimator_registry().get("gae")({});
    FAIL() << "gae was built without a value model";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("value model"), std::string::npos) << e.what();
  }
  try {
    advantage_estimator_registry().get("rlooo", "recipe.json: grpo.adv_estimator");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recipe.json: grpo.adv_estimator: unknown advantage "
                                         "estimator \"rlooo\" (did you mean \"rloo\"?)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Gae, MatchesTheBackwardRecursion) {
  // gamma 0.9, lam 0.8, rewards [0, 0, 1], values [0.5, 0.6, 0.7]:
  // t2: delta = 1 - 0.7 = 0.3;                  A2 = 0.3
  // t1: delta = 0.9 * 0.7 - 0.6 = 0.03;         A1 = 0.03 + 0.72 * 0.3 = 0.246
  // t0: delta = 0.9 * 0.6 - 0.5 = 0.04;         A0 = 0.04 + 0.72 * 0.246 = 0.21712
  at::Tensor rewards = at::tensor({0.0f, 0.0f, 1.0f}).view({1, 3});
  at::Tensor values = at::tensor({0.5f, 0.6f, 0.7f}).view({1, 3});
  at::Tensor mask = at::ones({1, 3});
  GaeResult result = gae(rewards, values, mask, 0.9, 0.8);
  const std::vector<double> raw = {0.21712, 0.246, 0.3};
  expect_values(result.returns, {raw[0] + 0.5, raw[1] + 0.6, raw[2] + 0.7});
  const double mean = (raw[0] + raw[1] + raw[2]) / 3.0;
  double squares = 0.0;
  for (double a : raw) squares += (a - mean) * (a - mean);
  const double scale = 1.0 / std::sqrt(squares / 2.0 + 1e-8);
  expect_values(result.advantages,
                {(raw[0] - mean) * scale, (raw[1] - mean) * scale, (raw[2] - mean) * scale}, 1e-5);
}

TEST(Gae, SkipsMaskedObservationTokens) {
  // The middle token is a tool observation: it neither bootstraps nor decays.
  // t2: A2 = 0.3; t1 passes through; t0: delta = 0.9 * 0.7 - 0.5 = 0.13, A0 = 0.13 + 0.72 * 0.3 =
  // 0.346.
  at::Tensor rewards = at::tensor({0.0f, 0.0f, 1.0f}).view({1, 3});
  at::Tensor values = at::tensor({0.5f, 0.6f, 0.7f}).view({1, 3});
  at::Tensor mask = at::tensor({1.0f, 0.0f, 1.0f}).view({1, 3});
  GaeResult result = gae(rewards, values, mask, 0.9, 0.8);
  EXPECT_NEAR(result.returns[0][0].item<double>(), 0.346 + 0.5, 1e-6);
  EXPECT_NEAR(result.returns[0][2].item<double>(), 1.0, 1e-6);
  // Two tokens whitened with the unbiased std: -1/sqrt(2), +1/sqrt(2); zero outside the mask.
  expect_values(result.advantages, {1.0 / std::sqrt(2.0), 0.0, -1.0 / std::sqrt(2.0)}, 1e-4);
}

TEST(RewardStats, ReportsTrlMetrics) {
  RewardGroupStats stats = reward_group_stats(two_groups(), 4);
  EXPECT_NEAR(stats.reward, 1.25, 1e-9);
  EXPECT_NEAR(stats.reward_std, std::sqrt(1.0 / 3.0) / 2.0, 1e-7);  // mean of the groups' stds
  EXPECT_NEAR(stats.reward_batch_std, std::sqrt(5.5 / 7.0), 1e-7);
  EXPECT_DOUBLE_EQ(stats.frac_reward_zero_std, 0.5);
  at::Tensor spread = groups_with_reward_spread(two_groups(), 4);
  ASSERT_EQ(spread.numel(), 2);
  EXPECT_TRUE(spread[0].item<bool>());
  EXPECT_FALSE(spread[1].item<bool>());
}

}  // namespace
}  // namespace r1kit
