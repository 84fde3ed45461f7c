// The stage registry: a REGISTER_STAGE line in a test file makes a stage that
// find_stage and run_stage reach by name; an unknown stage is the registry's
// message listing the built ones.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "learner/stage.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

// Counts its runs and leaves a file in the run folder.
int test_stage_runs = 0;
void run_test_stage(const Recipe& recipe, RunDir& run_dir, const TrainOptions&) {
  ++test_stage_runs;
  run_dir.log_metrics({{"step", 1}, {"seed", recipe.seed}});
}
REGISTER_STAGE("test_stage", run_test_stage);

TEST(StageRegistry, RegistrationLineMakesAStageRunnable) {
  const std::vector<std::string> names = registered_stages();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* name :
       {"grpo", "ppo", "pretrain", "rejection_sample", "reward_model", "sft", "test_stage"}) {
    EXPECT_TRUE(stage_registry().contains(name)) << name;
  }

  const testing::TempFolder temp;
  const std::filesystem::path run = temp.path();
  Recipe recipe;
  recipe.stage = "test_stage";
  recipe.seed = 5;
  recipe.output_dir = run.string();
  const int before = test_stage_runs;
  run_stage(recipe, {{"stage", "test_stage"}}, TrainOptions{});
  EXPECT_EQ(test_stage_runs, before + 1);
  EXPECT_TRUE(std::filesystem::exists(run / "config.json"));
  EXPECT_TRUE(std::filesystem::exists(run / "metrics.jsonl"));
  RunDir again(run, /*append=*/true);
  find_stage("test_stage")(recipe, again, TrainOptions{});
  EXPECT_EQ(test_stage_runs, before + 2);
}

TEST(StageRegistry, UnknownStageIsTheRegistryMessage) {
  try {
    find_stage("sfft");
    FAIL() << "an unknown stage was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    const std::string what = e.what();
    EXPECT_TRUE(what.starts_with("unknown stage \"sfft\" (did you mean \"sft\"?); known: grpo, "))
        << what;
    EXPECT_NE(what.find("test_stage"), std::string::npos) << what;
  }
}

TEST(StageRegistry, DuplicateStageIsRefused) {
  EXPECT_THROW(register_stage("sft", run_test_stage), Error);
}

}  // namespace
}  // namespace r1kit
