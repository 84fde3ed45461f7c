// Stage ppo: the GRPO loop with a value model and GAE advantages (per token)
// learns the easy regex task too, and logs the critic's loss.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/run_dir.h"
#include "learner/distributed.h"
#include "learner/grpo_trainer.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

TEST(PpoLoop, RewardRisesWithAValueModel) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["stage"] = "ppo";
  json["grpo"]["adv_estimator"] = "gae";
  json["trainer"]["max_steps"] = 24;
  testing::TrainerOnRecipe run(json, root.path());
  GrpoTrainer& trainer = run.trainer;
  ASSERT_TRUE(trainer.is_ppo());
  trainer.train(/*resume=*/false);

  std::vector<double> rewards;
  bool logged_critic = false;
  for (const auto& line : read_jsonl(root / "run" / "metrics.jsonl")) {
    if (line.contains("reward")) rewards.push_back(line["reward"].get<double>());
    logged_critic = logged_critic || line.contains("critic/vf_loss");
  }
  ASSERT_EQ(rewards.size(), 24u);
  double first = 0, last = 0;
  for (int i = 0; i < 6; ++i) {
    first += rewards[i] / 6;
    last += rewards[rewards.size() - 1 - i] / 6;
  }
  EXPECT_GT(last, first + 0.15) << "first steps " << first << ", last steps " << last;
  EXPECT_TRUE(logged_critic);
}

TEST(PpoLoop, GrpoStageRefusesGaeAndPpoStageNeedsIt) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  auto distributed = Distributed::single();
  for (auto [stage, estimator] : {std::pair{"grpo", "gae"}, std::pair{"ppo", "grpo"}}) {
    nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
    json["stage"] = stage;
    json["grpo"]["adv_estimator"] = estimator;
    std::ofstream(root / "recipe.json") << json.dump(2);
    Recipe recipe = load_recipe((root / "recipe.json").string(), {});
    RunDir run_dir(recipe.output_dir);
    EXPECT_THROW(GrpoTrainer(recipe, run_dir, *distributed), Error) << stage;
  }
}

}  // namespace
}  // namespace r1kit
