// A GRPO run whose updates are not finite: each skipped optimiser step shows
// in the metrics (train/nonfinite_skipped, train/nonfinite_skipped_total), and
// the run stops with an error naming the cause after
// optimizer.max_consecutive_nonfinite skips in a row (the default, 5, too).
// The NaN comes from a registered advantage estimator, so the weights and the
// rollouts stay finite and only the loss and the gradients break.
#include <gtest/gtest.h>

#include <limits>

#include "common/error.h"
#include "learner/advantages.h"
#include "learner/optimizer.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

R1KIT_REGISTER(advantage_estimator_registry(), "test_nan_advantages",
               group_relative("test_nan_advantages", [](const at::Tensor& rewards,
                                                        const std::string&, double) {
                 return at::full_like(rewards, std::numeric_limits<double>::quiet_NaN());
               }));

// The training lines of a run's metrics.jsonl (evaluation lines left out).
std::vector<nlohmann::json> step_lines(const fs::path& run) {
  std::vector<nlohmann::json> lines;
  for (auto& line : read_jsonl(run / "metrics.jsonl"))
    if (line.contains("grad_norm")) lines.push_back(line);
  return lines;
}

// Runs `json` to the end or to its error; returns the error's message ("" when none).
std::string train_until_error(const nlohmann::json& json, const fs::path& root) {
  fs::create_directories(root);
  testing::TrainerOnRecipe run(json, root);
  try {
    run.trainer.train(/*resume=*/false);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kRuntime) << e.what();
    return e.what();
  }
  return "";
}

TEST(NonfiniteUpdates, EverySkipShowsInTheMetricsAndTheDefaultStreakStopsTheRun) {
  const testing::TempFolder root;
  const auto model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "run");
  json["grpo"]["adv_estimator"] = "test_nan_advantages";
  json["trainer"]["max_steps"] = 8;
  ASSERT_EQ(OptimizerConfig{}.max_consecutive_nonfinite, 5);
  const std::string message = train_until_error(json, root.path());
  EXPECT_NE(message.find("5 steps in a row"), std::string::npos) << message;
  EXPECT_NE(message.find("loss was not finite"), std::string::npos) << message;
  const auto lines = step_lines(root / "run");
  ASSERT_EQ(lines.size(), 4u) << "steps 1-4 logged, step 5 stopped the run";
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["train/nonfinite_skipped"], 1.0) << lines[i].dump();
    EXPECT_EQ(lines[i]["train/nonfinite_skipped_total"], static_cast<double>(i + 1));
    EXPECT_EQ(lines[i]["skipped_updates"], 1.0);
  }
  EXPECT_FALSE(fs::exists(root / "run" / "final"));
}

TEST(NonfiniteUpdates, AShorterStreakLimitStopsSoonerAndFiniteRunsLogZero) {
  const testing::TempFolder root;
  const auto model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = testing::tiny_grpo_recipe(model, root / "nan");
  json["grpo"]["adv_estimator"] = "test_nan_advantages";
  json["optimizer"]["max_consecutive_nonfinite"] = 2;
  const std::string message = train_until_error(json, root / "nan-recipe");
  EXPECT_NE(message.find("2 steps in a row"), std::string::npos) << message;
  EXPECT_EQ(step_lines(root / "nan").size(), 1u);

  nlohmann::json finite = testing::tiny_grpo_recipe(model, root / "finite");
  finite["trainer"]["max_steps"] = 2;
  EXPECT_EQ(train_until_error(finite, root / "finite-recipe"), "");
  const auto finite_lines = step_lines(root / "finite");
  ASSERT_EQ(finite_lines.size(), 2u);
  for (const auto& line : finite_lines) {
    EXPECT_EQ(line["train/nonfinite_skipped"], 0.0) << line.dump();
    EXPECT_EQ(line["train/nonfinite_skipped_total"], 0.0) << line.dump();
  }
}

TEST(NonfiniteUpdates, TheRunningSkipCountSurvivesSaveAndLoad) {
  const testing::TempFolder root;
  at::Tensor parameter = at::ones({2}).requires_grad_(true);
  OptimizerConfig config;
  config.lr_scheduler_type = "constant";
  Optimizer optimizer({parameter}, {}, config, 10);
  for (int i = 0; i < 3; ++i) {
    parameter.mutable_grad() = at::full({2}, std::numeric_limits<float>::quiet_NaN());
    EXPECT_TRUE(optimizer.step().skipped);
  }
  parameter.mutable_grad() = at::ones({2});
  EXPECT_FALSE(optimizer.step().skipped);
  EXPECT_EQ(optimizer.skipped_total(), 3);
  EXPECT_EQ(optimizer.consecutive_skips(), 0);
  optimizer.save(root / "state");

  Optimizer resumed({parameter}, {}, config, 10);
  resumed.load(root / "state");
  EXPECT_EQ(resumed.skipped_total(), 3);
}

}  // namespace
}  // namespace r1kit
