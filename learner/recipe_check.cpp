#include "learner/recipe_check.h"

#include <filesystem>
#include <map>

#include "common/error.h"
#include "environments/environment.h"
#include "environments/prompt_template.h"
#include "learner/grpo_trainer.h"
#include "policy/model_source.h"
#include "policy/tokenizer.h"
#include "rewards/reward_set.h"

namespace r1kit {
namespace {

namespace fs = std::filesystem;

// True when some string in `json` is a path under `produced_under` that does
// not exist yet.
bool names_a_produced_path(const nlohmann::json& json, const std::string& produced_under) {
  if (produced_under.empty()) return false;
  if (json.is_string()) {
    const std::string text = json.get<std::string>();
    return text.starts_with(produced_under) && !fs::exists(text);
  }
  if (json.is_object() || json.is_array()) {
    for (const auto& item : json) {
      if (names_a_produced_path(item, produced_under)) return true;
    }
  }
  return false;
}

void check_file(const std::string& path, const std::string& key_path, const Recipe& recipe,
                const std::string& produced_under) {
  if (path.empty() || names_a_produced_path(path, produced_under)) return;
  if (!fs::exists(path))
    throw_io_error(recipe.source + ": " + key_path + ": " + path + " does not exist");
}

// The sections each built-in stage needs (a plugin's stage checks its own when it runs).
void require_stage_sections(const Recipe& recipe) {
  static const std::map<std::string, std::vector<std::string>> sections = {
      {"pretrain", {"model", "pretrain"}},
      {"sft", {"model", "sft"}},
      {"reward_model", {"model", "reward_model"}},
      {"grpo", {"model", "environment", "rewards"}},
      {"ppo", {"model", "environment", "rewards"}},
      {"rejection_sample", {"model", "environment", "rewards"}},
  };
  if (auto found = sections.find(recipe.stage); found != sections.end())
    recipe.require(found->second);
  if (recipe.stage == "grpo" || recipe.stage == "ppo") validate_rl_recipe(recipe, 1);
}

}  // namespace

void check_recipe_resolves(const Recipe& recipe, const std::string& produced_under) {
  require_stage_sections(recipe);

  ModelSource model = recipe.model;
  if (!names_a_produced_path(write_config(model), produced_under)) {
    check_model_source(recipe.model, recipe.source);
    const std::string tokenizer =
        recipe.model.tokenizer.empty() ? recipe.model.path : recipe.model.tokenizer;
    try {
      load_tokenizer(tokenizer);
    } catch (const Error& error) {
      throw with_context(error, recipe.source + ": model.tokenizer");
    }
  }

  check_file(recipe.pretrain.data, "pretrain.data", recipe, produced_under);
  check_file(recipe.sft.train_file, "sft.train_file", recipe, produced_under);
  check_file(recipe.sft.eval_file, "sft.eval_file", recipe, produced_under);
  check_file(recipe.reward_model.train_file, "reward_model.train_file", recipe, produced_under);
  check_file(recipe.reward_model.eval_file, "reward_model.eval_file", recipe, produced_under);

  if (recipe.has("environment")) {
    const std::string source = recipe.source + ": environment";
    if (!names_a_produced_path(recipe.environment.options, produced_under))
      make_environment(recipe.environment.name, recipe.environment.options, source);
    make_prompt_template(recipe.environment.prompt_template, recipe.environment.system_prompt,
                         source + ".prompt_template");
  }
  std::vector<RewardSpec> rewards;
  for (const RewardSpec& spec : recipe.rewards) {
    if (!names_a_produced_path(spec.options, produced_under)) rewards.push_back(spec);
  }
  if (!rewards.empty()) RewardSet built(rewards, recipe.source);
}

}  // namespace r1kit
