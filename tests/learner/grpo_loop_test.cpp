// The GRPO loop end to end in seconds: a tiny random policy learns to write
// more of one character under a regex_match reward; the mean reward of the
// last steps beats the first steps by a margin, and the run folder holds the
// resolved recipe, metrics, samples, a checkpoint and the final HF folder.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/run_dir.h"
#include "learner/distributed.h"
#include "learner/grpo_trainer.h"
#include "learner/stage.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// Runs the 24-step easy task; returns the reward of each step.
std::vector<double> easy_task_rewards(const fs::path& root, const std::string& rollout_dtype) {
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["trainer"]["max_steps"] = 24;
  json["trainer"]["rollout_dtype"] = rollout_dtype;
  testing::TrainerOnRecipe run(json, root);
  GrpoTrainer& trainer = run.trainer;
  trainer.train(/*resume=*/false);

  std::vector<double> rewards;
  for (const auto& line : read_jsonl(root / "run" / "metrics.jsonl")) {
    if (line.contains("reward")) rewards.push_back(line["reward"].get<double>());
  }
  return rewards;
}

void expect_reward_rises(const std::vector<double>& rewards) {
  ASSERT_EQ(rewards.size(), 24u);
  double first = 0, last = 0;
  for (int i = 0; i < 6; ++i) {
    first += rewards[i] / 6;
    last += rewards[rewards.size() - 1 - i] / 6;
  }
  EXPECT_GT(last, first + 0.15) << "first steps " << first << ", last steps " << last;
}

TEST(GrpoLoop, RewardRisesOnAnEasyTask) {
  const testing::TempFolder root;
  expect_reward_rises(easy_task_rewards(root.path(), "float32"));
  EXPECT_TRUE(fs::exists(root / "run" / "final" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(root / "run" / "final" / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(root / "run" / "checkpoints" / "step-24" / "trainer_state.json"));
  EXPECT_FALSE(read_jsonl(root / "run" / "samples.jsonl").empty());
}

// trainer.rollout_dtype bfloat16: generation in bf16, learning in float32; the
// importance ratio absorbs the small logprob gap and the task is still learned.
TEST(GrpoLoop, RewardRisesWithBfloat16Rollouts) {
  const testing::TempFolder root;
  expect_reward_rises(easy_task_rewards(root.path(), "bfloat16"));
}

TEST(GrpoLoop, MetricsCarryTheTrlNames) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["trainer"]["max_steps"] = 1;
  json["grpo"]["beta"] = 0.01;
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  nlohmann::json line = trainer.step(1);
  for (const char* key :
       {"reward", "reward_std", "frac_reward_zero_std", "kl", "entropy", "clip_ratio/low_mean",
        "clip_ratio/high_mean", "completions/mean_length", "completions/max_length",
        "completions/clipped_ratio", "grad_norm", "learning_rate", "time/generate", "time/score",
        "time/learn", "tokens_per_second", "rewards/regex_match/mean", "accuracy"}) {
    EXPECT_TRUE(line.contains(key)) << key << " missing from " << line.dump();
  }
  EXPECT_GE(line["kl"].get<double>(), 0.0);
}

// trainer.bf16 runs the learner's forwards under bf16 autocast (here on the
// CPU); it refuses a model that is bfloat16 already.
TEST(GrpoLoop, Bf16AutocastStepsAndNeedsAFloat32Model) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["trainer"]["bf16"] = true;
  json["grpo"]["beta"] = 0.01;
  fs::path recipe_path = root / "recipe.json";
  std::ofstream(recipe_path) << json.dump(2);
  Recipe recipe = load_recipe(recipe_path.string(), {});
  EXPECT_TRUE(recipe.trainer.bf16);
  RunDir run_dir(recipe.output_dir);
  auto distributed = Distributed::single();
  {
    GrpoTrainer trainer(recipe, run_dir, *distributed);
    nlohmann::json line = trainer.step(1);
    EXPECT_GT(line["grad_norm"].get<double>(), 0.0) << line.dump();
    EXPECT_TRUE(std::isfinite(line["kl"].get<double>())) << line.dump();
  }
  json["model"]["dtype"] = "bfloat16";
  std::ofstream(recipe_path) << json.dump(2);
  Recipe bf16_model = load_recipe(recipe_path.string(), {});
  EXPECT_THROW(GrpoTrainer(bf16_model, run_dir, *distributed), Error);
}

// With entropy_coeff 0 the entropy is only logged (no graph, row by row); it
// equals the differentiable one the entropy bonus uses, on the same first step.
TEST(GrpoLoop, LoggedEntropyEqualsTheDifferentiableOne) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  double entropy[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    nlohmann::json json = testing::tiny_grpo_recipe(model, root / ("run" + std::to_string(i)));
    json["grpo"]["entropy_coeff"] = i == 0 ? 0.0 : 1e-3;
    // Both over every completion: an entropy bonus turns the zero-advantage skip off.
    json["grpo"]["skip_zero_advantage"] = false;
    testing::TrainerOnRecipe run(json, root.path());
    GrpoTrainer& trainer = run.trainer;
    entropy[i] = trainer.step(1)["entropy"].get<double>();
  }
  EXPECT_GT(entropy[0], 1.0);  // near log(30) for a random policy
  EXPECT_NEAR(entropy[0], entropy[1], 1e-6);
}

// grpo.stop_strings end single-turn completions too; the text rewards score
// keeps the stop string, as the ids the learner trains on do.
TEST(GrpoLoop, StopStringsEndCompletionsAndStayInTheScoredText) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["grpo"]["stop_strings"] = {"7"};
  json["trainer"]["log_completions"] = 32;
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  run.run_dir.log_metrics(trainer.step(1));
  int64_t stopped_at_seven = 0;
  for (const auto& line : read_jsonl(root / "run" / "samples.jsonl")) {
    const std::string completion = line["completion"].get<std::string>();
    const size_t seven = completion.find('7');
    if (seven == std::string::npos) continue;
    EXPECT_EQ(seven, completion.size() - 1)
        << "generation went on after the stop string: " << completion;
    EXPECT_EQ(line["finish_reason"], "stop");
    EXPECT_GT(line["reward"].get<double>(), 0.0);  // regex_match counts the kept "7"
    ++stopped_at_seven;
  }
  EXPECT_GT(stopped_at_seven, 0);
}

// The learner's two shortcuts, trainer.shared_prompt_forward (each prompt once
// per micro-batch) and grpo.skip_zero_advantage (completions of equal-reward
// groups left out of the forward and backward), change the work, not the
// update: after the same rollout, the gradient equals the plain padded one's.
TEST(GrpoLoop, SharedPromptForwardAndSkippedZeroAdvantagesGiveThePaddedUpdate) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  auto one_step = [&](bool shortcuts, const std::string& name, double beta = 0.0,
                      int64_t steps = 1) {
    nlohmann::json json = testing::tiny_grpo_recipe(model, root / name);
    json["grpo"]["beta"] = beta;
    json["trainer"]["shared_prompt_forward"] = shortcuts;
    json["grpo"]["skip_zero_advantage"] = shortcuts;
    // Rewards 0 or 1: some groups get one reward for all eight completions.
    json["rewards"] = {{{"name", "regex_match"}, {"options", {{"pattern", "7"}}}}};
    fs::create_directories(root / name);
    testing::TrainerOnRecipe run(json, root / name);
    nlohmann::json metrics;
    for (int64_t step = 1; step <= steps; ++step) metrics = run.trainer.step(step);
    // The step's (clipped) gradients stay in .grad until the next step's rollout.
    std::map<std::string, at::Tensor> gradients;
    for (const auto& item : run.trainer.policy()->named_parameters())
      gradients[item.key()] = item.value().grad().clone();
    return std::make_pair(metrics, gradients);
  };
  const auto [padded_metrics, padded] = one_step(false, "padded");
  const auto [shortcut_metrics, shortcut] = one_step(true, "shortcuts");
  EXPECT_EQ(padded_metrics["learner/skipped_completions"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(shortcut_metrics["learner/skipped_completions"].get<double>(),
                   padded_metrics["frac_reward_zero_std"].get<double>());
  EXPECT_GT(shortcut_metrics["learner/skipped_completions"].get<double>(), 0.0)
      << "no group to skip: pick another seed";
  EXPECT_LT(shortcut_metrics["learner/skipped_completions"].get<double>(), 1.0)
      << "nothing to train on";
  EXPECT_NEAR(shortcut_metrics["grad_norm"].get<double>(),
              padded_metrics["grad_norm"].get<double>(),
              1e-5 * padded_metrics["grad_norm"].get<double>());
  // Float32 sums in another order (packed against padded matmuls): within
  // 1e-4 of each tensor's largest entry, which AVX-512 and AVX2 CPUs both meet.
  auto expect_same_gradients = [](const std::map<std::string, at::Tensor>& expected,
                                  const std::map<std::string, at::Tensor>& actual) {
    for (const auto& [name, gradient] : expected) {
      const double scale = gradient.abs().max().item<double>();
      EXPECT_LT((actual.at(name) - gradient).abs().max().item<double>(), 1e-4 * scale + 1e-9)
          << name;
    }
  };
  expect_same_gradients(padded, shortcut);

  // With a KL term every completion is in the loss: nothing is skipped, and the
  // reference model's log-probs come from the same shared-prompt forward. At
  // the second step the policy has moved away from the reference.
  const auto [padded_kl_metrics, padded_kl] = one_step(false, "padded_kl", 0.05, 2);
  const auto [shared_kl_metrics, shared_kl] = one_step(true, "shared_kl", 0.05, 2);
  EXPECT_EQ(shared_kl_metrics["learner/skipped_completions"].get<double>(), 0.0);
  EXPECT_GT(padded_kl_metrics["kl"].get<double>(), 1e-6);
  EXPECT_NEAR(shared_kl_metrics["kl"].get<double>(), padded_kl_metrics["kl"].get<double>(),
              1e-4 * padded_kl_metrics["kl"].get<double>());
  expect_same_gradients(padded_kl, shared_kl);
}

}  // namespace
}  // namespace r1kit
