// The reward_model stage: Bradley-Terry training on preference pairs reaches
// high held-out pair accuracy, and its final folder loads in the learned_rm
// reward, which then ranks a chosen answer above a rejected one.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "common/run_dir.h"
#include "common/thread_pool.h"
#include "learner/stage.h"
#include "rewards/reward_set.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

TEST(RewardModelStage, LearnsPreferencesAndLoadsInLearnedRm) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  // Chosen answers are runs of 7s, rejected ones runs of other digits.
  std::mt19937_64 rng(5);
  std::ofstream pairs(root / "pairs.jsonl");
  for (int i = 0; i < 96; ++i) {
    int length = 2 + static_cast<int>(rng() % 5);
    std::string other;
    for (int k = 0; k < length; ++k) other += static_cast<char>('0' + rng() % 7);
    pairs << nlohmann::json{{"prompt", std::to_string(i % 10) + "+1="},
                            {"chosen", std::string(length, '7')},
                            {"rejected", other}}
                 .dump()
          << "\n";
  }
  pairs.close();
  nlohmann::json json = {
      {"stage", "reward_model"},
      {"seed", 1},
      {"output_dir", (root / "run").string()},
      {"model", {{"path", model.string()}}},
      {"reward_model",
       {{"train_file", (root / "pairs.jsonl").string()},
        {"eval_fraction", 0.25},
        {"num_train_epochs", 4},
        {"per_device_train_batch_size", 8}}},
      {"optimizer", {{"learning_rate", 0.005}, {"lr_scheduler_type", "constant"}}}};
  std::ofstream(root / "recipe.json") << json.dump(2);
  Recipe recipe = load_recipe((root / "recipe.json").string(), {});
  RunDir run_dir(recipe.output_dir);
  find_stage("reward_model")(recipe, run_dir, TrainOptions{});

  double final_accuracy = -1;
  for (const auto& line : read_jsonl(root / "run" / "metrics.jsonl")) {
    if (line.contains("eval/pair_accuracy"))
      final_accuracy = line["eval/pair_accuracy"].get<double>();
  }
  EXPECT_GE(final_accuracy, 0.9);

  RewardSpec spec;
  spec.name = "learned_rm";
  spec.options = {{"path", (root / "run" / "final").string()}};
  RewardSet rewards({spec}, "test");
  ThreadPool pool(1);
  BatchScores scores =
      rewards.score({{"3+1=", "7777", {}, "", {}}, {"3+1=", "1204", {}, "", {}}}, pool);
  EXPECT_GT(scores.totals[0], scores.totals[1]);
}

}  // namespace
}  // namespace r1kit
