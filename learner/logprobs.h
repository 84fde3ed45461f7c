// Per-token log-probabilities and entropies of a policy's logits, the learner's
// side of the importance ratio. They match the rollout engine's: log_softmax of
// logits / temperature at the sampled token, before any top-k / top-p / min-p
// filter (temperature 0, greedy decoding, means the unscaled logits). Pure
// functions, differentiable; any thread.
#pragma once

#include <ATen/ATen.h>

namespace r1kit {

// log softmax(logits / temperature)[targets]: logits (B, T, V) (any float
// dtype, computed in float32), targets (B, T) int64 -> (B, T) float32. Takes a
// logsumexp and a gather instead of materialising a second (B, T, V) of
// log-probabilities.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, double temperature);

// Entropy of softmax(logits / temperature) per position: (B, T, V) -> (B, T)
// float32, in nats.
at::Tensor token_entropy(const at::Tensor& logits, double temperature);

}  // namespace r1kit
