// The policy-gradient loss of the GRPO family and PPO, and PPO's clipped value
// loss: per-token terms, then one aggregation over a GLOBAL normaliser so that
// micro-batches and ranks add up to the loss of the whole mini-batch. This is
// the plain reference implementation. The KL estimators (kl_estimator.h) and
// the aggregations (loss_aggregation.h) and the per-token objectives
// (policy_objective.h) are registries the recipe names; the rollout correction
// (rollout_correction.h) weighs the objective. Pure functions; any thread.
//
// Micro-batching and data parallel: the caller counts tokens and sequences of
// the whole mini-batch on all ranks once (count_loss_normalizer on each
// micro-batch, summed, then all-reduced), passes that same LossNormalizer to
// every micro-batch, calls backward() on each micro-batch's loss and
// all-reduces the gradients by SUM. The accumulated gradient is then exactly
// the gradient of the aggregated loss over the whole mini-batch.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "learner/grpo_config.h"
#include "learner/kl_estimator.h"
#include "learner/loss_aggregation.h"
#include "learner/rollout_correction.h"

namespace r1kit {

struct PolicyLossInputs {
  at::Tensor logprobs;      // (B, T) current policy, requires grad
  at::Tensor old_logprobs;  // (B, T) the behaviour policy that sampled (rollout log-probs)
  // (B, T) the learner's own log-probs of the sampled tokens before this step's
  // first optimiser step: pi_old of the ratio under grpo.rollout_correction;
  // undefined = logprobs.detach() (one epoch, one mini-batch: the same values).
  at::Tensor learner_old_logprobs;
  at::Tensor ref_logprobs;  // (B, T) frozen reference policy; undefined when beta == 0
  at::Tensor advantages;    // (B) per sequence, or (B, T) per token (GAE)
  at::Tensor mask;          // (B, T) float, 1 = token in the loss (completion, not a tool
                            // observation, not a masked truncated completion)
  at::Tensor entropy;       // (B, T) or undefined; differentiable when entropy_coeff != 0
};

// Sums over the masked tokens of one micro-batch: add them across micro-batches
// (and ranks) and divide by `tokens` for exact mini-batch means.
struct PolicyLossSums {
  double tokens = 0.0;         // masked tokens
  double clipped_low = 0.0;    // ratio < 1 - epsilon with A < 0 (TRL clip_ratio/low_mean)
  double clipped_high = 0.0;   // ratio > 1 + epsilon_high with A > 0 (TRL clip_ratio/high_mean)
  double clipped = 0.0;        // either (TRL clip_ratio/region_mean)
  double dual_clipped = 0.0;   // the dual clip bound the loss, A < 0 (verl pg_clipfrac_lower)
  double kl = 0.0;             // the configured KL estimator against the reference
  double entropy = 0.0;        // entropy (when given)
  double ratio = 0.0;          // importance ratio
  double approx_kl_old = 0.0;  // old_logprob - logprob, verl's ppo_kl

  PolicyLossSums& operator+=(const PolicyLossSums& other);
  double mean(double sum) const { return tokens > 0.0 ? sum / tokens : 0.0; }
};

struct PolicyLossOutput {
  at::Tensor loss;              // scalar, differentiable; a share of the mini-batch loss
  double clip_ratio_low = 0.0;  // means over this micro-batch's masked tokens
  double clip_ratio_high = 0.0;
  double clip_ratio = 0.0;
  double dual_clip_ratio = 0.0;
  double kl_mean = 0.0;       // 0 when beta == 0
  double entropy_mean = 0.0;  // 0 without entropy
  double ratio_mean = 0.0;
  PolicyLossSums sums;  // the token sums behind the means, to combine micro-batches exactly
  // The rollout correction's metrics (every mode): learner_old_logprobs against old_logprobs.
  RolloutCorrectionSums rollout;
};

// The policy objective config.objective() per token (policy_objective.h): by
// default the clipped surrogate (PPO, Schulman et al. 2017)
//   -min(r A, clip(r, 1 - epsilon, 1 + epsilon_high) A)        (DAPO clip-higher)
//   for A < 0 and clip_ratio_c > 0: min(that, -clip_ratio_c A)  (dual clip, Ye et al. 2020)
// times the rollout correction's weight (grpo.rollout_correction, when on), then
//   + beta * KL_k(pi || ref)                                    (k1, k2, k3; Schulman 2020)
//   - entropy_coeff * entropy
// then config.loss_aggregation() over `normalizer`. The ratio r = exp(logp - old),
// old = old_logprobs, or learner_old_logprobs under a rollout correction (decoupled
// PPO, Hilton et al. 2021), is per token, or per sequence with importance_sampling_level "sequence"
// (GSPO, Zheng et al. 2025): exp(mean_t(logp - old)) over the row's mask, in the
// stop-gradient form sg[s_i] * exp(logp - sg[logp]) (GSPO-token), whose value
// and gradient equal TRL's sequence ratio for per-sequence advantages. Log-ratios
// are clamped to [-20, 20] before exp (verl). Metrics are computed without grad.
PolicyLossOutput policy_loss(const PolicyLossInputs& inputs, const GrpoConfig& config,
                             const LossNormalizer& normalizer);

struct ValueLossOutput {
  at::Tensor loss;  // scalar, differentiable: vf_coef * token_mean(max(l1, l2))
  // Share of masked tokens where the clipped term was larger (verl's vf_clipfrac).
  double clip_fraction = 0.0;
  double tokens = 0.0;   // masked tokens of this micro-batch
  double clipped = 0.0;  // their clipped count
};

// PPO's clipped value loss (Schulman et al. 2017; verl compute_value_loss):
//   v_clip = old_values + clamp(values - old_values, -cliprange_value, cliprange_value)
//   l = max((values - returns)^2, (v_clip - returns)^2), aggregated token_mean
// over normalizer.tokens, times vf_coef. values (B, T) require grad;
// old_values are the rollout's, returns come from gae().
ValueLossOutput value_loss(const at::Tensor& values, const at::Tensor& old_values,
                           const at::Tensor& returns, const at::Tensor& mask,
                           const GrpoConfig& config, const LossNormalizer& normalizer);

}  // namespace r1kit
