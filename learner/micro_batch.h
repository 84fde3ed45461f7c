// What the learner trains on: one sampled completion (TrainingSample) and the
// right-padded tensors of a micro-batch of them (MicroBatch), with the loss
// mask that keeps prompts, padding, masked-out truncations and environment
// observations out of the loss. Plain data and functions; no shared state.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "learner/policy_loss.h"

namespace r1kit {

// One completion ready for the learner.
struct TrainingSample {
  std::vector<int64_t> tokens;  // prompt then completion (L)
  int64_t prompt_length = 0;
  std::vector<float>
      old_logprobs;  // rollout log-probs of the completion tokens (L - prompt_length)
  // The learner's own log-probs of the completion tokens before the step's first
  // optimiser step (pi_old under grpo.rollout_correction; L - prompt_length);
  // empty = not computed (the training forward's own log-probs serve).
  std::vector<float> learner_old_logprobs;
  float advantage = 0.0f;
  bool in_loss = true;  // false: a truncated completion under mask_truncated_completions
  // Multi-turn: 1 at completion tokens the environment wrote (L - prompt_length);
  // they leave the loss. Empty = every completion token was sampled.
  std::vector<uint8_t> observation_mask;
  // PPO only (GAE), per completion token: advantages, value targets, rollout values.
  std::vector<float> token_advantages;
  std::vector<float> returns;
  std::vector<float> old_values;
};

// Rows of one learner micro-batch, right-padded.
struct MicroBatch {
  at::Tensor tokens;          // (B, L) int64
  at::Tensor attention_mask;  // (B, L) int64
  at::Tensor loss_mask;       // (B, L-1) float: completion_mask, or 0 for a row out of the loss
  at::Tensor old_logprobs;    // (B, L-1) float
  at::Tensor learner_old_logprobs;  // (B, L-1) float; undefined unless the samples carry them
  at::Tensor advantages;            // (B) float
  at::Tensor completion_mask;   // (B, L-1) float: 1 where the target is a sampled completion token
                                // (GAE's mask)
  at::Tensor token_advantages;  // (B, L-1) float, PPO only (undefined otherwise)
  at::Tensor returns;           // (B, L-1) float, PPO only
  at::Tensor old_values;        // (B, L-1) float, PPO only
};

// The rows samples[begin, end) as one micro-batch on the CPU.
MicroBatch make_micro_batch(const std::vector<TrainingSample>& samples, size_t begin, size_t end);

// The same rows with the per-target tensors aligned at each row's first
// completion token (column t = completion token t, width the longest
// completion): the loss side of a SharedPrefixBatch (policy/shared_prefix.h).
// tokens and attention_mask stay undefined.
MicroBatch make_completion_micro_batch(const std::vector<TrainingSample>& samples, size_t begin,
                                       size_t end);

// The loss normaliser's counts for samples[begin, end), from the samples
// themselves: what count_loss_normalizer gives on make_micro_batch's loss
// mask, also for samples that never go through a micro-batch (see
// GrpoConfig::skip_zero_advantage).
LossNormalizer count_loss_normalizer(const std::vector<TrainingSample>& samples, size_t begin,
                                     size_t end, int64_t max_completion_length);

// Splits [begin, end) into consecutive micro-batches of at most `budget`
// padded tokens (rows * longest row); a row longer than the budget goes alone.
std::vector<std::pair<size_t, size_t>> plan_micro_batches(
    const std::vector<TrainingSample>& samples, size_t begin, size_t end, int64_t budget);

}  // namespace r1kit
