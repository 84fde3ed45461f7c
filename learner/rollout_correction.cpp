#include "learner/rollout_correction.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "learner/kl_estimator.h"
#include "learner/step_metrics.h"

namespace r1kit {

void RolloutCorrectionConfig::visit(ConfigVisitor& v) {
  v.field("mode", mode, {.choices = {"auto", "none", "tis", "mask"}});
  v.field("level", level, {.choices = {"token", "sequence"}});
  v.field("cap", cap);
  if (!(cap > 1.0)) {
    v.fail("cap", "the weight cap C must be > 1 (tis truncates at C, mask keeps [1/C, C]), got " +
                      std::to_string(cap));
  }
}

RolloutCorrectionSums& RolloutCorrectionSums::operator+=(const RolloutCorrectionSums& other) {
  tokens += other.tokens;
  kl += other.kl;
  sequences += other.sequences;
  ppl_ratio += other.ppl_ratio;
  masked += other.masked;
  weight_max = std::max(weight_max, other.weight_max);
  weight_max_raw = std::max(weight_max_raw, other.weight_max_raw);
  return *this;
}

void RolloutCorrectionSums::write(StepMetrics& metrics) const {
  metrics.set("rollout_corr/kl", ratio_or_zero(kl, tokens));
  metrics.set("rollout_corr/ppl_ratio", ratio_or_zero(ppl_ratio, sequences));
  metrics.set("rollout_corr/weight_max", weight_max);
  metrics.set("rollout_corr/weight_max_raw", weight_max_raw);
  metrics.set("rollout_corr/masked_fraction", ratio_or_zero(masked, tokens));
}

RolloutCorrection rollout_correction(const at::Tensor& learner_logprobs,
                                     const at::Tensor& rollout_logprobs, const at::Tensor& mask,
                                     const RolloutCorrectionConfig& config) {
  TORCH_CHECK(learner_logprobs.dim() == 2 && rollout_logprobs.sizes() == learner_logprobs.sizes() &&
                  mask.sizes() == learner_logprobs.sizes(),
              "rollout_correction: learner log-probs ", learner_logprobs.sizes(),
              ", rollout log-probs ", rollout_logprobs.sizes(), " and mask ", mask.sizes(),
              " must all be (B, T)");
  at::NoGradGuard no_grad;
  const at::Tensor m = mask.detach().to(at::kDouble);  // (B, T)
  const at::Tensor in_loss = m > 0;
  // log(pi_learner / pi_rollout) at each sampled token, (B, T).
  const at::Tensor log_ratio =
      (learner_logprobs.detach().to(at::kDouble) - rollout_logprobs.detach().to(at::kDouble))
          .clamp(-kMaxLogRatio, kMaxLogRatio);
  const at::Tensor row_tokens = m.sum(-1);                                               // (B)
  const at::Tensor row_log_ratio = (log_ratio * m).sum(-1) / row_tokens.clamp_min(1.0);  // (B)

  at::Tensor log_weight = log_ratio;  // (B, T)
  if (config.level == "sequence") {
    log_weight = row_log_ratio.unsqueeze(1).expand_as(log_ratio);
  } else {
    TORCH_CHECK(config.level == "token", "rollout_correction: unknown level ", config.level);
  }
  const at::Tensor raw = log_weight.exp();  // (B, T), w before truncation or masking
  at::Tensor applied = raw;                 // (B, T), the factor the loss uses
  at::Tensor kept = in_loss;                // (B, T) bool, loss tokens left in the loss
  if (config.mode == "tis") {
    applied = raw.clamp_max(config.cap);
  } else if (config.mode == "mask") {
    kept = in_loss & (raw >= 1.0 / config.cap) & (raw <= config.cap);
    applied = kept.to(at::kDouble);
  } else {
    TORCH_CHECK(config.mode == "none" || config.mode == "auto", "rollout_correction: unknown mode ",
                config.mode);
  }
  // Every weight is positive, so 0 off the mask leaves the maxima to the loss tokens.
  const at::Tensor zero = at::zeros({}, m.options());
  auto largest = [&](const at::Tensor& values, const at::Tensor& where) {
    return values.numel() == 0 ? zero : values.masked_fill(~where, 0.0).max();
  };
  const at::Tensor largest_used =
      config.mode == "mask" ? largest(raw, kept) : largest(applied, in_loss);
  const at::Tensor k3 = log_ratio.exp() - log_ratio - 1.0;  // (B, T), verl's k3_kl
  const at::Tensor has_tokens = row_tokens > 0;             // (B)
  // training_ppl / rollout_ppl of a row = exp(mean(rollout) - mean(learner)).
  const at::Tensor row_ppl_ratio = (-row_log_ratio).exp() * has_tokens.to(at::kDouble);  // (B)

  RolloutCorrection out;
  out.totals =
      at::stack({m.sum(), (k3 * m).sum(), has_tokens.to(at::kDouble).sum(), row_ppl_ratio.sum(),
                 config.mode == "mask" ? (in_loss & ~kept).to(at::kDouble).sum() : zero,
                 largest_used, largest(raw, in_loss)});
  if (config.enabled()) out.weights = (applied * m).to(learner_logprobs.scalar_type());
  return out;
}

RolloutCorrectionSums rollout_correction_sums(const at::Tensor& totals) {
  const at::Tensor values = totals.to(at::kCPU, at::kDouble).contiguous();
  TORCH_CHECK(values.numel() == 7, "rollout_correction_sums: expected 7 totals, got ",
              values.numel());
  const double* t = values.data_ptr<double>();
  RolloutCorrectionSums sums;
  sums.tokens = t[0];
  sums.kl = t[1];
  sums.sequences = t[2];
  sums.ppl_ratio = t[3];
  sums.masked = t[4];
  sums.weight_max = t[5];
  sums.weight_max_raw = t[6];
  return sums;
}

}  // namespace r1kit
