// Rollout correction: the importance weight w = pi_learner / pi_rollout of each
// sampled token, which corrects for a rollout engine that samples from slightly
// other probabilities (bfloat16, stale weights) than the learner computes, and
// the metrics that measure that gap. Pure functions and plain data; any thread.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "common/config.h"

namespace r1kit {

class StepMetrics;

// The recipe's grpo.rollout_correction (verl's algorithm.rollout_correction:
// rollout_is / rollout_rs; TRL's vllm_importance_sampling_*). With a mode other
// than none the PPO ratio's pi_old becomes the learner's own log-probs of the
// sampled tokens (decoupled PPO, Hilton et al. 2021) and the rollout's enter
// only the weight.
struct RolloutCorrectionConfig {
  // none: pi_old = the rollout's log-probs, no weight (metrics only);
  // tis: truncated importance sampling, each token's objective times min(w, cap)
  // (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL");
  // mask: tokens (or, at sequence level, whole rows) whose w leaves [1/cap, cap]
  // get weight 0, the others weight 1 (verl's rollout_rs).
  // auto (the default): tis when the rollouts run in bfloat16 or
  // asynchronously, none otherwise; a recipe settles it when it loads.
  std::string mode = "auto";
  // token: w = exp(logp_learner - logp_rollout) per token; sequence: the row's
  // geometric mean exp(mean_t(logp_learner - logp_rollout)) over its loss tokens
  // (verl's "geometric"), the same for every token of the row.
  std::string level = "token";
  // C, > 1: the truncation of tis and the band [1/C, C] of mask (verl's
  // rollout_is_threshold default; TRL's vllm_importance_sampling_cap is 3.0).
  double cap = 2.0;

  void visit(ConfigVisitor& v);
  bool enabled() const { return mode == "tis" || mode == "mask"; }
};

// Sums over the loss tokens (and rows) of a micro-batch: added over
// micro-batches and ranks they give the step's metrics exactly; the two maxima
// combine as maxima.
struct RolloutCorrectionSums {
  double tokens = 0.0;          // loss tokens measured
  double kl = 0.0;              // k3 estimate of KL(rollout || learner) (verl's k3_kl), summed
  double sequences = 0.0;       // rows with at least one loss token
  double ppl_ratio = 0.0;       // sum over rows of training_ppl / rollout_ppl (verl's ppl_ratio)
  double masked = 0.0;          // loss tokens whose weight mask set to 0
  double weight_max = 0.0;      // largest weight the loss used; with mode none, w's largest
  double weight_max_raw = 0.0;  // largest w before truncation or masking

  RolloutCorrectionSums& operator+=(const RolloutCorrectionSums& other);
  // rollout_corr/kl, ppl_ratio, weight_max, weight_max_raw, masked_fraction.
  void write(StepMetrics& metrics) const;
};

struct RolloutCorrection {
  // (B, T) detached, 0 off the mask: the factor on each token's objective
  // loss; undefined with mode none.
  at::Tensor weights;
  // The metrics' sums, held as a (7) double tensor on the log-probs' device so
  // the caller reads them with its own metrics in one device sync; see
  // rollout_correction_sums().
  at::Tensor totals;
};

// The weights and metrics of one micro-batch: learner_logprobs (B, T) the
// learner's log-probs of the sampled tokens (pi_old of decoupled PPO),
// rollout_logprobs (B, T) the rollout engine's, mask (B, T) 1 = loss token.
// Log-weights are clamped to [-20, 20] before exp (verl). Nothing requires grad.
RolloutCorrection rollout_correction(const at::Tensor& learner_logprobs,
                                     const at::Tensor& rollout_logprobs, const at::Tensor& mask,
                                     const RolloutCorrectionConfig& config);

// RolloutCorrection::totals (on the CPU) as sums.
RolloutCorrectionSums rollout_correction_sums(const at::Tensor& totals);

}  // namespace r1kit
