#include "learner/recipe.h"

#include <filesystem>
#include <map>

#include "common/error.h"
#include "common/plugin.h"
#include "learner/stage.h"
#include "policy/model_source.h"
#include "rollout/rollout_dtype.h"

namespace r1kit {

namespace {

// Names a TRL (GRPOConfig / TrainingArguments) or verl user reaches for that
// are not r1kit keys of the same name anywhere in the recipe; the hint says
// where the setting lives. Keys whose name r1kit shares (beta, epsilon,
// num_generations, max_completion_length, ...) are found by recipe_key_hint.
const std::map<std::string, std::string>& renamed_keys() {
  static const std::map<std::string, std::string> renamed = {
      {"lr", "optimizer.learning_rate"},
      {"kl_coef", "grpo.beta"},
      {"kl_beta", "grpo.beta"},
      {"kl_loss_coef", "grpo.beta"},
      {"init_kl_coef", "grpo.beta"},
      {"cliprange", "grpo.epsilon"},
      {"clip_ratio", "grpo.epsilon"},
      {"epsilon_low", "grpo.epsilon"},
      {"n_samples_per_prompt", "grpo.num_generations"},
      {"rollout_n", "grpo.num_generations"},
      {"group_size", "grpo.num_generations"},
      {"max_new_tokens", "grpo.max_completion_length"},
      {"response_length", "grpo.max_completion_length"},
      {"model_name_or_path", "model.path"},
      {"per_device_train_batch_size",
       "trainer.prompts_per_step (prompts per step; each gets grpo.num_generations completions)"},
      {"train_batch_size", "trainer.prompts_per_step"},
      {"gradient_accumulation_steps",
       "trainer.max_tokens_per_microbatch (a step's batch is split by tokens, not by count)"},
      {"steps_per_generation", "grpo.num_mini_batches"},
      {"ppo_epochs", "grpo.num_iterations"},
      {"sync_ref_model", "grpo.ref_model_sync_steps"},
      {"vllm_importance_sampling_correction", "grpo.rollout_correction.mode"},
      {"vllm_importance_sampling_cap", "grpo.rollout_correction.cap"},
      {"reward_funcs", "rewards (a list of {\"name\", \"weight\", \"options\"})"},
      {"reward_weights", "rewards[i].weight (each reward carries its own weight)"},
      {"resume_from_checkpoint", "resuming is the --resume flag of `r1kit train`"},
      {"logging_steps", "every step is logged to metrics.jsonl; see trainer.log_completions"},
      {"eval_strategy", "trainer.eval_steps"},
      {"save_strategy", "trainer.save_steps"},
      {"report_to", "trainer.tensorboard"},
      {"use_vllm", "r1kit generates with its own engine; see trainer.rollout_dtype"},
  };
  return renamed;
}

// The hint for an unknown recipe key: a renamed TRL/verl key, or the same
// key name in another section ("learning_rate" -> "optimizer.learning_rate").
std::string recipe_key_hint(const std::string& key_path) {
  const size_t dot = key_path.rfind('.');
  const std::string key = dot == std::string::npos ? key_path : key_path.substr(dot + 1);
  if (auto found = renamed_keys().find(key); found != renamed_keys().end()) {
    // "section.key", "section.key (why)", or a sentence.
    const std::string& target = found->second;
    const size_t space = target.find(' ');
    const std::string path = target.substr(0, space);
    if (path.find('.') == std::string::npos && path != "rewards") return target;
    std::string text = "did you mean \"" + path + "\"?";
    if (space != std::string::npos) text += " " + target.substr(space + 1);
    return text;
  }
  static const std::vector<std::string> known = [] {
    Recipe defaults;
    return leaf_key_paths(write_config(defaults));
  }();
  std::vector<std::string> matches;
  for (const std::string& path : known) {
    const size_t last = path.rfind('.');
    if ((last == std::string::npos ? path : path.substr(last + 1)) == key && path != key_path)
      matches.push_back(path);
  }
  if (matches.empty()) return "";
  std::string text = "did you mean \"" + matches[0] + "\"";
  for (size_t i = 1; i < matches.size(); ++i) text += " or \"" + matches[i] + "\"";
  return text + "?";
}

}  // namespace

std::vector<std::string> renamed_recipe_key_targets() {
  std::vector<std::string> targets;
  for (const auto& [_, target] : renamed_keys()) {
    const std::string path = target.substr(0, target.find(' '));
    if (path.find('.') != std::string::npos || path == "rewards") targets.push_back(path);
  }
  return targets;
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
  v.field("stage", stage, {.choices = registered_stages(), .required = true});
  v.field("seed", seed, {.min = 0.0});
  v.field("output_dir", output_dir);
  v.field("plugins", plugins);
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
  nlohmann::json json = read_json_file(path, /*reject_duplicate_keys=*/true);
  for (const auto& assignment : overrides) apply_override(json, assignment);
  load_recipe_plugins(json, std::filesystem::path(path).parent_path(), path);
  return parse_recipe(json, path, std::filesystem::path(path).stem().string(), resolved);
}

void load_recipe_plugins(nlohmann::json& json, const std::filesystem::path& base_folder,
                         const std::string& source) {
  if (!json.is_object() || !json.contains("plugins")) return;
  nlohmann::json& plugins = json["plugins"];
  if (!plugins.is_array()) throw_config_error(source + ": plugins: expected a list of paths");
  for (size_t i = 0; i < plugins.size(); ++i) {
    const std::string key = source + ": plugins[" + std::to_string(i) + "]";
    if (!plugins[i].is_string()) throw_config_error(key + ": expected a path");
    const std::string path = resolve_plugin_path(plugins[i].get<std::string>(), base_folder);
    try {
      load_plugin(path);
    } catch (const Error& error) {
      throw with_context(error, key);
    }
    plugins[i] = path;
  }
}

Recipe parse_recipe(const nlohmann::json& json, const std::string& source,
                    const std::string& default_name, nlohmann::json* resolved) {
  Recipe recipe = read_config<Recipe>(json, source, recipe_key_hint);
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
