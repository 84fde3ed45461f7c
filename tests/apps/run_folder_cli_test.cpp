// What `r1kit train` does with its run folder and with a recipe it cannot
// run: a folder that holds a run needs --resume or --overwrite, a second run
// into a folder in use stops at once naming the holder, a failed write stops
// the run, a damaged checkpoint is bad data (exit 4), and `--check` finds
// every mistake the run would stop on before it makes any folder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tests/apps/run_command.h"
#include "tests/support/temp_folder.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;
using testing::run_r1kit;
using testing::TempFolder;

// Two GRPO steps (or `steps`) of a small random policy on one-digit additions.
nlohmann::json tiny_recipe(const fs::path& output_dir, int64_t steps = 2) {
  const std::string tokenizer = std::string(R1KIT_SOURCE_DIR) + "/configs/r1_arith/tokenizer.json";
  return {{"stage", "grpo"},
          {"seed", 1},
          {"output_dir", output_dir.string()},
          {"model",
           {{"tokenizer", tokenizer},
            {"config",
             {{"model_type", "llama"},
              {"hidden_size", 32},
              {"intermediate_size", 64},
              {"num_hidden_layers", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"max_position_embeddings", 128},
              {"tie_word_embeddings", true},
              {"bos_token_id", 1},
              {"eos_token_id", 2},
              {"pad_token_id", 0}}}}},
          {"environment",
           {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
          {"rewards", {{{"name", "math_answer"}}}},
          {"grpo", {{"num_generations", 4}, {"max_completion_length", 8}}},
          {"trainer",
           {{"max_steps", steps},
            {"prompts_per_step", 2},
            {"eval_steps", 0},
            {"eval_samples", 4},
            {"save_steps", 1}}}};
}

std::string write_recipe(const TempFolder& folder, const nlohmann::json& recipe,
                         const std::string& name = "recipe.json") {
  return folder.write_file(name, recipe.dump(2)).string();
}

int count_step_lines(const fs::path& metrics) {
  std::ifstream in(metrics);
  int count = 0;
  for (std::string line; std::getline(in, line);)
    count += line.find("\"reward\"") != std::string::npos;
  return count;
}

TEST(RunFolderCli, AFolderHoldingARunNeedsResumeOrOverwrite) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  const std::string recipe = write_recipe(folder, tiny_recipe(run));
  auto first = run_r1kit("train " + recipe);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto before = fs::last_write_time(run / "metrics.jsonl");

  auto again = run_r1kit("train " + recipe);
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find(run.string() + " already holds a run ("), std::string::npos)
      << again.output;
  EXPECT_NE(again.output.find("lines of metrics.jsonl, checkpoints up to step 2, final)"),
            std::string::npos)
      << again.output;
  EXPECT_NE(again.output.find("--resume"), std::string::npos);
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos);
  EXPECT_EQ(fs::last_write_time(run / "metrics.jsonl"), before) << "the refused run wrote";

  auto overwritten = run_r1kit("train " + recipe + " --overwrite");
  ASSERT_EQ(overwritten.exit_code, 0) << overwritten.output;
  EXPECT_EQ(count_step_lines(run / "metrics.jsonl"), 2);
  auto both = run_r1kit("train " + recipe + " --overwrite --resume");
  EXPECT_EQ(both.exit_code, 2) << both.output;
}

TEST(RunFolderCli, ASecondRunIntoAFolderInUseStopsNamingTheHolder) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  nlohmann::json long_recipe = tiny_recipe(run, 400);
  long_recipe["trainer"]["save_steps"] = 0;
  const std::string recipe = write_recipe(folder, long_recipe);
  const std::string command = std::string(R1KIT_BINARY) + " train " + recipe + " > " +
                              (folder / "first.log").string() + " 2>&1 & echo $!";
  FILE* pipe = popen(command.c_str(), "r");
  char pid_text[32] = {};
  ASSERT_NE(fgets(pid_text, sizeof pid_text, pipe), nullptr);
  pclose(pipe);
  const std::string first_pid = std::string(pid_text).substr(0, std::string(pid_text).find('\n'));
  // Wait until the first run holds the lock (it writes its pid into .lock).
  for (int i = 0; i < 600; ++i) {
    std::ifstream lock(run / ".lock");
    std::string holder;
    std::getline(lock, holder);
    if (!holder.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto second = run_r1kit("train " + recipe + " --overwrite");
  std::system(("kill " + first_pid).c_str());
  EXPECT_EQ(second.exit_code, 5) << second.output;
  EXPECT_NE(second.output.find("another run is writing this folder (pid " + first_pid),
            std::string::npos)
      << second.output;
  EXPECT_NE(second.output.find(recipe), std::string::npos) << "the holder's command line\n"
                                                           << second.output;
}

TEST(RunFolderCli, AFileNamedFinalIsRefusedBeforeTheFirstStep) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  folder.write_file("run/final", "not a folder");
  auto result = run_r1kit("train " + write_recipe(folder, tiny_recipe(run)));
  EXPECT_EQ(result.exit_code, 5) << result.output;
  EXPECT_NE(result.output.find("final exists and is not a folder"), std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(run / "metrics.jsonl"));
}

TEST(RunFolderCli, AFailedMetricsWriteStopsTheRun) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  fs::create_directories(run);
  fs::create_symlink("/dev/full", run / "metrics.jsonl");
  auto result = run_r1kit("train " + write_recipe(folder, tiny_recipe(run)) + " --resume");
  EXPECT_NE(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("metrics.jsonl: write failed: No space left on device"),
            std::string::npos)
      << result.output;
}

TEST(RunFolderCli, ADamagedTrainerStateIsBadDataNotABadRecipe) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  const std::string recipe = write_recipe(folder, tiny_recipe(run));
  ASSERT_EQ(run_r1kit("train " + recipe).exit_code, 0);
  std::ofstream(run / "checkpoints" / "step-2" / "trainer_state.json") << "{\"step\": ";
  auto result = run_r1kit("train " + recipe + " --resume");
  EXPECT_EQ(result.exit_code, 4) << result.output;
  EXPECT_NE(result.output.find("step-2/trainer_state.json"), std::string::npos) << result.output;
}

TEST(RunFolderCli, CheckFindsWhatTheRunWouldStopOnAndMakesNoFolder) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  struct Case {
    std::string name;
    nlohmann::json patch;
    int exit_code;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"unknown reward",
       {{"rewards", {{{"name", "no_such_reward"}}}}},
       3,
       "unknown reward \"no_such_reward\""},
      {"bad reward option",
       {{"rewards", {{{"name", "regex_match"}, {"options", {{"pattern", "x"}, {"patern", "x"}}}}}}},
       3,
       "patern: unknown key"},
      {"unknown environment",
       {{"environment", {{"name", "no_such_environment"}}}},
       3,
       "unknown environment \"no_such_environment\""},
      {"missing data",
       {{"environment",
         {{"name", "jsonl"}, {"options", {{"digits", nullptr}, {"path", "/no/such/data.jsonl"}}}}}},
       5,
       "/no/such/data.jsonl"},
      {"missing model",
       {{"model", {{"path", "/no/such/model"}, {"config", nullptr}}}},
       5,
       "model.path: /no/such/model is not a folder"},
      {"missing tokenizer",
       {{"model", {{"tokenizer", "/no/such/tokenizer.json"}}}},
       5,
       "/no/such/tokenizer.json"},
  };
  for (const Case& c : cases) {
    nlohmann::json recipe = tiny_recipe(run);
    recipe.merge_patch(c.patch);
    auto result = run_r1kit("train " + write_recipe(folder, recipe) + " --check");
    EXPECT_EQ(result.exit_code, c.exit_code) << c.name << ": " << result.output;
    EXPECT_NE(result.output.find(c.expected), std::string::npos) << c.name << ": " << result.output;
    EXPECT_FALSE(fs::exists(run)) << c.name << " made the run folder";
  }
  auto fine = run_r1kit("train " + write_recipe(folder, tiny_recipe(run)) + " --check");
  EXPECT_EQ(fine.exit_code, 0) << fine.output;
  EXPECT_FALSE(fs::exists(run));
}

TEST(RunFolderCli, NoHeldOutTasksWarnsOnceAndLogsNoEvalMetrics) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  std::ofstream(folder / "tasks.jsonl") << "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n"
                                        << "{\"prompt\": \"2+2=\", \"answer\": \"4\"}\n";
  nlohmann::json recipe = tiny_recipe(run);
  recipe["environment"] = {{"name", "jsonl"},
                           {"options", {{"path", (folder / "tasks.jsonl").string()}}},
                           {"prompt_template", "plain"}};
  recipe["trainer"]["eval_steps"] = 1;
  auto result = run_r1kit("train " + write_recipe(folder, recipe));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string warning = "has no held-out tasks";
  const size_t first = result.output.find(warning);
  EXPECT_NE(first, std::string::npos) << result.output;
  EXPECT_EQ(result.output.find(warning, first + 1), std::string::npos) << "warned twice";
  EXPECT_NE(result.output.find("eval_fraction"), std::string::npos) << result.output;
  std::ifstream metrics(run / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);)
    EXPECT_EQ(line.find("eval/"), std::string::npos) << line;
}

TEST(RunFolderCli, TasksWithoutAnyReferenceAnswerAreWarnedAbout) {
  const TempFolder folder;
  const fs::path run = folder / "run";
  std::ofstream(folder / "tasks.jsonl") << "{\"prompt\": \"1+1=\", \"solution\": \"2\"}\n"
                                        << "{\"prompt\": \"2+2=\", \"solution\": \"4\"}\n";
  nlohmann::json recipe = tiny_recipe(run, 1);
  recipe["environment"] = {{"name", "jsonl"},
                           {"options", {{"path", (folder / "tasks.jsonl").string()}}},
                           {"prompt_template", "plain"}};
  auto result = run_r1kit("train " + write_recipe(folder, recipe));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("none of the first 2 tasks has a reference answer"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("answer_key"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace r1kit
