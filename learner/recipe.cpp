#include "learner/recipe.h"

#include <filesystem>

#include "common/error.h"

namespace r1kit {

const std::vector<std::string>& recipe_stages() {
  static const std::vector<std::string> stages = {"pretrain", "sft", "reward_model",
                                                  "grpo", "ppo", "rejection_sample"};
  return stages;
}

void Recipe::visit(ConfigVisitor& v) {
  v.field("stage", stage, {.choices = recipe_stages(), .required = true});
  v.field("seed", seed, {.min = 0.0});
  v.field("output_dir", output_dir);
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides,
                   nlohmann::json* resolved) {
  nlohmann::json json = read_json_file(path);
  for (const auto& assignment : overrides) apply_override(json, assignment);
  Recipe recipe = read_config<Recipe>(json, path);
  if (recipe.output_dir.empty()) {
    recipe.output_dir = "runs/" + std::filesystem::path(path).stem().string();
  }
  if (resolved) *resolved = write_config(recipe);
  return recipe;
}

}  // namespace r1kit
