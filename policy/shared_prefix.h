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

// True when both rows have the same prompt tokens (then, next to each other,
// they share one copy of it).
bool same_prompt(const PromptAndCompletion& a, const PromptAndCompletion& b);

// The completion inputs of rows of similar length (R rows, the longest Cb
// tokens, prompts of at most Pb), attended in one call: bucketing keeps the
// padded queries of short completions beside long ones few. A row whose
// completion is one token has no inputs and is in no bucket.
struct CompletionBucket {
  at::Tensor query_index;  // (R, Cb) int64 into N; padding points at 0
  at::Tensor key_index;    // (R, Pb + Cb) int64 into N: the row's prompt, then its completion
  at::Tensor attend;       // (R, 1, Cb, Pb + Cb) bool: the whole prompt, the completion causally
  at::Tensor slots;        // (sum of C) int64: flat (R * Cb) slots of real tokens, in N order
};

// Consecutive rows with equal prompt tokens share one copy of the prompt. N
// packed tokens: every distinct prompt's (P_g each, group order), then each
// completion but its last token (C_b - 1 each; the last token is a target,
// never an input), bucket by bucket. G groups, B rows, P and C the longest.
struct SharedPrefixBatch {
  at::Tensor tokens;         // (N) int64
  at::Tensor positions;      // (N) int64: 0.. within the prompt, continuing into the completion
  at::Tensor prompt_index;   // (G, P) int64 into N; padding points at 0
  at::Tensor prompt_attend;  // (G, 1, P, P) bool: causal over the prompt
  at::Tensor prompt_slots;  // (sum P_g) int64: flat (G * P) slots of real prompt tokens, in N order
  std::vector<CompletionBucket> buckets;  // rows by completion length, longest first
  at::Tensor predecessor_index;  // (B, C) int64 into N, row order: the token whose logits predict
                                 // each target
  at::Tensor targets;            // (B, C) int64: the completion tokens, 0 at padding
  at::Tensor completion_mask;    // (B, C) float: 1 at real completion tokens
  int64_t groups = 0;            // G

  SharedPrefixBatch to(const at::Device& device) const;
};

// A new bucket starts where a completion is at most half the bucket's
// longest, up to this many buckets.
inline constexpr int64_t kMaxCompletionBuckets = 4;

// Throws std::invalid_argument for an empty prompt or completion.
SharedPrefixBatch make_shared_prefix_batch(const std::vector<PromptAndCompletion>& rows);

// The final-normed hidden states (B, C, H) whose logits predict every
// completion target: those of a padded forward of each row at the positions
// before its completion tokens. Checkpoints each layer when the model says so
// (TransformerImpl::gradient_checkpointing).
at::Tensor shared_prefix_hidden(TransformerImpl& model, const SharedPrefixBatch& batch);

// Logits float32 (B, C, V) of every completion target: logits_from_hidden of
// shared_prefix_hidden.
at::Tensor shared_prefix_logits(TransformerImpl& model, const SharedPrefixBatch& batch);

}  // namespace r1kit
