// The keys a TRL or verl user writes into an r1kit recipe: each is either an
// r1kit key, or an unknown-key error whose hint names the key that does the
// same (or the flag, for resume_from_checkpoint). And the cross-section rules
// that used to pass silently.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/config.h"
#include "common/error.h"
#include "learner/recipe.h"

namespace r1kit {
namespace {

// A small valid GRPO recipe with `extra` merged in at the top level.
nlohmann::json recipe_with(const nlohmann::json& extra) {
  nlohmann::json recipe = {{"stage", "grpo"},
                           {"model", {{"path", "some/model"}}},
                           {"environment", {{"name", "addition"}}},
                           {"rewards", {{{"name", "math_answer"}}}}};
  recipe.merge_patch(extra);
  return recipe;
}

std::string parse_error(const nlohmann::json& recipe) {
  try {
    parse_recipe(recipe, "recipe.json", "test");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig) << e.what();
    return e.what();
  }
  return "";
}

TEST(RecipeKeyHints, TrlNamesGetTheKeyThatDoesTheSame) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"learning_rate", "\"optimizer.learning_rate\""},
      {"beta", "\"grpo.beta\""},
      {"kl_coef", "\"grpo.beta\""},
      {"num_generations", "\"grpo.num_generations\""},
      {"max_completion_length", "\"grpo.max_completion_length\""},
      {"max_steps", "\"trainer.max_steps\""},
      {"reward_weights", "\"rewards[i].weight\""},
      {"resume_from_checkpoint", "the --resume flag of `r1kit train`"},
      {"log_completions", "\"trainer.log_completions\""},
  };
  for (const auto& [key, hint] : cases) {
    const std::string message = parse_error(recipe_with({{key, 1}}));
    EXPECT_NE(message.find("recipe.json: " + key + ": unknown key"), std::string::npos) << message;
    EXPECT_NE(message.find(hint), std::string::npos) << key << ": " << message;
  }
  // Inside the wrong section too.
  const std::string message = parse_error(recipe_with({{"grpo", {{"learning_rate", 1e-5}}}}));
  EXPECT_NE(message.find("grpo.learning_rate: unknown key (did you mean "), std::string::npos)
      << message;
  EXPECT_NE(message.find("\"optimizer.learning_rate\""), std::string::npos) << message;
}

TEST(RecipeKeyHints, EveryRenamedKeyPointsAtARealKey) {
  // Every section at its defaults, and one reward (for rewards[].weight).
  Recipe recipe = parse_recipe(recipe_with(nlohmann::json::object()), "recipe.json", "test");
  const std::vector<std::string> known = leaf_key_paths(write_config(recipe));
  for (std::string target : renamed_recipe_key_targets()) {
    if (size_t item = target.find("[i]"); item != std::string::npos) target.replace(item, 3, "[]");
    const bool found =
        target == "rewards" || std::find(known.begin(), known.end(), target) != known.end();
    EXPECT_TRUE(found) << target << " is not a recipe key";
  }
}

TEST(RecipeKeyHints, ModelPathAndConfigTogetherIsAnError) {
  const std::string message =
      parse_error(recipe_with({{"model", {{"path", "m"}, {"config", {{"hidden_size", 8}}}}}}));
  EXPECT_NE(message.find("recipe.json: model.config:"), std::string::npos) << message;
  EXPECT_NE(message.find("give one of the two"), std::string::npos) << message;
}

TEST(RecipeKeyHints, AMissingPluginNamesTheKeyAndThePath) {
  nlohmann::json recipe = recipe_with({{"plugins", {"no/such/libplugin.so"}}});
  try {
    load_recipe_plugins(recipe, "/recipes", "recipe.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("recipe.json: plugins[0]: /recipes/no/such/libplugin.so"),
              std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace r1kit
