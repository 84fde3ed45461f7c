#include "learner/loss_aggregation.h"

namespace r1kit {

LossNormalizer& LossNormalizer::operator+=(const LossNormalizer& other) {
  TORCH_CHECK(max_completion_length == 0 || other.max_completion_length == 0 ||
                  max_completion_length == other.max_completion_length,
              "LossNormalizer: max_completion_length differs: ", max_completion_length, " vs ",
              other.max_completion_length);
  tokens += other.tokens;
  sequences += other.sequences;
  if (max_completion_length == 0) max_completion_length = other.max_completion_length;
  return *this;
}

LossNormalizer count_loss_normalizer(const at::Tensor& mask, int64_t max_completion_length) {
  TORCH_CHECK(mask.dim() == 2, "count_loss_normalizer: mask must be (B, T), got ", mask.sizes());
  return {mask.to(at::kDouble).sum().item<double>(), static_cast<double>(mask.size(0)),
          max_completion_length};
}

Registry<LossAggregation>& loss_aggregation_registry() {
  static Registry<LossAggregation> registry("loss aggregation");
  return registry;
}

at::Tensor aggregate_loss(const at::Tensor& per_token_loss, const at::Tensor& mask,
                          const std::string& aggregation, const LossNormalizer& normalizer) {
  TORCH_CHECK(per_token_loss.dim() == 2 && per_token_loss.sizes() == mask.sizes(),
              "aggregate_loss: loss ", per_token_loss.sizes(), " and mask ", mask.sizes(),
              " must both be (B, T)");
  return loss_aggregation_registry().get(aggregation)(per_token_loss, mask, normalizer);
}

namespace {

// Every masked token weighs the same (DAPO, Yu et al. 2025; TRL's dapo and bnpo).
at::Tensor token_mean(const at::Tensor& per_token_loss, const at::Tensor& mask,
                      const LossNormalizer& normalizer) {
  TORCH_CHECK(normalizer.tokens > 0.0,
              "aggregate_loss: token_mean needs normalizer.tokens > 0, got ", normalizer.tokens);
  at::Tensor masked = per_token_loss * mask;  // (B, T)
  return masked.sum() / normalizer.tokens;
}

// Each sequence's token mean, then the mean over sequences (GRPO, Shao et al. 2024).
at::Tensor seq_mean_token_mean(const at::Tensor& per_token_loss, const at::Tensor& mask,
                               const LossNormalizer& normalizer) {
  TORCH_CHECK(normalizer.sequences > 0.0,
              "aggregate_loss: seq_mean_token_mean needs normalizer.sequences > 0");
  at::Tensor masked = per_token_loss * mask;         // (B, T)
  at::Tensor lengths = mask.sum(-1).clamp_min(1.0);  // (B)
  return (masked.sum(-1) / lengths).sum() / normalizer.sequences;
}

// The token sum over a constant, sequences * max_completion_length: no length
// bias (Dr. GRPO, Liu et al. 2025).
at::Tensor seq_mean_token_sum_norm(const at::Tensor& per_token_loss, const at::Tensor& mask,
                                   const LossNormalizer& normalizer) {
  TORCH_CHECK(normalizer.sequences > 0.0 && normalizer.max_completion_length > 0,
              "aggregate_loss: seq_mean_token_sum_norm needs sequences > 0 and "
              "max_completion_length > 0, got ",
              normalizer.sequences, " and ", normalizer.max_completion_length);
  at::Tensor masked = per_token_loss * mask;  // (B, T)
  return masked.sum() /
         (normalizer.sequences * static_cast<double>(normalizer.max_completion_length));
}

}  // namespace

REGISTER_LOSS_AGGREGATION("token_mean", token_mean);
REGISTER_LOSS_AGGREGATION("seq_mean_token_mean", seq_mean_token_mean);
REGISTER_LOSS_AGGREGATION("seq_mean_token_sum_norm", seq_mean_token_sum_norm);

}  // namespace r1kit
