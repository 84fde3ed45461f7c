// The `r1kit` command: unknown commands and options exit 2 with one line,
// recipe mistakes exit 3 with one line naming file, key path and suggestion.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "tests/apps/run_command.h"
#include "tests/support/temp_folder.h"

namespace {

using r1kit::testing::run_r1kit;
using r1kit::testing::TempFolder;

size_t count_lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

TEST(Cli, HelpListsEverySubcommand) {
  auto result = run_r1kit("--help");
  EXPECT_EQ(result.exit_code, 0);
  for (const char* name :
       {"train", "eval", "generate", "reward", "bench", "plot", "launch", "data", "export"})
    EXPECT_NE(result.output.find(name), std::string::npos) << name;
}

TEST(Cli, UnknownSubcommandIsOneLineAndExitTwo) {
  auto result = run_r1kit("trian");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find("did you mean \"train\""), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("unknown command \"trian\""), std::string::npos) << result.output;
  EXPECT_NE(
      result.output.find("known: bench, data, eval, export, generate, launch, plot, reward, train"),
      std::string::npos)
      << result.output;
}

TEST(Cli, UnknownOptionIsOneLineAndExitTwo) {
  auto result = run_r1kit("train --no-such-option recipe.json");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find("--no-such-option"), std::string::npos) << result.output;
}

TEST(Cli, UnknownRecipeKeyNamesFileKeyAndSuggestion) {
  const TempFolder folder;
  const std::string path = folder.write_file("unknown_key.json", R"({"stage": "grpo", "sed": 3})");
  auto result = run_r1kit("train " + path);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find(path + ": sed: unknown key (did you mean \"seed\"?)"),
            std::string::npos)
      << result.output;
}

TEST(Cli, BadJsonNamesLine) {
  const TempFolder folder;
  const std::string path =
      folder.write_file("bad_json.json", "{\n  \"stage\": \"grpo\",\n  oops\n}");
  auto result = run_r1kit("train " + path);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_NE(result.output.find(path + ":3:"), std::string::npos) << result.output;
}

TEST(Cli, SetOverrideIsValidatedLikeTheFile) {
  const TempFolder folder;
  const std::string path = folder.write_file("override.json", R"({"stage": "pretrain"})");
  auto bad = run_r1kit("train " + path + " --check --set seed=-1");
  EXPECT_EQ(bad.exit_code, 3);
  EXPECT_NE(bad.output.find("seed: must be >= 0, got -1"), std::string::npos) << bad.output;
  // --check then goes on to what the run would need: the stage's sections.
  auto good = run_r1kit("train " + path + " --check --set seed=7");
  EXPECT_EQ(good.exit_code, 3) << good.output;
  EXPECT_NE(good.output.find("model: stage \"pretrain\" needs this section"), std::string::npos)
      << good.output;
}

TEST(Cli, UntilOnAStageRecipeIsAUsageError) {
  const TempFolder folder;
  const std::string path = folder.write_file("until_stage.json", R"({"stage": "grpo"})");
  auto result = run_r1kit("train " + path + " --until sft");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find("--until names a pipeline step"), std::string::npos)
      << result.output;
}

TEST(Cli, MissingRecipeFileIsOneLine) {
  auto result = run_r1kit("train /nonexistent/recipe.json");
  EXPECT_EQ(result.exit_code, 5);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
}

}  // namespace

// Every recipe in configs/ (tokenizer files aside) passes validation as shipped.
// Shipped recipes name their files relative to the repository root, where
// their users run them.
struct InSourceTree {
  InSourceTree() : before(std::filesystem::current_path()) {
    std::filesystem::current_path(R1KIT_SOURCE_DIR);
  }
  ~InSourceTree() { std::filesystem::current_path(before); }
  std::filesystem::path before;
};

TEST(Cli, EveryShippedRecipeValidates) {
  namespace fs = std::filesystem;
  const InSourceTree in_source_tree;
  int checked = 0;
  bool pipeline_checked = false;
  for (const auto& entry :
       fs::recursive_directory_iterator(fs::path(R1KIT_SOURCE_DIR) / "configs")) {
    if (entry.path().extension() != ".json" || entry.path().filename() == "tokenizer.json")
      continue;
    auto result = run_r1kit("train " + entry.path().string() + " --check");
    // A recipe that starts from an earlier run's output (runs/...) or from a
    // model the user downloads (/path/to/...) validates up to that path,
    // which --check reports missing.
    const bool needs_a_model_or_data =
        result.exit_code == 5 && (result.output.find(": runs/") != std::string::npos ||
                                  result.output.find(": /path/to/") != std::string::npos);
    EXPECT_TRUE(result.exit_code == 0 || needs_a_model_or_data)
        << entry.path() << ": " << result.output;
    pipeline_checked |= result.output.find("\"pipeline\": \"r1_arith\"") != std::string::npos;
    ++checked;
  }
  EXPECT_GE(checked, 8);
  EXPECT_TRUE(pipeline_checked) << "configs/r1_arith.json was not checked as a pipeline";
}

// The demo pipeline resolves --set seed into every step: the corpus seed, the
// SFT data seed (seed + 1000), the stages' seeds and the run folders.
TEST(Cli, PipelineCheckResolvesSeedIntoEveryStep) {
  const InSourceTree in_source_tree;
  auto result = run_r1kit("train " + std::string(R1KIT_SOURCE_DIR) +
                          "/configs/r1_arith.json --check --set seed=4");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* expected :
       {"\"seed\": 1004", "\"output\": \"runs/r1_arith/seed-4/sft_small.jsonl\"",
        "\"output_dir\": \"runs/r1_arith/seed-4/grpo\"",
        "\"path\": \"runs/r1_arith/seed-4/sft/final\""}) {
    EXPECT_NE(result.output.find(expected), std::string::npos) << expected << "\n" << result.output;
  }
}

TEST(Cli, PipelineMistakeNamesFileStepAndKeyAndExitsThree) {
  std::string recipe = std::string(R1KIT_SOURCE_DIR) + "/configs/r1_arith/sft.json";
  const TempFolder folder;
  const std::string path =
      folder.write_file("pipeline_typo.json", R"({"pipeline": "typo", "steps": [
      {"name": "data", "generate": {"format": "text", "count": 4, "output": "x.jsonl"}},
      {"name": "sft", "recipe": ")" + recipe + R"(", "set": {"optimizer.learning_rat": 1}}]})");
  auto result = run_r1kit("train " + path + " --check");
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(count_lines(result.output), 1u) << result.output;
  EXPECT_NE(result.output.find(path + ": step \"sft\""), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("optimizer.learning_rat: unknown key"), std::string::npos)
      << result.output;
}
