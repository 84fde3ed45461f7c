// The loss aggregation and KL estimator registries: one registration line in a
// test file makes a new one usable by name, directly and through the recipe
// keys grpo.loss_type and grpo.kl_loss_type; an unknown name is the registry's
// message behind the file and key path.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/config.h"
#include "common/error.h"
#include "learner/grpo_config.h"
#include "learner/kl_estimator.h"
#include "learner/loss_aggregation.h"
#include "learner/policy_loss.h"
#include "tests/learner/grpo_section.h"

namespace r1kit {
namespace {

// The plain masked sum, with no normaliser.
at::Tensor test_token_sum(const at::Tensor& per_token_loss, const at::Tensor& mask,
                          const LossNormalizer&) {
  return (per_token_loss * mask).sum();
}
REGISTER_LOSS_AGGREGATION("test_token_sum", test_token_sum);

// Twice k1.
at::Tensor test_double_k1(const at::Tensor& log_ratio) { return -2.0 * log_ratio; }
REGISTER_KL_ESTIMATOR("test_double_k1", test_double_k1);

using testing::grpo_error;
using testing::read_grpo;

// Other files of this binary register aggregations too: the checks below
// name the built-ins and this file's own, not the whole list.
TEST(LossAggregationRegistry, BuiltInsAreRegistered) {
  const std::vector<std::string> names = loss_aggregation_registry().names();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* name :
       {"seq_mean_token_mean", "seq_mean_token_sum_norm", "test_token_sum", "token_mean"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

TEST(LossAggregationRegistry, RegistrationLineMakesAnAggregationUsable) {
  at::Tensor loss = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({2, 2});
  at::Tensor mask = at::tensor({1.0f, 1.0f, 1.0f, 0.0f}).view({2, 2});
  EXPECT_DOUBLE_EQ(
      aggregate_loss(loss, mask, "test_token_sum", count_loss_normalizer(mask, 2)).item<double>(),
      6.0);

  // Named in a recipe, it is the aggregation of the policy loss.
  GrpoConfig config = read_grpo({{"loss_type", "test_token_sum"}, {"clip_ratio_c", 0.0}});
  EXPECT_EQ(config.loss_aggregation(), "test_token_sum");
  PolicyLossInputs in;
  in.old_logprobs = at::full({2, 2}, -1.0f);
  in.logprobs = in.old_logprobs.clone().requires_grad_(true);
  in.advantages = at::tensor({1.0f, -1.0f});
  in.mask = mask;
  // Ratios are 1: per-token loss -A, summed over 3 masked tokens: -1 - 1 + 1.
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(mask, 2));
  EXPECT_DOUBLE_EQ(out.loss.item<double>(), -1.0);
}

TEST(LossAggregationRegistry, UnknownNameIsTheRegistryMessage) {
  at::Tensor loss = at::ones({1, 2});
  try {
    aggregate_loss(loss, loss, "token_meen", count_loss_normalizer(loss, 2));
    FAIL() << "an unknown aggregation was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    const std::string what = e.what();
    EXPECT_TRUE(what.starts_with(
        "unknown loss aggregation \"token_meen\" (did you mean \"token_mean\"?); known: "
        "seq_mean_token_mean, seq_mean_token_sum_norm, "))
        << what;
    EXPECT_TRUE(what.ends_with("test_token_sum, token_mean")) << what;
  }
}

TEST(LossAggregationRegistry, LossTypeAcceptsTrlNamesAndRegisteredNames) {
  EXPECT_EQ(read_grpo({{"loss_type", "grpo"}}).loss_aggregation(), "seq_mean_token_mean");
  EXPECT_EQ(read_grpo({{"loss_type", "dr_grpo"}}).loss_aggregation(), "seq_mean_token_sum_norm");
  EXPECT_EQ(read_grpo({{"loss_type", "bnpo"}}).loss_aggregation(), "token_mean");
  EXPECT_EQ(read_grpo({{"loss_type", "seq_mean_token_mean"}}).loss_aggregation(),
            "seq_mean_token_mean");
  const std::string error = grpo_error({{"loss_type", "dapoo"}});
  EXPECT_TRUE(error.starts_with(
      "recipe.json: grpo.loss_type: unknown loss aggregation \"dapoo\" (did you mean "
      "\"dapo\"?); known: bnpo, cispo, dapo, dr_grpo, grpo, seq_mean_token_mean, "
      "seq_mean_token_sum_norm, "))
      << error;
  EXPECT_NE(error.find("test_token_sum"), std::string::npos) << error;
}

TEST(KlEstimatorRegistry, RegistrationLineMakesAnEstimatorUsable) {
  EXPECT_EQ(kl_estimator_registry().names(),
            (std::vector<std::string>{"k1", "k2", "k3", "test_double_k1"}));
  at::Tensor logp = at::tensor({-1.0f});
  at::Tensor ref = at::tensor({-1.5f});
  EXPECT_DOUBLE_EQ(kl_penalty(logp, ref, "test_double_k1").item<double>(), 1.0);

  // Named in a recipe, it is the KL term of the policy loss.
  GrpoConfig config = read_grpo({{"kl_loss_type", "test_double_k1"}, {"beta", 0.5}});
  EXPECT_EQ(config.kl_estimator(), "test_double_k1");
  PolicyLossInputs in;
  in.old_logprobs = at::full({1, 2}, -1.0f);
  in.logprobs = in.old_logprobs.clone().requires_grad_(true);
  in.ref_logprobs = at::full({1, 2}, -1.5f);
  in.advantages = at::tensor({0.0f});
  in.mask = at::ones({1, 2});
  PolicyLossOutput out = policy_loss(in, config, count_loss_normalizer(in.mask, 2));
  EXPECT_DOUBLE_EQ(out.kl_mean, 1.0);
  EXPECT_DOUBLE_EQ(out.loss.item<double>(), 0.5);  // beta * KL, token_mean
}

TEST(KlEstimatorRegistry, KlLossTypeAcceptsAliasesAndReportsUnknownNames) {
  EXPECT_EQ(read_grpo({{"kl_loss_type", "kl"}}).kl_estimator(), "k1");
  EXPECT_EQ(read_grpo({{"kl_loss_type", "low_var_kl"}}).kl_estimator(), "k3");
  EXPECT_EQ(grpo_error({{"kl_loss_type", "k4"}}),
            "recipe.json: grpo.kl_loss_type: unknown KL estimator \"k4\" (did you mean \"k1\"?); "
            "known: k1, k2, k3, kl, low_var_kl, mse, test_double_k1");
  try {
    kl_penalty(at::zeros({1}), at::zeros({1}), "low_var_kl");  // aliases are the recipe's
    FAIL() << "an alias was found in the registry";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown KL estimator \"low_var_kl\""), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace r1kit
