// The RL algorithm knobs of a GRPO / PPO recipe (its `grpo` section): group
// size, clipping, KL, loss aggregation, advantage estimator, epochs and
// mini-batches. Names and meanings are TRL's GRPOConfig where TRL has the knob,
// verl's where it does not. Plain data: read once through visit(), read-only after.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "learner/rollout_correction.h"

namespace r1kit {

// DAPO dynamic sampling (Yu et al. 2025; verl's algorithm.filter_groups): groups
// whose rewards are all equal carry no signal and are dropped; generation
// continues until the batch is full.
struct FilterGroupsConfig {
  // Drop zero-reward-spread groups and generate more.
  bool enable = false;
  // Give up after this many generation rounds in one step; 0 = no cap (verl).
  int64_t max_num_gen_batches = 10;

  void visit(ConfigVisitor& v);
};

struct GrpoConfig {
  // --- sampling (TRL GRPOConfig) ---------------------------------------------------------------
  // G, completions per prompt (DeepSeekMath GRPO, Shao et al. 2024; TRL).
  int64_t num_generations = 8;
  // Prompt tokens kept, left-truncated (TRL).
  int64_t max_prompt_length = 512;
  // Completion budget in tokens; also Dr. GRPO's loss normaliser (TRL).
  int64_t max_completion_length = 256;
  // Sampling temperature; the learner's log-probs divide the logits by it too (TRL).
  double temperature = 1.0;
  // Nucleus filter (Holtzman et al. 2019); 1.0 = off (TRL).
  double top_p = 1.0;
  // Top-k filter; 0 = off (TRL: None).
  int64_t top_k = 0;
  // Min-p filter (Nguyen et al. 2024); 0 = off (TRL: None).
  double min_p = 0.0;
  // Logits of tokens already in the prompt or completion are divided by it when
  // positive, multiplied when negative (CTRL, Keskar et al. 2019); 1.0 = off (TRL).
  double repetition_penalty = 1.0;
  // Token ids never sampled (logit -inf); empty = none (transformers: suppress_tokens).
  std::vector<int64_t> banned_token_ids;
  // Never sample ids >= the tokenizer's vocabulary size, for a model vocabulary
  // padded past it. The engine turns it on by itself whenever the model's
  // vocabulary is larger than the tokenizer's (vLLM cuts them off always).
  bool mask_padded_vocab = false;
  // The logits processors by name, in order (rollout/logits_processor.h); must list
  // temperature; empty = repetition_penalty, banned_token_ids, mask_padded_vocab,
  // temperature, top_k, top_p, min_p (vLLM: logits_processors).
  std::vector<std::string> logits_processors;
  // A model turn ends at any of these strings (kept in the ids, e.g. "</tool>" for
  // a tool-calling environment); empty = end of sequence or budget only (vLLM's stop).
  std::vector<std::string> stop_strings;
  // Multi-turn environments: model turns per trajectory; 0 = until the environment
  // says done or max_completion_length (observations included) is spent (verl's
  // multi_turn.max_assistant_turns).
  int64_t max_turns = 0;

  // --- policy loss -----------------------------------------------------------------------------
  // KL(pi || ref) coefficient; 0 = no reference model is loaded (TRL; R1 used 0.001).
  double beta = 0.0;
  // Lower clip range: ratio >= 1 - epsilon (PPO, Schulman et al. 2017; TRL).
  double epsilon = 0.2;
  // Upper clip range; -1 = same as epsilon; DAPO's clip-higher uses 0.28 (Yu et al. 2025; TRL).
  double epsilon_high = -1.0;
  // mu, epochs over each rollout batch; the rollout log-probs are the old policy (TRL).
  int64_t num_iterations = 1;
  // Optimizer steps per epoch: the rollout batch is split into this many (PPO; verl).
  int64_t num_mini_batches = 1;
  // grpo advantages divide by the std of the group | batch | none (Dr. GRPO, Liu et al. 2025)
  // (TRL).
  std::string scale_rewards = "group";
  // Aggregation: grpo = seq_mean_token_mean, bnpo and dapo = token_mean, dr_grpo =
  // seq_mean_token_sum_norm (TRL; dapo is TRL's default now), or any registered
  // aggregation's own name (loss_aggregation.h); cispo = the cispo objective
  // (MiniMax-M1 2025) with token_mean (TRL).
  std::string loss_type = "dapo";
  // The per-token objective by its registered name (policy_objective.h):
  // clipped_surrogate (PPO), cispo, or a plugin's; "" = the one loss_type names
  // (cispo for cispo, else clipped_surrogate) (r1kit).
  std::string policy_objective;
  // token: one ratio per token; sequence: GSPO's length-normalised sequence ratio
  // (Zheng et al. 2025) (TRL).
  std::string importance_sampling_level = "token";
  // Completions cut at max_completion_length leave the loss (DAPO; TRL).
  bool mask_truncated_completions = false;
  // KL estimator (Schulman 2020, "Approximating KL Divergence"): k1, k2, k3 or any
  // registered estimator (kl_estimator.h); verl's kl, mse and low_var_kl are accepted
  // for k1, k2, k3 (verl).
  std::string kl_loss_type = "k3";
  // A completion whose advantage is exactly 0 (its whole group got one reward)
  // adds nothing to the loss or its gradient when beta and entropy_coeff are 0;
  // then the learner leaves it out of the forward and backward and still counts
  // its tokens in the loss's normaliser, so the update is the same. false = run
  // it anyway (TRL). Loss-side metrics (entropy, ratio, clip ratios) then cover
  // the completions that were run.
  bool skip_zero_advantage = true;
  // Dual clip (Ye et al. 2020) for negative advantages: the loss is at most -c * A;
  // 0 = off, else > 1 (verl).
  double clip_ratio_c = 3.0;
  // Entropy bonus: loss -= entropy_coeff * entropy; 0 = off (verl).
  double entropy_coeff = 0.0;
  // Copy the policy into the reference every N steps; 0 = never (TRL; R1 used 400).
  int64_t ref_model_sync_steps = 0;
  // DAPO dynamic sampling (verl).
  FilterGroupsConfig filter_groups;
  // Importance weights between the rollout engine and the learner (verl's
  // rollout_corr; TRL's vllm_importance_sampling_correction).
  RolloutCorrectionConfig rollout_correction;

  // --- advantages ------------------------------------------------------------------------------
  // grpo | rloo (Ahmadian et al. 2024) | reinforce_plus_plus (Hu 2025) | gae (Schulman et al.
  // 2016; needs a value model) (verl).
  std::string adv_estimator = "grpo";
  // GAE discount per token (verl).
  double gamma = 1.0;
  // GAE lambda (verl).
  double lam = 1.0;

  // --- value model (PPO with gae) --------------------------------------------------------------
  // Value clip around the rollout's values (PPO; TRL PPOConfig).
  double cliprange_value = 0.2;
  // Value loss = vf_coef * token_mean(max of the clipped and unclipped (V - R)^2);
  // 0.5 gives verl's value loss.
  double vf_coef = 0.5;

  void visit(ConfigVisitor& v);

  // epsilon_high with its sentinel resolved.
  double effective_epsilon_high() const { return epsilon_high < 0.0 ? epsilon : epsilon_high; }
  // The registered aggregation loss_type names (TRL's names resolved): token_mean,
  // seq_mean_token_mean, seq_mean_token_sum_norm or a plugin's.
  std::string loss_aggregation() const;
  // The registered objective: policy_objective, or the one loss_type implies.
  std::string objective() const;
  // kl_loss_type with verl's aliases resolved: k1, k2, k3 or a plugin's.
  std::string kl_estimator() const;
  bool uses_value_model() const { return adv_estimator == "gae"; }
  bool uses_reference_model() const { return beta != 0.0; }
};

}  // namespace r1kit
