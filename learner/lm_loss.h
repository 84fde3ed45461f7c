// The causal language-modelling loss of pretraining and SFT: token-level
// cross-entropy of the next token, averaged over the tokens a mask selects
// (all tokens in pretraining, response tokens in SFT). Pure functions.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "policy/transformer.h"

namespace r1kit {

struct LmLoss {
  at::Tensor loss;  // scalar float32: sum / tokens (0 when no token counts)
  at::Tensor
      sum;  // scalar float32: summed negative log-likelihood, for averaging across micro-batches
  int64_t tokens = 0;  // target tokens that counted
};

// logits (B, T, V) predict targets (B, T) int64 position by position;
// weights (B, T) (bool or 0/1 of any dtype) select the targets that count.
// Computed in float32 whatever the logits' dtype.
LmLoss lm_loss(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& weights);

// The shifted form: logits (B, T, V) of a forward over tokens (B, T); position
// t predicts tokens[:, t + 1], counted where loss_mask[:, t + 1] is 1 (the
// mask marks target tokens, e.g. response tokens, as SftBatch builds it).
LmLoss causal_lm_loss(const at::Tensor& logits, const at::Tensor& tokens,
                      const at::Tensor& loss_mask);

// lm_loss from the final hidden states (B, T, H) and the output projection
// (V, H) instead of logits, in logit blocks (learner/hidden_logprobs.h): the
// (B, T, V) logits never exist at once. Same value and gradients.
LmLoss lm_loss_from_hidden(const at::Tensor& hidden, const at::Tensor& output_weight,
                           const at::Tensor& targets, const at::Tensor& weights);

// causal_lm_loss of a forward of `model` over tokens (B, T) with
// attention_mask (B, T), computed from its hidden states (lm_loss_from_hidden).
LmLoss causal_lm_loss(TransformerImpl& model, const at::Tensor& tokens,
                      const at::Tensor& attention_mask, const at::Tensor& loss_mask);

}  // namespace r1kit
