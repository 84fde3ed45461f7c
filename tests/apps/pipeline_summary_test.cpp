// `r1kit train PIPELINE.json`'s closing summary: held-out accuracy before and
// after the RL step, the train reward at both ends and the gain as the last
// line, its numbers the hand-computed ones of a written metrics.jsonl. The
// pipeline's steps are marked finished (the resolved steps of --check as
// pipeline_state.json), so --resume skips them all and only the summary runs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/temp_folder.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What `r1kit ARGUMENTS` prints on stdout (the logs go to stderr).
std::string stdout_of(const std::string& arguments) {
  std::string command = std::string(R1KIT_BINARY) + " " + arguments + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  EXPECT_EQ(pclose(pipe), 0) << command << "\n" << output;
  return output;
}

// SFT then GRPO then plots; the recipes are only loaded, never run.
json sft_grpo_pipeline(const fs::path& root) {
  json sft = {{"stage", "sft"},
              {"model", {{"path", "${output_dir}/pretrained"}}},
              {"sft", {{"train_file", "${output_dir}/sft.jsonl"}, {"max_steps", 2}}},
              {"optimizer", {{"learning_rate", 0.001}}}};
  json grpo = {
      {"stage", "grpo"},
      {"model", {{"path", "${output_dir}/sft/final"}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards", {{{"name", "regex_match"}, {"options", {{"pattern", "7"}, {"mode", "count"}}}}}},
      {"grpo", {{"num_generations", 8}, {"max_completion_length", 8}, {"max_prompt_length", 32}}},
      {"optimizer", {{"learning_rate", 0.01}}},
      {"trainer", {{"max_steps", 8}, {"prompts_per_step", 4}, {"eval_samples", 8}}}};
  return {{"pipeline", "summary"},
          {"seed", 3},
          {"output_dir", (root / "seed-${seed}").string()},
          {"steps",
           {{{"name", "sft"}, {"recipe", sft}},
            {{"name", "grpo"}, {"recipe", grpo}},
            {{"name", "plots"},
             {"plot", {{"runs", {"${output_dir}/grpo"}}, {"out", "${output_dir}/plots"}}}}}}};
}

TEST(PipelineSummary, ReportsHeldOutAccuracyBeforeAndAfterRlAndTheGainLast) {
  const r1kit::testing::TempFolder temp;
  const fs::path root = temp.path();
  const std::string path = (root / "pipeline.json").string();
  std::ofstream(path) << sft_grpo_pipeline(root).dump(2);

  const json resolved = json::parse(stdout_of("train " + path + " --check"));
  const fs::path out = root / "seed-3";
  fs::create_directories(out);
  std::ofstream(out / "pipeline_state.json") << json{{"finished", resolved.at("steps")}}.dump();
  EXPECT_EQ(stdout_of("train " + path + " --resume"), "");  // no metrics yet: no summary

  fs::create_directories(out / "grpo");
  std::ofstream metrics(out / "grpo" / "metrics.jsonl");
  metrics << R"({"step": 0, "eval/accuracy": 0.25, "eval/tasks": 8})"
          << "\n";
  for (int step = 1; step <= 8; ++step)
    metrics << json{{"step", step}, {"reward", 0.1 * step}}.dump() << "\n";
  metrics << R"({"step": 8, "eval/accuracy": 0.875, "eval/tasks": 8})"
          << "\n";
  metrics.close();
  // k = 8 / 4 = 2 steps at each end: rewards (0.1 + 0.2) / 2 and (0.7 + 0.8) / 2.
  const std::string expected =
      "\n"
      "                                     value\n"
      "held-out greedy accuracy, SFT        0.250   (step 0, 8 tasks)\n"
      "held-out greedy accuracy, GRPO       0.875   (step 8)\n"
      "train reward, first steps            0.150\n"
      "train reward, last steps             0.750\n"
      "plots: " +
      (out / "plots").string() + "/   run folders: " + out.string() +
      "/{sft,grpo}\n"
      "grpo_accuracy_gain: 0.625\n";
  EXPECT_EQ(stdout_of("train " + path + " --resume"), expected);
  EXPECT_EQ(stdout_of("train " + path + " --resume --until grpo"), "");  // stopped early
}

}  // namespace
