#include "learner/recipe.h"

#include <filesystem>

#include "common/error.h"
#include "policy/model_source.h"
#include "rollout/rollout_dtype.h"

namespace r1kit {

const std::vector<std::string>& recipe_stages() {
  static const std::vector<std::string> stages = {"pretrain", "sft", "reward_model",
                                                  "grpo",     "ppo", "rejection_sample"};
  return stages;
}

void TrainerConfig::visit(ConfigVisitor& v) {
  v.field("max_steps", max_steps, {.min = 0.0});
  v.field("prompts_per_step", prompts_per_step, {.min = 1.0});
  v.field("max_tokens_per_microbatch", max_tokens_per_microbatch, {.min = 1.0});
  v.field("rollout_batch_size", rollout_batch_size, {.min = 1.0});
  v.field("num_rollout_workers", num_rollout_workers, {.min = 0.0});
  v.field("num_reward_workers", num_reward_workers, {.min = 0.0});
  v.field("log_completions", log_completions, {.min = 0.0});
  v.field("eval_steps", eval_steps, {.min = 0.0});
  v.field("eval_samples", eval_samples, {.min = 0.0});
  v.field("pass_at_k", pass_at_k, {.min = 0.0});
  v.field("accuracy_reward", accuracy_reward);
  v.field("save_steps", save_steps, {.min = 0.0});
  v.field("save_total_limit", save_total_limit, {.min = 0.0});
  v.field("tensorboard", tensorboard);
  v.field("bf16", bf16);
  v.field("shared_prompt_forward", shared_prompt_forward);
  v.field("gradient_checkpointing", gradient_checkpointing);
  v.field("rollout_dtype", rollout_dtype, {.choices = {"auto", "float32", "bfloat16"}});
  v.field("max_staleness", max_staleness, {.min = 0.0});
  v.field("rollout_threads", rollout_threads, {.min = 0.0});
  v.field("learner_threads", learner_threads, {.min = 0.0});
}

void Recipe::visit(ConfigVisitor& v) {
  v.field("stage", stage, {.choices = recipe_stages(), .required = true});
  v.field("seed", seed, {.min = 0.0});
  v.field("output_dir", output_dir);
  v.section("model", model);
  v.section("optimizer", optimizer);
  v.section("trainer", trainer);
  v.section("grpo", grpo);
  v.section("environment", environment);
  v.list("rewards", rewards);
  v.section("pretrain", pretrain);
  v.section("sft", sft);
  v.section("reward_model", reward_model);
  v.section("rejection_sample", rejection_sample);
}

void Recipe::require(const std::vector<std::string>& keys) const {
  for (const auto& key : keys) {
    if (!has(key))
      throw_config_error(source + ": " + key + ": stage \"" + stage + "\" needs this section");
  }
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides,
                   nlohmann::json* resolved) {
  nlohmann::json json = read_json_file(path);
  for (const auto& assignment : overrides) apply_override(json, assignment);
  return parse_recipe(json, path, std::filesystem::path(path).stem().string(), resolved);
}

Recipe parse_recipe(const nlohmann::json& json, const std::string& source,
                    const std::string& default_name, nlohmann::json* resolved) {
  Recipe recipe = read_config<Recipe>(json, source);
  recipe.source = source;
  if (json.is_object()) {
    for (const auto& [key, _] : json.items()) recipe.present_.insert(key);
  }
  if (recipe.output_dir.empty()) recipe.output_dir = "runs/" + default_name;
  // The defaults that depend on the machine or on other sections, settled once.
  recipe.trainer.rollout_dtype =
      resolve_rollout_dtype(recipe.trainer.rollout_dtype, resolve_device(recipe.model.device));
  RolloutCorrectionConfig& correction = recipe.grpo.rollout_correction;
  if (correction.mode == "auto") {
    const bool off_policy =
        recipe.trainer.rollout_dtype != "float32" || recipe.trainer.max_staleness > 0;
    correction.mode = off_policy ? "tis" : "none";
  }
  if (resolved) *resolved = write_config(recipe);
  return recipe;
}

}  // namespace r1kit
