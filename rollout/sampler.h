// Picks the next token of every row from its logits: temperature, then the
// top-k, top-p (nucleus) and min-p filters in that order (as transformers'
// logits processors), then one draw per row from a uniform the caller supplies,
// so a sequence's draws do not depend on which rows share its batch.
// Stateless functions; safe from many threads.
#pragma once

#include <ATen/ATen.h>

#include "rollout/sampling_params.h"

namespace r1kit {

struct SampledTokens {
  at::Tensor tokens;  // (B) int64
  // (B) float32: log-softmax(logits / T) at the chosen token, T = temperature
  // (1 when greedy), taken before the top-k/top-p/min-p filters. This is the
  // quantity the learner recomputes for importance ratios: the same logits
  // divided by the same temperature, no filters (TRL and verl do the same).
  at::Tensor logprobs;
};

// logits (B, V) float32 or bfloat16 (widened exactly to float32); uniforms (B) float64 in [0, 1),
// one per row (unused when greedy). Returns the sampled token and its logprob per row.
SampledTokens sample_tokens(const at::Tensor& logits, const SamplingParams& params,
                            const at::Tensor& uniforms);

// logits (B, V) already divided by the temperature. Returns a copy with the
// tokens removed by top_k, top_p and min_p set to -inf (at least one kept).
at::Tensor apply_filters(const at::Tensor& scaled_logits, const SamplingParams& params);

}  // namespace r1kit
