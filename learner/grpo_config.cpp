#include "learner/grpo_config.h"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/registry.h"
#include "learner/advantages.h"
#include "learner/kl_estimator.h"
#include "learner/loss_aggregation.h"
#include "learner/policy_objective.h"
#include "learner/sampling_recipe.h"
#include "rollout/logits_processor.h"

namespace r1kit {
namespace {

// TRL's loss_type names and the aggregation each stands for (dapo and bnpo are
// the same with global token counts).
const std::map<std::string, std::string>& loss_type_aggregations() {
  static const std::map<std::string, std::string> aliases = {
      {"grpo", "seq_mean_token_mean"},
      {"bnpo", "token_mean"},
      {"dr_grpo", "seq_mean_token_sum_norm"},
      {"dapo", "token_mean"},
      {"cispo", "token_mean"},
  };
  return aliases;
}

// TRL's loss_type names that also choose the per-token objective; every other
// loss_type is the clipped surrogate's.
const std::map<std::string, std::string>& loss_type_objectives() {
  static const std::map<std::string, std::string> objectives = {{"cispo", "cispo"}};
  return objectives;
}

// verl's kl_loss_type names and the estimator each stands for.
const std::map<std::string, std::string>& kl_loss_type_estimators() {
  static const std::map<std::string, std::string> aliases = {
      {"kl", "k1"},
      {"mse", "k2"},
      {"low_var_kl", "k3"},
  };
  return aliases;
}

// `name` when it is not an alias, else what the alias stands for.
std::string resolve_alias(const std::map<std::string, std::string>& aliases,
                          const std::string& name) {
  auto found = aliases.find(name);
  return found == aliases.end() ? name : found->second;
}

// Fails at `key` with the registry's unknown-name message (aliases among the
// known names) unless `name` is an alias or registered.
template <class Factory>
void check_registered(ConfigVisitor& v, std::string_view key, const std::string& name,
                      const std::map<std::string, std::string>& aliases,
                      const Registry<Factory>& registry) {
  if (aliases.count(name) > 0 || registry.contains(name)) return;
  std::vector<std::string> known = registry.names();
  for (const auto& alias : aliases) known.push_back(alias.first);
  std::sort(known.begin(), known.end());
  v.fail(key, unknown_name_message(registry.kind(), name, known));
}

}  // namespace

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
  v.field("loss_type", loss_type);
  check_registered(v, "loss_type", loss_type, loss_type_aggregations(),
                   loss_aggregation_registry());
  v.field("policy_objective", policy_objective);
  if (!policy_objective.empty()) {
    check_registered(v, "policy_objective", policy_objective, {}, policy_objective_registry());
  }
  v.field("importance_sampling_level", importance_sampling_level,
          {.choices = {"token", "sequence"}});
  v.field("mask_truncated_completions", mask_truncated_completions);
  v.field("kl_loss_type", kl_loss_type);
  check_registered(v, "kl_loss_type", kl_loss_type, kl_loss_type_estimators(),
                   kl_estimator_registry());
  v.field("skip_zero_advantage", skip_zero_advantage);
  v.field("clip_ratio_c", clip_ratio_c, {.min = 0.0});
  v.field("entropy_coeff", entropy_coeff);
  v.field("ref_model_sync_steps", ref_model_sync_steps, {.min = 0.0});
  v.section("filter_groups", filter_groups);
  v.section("rollout_correction", rollout_correction);

  v.field("adv_estimator", adv_estimator);
  v.field("gamma", gamma, {.min = 0.0, .max = 1.0});
  v.field("lam", lam, {.min = 0.0, .max = 1.0});
  v.field("cliprange_value", cliprange_value, {.min = 0.0});
  v.field("vf_coef", vf_coef, {.min = 0.0});

  // Cross-field checks, once every field is read.
  if (!advantage_estimator_registry().contains(adv_estimator)) {
    v.fail("adv_estimator",
           unknown_name_message(advantage_estimator_registry().kind(), adv_estimator,
                                advantage_estimator_registry().names()));
  }
  if (epsilon_high >= 0.0 && epsilon_high < epsilon) {
    v.fail("epsilon_high", "must be >= epsilon (" + std::to_string(epsilon) +
                               ") or -1 (= epsilon), got " + std::to_string(epsilon_high));
  }
  if (epsilon_high < 0.0 && epsilon_high != -1.0) {
    v.fail("epsilon_high", "must be >= 0, or -1 for the same value as epsilon, got " +
                               std::to_string(epsilon_high));
  }
  if (objective() == "cispo" && epsilon_high < 0.0) {
    v.fail("epsilon_high",
           "the cispo objective clips the importance weight at epsilon_high itself (TRL; "
           "ScaleRL's epsilon_max, 5.0 recommended): set it");
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
  return resolve_alias(loss_type_aggregations(), loss_type);
}

std::string GrpoConfig::objective() const {
  if (!policy_objective.empty()) return policy_objective;
  auto found = loss_type_objectives().find(loss_type);
  return found == loss_type_objectives().end() ? "clipped_surrogate" : found->second;
}

std::string GrpoConfig::kl_estimator() const {
  return resolve_alias(kl_loss_type_estimators(), kl_loss_type);
}

}  // namespace r1kit
