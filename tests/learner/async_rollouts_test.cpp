// Asynchronous rollouts: the producer samples step s's batch with the weights
// after step s - 1 - max_staleness, whatever the timing; checkpoints carry
// the batches sampled ahead exactly; a failing producer surfaces in take();
// a GRPO run with max_staleness 1 learns, reports its staleness and idle
// times, and repeats itself for a seed; PPO is refused.
#include "learner/async_rollouts.h"

#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/error.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// A PolicyWeights on a tiny random model whose first parameter's first value
// tells the versions apart.
std::shared_ptr<PolicyWeights> tiny_weights() {
  Transformer model(testing::tiny_model_config(16));
  return std::make_shared<PolicyWeights>(model);
}

NamedWeights version_weights(PolicyWeights& weights, float marker) {
  at::NoGradGuard no_grad;
  NamedWeights values;
  for (const auto& item : weights.model->named_parameters())
    values.emplace_back(item.key(), item.value().detach().clone());
  values.front().second.view(-1)[0] = marker;
  return values;
}

float marker_of(PolicyWeights& weights) {
  return weights.model->parameters().front().view(-1)[0].item<float>();
}

// Runs `steps` steps through AsyncRollouts the way the trainer does and
// returns, per step, the marker of the weights that sampled it.
std::vector<float> markers_seen(int64_t max_staleness, int64_t steps,
                                std::chrono::milliseconds learn_time) {
  auto weights = tiny_weights();
  load_named_weights(*weights, version_weights(*weights, 0.0f));
  std::vector<float> seen(static_cast<size_t>(steps + 1), -1.0f);
  AsyncRollouts rollouts(weights, max_staleness, 1, [&](int64_t step, StepMetrics& metrics) {
    seen[static_cast<size_t>(step)] = marker_of(*weights);
    metrics.set("marker", seen[static_cast<size_t>(step)]);
    return RolloutBatch{};
  });
  rollouts.start(1, steps, 0, {});
  for (int64_t step = 1; step <= steps; ++step) {
    if (step > 1)
      rollouts.publish(step - 1, version_weights(*weights, static_cast<float>(step - 1)));
    CollectedBatch collected = rollouts.take(step, nullptr);
    EXPECT_EQ(collected.step, step);
    EXPECT_EQ(collected.weights_step, std::max<int64_t>(0, step - 1 - max_staleness));
    EXPECT_EQ(collected.metrics.get("marker"), static_cast<double>(collected.weights_step));
    std::this_thread::sleep_for(learn_time);  // the learner's update
  }
  return seen;
}

TEST(AsyncRollouts, EachStepIsSampledWithTheWeightsMaxStalenessStepsBack) {
  for (int64_t staleness : {1, 2}) {
    for (auto learn_time : {std::chrono::milliseconds(0), std::chrono::milliseconds(20)}) {
      const std::vector<float> seen = markers_seen(staleness, 6, learn_time);
      for (int64_t step = 1; step <= 6; ++step) {
        EXPECT_EQ(seen[static_cast<size_t>(step)],
                  static_cast<float>(std::max<int64_t>(0, step - 1 - staleness)))
            << "max_staleness " << staleness << ", step " << step;
      }
    }
  }
}

TEST(AsyncRollouts, PendingAfterAStepHoldsTheBatchesSampledAhead) {
  auto weights = tiny_weights();
  AsyncRollouts rollouts(weights, 2, 1, [](int64_t step, StepMetrics& metrics) {
    metrics.set("step", static_cast<double>(step));
    return RolloutBatch{};
  });
  rollouts.start(1, 10, 0, {});
  rollouts.take(1, nullptr);
  // After step 1: steps 2 and 3 need weights older than step 1's.
  std::vector<CollectedBatch> ahead = rollouts.pending_after(1);
  ASSERT_EQ(ahead.size(), 2u);
  EXPECT_EQ(ahead[0].step, 2);
  EXPECT_EQ(ahead[1].step, 3);
  EXPECT_EQ(ahead[1].weights_step, 0);
}

TEST(AsyncRollouts, AProducerFailureSurfacesInTake) {
  auto weights = tiny_weights();
  AsyncRollouts rollouts(weights, 1, 1, [](int64_t step, StepMetrics&) -> RolloutBatch {
    if (step == 2) throw_data_error("the environment broke at step 2");
    return RolloutBatch{};
  });
  rollouts.start(1, 4, 0, {});
  rollouts.take(1, nullptr);
  rollouts.publish(1, version_weights(*weights, 1.0f));
  try {
    rollouts.take(2, nullptr);
    FAIL() << "take(2) returned a batch the producer never made";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("the environment broke at step 2"), std::string::npos);
  }
}

TEST(AsyncRollouts, ABatchSurvivesItsCheckpointFormExactly) {
  CollectedBatch collected;
  collected.step = 7;
  collected.weights_step = 5;
  TrainingSample sample;
  sample.tokens = {1, 2, 3, 4};
  sample.prompt_length = 2;
  sample.old_logprobs = {-0.1234567f, -3.0e-7f};
  sample.in_loss = false;
  sample.observation_mask = {0, 1};
  collected.batch.samples = {sample, sample};
  AdvantageRound round;
  round.rewards = at::tensor({0.5f, 1.0f / 3.0f}, at::kFloat);
  round.group_size = 2;
  round.kept = {0, 1};
  collected.batch.rounds = {round};
  collected.batch.logged = {{{"completion", "34"}}};
  collected.batch.logged_samples = {1};
  collected.metrics.set("reward", 0.1 + 0.2);
  collected.rollout_idle_seconds = 0.25;

  const nlohmann::json json =
      nlohmann::json::parse(collected_batch_to_json(collected).dump());  // through text
  const CollectedBatch back = collected_batch_from_json(json, "trainer_state.json");
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.weights_step, 5);
  ASSERT_EQ(back.batch.samples.size(), 2u);
  EXPECT_EQ(back.batch.samples[1].tokens, sample.tokens);
  EXPECT_EQ(back.batch.samples[1].old_logprobs, sample.old_logprobs);  // bit-exact floats
  EXPECT_EQ(back.batch.samples[1].observation_mask, sample.observation_mask);
  EXPECT_FALSE(back.batch.samples[1].in_loss);
  ASSERT_EQ(back.batch.rounds.size(), 1u);
  EXPECT_TRUE(at::equal(back.batch.rounds[0].rewards, round.rewards));
  EXPECT_EQ(back.batch.rounds[0].kept, round.kept);
  EXPECT_EQ(back.batch.logged, collected.batch.logged);
  EXPECT_EQ(back.metrics.get("reward"), 0.1 + 0.2);
  EXPECT_THROW(collected_batch_from_json({{"step", 1}}, "trainer_state.json"), Error);
}

// A GRPO run with max_staleness 1 on the tiny policy: the reward rises as in
// the synchronous loop, every line reports the staleness and idle times, and
// a second run with the same seed logs the same numbers.
TEST(AsyncRollouts, OneStepOffPolicyGrpoLearnsAndRepeatsItself) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  auto run = [&](const std::string& name) {
    nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / name);
    recipe["trainer"]["max_steps"] = 12;
    recipe["trainer"]["max_staleness"] = 1;
    recipe["optimizer"]["learning_rate"] = 0.03;
    const fs::path folder = root / (name + "-recipe");
    fs::create_directories(folder);
    testing::TrainerOnRecipe setup(recipe, folder);
    std::vector<nlohmann::json> lines;
    for (int64_t step = 1; step <= 12; ++step) lines.push_back(setup.trainer.step(step));
    return lines;
  };
  const std::vector<nlohmann::json> first = run("first");
  const std::vector<nlohmann::json> second = run("second");
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i]["async/staleness_mean"].get<double>(), i == 0 ? 0.0 : 1.0);
    EXPECT_TRUE(first[i].contains("time/rollout_idle"));
    EXPECT_TRUE(first[i].contains("time/learner_idle"));
    for (const char* key : {"reward", "kl", "grad_norm", "completions/mean_length"})
      EXPECT_EQ(first[i][key], second[i][key]) << key << " at step " << i + 1;
  }
  auto mean_reward = [&](size_t begin, size_t end) {
    double sum = 0;
    for (size_t i = begin; i < end; ++i) sum += first[i]["reward"].get<double>();
    return sum / static_cast<double>(end - begin);
  };
  EXPECT_GT(mean_reward(8, 12), mean_reward(0, 4)) << "the reward did not rise";
}

TEST(AsyncRollouts, PpoIsRefused) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "run");
  recipe["stage"] = "ppo";
  recipe["grpo"]["adv_estimator"] = "gae";
  recipe["trainer"]["max_staleness"] = 1;
  try {
    testing::TrainerOnRecipe setup(recipe, root.path());
    FAIL() << "ppo with max_staleness 1 was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("trainer.max_staleness"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace r1kit
