// Shared by the learner tests: a GRPO recipe on a tiny policy (see
// tests/support/tiny_model.h) that trains in seconds (regex_match rewards the
// character '7'), and a one-process trainer built from such a recipe.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/run_dir.h"
#include "learner/distributed.h"
#include "learner/grpo_trainer.h"
#include "learner/recipe.h"
#include "tests/support/temp_folder.h"
#include "tests/support/tiny_model.h"

namespace r1kit::testing {

inline nlohmann::json tiny_grpo_recipe(const std::filesystem::path& model,
                                       const std::filesystem::path& run) {
  return {
      {"stage", "grpo"},
      {"seed", 1},
      {"output_dir", run.string()},
      {"model", {{"path", model.string()}}},
      {"environment",
       {{"name", "addition"}, {"options", {{"digits", 1}}}, {"prompt_template", "plain"}}},
      {"rewards", {{{"name", "regex_match"}, {"options", {{"pattern", "7"}, {"mode", "count"}}}}}},
      {"grpo", {{"num_generations", 8}, {"max_completion_length", 8}, {"max_prompt_length", 32}}},
      {"optimizer", {{"learning_rate", 0.01}, {"lr_scheduler_type", "constant"}}},
      {"trainer",
       {{"max_steps", 4}, {"prompts_per_step", 4}, {"eval_samples", 4}, {"log_completions", 1}}}};
}

// `json` written to `path` and loaded as a recipe.
inline Recipe write_and_load_recipe(const nlohmann::json& json, const std::filesystem::path& path) {
  std::ofstream(path) << json.dump(2);
  return load_recipe(path.string(), {});
}

// A one-process GrpoTrainer on `json` (written to root/recipe.json) with the
// recipe, run folder and process group it refers to.
struct TrainerOnRecipe {
  TrainerOnRecipe(const nlohmann::json& json, const std::filesystem::path& root)
      : recipe(write_and_load_recipe(json, root / "recipe.json")),
        run_dir(recipe.output_dir),
        distributed(Distributed::single()),
        trainer(recipe, run_dir, *distributed) {}

  Recipe recipe;
  RunDir run_dir;
  std::unique_ptr<Distributed> distributed;
  GrpoTrainer trainer;
};

}  // namespace r1kit::testing
