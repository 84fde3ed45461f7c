// Stage rejection_sample on a tiny random policy: what it writes is exactly
// the accepted completions (here: those containing a '7'), capped per task,
// loadable as SFT data, the same file for the same seed, and a required reward
// that is not in the recipe is a config error naming the key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/error.h"
#include "common/run_dir.h"
#include "data/sft_data.h"
#include "learner/stage.h"
#include "policy/tokenizer.h"
#include "tests/learner/learner_test_util.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

nlohmann::json rejection_recipe(const fs::path& model, const fs::path& run) {
  nlohmann::json json = testing::tiny_grpo_recipe(model, run);
  json["stage"] = "rejection_sample";
  json.erase("grpo");
  json.erase("optimizer");
  json["rewards"] = {
      {{"name", "regex_match"}, {"options", {{"pattern", "7"}, {"mode", "search"}}}}};
  json["rejection_sample"] = {{"num_prompts", 12},
                              {"prompts_per_batch", 5},
                              {"sampling", {{"n", 8}, {"max_new_tokens", 6}, {"temperature", 1.0}}},
                              {"required_rewards", {"regex_match"}},
                              {"keep_truncated", true},
                              {"max_per_prompt", 2}};
  return json;
}

void run_stage(const nlohmann::json& json, const fs::path& recipe_path) {
  std::ofstream(recipe_path) << json.dump(2);
  Recipe recipe = load_recipe(recipe_path.string(), {});
  RunDir run_dir(recipe.output_dir);
  find_stage(recipe.stage)(recipe, run_dir, {});
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(RejectionSampleStage, WritesOnlyAcceptedCompletionsCappedPerTask) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  run_stage(rejection_recipe(model, root / "run"), root / "recipe.json");

  auto lines = read_jsonl(root / "run" / "sft.jsonl");
  auto summary = nlohmann::json::parse(read_file(root / "run" / "summary.json"));
  EXPECT_EQ(summary["prompts"], 12);
  EXPECT_EQ(summary["samples"], 96);
  ASSERT_GT(summary["accepted"].get<int64_t>(), 0)
      << "the random policy should write a '7' now and then";
  EXPECT_EQ(summary["written"].get<size_t>(), lines.size());
  EXPECT_LE(lines.size(), summary["accepted"].get<size_t>());
  std::map<int64_t, std::set<std::string>> per_task;
  for (const auto& line : lines) {
    const std::string response = line["response"];
    EXPECT_NE(response.find('7'), std::string::npos) << response;
    EXPECT_TRUE(per_task[line["task"].get<int64_t>()].insert(response).second)
        << "duplicate " << response;
  }
  for (const auto& [task, responses] : per_task) EXPECT_LE(responses.size(), 2u) << "task " << task;
  EXPECT_EQ(summary["prompts_with_accepted"].get<size_t>(), per_task.size());

  auto tokenizer = load_tokenizer(model.string());
  SftDataset data =
      load_sft_jsonl((root / "run" / "sft.jsonl").string(), *tokenizer, {.strict = true});
  EXPECT_EQ(data.examples.size(), lines.size());
  EXPECT_EQ(read_jsonl(root / "run" / "metrics.jsonl").size(), 3u);  // batches of 5, 5 and 2 tasks
}

TEST(RejectionSampleStage, SameSeedWritesTheSameFile) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = rejection_recipe(model, root / "run_a");
  run_stage(json, root / "a.json");
  json["output_dir"] = (root / "run_b").string();
  run_stage(json, root / "b.json");
  EXPECT_EQ(read_file(root / "run_a" / "sft.jsonl"), read_file(root / "run_b" / "sft.jsonl"));
  json["output_dir"] = (root / "run_c").string();
  json["seed"] = 2;
  run_stage(json, root / "c.json");
  EXPECT_NE(read_file(root / "run_a" / "sft.jsonl"), read_file(root / "run_c" / "sft.jsonl"));
}

TEST(RejectionSampleStage, UnknownRequiredRewardNamesTheKey) {
  const testing::TempFolder root;
  fs::path model = testing::write_tiny_policy(root / "model");
  nlohmann::json json = rejection_recipe(model, root / "run");
  json["rejection_sample"]["required_rewards"] = {"math_answer"};
  try {
    run_stage(json, root / "recipe.json");
    FAIL() << "expected a config error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("rejection_sample.required_rewards"),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find("regex_match"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace r1kit
