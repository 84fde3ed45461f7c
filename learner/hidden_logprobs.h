// Per-token log-probs and entropies straight from the final hidden states and
// the output projection, in blocks of tokens and vocabulary rows: the
// (tokens x vocabulary) float32 logits of a micro-batch never exist at once,
// and the backward recomputes each block instead of keeping it. Values and
// gradients equal token_logprobs / token_entropy (learner/logprobs.h) of the
// full logits. Pure functions, differentiable; any thread.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

namespace r1kit {

// The most logits one block holds (64 MiB of float32): blocks are this many
// values, tokens x vocabulary rows.
inline constexpr int64_t kLogitBlockValues = int64_t{1} << 24;

struct HiddenLogprobs {
  at::Tensor logprobs;  // (...) float32: log softmax(logits / temperature)[target]
  at::Tensor entropy;   // (...) float32 in nats; undefined unless asked for
};

// hidden (..., H) and weight (V, H) (logits = hidden weight^T), targets (...)
// int64 in [0, V). temperature as token_logprobs (0 and 1 leave the logits as
// they are). The block matmuls run in `matmul_dtype` (e.g. bfloat16 to match an
// autocast forward; default: hidden's dtype) with float32 results; nothing
// else is reduced in lower precision. Gradients reach hidden and weight when
// they require them; the entropy is differentiable too.
HiddenLogprobs hidden_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                               const at::Tensor& targets, double temperature, bool with_entropy,
                               std::optional<at::ScalarType> matmul_dtype = std::nullopt,
                               int64_t block_values = kLogitBlockValues);

}  // namespace r1kit
