// The learner's memory savings change no result: GRPO steps with activation
// checkpointing (trainer.gradient_checkpointing) give the weights of steps
// without it, with and without the shared-prompt forward and with a live
// reference model; every metrics line carries the process's peak memory.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "policy/checkpoint.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

using nlohmann::json;

std::map<std::string, at::Tensor> weights_after_steps(const json& recipe,
                                                      const std::filesystem::path& root) {
  testing::TrainerOnRecipe run(recipe, root);
  run.trainer.step(1);
  run.trainer.step(2);
  std::map<std::string, at::Tensor> weights;
  for (const auto& item : run.trainer.policy()->named_parameters())
    weights[item.key()] = item.value().detach().clone();
  return weights;
}

class CheckpointedLearner : public ::testing::TestWithParam<bool> {};

TEST_P(CheckpointedLearner, StepsGiveTheWeightsOfThePlainLearner) {
  testing::TempFolder root;
  const auto model = testing::write_tiny_policy(root.path() / "model");
  json recipe = testing::tiny_grpo_recipe(model, root.path() / "run");
  recipe["grpo"]["beta"] = 0.04;  // the reference forward runs too
  recipe["grpo"]["skip_zero_advantage"] = false;
  recipe["trainer"]["shared_prompt_forward"] = GetParam();
  std::filesystem::create_directories(root.path() / "plain");
  const auto plain = weights_after_steps(recipe, root.path() / "plain");
  recipe["trainer"]["gradient_checkpointing"] = true;
  recipe["output_dir"] = (root.path() / "run-checkpointed").string();
  std::filesystem::create_directories(root.path() / "checkpointed");
  const auto checkpointed = weights_after_steps(recipe, root.path() / "checkpointed");
  ASSERT_EQ(plain.size(), checkpointed.size());
  Transformer initial = load_pretrained(model);
  int64_t trained = 0;  // tensors the two steps moved
  for (const auto& item : initial->named_parameters()) {
    const at::Tensor& expected = plain.at(item.key());
    EXPECT_TRUE(at::allclose(checkpointed.at(item.key()), expected, 1e-5, 1e-6)) << item.key();
    trained += at::equal(expected, item.value()) ? 0 : 1;
  }
  EXPECT_GT(trained, 0);
}

INSTANTIATE_TEST_SUITE_P(Forwards, CheckpointedLearner, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "shared" : "padded"; });

TEST(MemoryMetrics, EveryStepLineCarriesThePeakResidentMemory) {
  testing::TempFolder root;
  const auto model = testing::write_tiny_policy(root.path() / "model");
  testing::TrainerOnRecipe run(testing::tiny_grpo_recipe(model, root.path() / "run"), root.path());
  run.trainer.step(1);
  run.run_dir.log_metrics(json{{"step", 1}});
  const auto lines = read_jsonl(root.path() / "run" / "metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  for (const auto& line : lines) {
    ASSERT_TRUE(line.contains("memory/peak_rss_gb")) << line.dump();
    const double gigabytes = line["memory/peak_rss_gb"];
    EXPECT_GT(gigabytes, 0.01);  // a process with LibTorch loaded holds more than 10 MB
    EXPECT_LT(gigabytes, 1000.0);
  }
}

}  // namespace
}  // namespace r1kit
