// Picks the next token of every row from its logits: the chain of logits
// processors of one SamplingParams (by default temperature, then the top-k,
// top-p and min-p filters, as transformers' logits processors), then one draw
// per row from a uniform the caller supplies, so a sequence's draws do not
// depend on which rows share its batch. A Sampler is immutable once built:
// safe from many threads.
#pragma once

#include <ATen/ATen.h>

#include "rollout/logits_processor.h"
#include "rollout/sampling_params.h"

namespace r1kit {

struct SampledTokens {
  at::Tensor tokens;  // (B) int64
  // (B) float32: log-softmax(logits / T) at the chosen token, T = temperature
  // (1 when greedy), taken before any other processor (filters, penalties,
  // bans). This is the quantity the learner recomputes for importance ratios:
  // the same logits divided by the same temperature, no filters (TRL and verl
  // do the same).
  at::Tensor logprobs;
};

class Sampler {
 public:
  // Builds the processor chain of `params` once; an unknown processor name
  // throws the registry's config error.
  explicit Sampler(const SamplingParams& params);

  // logits (B, V) float32 or bfloat16 (widened exactly to float32); uniforms
  // (B) float64 in [0, 1), one per row (unused when greedy); `context` as the
  // chain's processors need it (the token history for repetition_penalty).
  // Returns the sampled token and its logprob per row.
  SampledTokens sample(const at::Tensor& logits, const at::Tensor& uniforms,
                       const LogitsContext& context = {}) const;

  const LogitsProcessorChain& chain() const { return chain_; }

 private:
  double temperature_;
  LogitsProcessorChain chain_;
  // The chain opens with the temperature processor: its output is the logprob's
  // scaled logits, computed once for both.
  bool chain_starts_with_temperature_;
};

// Sampler(params).sample(logits, uniforms, context): for a single call; a
// decode loop keeps one Sampler.
SampledTokens sample_tokens(const at::Tensor& logits, const SamplingParams& params,
                            const at::Tensor& uniforms, const LogitsContext& context = {});

}  // namespace r1kit
