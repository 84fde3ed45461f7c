// Each extension point as a user adds one: a reward, an environment, an
// advantage estimator, a loss aggregation and a logits processor, each a small
// class or function plus one registration line in this file, then named in a
// recipe that trains one GRPO step with all five.
#include <gtest/gtest.h>

#include <limits>

#include "environments/environment.h"
#include "learner/advantages.h"
#include "learner/loss_aggregation.h"
#include "rewards/reward.h"
#include "rollout/logits_processor.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

// A reward: 1 for a completion of even length.
class EvenLengthReward : public RewardFn {
 public:
  RewardResult score(const Sample& sample) const override {
    return {.value = sample.completion.size() % 2 == 0 ? 1.0 : 0.0};
  }
};
REGISTER_REWARD("test_even_length", EvenLengthReward);

// An environment: "a+b=" for one-digit a and b.
class OneDigitSums : public GeneratedEnvironment {
 public:
  OneDigitSums(const nlohmann::json&, const std::string&) : GeneratedEnvironment(4, 7) {}

 protected:
  Task generate(std::mt19937_64& rng) const override {
    const int64_t a = uniform_int(rng, 0, 9), b = uniform_int(rng, 0, 9);
    Task task;
    task.prompt = std::to_string(a) + "+" + std::to_string(b) + "=";
    task.reference = std::to_string(a + b);
    return task;
  }
};
REGISTER_ENVIRONMENT("test_one_digit_sums", OneDigitSums);

// An advantage estimator: the sign of the reward against its group's mean.
R1KIT_REGISTER(advantage_estimator_registry(), "test_sign",
               group_relative("test_sign",
                              [](const at::Tensor& rewards, const std::string&, double) {
                                return (rewards - rewards.mean(1, /*keepdim=*/true)).sign();
                              }));

// A loss aggregation: the masked sum over the mini-batch's token count times two.
int aggregation_calls = 0;
REGISTER_LOSS_AGGREGATION("test_half_token_mean", [](const at::Tensor& per_token_loss,
                                                     const at::Tensor& mask,
                                                     const LossNormalizer& normalizer) {
  ++aggregation_calls;
  return (per_token_loss * mask).sum() / (2.0 * std::max(normalizer.tokens, 1.0));
});

// A logits processor: the digit '9' is never sampled. The tiny policy's
// character tokenizer has ids <pad> <bos> <eos> <unk>, then '0'..'9': '9' is 13.
constexpr int64_t kNineId = 13;
class NoNines : public LogitsProcessor {
 public:
  at::Tensor apply(const at::Tensor& logits, const LogitsContext&) const override {
    return logits.index_fill(-1, at::tensor({kNineId}, at::kLong).to(logits.device()),
                             -std::numeric_limits<double>::infinity());
  }
};
R1KIT_REGISTER(logits_processor_registry(), "test_no_nines",
               [](const SamplingParams&) { return std::make_shared<NoNines>(); });

TEST(ExtensionPoints, AStepTrainsWithARegisteredRewardEnvironmentEstimatorLossAndProcessor) {
  const testing::TempFolder root;
  const auto model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["environment"] = {{"name", "test_one_digit_sums"}, {"prompt_template", "plain"}};
  json["rewards"] = {{{"name", "test_even_length"}}};
  json["grpo"]["adv_estimator"] = "test_sign";
  json["grpo"]["loss_type"] = "test_half_token_mean";
  json["grpo"]["logits_processors"] = {"temperature", "test_no_nines"};
  json["trainer"]["log_completions"] = 16;
  testing::TrainerOnRecipe run(json, root.path());

  aggregation_calls = 0;
  const nlohmann::json line = run.trainer.step(1);
  EXPECT_GT(aggregation_calls, 0);
  EXPECT_TRUE(line.contains("rewards/test_even_length/mean")) << line.dump();
  const auto samples = read_jsonl(root / "run" / "samples.jsonl");
  ASSERT_FALSE(samples.empty());
  for (const auto& sample : samples) {
    const std::string completion = sample["completion"];
    EXPECT_EQ(completion.find('9'), std::string::npos) << completion;
    const double advantage = sample["advantage"];
    EXPECT_TRUE(advantage == -1.0 || advantage == 0.0 || advantage == 1.0) << advantage;
    const double reward = sample["reward"];
    EXPECT_EQ(reward, completion.size() % 2 == 0 ? 1.0 : 0.0) << completion;
  }
}

}  // namespace
}  // namespace r1kit
