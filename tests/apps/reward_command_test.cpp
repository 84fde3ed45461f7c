// `r1kit reward`: scores a small JSONL with built-in rewards and checks the
// printed means and counts (computed by hand in the comments), the per-line
// output, and the exit code of each kind of mistake; a reward that fails on
// every line stops it, and `r1kit train`, with the reward's own error.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/apps/run_command.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace {

namespace fs = std::filesystem;

using r1kit::testing::run_r1kit;
using r1kit::testing::TempFolder;

// The whitespace-separated columns of the report row that starts with `name`.
std::vector<std::string> row(const std::string& output, const std::string& name) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> columns;
    for (std::string word; words >> word;) columns.push_back(word);
    if (!columns.empty() && columns[0] == name) return columns;
  }
  ADD_FAILURE() << "no row \"" << name << "\" in:\n" << output;
  return std::vector<std::string>(9, "?");
}

// Line 3 is blank (skipped, but the line numbers count it). Per line:
//   1: correct, R1 format          math_answer 1, think_format 1
//   2: wrong answer, R1 format     math_answer 0, think_format 1
//   4: no reference                math_answer n/a, think_format 0
//   5: chat messages, TRL's "solution" column, 1/2 == 0.5: math_answer 1, think_format 0
const char* const kCompletions =
    R"({"prompt": "What is 2+3?", "completion": "<think>2+3=5</think> <answer>5</answer>", "answer": "5"}
{"prompt": "What is 7*6?", "completion": "<think>7*6=42</think> <answer>41</answer>", "answer": "42"}

{"prompt": "Say hi", "completion": "hi"}
{"prompt": [{"role": "user", "content": "What is 1/2?"}], "completion": [{"role": "assistant", "content": "The answer is \\boxed{\\frac{1}{2}}"}], "solution": "0.5"}
)";

TEST(RewardCommand, PrintsMeansCountsAndTheWeightedTotal) {
  const TempFolder folder;
  std::string input = folder.write_file("completions.jsonl", kCompletions);
  std::string output = input + ".scores.jsonl";
  auto result = run_r1kit("reward " + input +
                          " --reward math_answer:2 --reward think_format:0.5 --output " + output);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("4 completions"), std::string::npos) << result.output;
  // name weight mean std scored n/a errors timeouts
  auto math = row(result.output, "math_answer");
  EXPECT_EQ(math[1], "2.000");
  EXPECT_EQ(math[2], "0.6667");  // 2 of 3 applicable
  EXPECT_EQ(math[4], "3");
  EXPECT_EQ(math[5], "1");
  EXPECT_EQ(math[6], "0");
  EXPECT_EQ(math[7], "0");
  EXPECT_EQ(row(result.output, "math_answer/has_answer")[1], "1.0000");
  auto format = row(result.output, "think_format");
  EXPECT_EQ(format[2], "0.5000");
  EXPECT_EQ(format[5], "0");
  // Totals 2*1+0.5*1, 0.5, 0, 2*1 -> mean 1.25.
  EXPECT_EQ(row(result.output, "total")[1], "1.2500");

  std::ifstream scores(output);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(scores, line);) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2]["line"], 4);
  EXPECT_TRUE(lines[2]["rewards"]["math_answer"].is_null());
  EXPECT_EQ(lines[2]["outcomes"]["math_answer"], "not_applicable");
  EXPECT_DOUBLE_EQ(lines[0]["total"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(lines[3]["total"].get<double>(), 2.0);
  EXPECT_EQ(lines[3]["info"]["math_answer"]["extracted"], "\\frac{1}{2}");
}

TEST(RewardCommand, ReadsTheRecipesRewardList) {
  const TempFolder folder;
  std::string input = folder.write_file("recipe-input.jsonl", kCompletions);
  std::string recipe = folder.write_file("recipe.json", R"({"stage": "grpo", "rewards": [
      {"name": "think_format", "label": "format", "weight": 2.0},
      {"name": "overlong", "options": {"max_completion_length": 8, "len": 4}, "fallback": -1.0,
       "max_failure_fraction": 2.0}]})");
  auto result = run_r1kit("reward " + input + " --recipe " + recipe);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(row(result.output, "format")[2], "0.5000");
  // overlong needs token counts these lines lack: every call errors and scores the fallback.
  auto overlong = row(result.output, "overlong");
  EXPECT_EQ(overlong[2], "-1.0000");
  EXPECT_EQ(overlong[6], "4");
  EXPECT_NE(result.output.find("overlong failed first at " + input + ":1: error: overlong:"),
            std::string::npos)
      << result.output;
  // Totals 2-1, 2-1, 0-1, 0-1 -> mean 0.
  EXPECT_EQ(row(result.output, "total")[1], "0.0000");
  // The summary at the end.
  EXPECT_NE(result.output.find("r1kit reward: reward overlong: 4 errors, 0 timeouts, 0 skipped of "
                               "4 samples; first: error: overlong:"),
            std::string::npos)
      << result.output;
  // --strict turns reward failures into exit 1.
  EXPECT_EQ(run_r1kit("reward " + input + " --recipe " + recipe + " --strict").exit_code, 1);
}

// By default a reward that fails on every line of a batch stops the command,
// as it would stop training, after the report.
TEST(RewardCommand, RewardFailingOnEveryLineExitsWithItsError) {
  const TempFolder folder;
  std::string input = folder.write_file("input.jsonl", kCompletions);
  std::string recipe = folder.write_file("recipe.json", R"({"rewards": [
      {"name": "think_format"},
      {"name": "overlong", "options": {"max_completion_length": 8, "len": 4}}]})");
  auto result = run_r1kit("reward " + input + " --recipe " + recipe);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(row(result.output, "overlong")[6], "4");
  EXPECT_NE(result.output.find("reward overlong failed on 4 of 4 samples of lines 1-5 of " + input +
                               " (max_failure_fraction 1), so the run stops; first failure: "
                               "error: overlong:"),
            std::string::npos)
      << result.output;
}

// A program that never answers costs max_consecutive_timeouts timeouts; the
// rest of the batch is skipped, and the report says so.
TEST(RewardCommand, HangingProgramIsSkippedAfterTimeoutsInARow) {
  const TempFolder folder;
  std::string input = folder.write_file("input.jsonl", kCompletions);
  std::string recipe = folder.write_file("recipe.json", R"({"rewards": [
      {"name": "subprocess", "options": {"command": ["/bin/sh", "-c", "exec sleep 30"]},
       "timeout_seconds": 0.2, "max_consecutive_timeouts": 2, "max_failure_fraction": 2}]})");
  auto result = run_r1kit("reward " + input + " --recipe " + recipe + " --threads 1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(row(result.output, "subprocess")[7], "2");  // timeouts
  EXPECT_NE(result.output.find("subprocess skipped 2 calls after 2 timeouts in a row"),
            std::string::npos)
      << result.output;
}

// examples/subprocess_reward/length_reward.py speaks the protocol: ids echoed,
// not applicable without a reference.
TEST(RewardCommand, SubprocessExampleScores) {
  const TempFolder folder;
  std::string input = folder.write_file("input.jsonl", kCompletions);
  std::string script =
      (fs::path(R1KIT_SOURCE_DIR) / "examples" / "subprocess_reward" / "length_reward.py").string();
  nlohmann::json recipe = {
      {"rewards", {{{"name", "subprocess"}, {"options", {{"command", {"python3", script}}}}}}}};
  std::string path = folder.write_file("recipe.json", recipe.dump()).string();
  auto result = run_r1kit("reward " + input + " --recipe " + path + " --strict");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto subprocess = row(result.output, "subprocess");
  EXPECT_EQ(subprocess[2], "1.0000");  // every completion is far below 400 characters
  EXPECT_EQ(subprocess[4], "3");
  EXPECT_EQ(subprocess[5], "1");  // line 4 has no reference
  EXPECT_EQ(subprocess[6], "0");
}

// A subprocess reward whose script is missing stops `r1kit reward` and
// `r1kit train` with the interpreter's own message. The relative path is
// looked up next to the recipe, where it is not either.
TEST(RewardCommand, MissingSubprocessScriptStopsRewardAndTrain) {
  const TempFolder folder;
  std::string input = folder.write_file("input.jsonl", kCompletions);
  fs::path model = r1kit::testing::write_tiny_policy(folder / "model");
  nlohmann::json recipe = {
      {"stage", "grpo"},
      {"seed", 1},
      {"output_dir", (folder / "run").string()},
      {"model", {{"path", model.string()}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards",
       {{{"name", "subprocess"}, {"options", {{"command", {"python3", "missing_reward.py"}}}}}}},
      {"grpo", {{"num_generations", 2}, {"max_completion_length", 4}, {"max_prompt_length", 32}}},
      {"trainer", {{"max_steps", 2}, {"prompts_per_step", 2}, {"eval_samples", 2}}}};
  std::string path = folder.write_file("recipe.json", recipe.dump(2)).string();
  const std::string python_error = "can't open file";
  const std::string missing = "missing_reward.py': [Errno 2] No such file or directory";

  auto scored = run_r1kit("reward " + input + " --recipe " + path);
  EXPECT_EQ(scored.exit_code, 1) << scored.output;
  EXPECT_NE(scored.output.find("reward subprocess failed on 4 of 4 samples"), std::string::npos)
      << scored.output;
  EXPECT_NE(scored.output.find(python_error), std::string::npos) << scored.output;
  EXPECT_NE(scored.output.find(missing), std::string::npos) << scored.output;

  auto trained = run_r1kit("train " + path);
  EXPECT_EQ(trained.exit_code, 1) << trained.output;
  EXPECT_NE(trained.output.find("reward subprocess failed on 4 of 4 samples of step 1"),
            std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find(python_error), std::string::npos) << trained.output;
  EXPECT_NE(trained.output.find(missing), std::string::npos) << trained.output;
}

// A reward that fails on half of each step's samples lets the run finish,
// which ends with a warning that sums its failures up.
TEST(RewardCommand, TrainingEndsWithASummaryOfRewardFailures) {
  const TempFolder folder;
  fs::path model = r1kit::testing::write_tiny_policy(folder / "model");
  folder.write_file("odd_ids_fail.sh", R"sh(while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  if [ $((id % 2)) -eq 0 ]; then printf '{"id": %s, "reward": 1}\n' "$id"; else echo oops; fi
done
)sh");
  nlohmann::json recipe = {
      {"stage", "grpo"},
      {"seed", 1},
      {"output_dir", (folder / "run").string()},
      {"model", {{"path", model.string()}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards",
       {{{"name", "subprocess"}, {"options", {{"command", {"/bin/sh", "odd_ids_fail.sh"}}}}}}},
      {"grpo", {{"num_generations", 2}, {"max_completion_length", 4}, {"max_prompt_length", 32}}},
      {"trainer", {{"max_steps", 2}, {"prompts_per_step", 2}, {"eval_samples", 2}}}};
  std::string path = folder.write_file("recipe.json", recipe.dump(2)).string();
  auto trained = run_r1kit("train " + path);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("training: reward subprocess: "), std::string::npos)
      << trained.output;
  EXPECT_NE(trained.output.find("first: error: subprocess reward: bad reply \"oops\""),
            std::string::npos)
      << trained.output;
}

TEST(RewardCommand, MistakesExitWithTheirCodeAndNameTheirPlace) {
  const TempFolder folder;
  std::string good = folder.write_file("good.jsonl", kCompletions);
  std::string bad_json = folder.write_file(
      "bad.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": oops}\n");
  auto result = run_r1kit("reward " + bad_json + " --reward math_answer");
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_NE(result.output.find(bad_json + ":2: not valid JSON"), std::string::npos)
      << result.output;

  std::string no_completion =
      folder.write_file("no-completion.jsonl", "{\"prompt\": \"a\", \"answer\": \"1\"}\n");
  result = run_r1kit("reward " + no_completion + " --reward math_answer");
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_NE(result.output.find(no_completion + ":1: no \"completion\""), std::string::npos)
      << result.output;

  std::string recipe =
      folder.write_file("typo.json", R"({"rewards": [{"name": "math_answer", "wieght": 2}]})");
  result = run_r1kit("reward " + good + " --recipe " + recipe);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(
      result.output.find(recipe + ": rewards[0].wieght: unknown key (did you mean \"weight\"?)"),
      std::string::npos)
      << result.output;

  result = run_r1kit("reward " + good + " --reward math_answr");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.output.find("did you mean \"math_answer\""), std::string::npos) << result.output;

  EXPECT_EQ(run_r1kit("reward " + good).exit_code, 2);  // no reward named
  EXPECT_EQ(run_r1kit("reward " + good + " --reward math_answer:heavy").exit_code, 2);
  EXPECT_EQ(run_r1kit("reward /nonexistent/completions.jsonl --reward math_answer").exit_code, 5);
  result = run_r1kit("reward " + good + " --reward math_answer --plugin /nonexistent/libreward.so");
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_NE(result.output.find("/nonexistent/libreward.so: cannot load plugin"), std::string::npos)
      << result.output;
}

}  // namespace
