// The learner's forward over completions that share a prompt (a GRPO group):
// each distinct prompt goes through the model once, its completions attend to
// its keys and values, and no padding goes through the linear layers. The
// log-probs and gradients equal those of one padded row per completion; the
// layout is built on the host, the forward is differentiable. Any thread; the
// model is used as in forward().
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <span>
#include <vector>

#include "policy/transformer.h"

namespace r1kit {

// One row: prompt tokens then completion tokens.
struct PromptAndCompletion {
  std::span<const int64_t> tokens;
  int64_t prompt_length = 0;  // 1 .. tokens.size() - 1
};

// Consecutive rows with equal prompt tokens share one copy of the prompt. N
// packed tokens: every distinct prompt's (P_g each, group order), then every
// row's completion (C_b each, row order). G groups, B rows, P and C the longest.
struct SharedPrefixBatch {
  at::Tensor tokens;              // (N) int64
  at::Tensor positions;           // (N) int64: 0.. within the prompt, continuing into the completion
  at::Tensor prompt_index;        // (G, P) int64 into N; padding points at 0
  at::Tensor prompt_attend;       // (G, 1, P, P) bool: causal over the prompt
  at::Tensor completion_index;    // (B, C) int64 into N; padding points at 0
  at::Tensor key_index;           // (B, P + C) int64 into N: the group's prompt, then the row's completion
  at::Tensor completion_attend;   // (B, 1, C, P + C) bool: the whole prompt, the completion causally
  at::Tensor prompt_slots;        // (sum P_g) int64: flat (G * P) slots of real prompt tokens, in N order
  at::Tensor completion_slots;    // (sum C_b) int64: flat (B * C) slots of real completion tokens, in N order
  at::Tensor predecessor_index;   // (B, C) int64 into N: the token whose logits predict each target
  at::Tensor targets;             // (B, C) int64: the completion tokens, 0 at padding
  at::Tensor completion_mask;     // (B, C) float: 1 at real completion tokens
  int64_t groups = 0;             // G

  SharedPrefixBatch to(const at::Device& device) const;
};

// Throws std::invalid_argument for an empty prompt or completion.
SharedPrefixBatch make_shared_prefix_batch(const std::vector<PromptAndCompletion>& rows);

// Logits float32 (B, C, V) of every completion target: those of a padded
// forward of each row at the positions before its completion tokens.
at::Tensor shared_prefix_logits(TransformerImpl& model, const SharedPrefixBatch& batch);

}  // namespace r1kit
