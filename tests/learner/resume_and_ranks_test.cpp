// Two promises of the learner, checked through the real command: a run killed
// with SIGKILL after a checkpoint and resumed logs the same metrics and ends
// with the same parameters as an uninterrupted run; and two Gloo ranks on CPU
// give the same parameters after 3 steps as one rank with the same global batch.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/run_dir.h"
#include "common/safetensors.h"
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

// Metrics lines without the wall-clock fields.
std::vector<nlohmann::json> comparable_metrics(const fs::path& run) {
  std::vector<nlohmann::json> lines;
  for (auto line : read_jsonl(run / "metrics.jsonl")) {
    for (const char* key : {"time/generate", "time/score", "time/learn", "time/step", "tokens_per_second"}) line.erase(key);
    lines.push_back(line);
  }
  return lines;
}

std::map<std::string, at::Tensor> final_weights(const fs::path& run) {
  auto contents = read_safetensors(run / "final" / "model.safetensors");
  std::map<std::string, at::Tensor> copied;
  for (auto& [name, tensor] : contents.tensors) copied[name] = tensor.clone();
  return copied;
}

TEST(Resume, KilledAndResumedRunEqualsUninterruptedRun) {
  fs::path root = testing::fresh_folder("resume");
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "whole");
  recipe["trainer"]["max_steps"] = 8;
  recipe["trainer"]["save_steps"] = 2;
  recipe["trainer"]["save_total_limit"] = 0;
  recipe["trainer"]["eval_samples"] = 2;
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
  fs::path marker = root / "killed" / "checkpoints" / "step-4" / "trainer_state.json";
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
  auto expected = final_weights(root / "whole");
  auto resumed = final_weights(root / "killed");
  ASSERT_EQ(expected.size(), resumed.size());
  for (const auto& [name, tensor] : expected) EXPECT_TRUE(at::equal(tensor, resumed.at(name))) << name;
  fs::remove_all(root);
}

TEST(Distributed, TwoGlooRanksEqualOneRankWithTheSameGlobalBatch) {
  fs::path root = testing::fresh_folder("ranks");
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json recipe = testing::tiny_grpo_recipe(model, root / "one");
  recipe["trainer"]["max_steps"] = 3;
  recipe["trainer"]["eval_samples"] = 2;
  recipe["grpo"]["beta"] = 0.01;
  fs::path one = write_recipe(root, "one", recipe);
  recipe["output_dir"] = (root / "two").string();
  fs::path two = write_recipe(root, "two", recipe);
  ASSERT_EQ(run_command("train " + one.string()), 0);
  ASSERT_EQ(run_command("launch --nproc 2 -- " + std::string(R1KIT_BINARY) + " train " + two.string()), 0);
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
  fs::remove_all(root);
}

}  // namespace
}  // namespace r1kit
