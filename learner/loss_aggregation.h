// Loss aggregations: how per-token losses (B, T) under a mask become the scalar
// a micro-batch calls backward() on, divided by counts of the WHOLE mini-batch
// (LossNormalizer) so that micro-batches and ranks add up. A registry of small
// functions, one REGISTER_LOSS_AGGREGATION line each, named by grpo.loss_type.
// Pure functions; any thread.
//
//   at::Tensor token_sum(const at::Tensor& loss, const at::Tensor& mask,
//                        const r1kit::LossNormalizer&) {
//     return (loss * mask).sum();
//   }
//   REGISTER_LOSS_AGGREGATION("token_sum", token_sum);
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/registry.h"

namespace r1kit {

// The denominators of the aggregation, counted over the WHOLE mini-batch on
// ALL ranks (not this micro-batch), so that the sum of the micro-batch losses is
// the mini-batch loss:
//   token_mean              sum(l * m) / tokens                       (DAPO; TRL dapo/bnpo)
//   seq_mean_token_mean     sum_i(sum_t(l * m) / len_i) / sequences   (GRPO, Shao et al. 2024)
//   seq_mean_token_sum_norm sum(l * m) / (sequences * max_completion_length)  (Dr. GRPO)
// len_i is a row's own mask sum (a row is never split), at least 1.
struct LossNormalizer {
  double tokens = 0.0;                // masked tokens
  double sequences = 0.0;             // rows, fully masked ones included (as TRL)
  int64_t max_completion_length = 0;  // Dr. GRPO's constant

  LossNormalizer& operator+=(const LossNormalizer& other);
};

// The counts of one micro-batch's mask (B, T); sum them over micro-batches and
// ranks for the normaliser.
LossNormalizer count_loss_normalizer(const at::Tensor& mask, int64_t max_completion_length);

// One aggregation: per_token_loss (B, T) and mask (B, T, 1 = in the loss) of one
// micro-batch to a scalar share of the mini-batch loss, dividing by counts from
// `normalizer`. Differentiable in per_token_loss.
using LossAggregation = std::function<at::Tensor(
    const at::Tensor& per_token_loss, const at::Tensor& mask, const LossNormalizer& normalizer)>;

// The aggregation registry: REGISTER_LOSS_AGGREGATION lines add to it.
Registry<LossAggregation>& loss_aggregation_registry();

// Aggregates per-token losses (B, T) under `mask` (B, T) with the aggregation
// registered as `aggregation` ("token_mean", "seq_mean_token_mean",
// "seq_mean_token_sum_norm", or a plugin's); an unknown name is the registry's
// config error.
at::Tensor aggregate_loss(const at::Tensor& per_token_loss, const at::Tensor& mask,
                          const std::string& aggregation, const LossNormalizer& normalizer);

}  // namespace r1kit

// Registers `aggregation` (callable as a LossAggregation) as `name` at load time.
#define REGISTER_LOSS_AGGREGATION(name, aggregation) \
  R1KIT_REGISTER(::r1kit::loss_aggregation_registry(), name, aggregation)
