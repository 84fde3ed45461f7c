#include "learner/grpo_config.h"

#include <algorithm>
#include <string>
#include <vector>

#include "learner/advantages.h"
#include "learner/sampling_recipe.h"
#include "rollout/logits_processor.h"

namespace r1kit {

void FilterGroupsConfig::visit(ConfigVisitor& v) {
  v.field("enable", enable);
  v.field("max_num_gen_batches", max_num_gen_batches, {.min = 0.0});
}

void GrpoConfig::visit(ConfigVisitor& v) {
  v.field("num_generations", num_generations, {.min = 1.0});
  v.field("max_prompt_length", max_prompt_length, {.min = 1.0});
  v.field("max_completion_length", max_completion_length, {.min = 1.0});
  v.field("temperature", temperature, {.min = 0.0});
  v.field("top_p", top_p, {.min = 0.0, .max = 1.0, .min_exclusive = true});
  v.field("top_k", top_k, {.min = 0.0});
  v.field("min_p", min_p, {.min = 0.0, .max = 1.0});
  v.field("repetition_penalty", repetition_penalty, {.min = 0.0, .min_exclusive = true});
  v.field("banned_token_ids", banned_token_ids, {.min = 0.0});
  v.field("mask_padded_vocab", mask_padded_vocab);
  v.field("logits_processors", logits_processors);
  v.field("stop_strings", stop_strings);
  v.field("max_turns", max_turns, {.min = 0.0});

  v.field("beta", beta, {.min = 0.0});
  v.field("epsilon", epsilon, {.min = 0.0, .max = 1.0});
  v.field("epsilon_high", epsilon_high, {.min = -1.0});
  v.field("num_iterations", num_iterations, {.min = 1.0});
  v.field("num_mini_batches", num_mini_batches, {.min = 1.0});
  v.field("scale_rewards", scale_rewards, {.choices = {"group", "batch", "none"}});
  v.field("loss_type", loss_type, {.choices = {"grpo", "bnpo", "dr_grpo", "dapo"}});
  v.field("importance_sampling_level", importance_sampling_level,
          {.choices = {"token", "sequence"}});
  v.field("mask_truncated_completions", mask_truncated_completions);
  v.field("kl_loss_type", kl_loss_type, {.choices = {"k1", "k2", "k3", "kl", "mse", "low_var_kl"}});
  v.field("skip_zero_advantage", skip_zero_advantage);
  v.field("clip_ratio_c", clip_ratio_c, {.min = 0.0});
  v.field("entropy_coeff", entropy_coeff);
  v.field("ref_model_sync_steps", ref_model_sync_steps, {.min = 0.0});
  v.section("filter_groups", filter_groups);

  v.field("adv_estimator", adv_estimator);
  v.field("gamma", gamma, {.min = 0.0, .max = 1.0});
  v.field("lam", lam, {.min = 0.0, .max = 1.0});
  v.field("cliprange_value", cliprange_value, {.min = 0.0});
  v.field("vf_coef", vf_coef, {.min = 0.0});

  // Cross-field checks, once every field is read.
  std::vector<std::string> estimators = group_advantage_estimators();
  estimators.push_back("gae");
  if (std::find(estimators.begin(), estimators.end(), adv_estimator) == estimators.end()) {
    std::string known;
    for (const auto& name : estimators) known += (known.empty() ? "" : ", ") + name;
    v.fail("adv_estimator", "unknown estimator \"" + adv_estimator + "\"; known: " + known);
  }
  if (epsilon_high >= 0.0 && epsilon_high < epsilon) {
    v.fail("epsilon_high", "must be >= epsilon (" + std::to_string(epsilon) +
                               ") or -1 (= epsilon), got " + std::to_string(epsilon_high));
  }
  if (epsilon_high < 0.0 && epsilon_high != -1.0) {
    v.fail("epsilon_high", "must be >= 0, or -1 for the same value as epsilon, got " +
                               std::to_string(epsilon_high));
  }
  if (clip_ratio_c != 0.0 && clip_ratio_c <= 1.0) {
    v.fail("clip_ratio_c",
           "the dual-clip constant must be > 1 (0 = off), got " + std::to_string(clip_ratio_c));
  }
  if ((adv_estimator == "grpo" || adv_estimator == "rloo") && num_generations < 2) {
    v.fail("num_generations", "adv_estimator " + adv_estimator +
                                  " compares completions of one prompt and needs at least 2, got " +
                                  std::to_string(num_generations));
  }
  for (const auto& stop : stop_strings) {
    if (stop.empty()) v.fail("stop_strings", "a stop string must not be empty");
  }
  if (std::string problem = logits_processor_order_problem(rollout_sampling_params(*this));
      !problem.empty()) {
    v.fail("logits_processors", problem);
  }
  if (filter_groups.enable && num_generations < 2) {
    v.fail("filter_groups",
           "dynamic sampling drops groups of equal rewards and needs num_generations >= 2");
  }
}

std::string GrpoConfig::loss_aggregation() const {
  if (loss_type == "grpo") return "seq_mean_token_mean";
  if (loss_type == "dr_grpo") return "seq_mean_token_sum_norm";
  return "token_mean";  // dapo, bnpo: with global token counts the two are the same
}

std::string GrpoConfig::kl_estimator() const {
  if (kl_loss_type == "kl") return "k1";
  if (kl_loss_type == "mse") return "k2";
  if (kl_loss_type == "low_var_kl") return "k3";
  return kl_loss_type;
}

}  // namespace r1kit
