// Two promises of the learner, checked through the real command: a run killed
// with SIGKILL after a checkpoint and resumed logs the same metrics and ends
// with the same parameters as an uninterrupted run (grpo, asynchronous grpo,
// and ppo with its critic); and two Gloo ranks on CPU give the same parameters after 3 steps as
// one rank with the same global batch.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/run_dir.h"
#include "common/safetensors.h"
#include "policy/checkpoint.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

int run_command(const std::string& arguments) {
  std::string command = std::string(R1KIT_BINARY) + " " + arguments + " > /dev/null 2>&1";
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

fs::path write_recipe(const fs::path& root, const std::string& name, nlohmann::json recipe) {
  fs::path path = root / (name + ".json");
  std::ofstream(path) << recipe.dump(2);
  return path;
}

// Metrics lines without the wall-clock and process-memory fields.
std::vector<nlohmann::json> comparable_metrics(const fs::path& run) {
  std::vector<nlohmann::json> lines;
  for (auto line : read_jsonl(run / "metrics.jsonl")) {
    for (const char* key : {"time/generate", "time/score", "time/learn", "time/step",
                            "tokens_per_second", "memory/peak_rss_gb", "memory/max_allocated_gb",
                            "time/rollout_idle", "time/learner_idle"})
      line.erase(key);
    lines.push_back(line);
  }
  return lines;
}

std::map<std::string, at::Tensor> final_weights(const fs::path& run,
                                                const std::string& file = "model.safetensors") {
  auto contents = read_safetensors(run / "final" / file);
  std::map<std::string, at::Tensor> copied;
  for (auto& [name, tensor] : contents.tensors) copied[name] = tensor.clone();
  return copied;
}

void expect_same_weights(const std::map<std::string, at::Tensor>& expected,
                         const std::map<std::string, at::Tensor>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [name, tensor] : expected)
    EXPECT_TRUE(at::equal(tensor, actual.at(name))) << name;
}

// Runs `recipe` whole into root/whole, and into root/killed with a SIGKILL once
// checkpoints/step-<kill_after> exists, then --resume; the two must agree.
void expect_resume_equals_whole_run(const fs::path& root, nlohmann::json recipe, int64_t kill_after,
                                    const std::string& weights_file = "model.safetensors") {
  recipe["output_dir"] = (root / "whole").string();
  fs::path whole = write_recipe(root, "whole", recipe);
  recipe["output_dir"] = (root / "killed").string();
  fs::path killed = write_recipe(root, "killed", recipe);
  ASSERT_EQ(run_command("train " + whole.string()), 0);

  pid_t pid = fork();
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(R1KIT_BINARY, R1KIT_BINARY, "train", killed.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  fs::path marker = root / "killed" / "checkpoints" / ("step-" + std::to_string(kill_after)) /
                    "trainer_state.json";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(marker));
  ASSERT_FALSE(fs::exists(root / "killed" / "final")) << "the run ended before it could be killed";
  ASSERT_EQ(run_command("train " + killed.string() + " --resume"), 0);

  EXPECT_EQ(comparable_metrics(root / "killed"), comparable_metrics(root / "whole"));
  expect_same_weights(final_weights(root / "whole", weights_file),
                      final_weights(root / "killed", weights_file));
}

TEST(Resume, KilledAndResumedRunEqualsUninterruptedRun) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "whole");
  recipe["trainer"]["max_steps"] = 8;
  recipe["trainer"]["save_steps"] = 2;
  recipe["trainer"]["save_total_limit"] = 0;
  recipe["trainer"]["eval_samples"] = 2;
  expect_resume_equals_whole_run(root.path(), recipe, /*kill_after=*/4);
}

// With asynchronous rollouts the checkpoint also holds the batches sampled
// ahead from older weights; the resumed run trains on them.
TEST(Resume, KilledAndResumedAsynchronousRunEqualsUninterruptedRun) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "whole");
  recipe["trainer"]["max_steps"] = 8;
  recipe["trainer"]["max_staleness"] = 2;
  recipe["trainer"]["save_steps"] = 2;
  recipe["trainer"]["save_total_limit"] = 0;
  recipe["trainer"]["eval_samples"] = 2;
  expect_resume_equals_whole_run(root.path(), recipe, /*kill_after=*/4);
}

// With LoRA the checkpoints hold the adapters (a PEFT folder) and their AdamW
// state; the base comes from model.path again, and the reference is the base.
TEST(Resume, KilledAndResumedLoraRunEqualsUninterruptedRun) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "whole");
  recipe["model"]["lora"] = {{"r", 4}, {"target_modules", "all-linear"}};
  recipe["grpo"]["beta"] = 0.04;
  recipe["optimizer"]["learning_rate"] = 0.05;
  recipe["trainer"]["max_steps"] = 6;
  recipe["trainer"]["save_steps"] = 2;
  recipe["trainer"]["save_total_limit"] = 0;
  recipe["trainer"]["eval_samples"] = 2;
  expect_resume_equals_whole_run(root.path(), recipe, /*kill_after=*/2,
                                 "adapter_model.safetensors");
  double largest_b = 0;
  for (const auto& [name, tensor] : final_weights(root / "whole", "adapter_model.safetensors")) {
    if (name.find(".lora_B.") != std::string::npos)
      largest_b = std::max(largest_b, tensor.abs().max().item<double>());
  }
  EXPECT_GT(largest_b, 0.0) << "the adapters never trained; the comparison would be empty";
}

// PPO's critic (backbone, v_head and its AdamW state) is in the checkpoint, so
// the resumed run's values, advantages and updates match too; final/critic is
// the trained value model as an HF folder.
TEST(Resume, KilledAndResumedPpoRunEqualsUninterruptedRun) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "whole");
  recipe["stage"] = "ppo";
  recipe["grpo"]["adv_estimator"] = "gae";
  recipe["trainer"]["max_steps"] = 4;
  recipe["trainer"]["save_steps"] = 1;
  recipe["trainer"]["save_total_limit"] = 0;
  recipe["trainer"]["eval_samples"] = 2;
  expect_resume_equals_whole_run(root.path(), recipe, /*kill_after=*/2);
  auto critic = final_weights(root / "whole", "critic/model.safetensors");
  EXPECT_TRUE(critic.count("v_head.summary.weight")) << "final/critic has no value head";
  expect_same_weights(critic, final_weights(root / "killed", "critic/model.safetensors"));
  auto initial = read_safetensors(model / "model.safetensors").tensors;
  EXPECT_FALSE(at::equal(critic.at("model.norm.weight"), initial.at("model.norm.weight")))
      << "the critic never trained";
  PretrainedWithHead loaded =
      load_pretrained_with_head(root / "whole" / "final" / "critic", ScalarHeadKind::kValue);
  EXPECT_FALSE(loaded.head_is_new);
  EXPECT_TRUE(at::equal(loaded.head->linear->weight, critic.at("v_head.summary.weight")));
}

// Runs `recipe` (its model in root/model) on one rank and on two Gloo ranks:
// the same parameters and all-reduced reward statistics.
void expect_two_ranks_equal_one(const testing::TempFolder& root, const fs::path& model,
                                nlohmann::json recipe) {
  recipe["output_dir"] = (root / "one").string();
  fs::path one = write_recipe(root.path(), "one", recipe);
  recipe["output_dir"] = (root / "two").string();
  fs::path two = write_recipe(root.path(), "two", recipe);
  ASSERT_EQ(run_command("train " + one.string()), 0);
  ASSERT_EQ(
      run_command("launch --nproc 2 -- " + std::string(R1KIT_BINARY) + " train " + two.string()),
      0);
  auto single = final_weights(root / "one");
  auto pair = final_weights(root / "two");
  ASSERT_EQ(single.size(), pair.size());
  auto initial = read_safetensors(model / "model.safetensors").tensors;
  double moved = 0;
  for (const auto& [name, tensor] : single) {
    EXPECT_TRUE(at::allclose(tensor, pair.at(name), /*rtol=*/0, /*atol=*/1e-5))
        << name << " differs by " << (tensor - pair.at(name)).abs().max().item<double>();
    moved = std::max(moved, (tensor - initial.at(name)).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4) << "the updates did nothing; the comparison would be empty";
  // The reward statistics are all-reduced: the pair logs the single rank's values.
  auto single_lines = comparable_metrics(root / "one");
  auto pair_lines = comparable_metrics(root / "two");
  ASSERT_EQ(single_lines.size(), pair_lines.size());
  int64_t compared = 0;
  for (size_t i = 0; i < single_lines.size(); ++i) {
    if (!single_lines[i].contains("grad_norm")) continue;  // evaluation lines
    for (const char* key :
         {"accuracy", "rewards/regex_match/mean", "rewards/regex_match/std", "reward"}) {
      ASSERT_TRUE(pair_lines[i].contains(key)) << key;
      EXPECT_NEAR(single_lines[i][key].get<double>(), pair_lines[i][key].get<double>(), 1e-9)
          << key << " at line " << i;
    }
    ++compared;
  }
  EXPECT_EQ(compared, 3);
}

TEST(Distributed, TwoGlooRanksEqualOneRankWithTheSameGlobalBatch) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "one");
  recipe["trainer"]["max_steps"] = 3;
  recipe["trainer"]["eval_samples"] = 2;
  recipe["grpo"]["beta"] = 0.01;
  expect_two_ranks_equal_one(root, model, recipe);
}

// Asynchronous rollouts on two ranks: the producers' collectives run on their
// own group beside the learners' all-reduces, and the checkpoints gather every
// rank's batches sampled ahead.
TEST(Distributed, TwoGlooRanksWithAsynchronousRolloutsEqualOneRank) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "one");
  recipe["trainer"]["max_steps"] = 3;
  recipe["trainer"]["eval_samples"] = 2;
  recipe["trainer"]["max_staleness"] = 1;
  recipe["trainer"]["save_steps"] = 1;
  recipe["grpo"]["beta"] = 0.01;
  expect_two_ranks_equal_one(root, model, recipe);
  const nlohmann::json state =
      read_json_file((root / "two" / "checkpoints" / "step-2" / "trainer_state.json").string());
  ASSERT_EQ(state.at("sampled_ahead").size(), 2u);
  for (const nlohmann::json& rank : state.at("sampled_ahead")) {
    ASSERT_EQ(rank.size(), 1u) << "one batch (step 3) sampled ahead per rank";
    EXPECT_EQ(rank[0].at("step"), 3);
    EXPECT_EQ(rank[0].at("samples").size(), 16u) << "each rank's half of 4 prompts x 8";
  }
}

}  // namespace
}  // namespace r1kit
